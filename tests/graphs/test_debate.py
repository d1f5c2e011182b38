"""MAD debate graph: flow, early stop, judge fallback, tolerant moderator parsing, message sequences,
human moderator, failures, module surface, and resume after a real SIGKILL.

The evaluation adapter is tested in tests/runners/methods/test_debate.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graphs.debate import DebateContext, build_graph, graph, route_after_moderator
from latent_backend.grammar_spec import GrammarSpec
from nodes.agent_call import RETRY_POLICY
from nodes.chat_models import register_chat_model
from nodes.debate.prompts import fill
from nodes.debate.state import debate_input
from nodes.debate.verdicts import judge_schema, moderator_schema
from tests.db_kinds import DB_KINDS, database
from tests.fakes import ScriptedChatModel

ROLES = ("base", "affirmative", "negative", "moderator", "judge")
REPO = Path(__file__).resolve().parents[2]
TOPIC = "When Alice walks up the hill at 1 m/s and down at 3 m/s, what is her average speed?"


def mod(
    answer: str = "",
    preference: str | None = None,
    side: str = "",
    reason: str = "because",
    key: str = "debate_answer",
) -> str:
    """A moderator reply in the JSON format of the original MAD."""
    preference = preference or ("Yes" if answer else "No")
    return json.dumps(
        {"Whether there is a preference": preference, "Supported Side": side, "Reason": reason, key: answer}
    )


def judge_json(answer: str, key: str = "debate_answer") -> str:
    return json.dumps({"Reason": "the judge's reason", key: answer})


def players(replies: dict[str, Any], **context: Any) -> tuple[DebateContext, dict[str, ScriptedChatModel]]:
    """One scripted model per role (lists in call order, or callables), selected by name in the context."""
    fakes: dict[str, ScriptedChatModel] = {}
    names: dict[str, str] = {}
    tag = uuid.uuid4().hex[:8]
    for role in ROLES:
        default = {"base": "BASE", "affirmative": "AFF", "negative": "NEG"}.get(role, "")
        fakes[role] = ScriptedChatModel(replies.get(role), default_reply=default)
        names[f"{role}_model"] = f"debate-{role}-{tag}"
        register_chat_model(names[f"{role}_model"], fakes[role])
    return DebateContext(**names, **context), fakes


def numbered(prefix: str):
    """Replies '<prefix>-<round>', the round being the number of user turns in the player's memory."""
    return lambda messages: f"{prefix}-{sum(1 for m in messages if m.type == 'human')}"


def run(ctx: DebateContext, state: dict[str, Any] | None = None) -> dict[str, Any]:
    return build_graph().compile().invoke(state or debate_input(TOPIC), context=ctx)


def roles_and_texts(call: list[BaseMessage]) -> list[tuple[str, str]]:
    return [(m.type, m.text) for m in call]


# --------------------------------------------------------------------------------------------
# Flow
# --------------------------------------------------------------------------------------------


def test_early_stop_in_round_one() -> None:
    ctx, fakes = players(
        {
            "affirmative": numbered("AFF"),
            "negative": numbered("NEG"),
            "moderator": [mod("1.5", side="Negative")],
        }
    )
    state = run(ctx)
    record = state["record"]
    assert [fakes[r].call_count for r in ROLES] == [1, 1, 1, 1, 0]
    assert record["rounds"] == 1 and state["round"] == 1
    assert record["decided_by"] == "moderator"
    assert record["success"] is True
    assert record["debate_answer"] == "1.5"
    assert record["Supported Side"] == "Negative" and record["Reason"] == "because"
    assert record["base_answer"] == "BASE" and record["debate_topic"] == TOPIC
    for key in (
        "start_time",
        "end_time",
        "model_name",
        "temperature",
        "config",
        "players",
        "tokens",
        "failures",
    ):
        assert key in record
    assert set(record["players"]) == {"Baseline", "Affirmative side", "Negative side", "Moderator"}
    assert record["failures"] == []
    # tokens come from the trace (the fake reports word counts)
    trace = state["trace"]
    assert len(trace) == 4
    assert record["tokens"]["total"] == sum(e["prompt_tokens"] + e["generated_tokens"] for e in trace) > 0


def test_stops_in_round_three() -> None:
    ctx, fakes = players(
        {
            "affirmative": numbered("AFF"),
            "negative": numbered("NEG"),
            "moderator": [mod(), mod(), mod("1.5", side="Negative")],
        }
    )
    record = run(ctx)["record"]
    assert [fakes[r].call_count for r in ROLES] == [1, 3, 3, 3, 0]
    assert record["rounds"] == 3 and record["decided_by"] == "moderator"
    assert record["debate_answer"] == "1.5"
    assert len(record["players"]["Moderator"]) == 1 + 2 * 3  # system + (event, reply) per round


def test_judge_fallback_sees_last_round() -> None:
    ctx, fakes = players(
        {
            "affirmative": numbered("AFF"),
            "negative": numbered("NEG"),
            "moderator": [mod(), mod(), mod()],
            "judge": ["candidates: 1.5 and 2", judge_json("1.5")],
        }
    )
    record = run(ctx)["record"]
    assert [fakes[r].call_count for r in ROLES] == [1, 3, 3, 3, 2]
    assert record["decided_by"] == "judge" and record["success"] is True
    assert record["debate_answer"] == "1.5" and record["Reason"] == "the judge's reason"
    first_judge_prompt = fakes["judge"].calls[0][-1].text
    assert "AFF-3" in first_judge_prompt and "NEG-3" in first_judge_prompt
    assert "AFF-1" not in first_judge_prompt
    assert len(record["players"]["Judge"]) == 5  # system, candidates q/a, decision q/a


def test_judge_can_see_first_round_like_the_original() -> None:
    ctx, fakes = players(
        {
            "affirmative": numbered("AFF"),
            "negative": numbered("NEG"),
            "moderator": [mod(), mod()],
            "judge": ["c", judge_json("2")],
        },
        max_rounds=2,
        judge_sees="first_round",
    )
    run(ctx)
    first_judge_prompt = fakes["judge"].calls[0][-1].text
    assert "AFF-1" in first_judge_prompt and "NEG-1" in first_judge_prompt
    assert "AFF-2" not in first_judge_prompt


def test_preference_rule_and_answer_rule_differ() -> None:
    # "No" preference but an answer: the original's rule (answer) stops; the preference rule does not.
    replies = {"moderator": [mod("2", preference="No"), mod("1.5", preference="Yes")]}
    ctx, fakes = players(replies)
    assert run(ctx)["record"]["rounds"] == 1
    ctx, fakes = players(replies, early_stop="preference")
    record = run(ctx)["record"]
    assert record["rounds"] == 2 and record["debate_answer"] == "1.5"


def test_judge_failure_leaves_no_answer() -> None:
    ctx, _ = players({"moderator": [mod()], "judge": ["c", "no json", "still no json"]}, max_rounds=1)
    state = run(ctx)
    record = state["record"]
    assert record["success"] is False and record["debate_answer"] == "" and record["decided_by"] is None
    assert [f["node"] for f in record["failures"]] == ["judge_decide"]
    # (what the evaluation makes of it: tests/runners/methods/test_debate.py)


# --------------------------------------------------------------------------------------------
# Structured output
# --------------------------------------------------------------------------------------------


def test_structured_output_asks_for_the_verdict_schemas_and_reads_them() -> None:
    ctx, fakes = players(
        {"moderator": [mod()], "judge": ["candidates: 1.5 and 2", judge_json("1.5")]},
        max_rounds=1,
        max_new_tokens=96,
    )
    assert ctx.structured_output == "auto"  # the default
    state = run(ctx)
    record = state["record"]
    moderator_format = GrammarSpec.json_schema(moderator_schema("qa", 96)).to_openai_response_format()
    judge_format = GrammarSpec.json_schema(judge_schema("qa", 96)).to_openai_response_format()
    assert fakes["moderator"].response_formats == [moderator_format]
    assert fakes["judge"].response_formats == [None, judge_format]  # candidates are free text
    assert all(f is None for r in ("base", "affirmative", "negative") for f in fakes[r].response_formats)
    assert [(v["by"], v["ok"], v["structured"]) for v in state["verdicts"]] == [
        ("moderator", True, "json_schema"),
        ("judge", True, "json_schema"),
    ]
    assert record["structured_output"] == "auto" and record["debate_answer"] == "1.5"
    assert [e.get("structured") for e in state["trace"] if e["role"] in ("moderator", "judge")] == [
        "json_schema",
        None,
        "json_schema",
    ]


def test_structured_verdicts_are_validated_like_free_text_ones() -> None:
    """The same replies give the same record with structured output on and off, failures included."""
    replies = {
        "moderator": ['{"Whether there is a preference": "Maybe"}', "no JSON either"],
        "judge": ["c", judge_json(""), judge_json("")],
    }
    records = {}
    for mode in ("auto", "off"):
        ctx, fakes = players(replies, max_rounds=1, structured_output=mode)
        state = run(ctx)
        records[mode] = state["record"]
        expected = "json_schema" if mode == "auto" else "off"
        assert {v["structured"] for v in state["verdicts"]} == {expected}
        if mode == "off":
            assert all(f is None for fake in fakes.values() for f in fake.response_formats)
    for record in records.values():
        assert (record["success"], record["debate_answer"], record["decided_by"]) == (False, "", None)
        assert [(f["node"], f["kind"]) for f in record["failures"]] == [("moderator", "unparseable")]
    assert records["auto"]["structured_output"] == "auto" and records["off"]["structured_output"] == "off"
    assert records["auto"]["players"] == records["off"]["players"]


# --------------------------------------------------------------------------------------------
# Tolerant, safe moderator parsing inside the graph
# --------------------------------------------------------------------------------------------


def test_unparseable_moderator_retries_once_then_fails_the_round() -> None:
    fenced = "Here is my verdict:\n```json\n" + mod("1.5", side="Negative") + "\n```\nThanks."
    ctx, fakes = players(
        {
            "affirmative": numbered("AFF"),
            "negative": numbered("NEG"),
            "moderator": [
                "I think both are fine.",
                "Still no JSON, sorry.",  # round 1
                "Let me think...",
                fenced,
            ],
        }
    )  # round 2
    state = run(ctx)
    record = state["record"]
    assert fakes["moderator"].call_count == 4
    # the retry repeats the exchange and adds a reminder of the format
    retry_call = fakes["moderator"].calls[1]
    assert retry_call[-2].text == "I think both are fine."
    assert "JSON" in retry_call[-1].text and "debate_answer" in retry_call[-1].text
    assert [(f["node"], f["round"], f["kind"]) for f in record["failures"]] == [
        ("moderator", 1, "unparseable")
    ]
    assert record["rounds"] == 2 and record["decided_by"] == "moderator"
    assert record["debate_answer"] == "1.5"
    assert [v["ok"] for v in state["verdicts"]] == [False, True]
    assert sum(1 for e in state["trace"] if e.get("failure")) == 3


def test_moderator_python_code_is_never_executed(tmp_path: Path) -> None:
    marker = Path("/tmp/pwned_xyz")
    if marker.exists():
        marker.unlink()
    local_marker = tmp_path / "pwned"
    payloads = [
        "__import__('os').system('touch /tmp/pwned_xyz')",
        f"{{'debate_answer': __import__('os').system('touch {local_marker}')}}",
        "{'Whether there is a preference': 'Yes', 'debate_answer': exec(\"open('/tmp/pwned_xyz','w')\")}",
        "__import__('os').system('touch /tmp/pwned_xyz')",
    ]
    ctx, fakes = players({"moderator": payloads, "judge": ["c", judge_json("1.5")]}, max_rounds=2)
    state = run(ctx)
    assert not marker.exists() and not local_marker.exists()
    record = state["record"]
    assert [(f["node"], f["kind"]) for f in record["failures"]] == [("moderator", "unparseable")] * 2
    assert record["failures"][0]["raw"] == payloads[1]
    assert record["decided_by"] == "judge" and record["debate_answer"] == "1.5"


def test_python_style_verdict_is_accepted() -> None:
    reply = (
        "Verdict: {'Whether there is a preference': True, 'Supported Side': 'negative side', "
        "'Reason': \"it's 3/2\", 'debate_answer': 1.5,}"
    )
    ctx, _ = players({"moderator": [reply]})
    record = run(ctx)["record"]
    assert record["debate_answer"] == "1.5" and record["Supported Side"] == "Negative"


# --------------------------------------------------------------------------------------------
# What each player is told
# --------------------------------------------------------------------------------------------


def test_message_sequences_match_the_original() -> None:
    ctx, fakes = players(
        {
            "affirmative": numbered("AFF"),
            "negative": numbered("NEG"),
            "moderator": ["MOD-1", "MOD-1b", mod()],
            "judge": ["CANDIDATES", judge_json("1.5")],
        },
        max_rounds=2,
    )
    state = run(ctx)
    p = state["record"]["config"]
    assert "##" not in p["player_meta_prompt"] and TOPIC in p["player_meta_prompt"]
    assert "BASE" in p["affirmative_prompt"]

    base = fakes["base"].calls
    assert [roles_and_texts(c) for c in base] == [[("human", p["base_prompt"])]]
    assert TOPIC in p["base_prompt"]

    aff = [roles_and_texts(c) for c in fakes["affirmative"].calls]
    assert aff[0] == [("system", p["player_meta_prompt"]), ("human", p["affirmative_prompt"])]
    assert aff[1] == aff[0] + [("ai", "AFF-1"), ("human", fill(p["debate_prompt"], oppo_ans="NEG-1"))]
    assert "NEG-1" in aff[1][-1][1] and "agree with my perspective" in aff[1][-1][1]

    neg = [roles_and_texts(c) for c in fakes["negative"].calls]
    assert neg[0] == [
        ("system", p["player_meta_prompt"]),
        ("human", fill(p["negative_prompt"], aff_ans="AFF-1")),
    ]
    assert "AFF-1" in neg[0][1][1] and "disagree" in neg[0][1][1]
    assert neg[1] == neg[0] + [("ai", "NEG-1"), ("human", fill(p["debate_prompt"], oppo_ans="AFF-2"))]

    moderator = [roles_and_texts(c) for c in fakes["moderator"].calls]
    first = fill(p["moderator_prompt"], aff_ans="AFF-1", neg_ans="NEG-1", round="first")
    second = fill(p["moderator_prompt"], aff_ans="AFF-2", neg_ans="NEG-2", round="second")
    assert "first round" in first and "second round" in second
    assert moderator[0] == [("system", p["moderator_meta_prompt"]), ("human", first)]
    assert moderator[1][:3] == moderator[0] + [("ai", "MOD-1")]  # the format retry of round 1
    assert moderator[2][-1] == ("human", second)
    assert moderator[2][:-1] == moderator[1] + [("ai", "MOD-1b")]

    judge = [roles_and_texts(c) for c in fakes["judge"].calls]
    candidates = fill(p["judge_prompt_last1"], aff_ans="AFF-2", neg_ans="NEG-2")
    assert judge[0] == [("system", p["moderator_meta_prompt"]), ("human", candidates)]
    assert judge[1] == judge[0] + [("ai", "CANDIDATES"), ("human", p["judge_prompt_last2"])]

    # the saved memories are exactly these conversations plus each player's last reply
    memories = state["record"]["players"]
    as_pairs = {name: [(m["role"], m["content"]) for m in msgs] for name, msgs in memories.items()}
    kinds = {"system": "system", "user": "human", "assistant": "ai"}
    assert [(kinds[r], c) for r, c in as_pairs["Affirmative side"]] == aff[1] + [("ai", "AFF-2")]
    assert [(kinds[r], c) for r, c in as_pairs["Negative side"]] == neg[1] + [("ai", "NEG-2")]
    assert [(kinds[r], c) for r, c in as_pairs["Judge"]] == judge[1] + [("ai", judge_json("1.5"))]
    assert [(kinds[r], c) for r, c in as_pairs["Moderator"]] == moderator[2] + [("ai", mod())]


def test_prompt_overrides_and_original_config_keys() -> None:
    overrides = {
        "debate_topic": "",
        "base_answer": "",  # data keys of the original prompt files
        "affirmative_prompt": "MY VIEW: ##base_answer## on ##debate_topic##",
    }
    ctx, fakes = players({"moderator": [mod("x")]}, prompts=overrides)
    record = run(ctx)["record"]
    assert fakes["affirmative"].calls[0][-1].text == f"MY VIEW: BASE on {TOPIC}"
    assert record["config"]["affirmative_prompt"] == f"MY VIEW: BASE on {TOPIC}"
    with pytest.raises(ValueError, match="unknown debate prompt"):
        run(players({}, prompts={"nonsense": "x"})[0])


def test_prompts_file_is_read_and_prompts_win_over_it(tmp_path: Path) -> None:
    path = tmp_path / "prompts.json"
    sections = {
        "medagents": {"ignored": "x"},
        "debate": {
            "affirmative_prompt": "FILE: ##base_answer##",
            "negative_prompt": "FILE NEG: ##aff_ans##",
        },
    }
    path.write_text(json.dumps(sections), encoding="utf-8")
    ctx, fakes = players(
        {"moderator": [mod("x")]},
        prompts={"affirmative_prompt": "CONTEXT: ##base_answer##"},
        prompts_file=str(path),
    )
    record = run(ctx)["record"]
    assert fakes["affirmative"].calls[0][-1].text == "CONTEXT: BASE"
    assert fakes["negative"].calls[0][-1].text == "FILE NEG: AFF"
    assert record["config"]["negative_prompt"] == "FILE NEG: ##aff_ans##"


# --------------------------------------------------------------------------------------------
# Translation configuration
# --------------------------------------------------------------------------------------------


def test_translation_with_given_base_translation() -> None:
    ctx, fakes = players(
        {"moderator": [mod("Destroy a division of the enemy.", key="debate_translation")]}, mode="translation"
    )
    state = run(
        ctx,
        debate_input(
            source_text="吃掉敌人一个师。",
            source_lang="zh",
            target_lang="en",
            reference="Destroy a division of the enemy.",
            base_answer="Eat up an enemy division.",
        ),
    )
    record = state["record"]
    assert fakes["base"].call_count == 0  # a given base translation is not regenerated
    assert record["src_lng"] == "Chinese" and record["tgt_lng"] == "English"
    assert (
        record["source"] == "吃掉敌人一个师。" and record["reference"] == "Destroy a division of the enemy."
    )
    assert record["base_translation"] == "Eat up an enemy division."
    assert record["debate_translation"] == "Destroy a division of the enemy."
    assert "debate_answer" not in record
    system = fakes["affirmative"].calls[0][0].text
    assert "English" in system and "Chinese" in system and "吃掉敌人一个师。" in system
    assert "Eat up an enemy division." in fakes["affirmative"].calls[0][1].text
    assert "debate_translation" in fakes["moderator"].calls[0][-1].text
    assert "Baseline" not in record["players"]


def test_translation_generates_base_and_uses_context_languages() -> None:
    ctx, fakes = players(
        {"base": ["Guten Tag."], "moderator": [mod("Guten Tag!", key="debate_translation")]},
        mode="translation",
        source_lang="en",
        target_lang="de",
    )
    record = run(ctx, debate_input(source_text="Good day."))["record"]
    assert fakes["base"].calls[0][0].text == "Translate the following text from English to German: Good day."
    assert (
        record["base_translation"] == "Guten Tag."
        and record["players"]["Baseline"][1]["content"] == "Guten Tag."
    )


def test_mode_input_mismatch_is_explained() -> None:
    ctx, _ = players({})
    with pytest.raises(ValueError, match="mode='translation'"):
        run(ctx, debate_input(source_text="你好"))
    with pytest.raises(ValueError, match="either"):
        debate_input()


# --------------------------------------------------------------------------------------------
# Failures do not kill the debate
# --------------------------------------------------------------------------------------------


def test_player_error_goes_to_the_judge() -> None:
    def negative(messages: list[BaseMessage]) -> str:
        turn = sum(1 for m in messages if m.type == "human")
        if turn == 2:
            raise RuntimeError("context length exceeded")
        return f"NEG-{turn}"

    ctx, fakes = players(
        {
            "affirmative": numbered("AFF"),
            "negative": negative,
            "moderator": [mod()],
            "judge": ["c", judge_json("2")],
        }
    )
    state = run(ctx)
    record = state["record"]
    assert [(f["node"], f["round"], f["kind"]) for f in record["failures"]] == [
        ("negative", 2, "model_error")
    ]
    assert record["decided_by"] == "judge" and record["debate_answer"] == "2"
    assert "AFF-2" in fakes["judge"].calls[0][-1].text and "NEG-1" in fakes["judge"].calls[0][-1].text
    # the failed exchange is not in the negative's memory
    assert [m["content"] for m in record["players"]["Negative side"] if m["role"] == "assistant"] == ["NEG-1"]


def test_transient_error_is_retried_by_the_node() -> None:
    calls = {"n": 0}

    def flaky(messages: list[BaseMessage]) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("connection reset")
        return mod("1.5")

    ctx, fakes = players({"moderator": flaky})
    record = run(ctx)["record"]
    assert fakes["moderator"].call_count == 2
    assert record["debate_answer"] == "1.5" and record["failures"] == []


# --------------------------------------------------------------------------------------------
# Human moderator (interrupt / resume)
# --------------------------------------------------------------------------------------------


def test_human_moderator() -> None:
    ctx, fakes = players(
        {"affirmative": numbered("AFF"), "negative": numbered("NEG")}, human_role="moderator"
    )
    app = build_graph().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "human-1"}}
    result = app.invoke(debate_input(TOPIC), config, context=ctx)
    payload = result["__interrupt__"][0].value
    assert payload["round"] == 1 and payload["affirmative"] == "AFF-1" and payload["negative"] == "NEG-1"
    assert "debate_answer" in payload["expected_keys"] and payload["task"]["debate_topic"] == TOPIC

    # round 1: no decision -> round 2
    result = app.invoke(
        Command(
            resume={
                "Whether there is a preference": "No",
                "Supported Side": "",
                "Reason": "not yet",
                "debate_answer": "",
            }
        ),
        config,
        context=ctx,
    )
    payload = result["__interrupt__"][0].value
    assert payload["round"] == 2 and payload["affirmative"] == "AFF-2"

    # an invalid verdict is asked again, with the error
    result = app.invoke(Command(resume="I like the negative side"), config, context=ctx)
    payload = result["__interrupt__"][0].value
    assert payload["round"] == 2 and "error" in payload

    # a JSON string works as well as a dict
    final = app.invoke(
        Command(resume=mod("1.5", side="Negative", reason="human reason")), config, context=ctx
    )
    record = final["record"]
    assert record["decided_by"] == "human" and record["debate_answer"] == "1.5"
    assert record["Reason"] == "human reason" and record["rounds"] == 2
    assert fakes["moderator"].call_count == 0 and fakes["judge"].call_count == 0
    assert [fakes[r].call_count for r in ("affirmative", "negative")] == [2, 2]  # nothing re-run on resume
    moderator_memory = record["players"]["Moderator"]
    assert json.loads(moderator_memory[-1]["content"])["debate_answer"] == "1.5"


# --------------------------------------------------------------------------------------------
# Module surface
# --------------------------------------------------------------------------------------------


def test_module_exports() -> None:
    assert graph.checkpointer is None and graph.name == "debate"
    schema = graph.get_context_jsonschema()
    assert schema["properties"]["max_rounds"]["default"] == 3
    assert all(prop.get("description") for prop in schema["properties"].values())
    assert DebateContext().early_stop == "answer" and DebateContext().judge_sees == "last_round"
    assert set(graph.get_input_jsonschema()["properties"]) == {
        "debate_topic",
        "source",
        "src_lng",
        "tgt_lng",
        "reference",
        "base_answer",
    }
    assert "record" in graph.get_output_jsonschema()["properties"]


def test_every_model_calling_node_has_the_retry_policy() -> None:
    nodes = build_graph().nodes
    for name in ("base_answer", "affirmative", "negative", "moderator", "judge_candidates", "judge_decide"):
        assert nodes[name].retry_policy is RETRY_POLICY, name
    assert nodes["conclude"].retry_policy is None


def test_routing_without_a_context_uses_the_defaults() -> None:
    no_answer = {"by": "moderator", "ok": True, "preference": "No", "answer": ""}
    runtime = SimpleNamespace(context=None)
    assert route_after_moderator({"round": 2, "verdicts": [no_answer]}, runtime) == "affirmative"
    assert route_after_moderator({"round": 3, "verdicts": [no_answer]}, runtime) == "judge_candidates"


# --------------------------------------------------------------------------------------------
# Resume after a real crash (SIGKILL of a separate process, durability="sync"), SQLite and PostgreSQL
# --------------------------------------------------------------------------------------------


def _worker(tmp_path: Path, db: str, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        "-m",
        "tests.graphs.debate_crash_worker",
        "--db",
        db,
        "--log",
        str(tmp_path / f"{name}.log"),
        "--thread",
        name,
        "--out",
        str(tmp_path / f"{name}.json"),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def _cli(tmp_path: Path, name: str, *args: str, die_at: str = "") -> subprocess.CompletedProcess[str]:
    """`masgraph ARGS` with the crash worker's scripted players as a plugin, logging to NAME.log."""
    from tests.graphs.debate_crash_worker import DIE_AT_ENV, LOG_ENV

    env = {**os.environ, "PYTHONPATH": str(REPO), "MASGRAPH_PLUGINS": "tests.graphs.debate_crash_worker",
           LOG_ENV: str(tmp_path / f"{name}.log"), DIE_AT_ENV: die_at}  # fmt: skip
    command = [sys.executable, "-m", "runners.cli", *args, "--json"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _assert_resumed_like_clean(tmp_path: Path, clean: dict[str, Any], final: dict[str, Any], name: str,
                               before: list[str]) -> None:  # fmt: skip
    from tests.graphs.debate_crash_worker import comparable

    clean_calls = (tmp_path / "clean.log").read_text().splitlines()
    calls = (tmp_path / f"{name}.log").read_text().splitlines()
    after = calls[len(before) :]
    assert after[0] == "negative 2"  # only the interrupted call is made again
    assert len(calls) == len(clean_calls) + 1
    assert before + after[1:] == clean_calls
    assert comparable(final) == comparable(clean)


@pytest.mark.slow
@pytest.mark.parametrize("kind", DB_KINDS)
def test_resume_after_sigkill_repeats_no_finished_turn(tmp_path: Path, request, kind) -> None:
    db = database(kind, tmp_path, request, "debate.db")  # one database, a thread per run
    reference = _worker(tmp_path, db, "clean")
    assert reference.returncode == 0, reference.stderr
    clean = json.loads((tmp_path / "clean.json").read_text())
    assert clean["record"]["rounds"] == 3 and clean["record"]["decided_by"] == "moderator"

    crashed = _worker(tmp_path, db, "crash", "--die-at", "negative:2")
    assert crashed.returncode == -9, crashed.stderr  # SIGKILL inside the round-2 negative call
    assert not (tmp_path / "crash.json").exists()
    before = (tmp_path / "crash.log").read_text().splitlines()
    assert before[-1] == "negative 2"

    resumed = _worker(tmp_path, db, "crash", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads((tmp_path / "crash.json").read_text())
    _assert_resumed_like_clean(tmp_path, clean, final, "crash", before)


@pytest.mark.slow
@pytest.mark.parametrize("kind", DB_KINDS)
def test_masgraph_resume_after_sigkill_of_masgraph_run(tmp_path: Path, request, kind) -> None:
    """The same crash through the CLI: `masgraph run debate` killed mid-debate, `masgraph resume`."""
    from graphs.debate import build_graph as build_debate
    from storage.checkpoints import compile_with_saver, thread_config
    from tests.graphs.debate_crash_worker import ROLES, TOPIC

    db = database(kind, tmp_path, request, "cli.db")
    assert _worker(tmp_path, str(tmp_path / "clean.db"), "clean").returncode == 0
    clean = json.loads((tmp_path / "clean.json").read_text())
    thread = str(uuid.uuid4())
    players = [flag for role in ROLES for flag in (f"--{role}-model", f"crash-{role}")]
    run = ["run", "debate", "--topic", TOPIC, "--max-rounds", "3", *players, "--thread", thread, "--db", db]
    crashed = _cli(tmp_path, "cli", *run, die_at="negative:2")
    assert crashed.returncode == -9, crashed.stderr
    before = (tmp_path / "cli.log").read_text().splitlines()
    assert before[-1] == "negative 2"

    resumed = _cli(tmp_path, "cli", "resume", "--thread", thread, "--db", db)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "done"
    final = compile_with_saver(build_debate(), db).get_state(thread_config(thread)).values
    _assert_resumed_like_clean(tmp_path, clean, final, "cli", before)
