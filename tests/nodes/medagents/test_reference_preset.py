"""MedAgents `preset="reference"`: every request the original code sends for sample items (expected
messages, token limits and sampling in tests/data/reference/medagents.json, produced by running the
original pipeline with scripted replies), its record, and its parsing decisions on crafted replies."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

import nodes.agent_call
from graphs.medagents import build_graph
from nodes.chat_models import register_chat_model
from nodes.medagents import reference as ref
from nodes.medagents.context import MedAgentsContext
from runners.methods.medagents import MEDAGENTS
from tasks import TaskItem, get_task
from tests.fakes import ScriptedChatModel

EXAMPLES = json.loads(
    (Path(__file__).parents[2] / "data" / "reference" / "medagents.json").read_text(encoding="utf-8")
)
SCENARIOS = ["syn_verif_consensus", "syn_verif_revision", "base_direct", "base_cot", "anal_only"]
METHODS = {"base_direct": "base_direct", "base_cot": "base_cot", "anal_only": "anal_only"}


def run_scenario(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, list[tuple]]:
    scenario = EXAMPLES[name]
    replies: dict[tuple[str, str], list[str]] = defaultdict(list)
    for call in scenario["calls"]:
        system, user = call["messages"]
        replies[(system["content"], user["content"])].append(call["reply"])

    def reply(messages):
        system, user = messages
        queue = replies[(system.content, user.content)]
        assert queue, f"unexpected request: {user.content[:200]!r}"
        return queue.pop(0)

    model = ScriptedChatModel(reply)
    register_chat_model("fake-medagents-reference", model)
    sent: list[tuple] = []
    real = nodes.agent_call.chat_model

    def recording(config):  # what each request asked for: token limit and sampling
        sent.append((config.max_tokens, config.temperature, config.top_p))
        return real(config)

    monkeypatch.setattr(nodes.agent_call, "chat_model", recording)
    ctx = MedAgentsContext(
        preset="reference", method=METHODS.get(name, "syn_verif"), model="fake-medagents-reference"
    )
    raw_question = scenario["question_after_run_py"].rstrip("?")  # run.py adds the "?"
    item = TaskItem(id="1", question=raw_question, gold="A", options=scenario["options"])
    state = (
        build_graph()
        .compile()
        .invoke(
            MEDAGENTS.make_input(item, get_task("medqa"), ctx),
            {"max_concurrency": 1},  # parallel experts in index order, like the original's loop
            context=ctx,
        )
    )
    assert not any(replies.values()), "requests the original sends were not sent"
    calls = [(c[0].content, c[1].content) for c in model.calls]
    return state, list(zip(calls, sent, strict=True))


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_request_is_the_originals(name, monkeypatch):
    state, sent = run_scenario(name, monkeypatch)
    expected = [
        (
            (c["messages"][0]["content"], c["messages"][1]["content"]),
            (c["max_tokens"], float(c["temperature"]), float(c["top_p"])),
        )
        for c in EXAMPLES[name]["calls"]
    ]
    assert sorted(sent) == sorted(expected)  # same requests, same limits (order: parallel branches)
    assert len(sent) == len(expected)


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_record_is_the_originals(name, monkeypatch):
    state, _ = run_scenario(name, monkeypatch)
    info = EXAMPLES[name]["data_info"]
    assert state["question"] == info["question"]
    assert state["pred_answer"] == info["pred_answer"]
    assert state["raw_output"] == info["raw_output"]
    for key in ("question_domains", "option_domains", "question_analyses", "option_analyses", "syn_report"):
        assert state[key] == (info[key] or type(state[key])()), key
    assert state.get("syn_repo_history", []) == info["syn_repo_history"]
    votes = [{v["domain"]: v["vote"] for v in round_["votes"]} for round_ in state.get("vote_history", [])]
    assert votes == info["vote_history"]
    advice = [
        {a["domain"]: a["advice"] for a in round_["advice"]} for round_ in state.get("revision_history", [])
    ]
    assert advice == info["revision_history"]


def test_reference_differs_from_lenient_on_the_same_reply():
    assert ref.parse_letter("Option: Based on the report, D") == "B"  # the capital B of "Based"
    assert ref.parse_vote("I cannot say") == "no" and ref.parse_vote("Absolutely") == "yes"
    from nodes.medagents.parse import parse_answer_letter, parse_vote

    assert parse_answer_letter("Option: Based on the report, D", list("ABCDE")) is None  # unclear
    assert parse_vote("I cannot say") is None and parse_vote("Absolutely") is None


def test_parsing_truth_tables():
    cases = EXAMPLES["_parsing_cases"]
    for text, expected in cases["cleansing_final_output"].items():
        if text == "ERROR.":
            continue  # a failed call never becomes a reply here (it fails the item)
        assert (ref.parse_letter(text) or "") == expected, text
    for text, expected in cases["cleansing_voting"].items():
        assert ref.parse_vote(text) == expected, text
    for text, expected in cases["remove_incomplete_sentence"].items():
        assert ref.clean_analysis(text) == expected, text
    assert ref.total_analysis("Total Analysis: first Total Analysis: second") == "first"
    assert ref.total_analysis("Key Knowledge: only") is None
    assert ref.parse_domains("Medical Field: Cardiology|Neurology") == ["Cardiology|Neurology"]
    assert ref.parse_domains("Fields: A | B | A") == ["A", "B", "A"]
    assert ref.reference_question('He asks "why?"') == 'He asks "why?"'
    assert ref.reference_question("Which one") == "Which one?"


def test_a_synthesis_without_total_analysis_fails_the_item(monkeypatch):
    model = ScriptedChatModel(
        lambda m: "Medical Field: A | B" if "Medical Field" in m[-1].content else "Key Knowledge: only"
    )
    register_chat_model("fake-medagents-no-total", model)
    ctx = MedAgentsContext(preset="reference", model="fake-medagents-no-total")
    with pytest.raises(ValueError, match="no 'Total Analysis:'"):
        build_graph().compile().invoke({"question": "Q?", "options": {"A": "x", "B": "y"}}, context=ctx)


def test_preset_names_and_grading():
    assert MedAgentsContext().preset == "default" and MedAgentsContext().grading_rules == "lenient"
    assert MedAgentsContext(preset="reference").grading_rules == "reference"
    assert (
        MedAgentsContext(preset="original").temperature,
        MedAgentsContext(preset="paper").max_attempts,
    ) == (
        0.0,
        5,
    )
