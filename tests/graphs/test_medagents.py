"""MedAgents graph: calls per stage for each method, the consultation loop, recorded failures.

Every model is a scripted fake (tests.fakes) registered by name and picked through the context.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from langchain_core.messages import BaseMessage
from langgraph.types import RetryPolicy

from graphs.medagents import build_graph, graph, route_start
from nodes.agent_call import RETRY_POLICY, is_transient
from nodes.chat_models import register_chat_model
from nodes.fields import OptionError
from nodes.medagents.context import MedAgentsContext
from nodes.medagents.parse import domains_shape, letter_shape, vote_shape
from runners.methods.medagents import MEDAGENTS, RECORD_FIELDS
from tasks import get_task
from tasks.base import TaskItem
from tests.fakes import ScriptedChatModel, ScriptedError

QUESTION = "A 45-year-old man has crushing chest pain radiating to the left arm. Next best step?"
OPTIONS = {"A": "Aspirin", "B": "Antibiotics", "C": "Reassurance", "D": "Antacids", "E": "Surgery"}
ITEM = TaskItem(id="q1", question=QUESTION, gold="A", options=OPTIONS, group="step1")
TASK = get_task("medqa")

FAST_RETRY = RetryPolicy(
    max_attempts=3, initial_interval=0.001, backoff_factor=1.0, jitter=False, retry_on=is_transient
)

_names = itertools.count()


def stage_of(messages: list[BaseMessage]) -> str:
    """Which stage a call belongs to, read from the default prompts' wording."""
    user = messages[-1].text
    markers = [
        ("subfields of medicine most relevant", "question_domains"),
        ("best suited to judge these options", "option_domains"),
        ("explain what condition the scenario depicts", "question_analysis"),
        ("assess each option in turn", "option_analysis"),
        ("Key Knowledge: [the extracted key knowledge]", "synthesis"),
        ("Reply with one word only: YES or NO", "vote"),
        ("Revisions: [your proposed revisions]", "advice"),
        ("Revise the analysis according to this advice", "revision"),
        ("Here is a synthesized report", "decision"),
        ("Step 1: understand the question", "decision"),
        ("Thought: [your step-by-step reasoning]", "cot"),
    ]
    for marker, stage in markers:
        if marker in user:
            return stage
    return "direct"


DEFAULT_REPLIES: dict[str, str] = {
    "question_domains": "Medical Field: Cardiology | Emergency Medicine | Internal Medicine | "
    "Pharmacology | Radiology",
    "option_domains": "Medical Field: Cardiology | Pharmacology",
    "question_analysis": "Findings suggest acute coronary syndrome.",
    "option_analysis": "A is right; B-E do not treat ischemia.",
    "synthesis": "Key Knowledge: chest pain radiating to the arm means ACS.\n"
    "Total Analysis: give aspirin first.",
    "vote": "YES",
    "advice": "Revisions: mention the ECG.",
    "revision": "Total Analysis: give aspirin first; obtain an ECG.",
    "decision": "Option: A",
    "cot": "Thought: ischemia needs antiplatelets.\nOption: A",
    "direct": "Option: A",
}


class Script:
    """Per-stage replies (defaults above); a stage may map to a function of (messages, n)."""

    def __init__(self, **overrides: str | Callable[[list[BaseMessage], int], str]) -> None:
        self.replies = {**DEFAULT_REPLIES, **overrides}
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()  # branches call from several threads

    def __call__(self, messages: list[BaseMessage]) -> str:
        stage = stage_of(messages)
        with self.lock:
            n = self.seen[stage]
            self.seen[stage] += 1
        reply = self.replies[stage]
        return reply(messages, n) if callable(reply) else reply


def fake(script: Script | None = None, **kwargs) -> tuple[str, ScriptedChatModel]:
    model = ScriptedChatModel(script or Script(), **kwargs)
    name = f"fake-medagents-{next(_names)}"
    register_chat_model(name, model)
    return name, model


def run(model_name: str, retry: RetryPolicy = FAST_RETRY, **ctx_fields) -> dict:
    compiled = build_graph(retry).compile()
    inputs = MEDAGENTS.make_input(ITEM, TASK)
    return compiled.invoke(inputs, context=MedAgentsContext(model=model_name, **ctx_fields))


def stage_counts(state: dict) -> Counter[str]:
    return Counter(entry["stage"] for entry in state["trace"])


# ------------------------------------------------------------------ calls per method


EXPECTED_CALLS = {
    "base_direct": {"direct": 1},
    "base_cot": {"cot": 1},
    "anal_only": {
        "question_domains": 1,
        "option_domains": 1,
        "question_analysis": 5,
        "option_analysis": 2,
        "decision": 1,
    },
    "syn_only": {
        "question_domains": 1,
        "option_domains": 1,
        "question_analysis": 5,
        "option_analysis": 2,
        "synthesis": 1,
        "decision": 1,
    },
    "syn_verif": {
        "question_domains": 1,
        "option_domains": 1,
        "question_analysis": 5,
        "option_analysis": 2,
        "synthesis": 1,
        "vote": 7,
        "decision": 1,
    },
}


@pytest.mark.parametrize("method", list(EXPECTED_CALLS))
def test_calls_per_stage_match_the_spec(method: str) -> None:
    name, model = fake()
    state = run(name, method=method)
    assert stage_counts(state) == Counter(EXPECTED_CALLS[method])
    assert model.call_count == sum(EXPECTED_CALLS[method].values())
    assert state["pred_answer"] == "A"
    assert state["failures"] == []
    for key in RECORD_FIELDS:
        assert key in state, key


def test_syn_verif_everyone_agreeing_is_18_calls() -> None:
    name, model = fake()
    state = run(name)
    assert model.call_count == 2 + 5 + 2 + 1 + 7 + 1
    assert state["vote_history"] == [
        {
            "attempt": 1,
            "consensus": True,
            "votes": [
                {"expert": e, "domain": d, "vote": "yes"}
                for e, d in [
                    ("question_expert_1", "Cardiology"),
                    ("question_expert_2", "Emergency Medicine"),
                    ("question_expert_3", "Internal Medicine"),
                    ("question_expert_4", "Pharmacology"),
                    ("question_expert_5", "Radiology"),
                    ("option_expert_1", "Cardiology"),
                    ("option_expert_2", "Pharmacology"),
                ]
            ],
        }
    ]
    assert state["revision_history"] == []
    assert state["syn_repo_history"] == [state["syn_report"]]


def test_record_keeps_stage_outputs_in_domain_order() -> None:
    def analysis(messages: list[BaseMessage], n: int) -> str:
        return "analysis by " + messages[0].text.split(" in ")[1].split(".")[0]

    name, _ = fake(Script(question_analysis=analysis, option_analysis=analysis))
    state = run(name)
    assert list(state["question_analyses"]) == state["question_domains"]
    assert state["question_analyses"]["Radiology"] == "analysis by Radiology"
    assert list(state["option_analyses"]) == ["Cardiology", "Pharmacology"]
    report = state["syn_report"]
    # The kept report: question + options + key knowledge + total analysis.
    assert QUESTION in report and "A. Aspirin" in report
    assert "Key Knowledge: chest pain radiating to the arm means ACS." in report
    assert "Total Analysis: give aspirin first." in report


def test_option_experts_see_every_question_analysis() -> None:
    def analysis(messages: list[BaseMessage], n: int) -> str:
        return f"QA-MARK-{messages[0].text.split(' in ')[1].split('.')[0]}"

    name, model = fake(Script(question_analysis=analysis))
    run(name, method="anal_only")
    option_prompts = [p for p in model.prompts() if "assess each option in turn" in p]
    assert len(option_prompts) == 2
    for prompt in option_prompts:
        for domain in ("Cardiology", "Emergency Medicine", "Internal Medicine", "Pharmacology", "Radiology"):
            assert f"QA-MARK-{domain}" in prompt


# ------------------------------------------------------------------ consultation loop


def test_vote_loop_stops_at_the_attempt_limit() -> None:
    name, model = fake(Script(vote="NO"))
    state = run(name, max_attempts=3)
    counts = stage_counts(state)
    assert counts["vote"] == 3 * 7
    assert counts["advice"] == 3 * 7
    assert counts["revision"] == 3
    assert counts["decision"] == 1
    assert len(state["vote_history"]) == 3
    assert [r["consensus"] for r in state["vote_history"]] == [False] * 3
    assert len(state["revision_history"]) == 3
    assert len(state["syn_repo_history"]) == 4
    assert state["attempt"] == 3
    assert model.call_count == 10 + 3 * (7 + 7 + 1) + 1


def test_paper_preset_allows_five_attempts_at_temperature_one() -> None:
    ctx = MedAgentsContext.from_preset("paper")
    assert (ctx.temperature, ctx.max_attempts) == (1.0, 5)
    assert MedAgentsContext(preset="paper").max_attempts == 5
    assert MedAgentsContext(preset="paper", max_attempts=2).max_attempts == 2
    assert (MedAgentsContext().temperature, MedAgentsContext().max_attempts) == (0.0, 3)
    name, _ = fake(Script(vote="No."))
    state = run(name, preset="paper")
    assert stage_counts(state)["revision"] == 5


def test_dissent_gets_advice_and_one_revision_then_consensus() -> None:
    def vote(messages: list[BaseMessage], n: int) -> str:
        # First round: the radiologist and the second option expert disagree.
        report = messages[-1].text
        dissenting = messages[0].text.endswith("Radiology.") or messages[0].text.endswith("Pharmacology.")
        return "NO" if dissenting and "obtain an ECG" not in report else "YES"

    name, model = fake(Script(vote=vote))
    state = run(name)
    counts = stage_counts(state)
    # Pharmacology is both question expert 4 and option expert 2: both vote, neither overwrites.
    assert counts == Counter(
        {
            "question_domains": 1,
            "option_domains": 1,
            "question_analysis": 5,
            "option_analysis": 2,
            "synthesis": 1,
            "vote": 14,
            "advice": 3,
            "revision": 1,
            "decision": 1,
        }
    )
    first, second = state["vote_history"]
    assert [v["vote"] for v in first["votes"]] == ["yes", "yes", "yes", "no", "no", "yes", "no"]
    assert second["consensus"] is True
    [round_] = state["revision_history"]
    assert round_["attempt"] == 1
    assert [a["expert"] for a in round_["advice"]] == [
        "question_expert_4",
        "question_expert_5",
        "option_expert_2",
    ]
    assert round_["advice"][0]["advice"] == "mention the ECG."
    revision_prompt = next(p for p in model.prompts() if "Revise the analysis" in p)
    assert revision_prompt.count("mention the ECG.") == 3
    assert len(state["syn_repo_history"]) == 2
    assert "obtain an ECG" in state["syn_report"]
    # The reviser only rewrote the analysis: key knowledge carries over.
    assert "Key Knowledge: chest pain radiating to the arm means ACS." in state["syn_report"]
    assert model.call_count == 18 + 3 + 1 + 7


def test_zero_attempts_skips_consultation() -> None:
    name, model = fake()
    state = run(name, max_attempts=0)
    assert "vote" not in stage_counts(state)
    assert model.call_count == 11


# ------------------------------------------------------------------ failures are recorded


def test_garbage_decision_is_a_recorded_failure_not_an_answer() -> None:
    name, _ = fake(Script(decision="I cannot decide between these."))
    state = run(name)
    assert state["pred_answer"] is None
    assert state["raw_output"] == "I cannot decide between these."
    [failure] = state["failures"]
    assert failure["stage"] == "decision" and failure["raw"] == "I cannot decide between these."
    assert state["trace"][-1]["failure"]
    outcome = MEDAGENTS.outcome(ITEM, state, TASK)
    assert outcome.prediction is None and outcome.correct is False


def test_error_placeholder_is_never_answer_e_nor_a_yes_vote() -> None:
    name, _ = fake(Script(vote="ERROR.", decision="ERROR."))
    item = TaskItem(id="q2", question=QUESTION, gold="E", options=OPTIONS)
    state = (
        build_graph(FAST_RETRY)
        .compile()
        .invoke(MEDAGENTS.make_input(item, TASK), context=MedAgentsContext(model=name, max_attempts=1))
    )
    assert state["pred_answer"] is None
    assert MEDAGENTS.outcome(item, state, TASK).correct is False
    [round_] = state["vote_history"]
    assert all(v["vote"] is None for v in round_["votes"]) and round_["consensus"] is False
    # An unreadable vote is not agreement: that expert is asked for advice.
    assert stage_counts(state)["advice"] == 7
    stages = Counter(f["stage"] for f in state["failures"])
    assert stages == Counter({"vote": 7, "decision": 1})


def test_diagnostic_is_not_a_no_vote() -> None:
    name, _ = fake(Script(vote="The diagnostic reasoning matches mine."))
    state = run(name, max_attempts=1)
    assert {v["vote"] for v in state["vote_history"][0]["votes"]} == {None}
    name, _ = fake(Script(vote="Yes - the diagnostic reasoning matches mine."))
    state = run(name)
    assert state["vote_history"][0]["consensus"] is True
    assert state["failures"] == []


def test_duplicate_domains_are_deduplicated_and_padded() -> None:
    name, model = fake(
        Script(
            question_domains="Medical Field: Cardiology | cardiology | CARDIOLOGY | Neurology",
            option_domains="Medical Field: Cardiology | Cardiology",
        )
    )
    state = run(name)
    assert len(state["question_domains"]) == 5
    assert len({d.casefold() for d in state["question_domains"]}) == 5
    assert state["question_domains"][:2] == ["Cardiology", "Neurology"]
    assert len(state["option_domains"]) == 2 and state["option_domains"][0] == "Cardiology"
    assert len(state["question_analyses"]) == 5
    assert stage_counts(state)["question_analysis"] == 5
    assert stage_counts(state)["vote"] == 7
    assert {f["stage"] for f in state["failures"]} == {"question_domains", "option_domains"}
    assert model.call_count == 18


def test_extra_domains_are_trimmed() -> None:
    name, _ = fake(Script(option_domains="Medical Field: Cardiology | Pharmacology | Neurology"))
    state = run(name)
    assert state["option_domains"] == ["Cardiology", "Pharmacology"]


def test_missing_total_analysis_is_recorded_not_a_crash() -> None:
    name, _ = fake(Script(synthesis="Aspirin is the first step for suspected ACS."))
    state = run(name)
    assert state["pred_answer"] == "A"
    [failure] = state["failures"]
    assert failure["stage"] == "synthesis" and "Total Analysis" in failure["error"]
    assert "Total Analysis: Aspirin is the first step for suspected ACS." in state["syn_report"]

    name, _ = fake(Script(synthesis="Key Knowledge: ACS facts only"))
    state = run(name, method="syn_only")
    assert "Key Knowledge: ACS facts only" in state["syn_report"]
    assert state["failures"][0]["stage"] == "synthesis"


def test_revision_without_label_keeps_a_report() -> None:
    def vote(messages: list[BaseMessage], n: int) -> str:
        return "NO" if n == 0 else "YES"

    name, _ = fake(Script(vote=vote, revision=""))
    state = run(name)
    assert any(f["stage"] == "revision" for f in state["failures"])
    assert "Total Analysis: give aspirin first." in state["syn_report"]
    assert state["pred_answer"] == "A"


def test_empty_analysis_is_recorded() -> None:
    name, _ = fake(Script(question_analysis=lambda m, n: "" if "Radiology" in m[0].text else "fine"))
    state = run(name, method="anal_only")
    assert [f["agent"] for f in state["failures"]] == ["question_expert_5"]
    assert state["question_analyses"]["Radiology"] == "(The Radiology expert gave no analysis.)"


# ------------------------------------------------------------------ transport errors


def test_transient_error_is_retried() -> None:
    script = Script()
    name, model = fake(script, fail_on=[0])  # the very first call (question domains) fails once
    state = run(name)
    assert model.call_count == 19
    assert state["pred_answer"] == "A"


def test_persistent_error_fails_the_invoke_after_retries() -> None:
    def always_fail(messages: list[BaseMessage]) -> bool:
        return stage_of(messages) == "vote" and messages[0].text.endswith("Radiology.")

    name, model = fake(fail_when=always_fail)
    with pytest.raises(ScriptedError):
        run(name)
    vote_calls = [c for c in model.calls if stage_of(c) == "vote"]
    # Six votes succeed once; the radiologist's vote is tried FAST_RETRY.max_attempts times.
    assert len(vote_calls) == 6 + 3


def test_bugs_are_not_retried() -> None:
    assert is_transient(ConnectionError()) and is_transient(TimeoutError())
    assert not is_transient(ValueError("bad prompt")) and not is_transient(KeyError("x"))


# ------------------------------------------------------------------ configuration


def test_roles_can_use_their_own_models() -> None:
    main_name, main_model = fake()
    decider_name, decider_model = fake(Script(decision="Option: C"))
    state = run(main_name, role_models={"decider": decider_name})
    assert decider_model.call_count == 1 and main_model.call_count == 17
    assert state["pred_answer"] == "C"


def test_prompt_overrides_are_used_and_checked() -> None:
    name, model = fake()
    run(name, method="base_direct", prompts={"direct.user": "Q: {question}\n{options}\nSay 'Option: X'."})
    assert model.prompts()[0].splitlines()[1].startswith("Q: A 45-year-old")
    with pytest.raises(ValueError, match="unknown field"):
        MedAgentsContext(prompts={"direct.user": "{nope}"})
    with pytest.raises(ValueError, match="unknown MedAgents prompt"):
        MedAgentsContext(prompts={"no.such": "x"})
    with pytest.raises(ValueError, match="unknown MedAgents method"):
        MedAgentsContext(method="debate")  # type: ignore[arg-type]


def test_token_limits_per_stage_and_cap() -> None:
    ctx = MedAgentsContext()
    assert (ctx.domains_max_tokens, ctx.vote_max_tokens, ctx.synthesis_max_tokens) == (50, 30, 2500)
    assert ctx.chat_config("synthesizer", ctx.synthesis_max_tokens).max_tokens == 2500
    capped = MedAgentsContext(max_new_tokens=256)
    limits = {
        role: capped.chat_config(role, limit).max_tokens
        for role, limit in (
            ("classifier", capped.domains_max_tokens),
            ("voter", capped.vote_max_tokens),
            ("synthesizer", capped.synthesis_max_tokens),
        )
    }
    assert limits == {"classifier": 50, "voter": 30, "synthesizer": 256}


def test_max_new_tokens_caps_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import nodes.agent_call
    import nodes.structured

    limits: list[int] = []
    real = nodes.agent_call.chat_model

    def recording(config):
        limits.append(config.max_tokens)
        return real(config)

    # Free-text calls go through agent_call, structured ones (domains here) through structured.
    monkeypatch.setattr(nodes.agent_call, "chat_model", recording)
    monkeypatch.setattr(nodes.structured, "chat_model", recording)
    name, _ = fake()
    run(name, method="syn_only", max_new_tokens=64)
    assert sorted(limits) == [50, 50] + [64] * 9  # domains (50) are under the cap; the rest is cut


def test_prompts_file_templates_are_used_and_checked(tmp_path) -> None:
    path = tmp_path / "prompts.json"
    path.write_text('{"medagents": {"direct.user": "FILE {question}\\n{options}\\nSay Option: X"}}')
    name, model = fake()
    run(name, method="base_direct", prompts_file=str(path))
    assert model.prompts()[0].splitlines()[1].startswith("FILE A 45-year-old")
    # The prompts mapping wins over the file.
    ctx = MedAgentsContext(prompts_file=str(path), prompts={"direct.user": "MAP {question}"})
    assert ctx.templates() == {"direct.user": "MAP {question}"}
    path.write_text('{"medagents": {"direct.user": "{nope}"}}')
    with pytest.raises(OptionError, match="unknown field") as info:
        MedAgentsContext(prompts_file=str(path))
    assert info.value.option == "prompts_file"
    with pytest.raises(OptionError, match="prompts file") as info:
        MedAgentsContext(prompts_file=str(tmp_path / "missing.json"))
    assert info.value.option == "prompts_file"


def test_model_calling_nodes_get_the_shared_retry_policy() -> None:
    nodes = build_graph().nodes
    calling = {name for name, spec in nodes.items() if spec.retry_policy is not None}
    assert calling == set(nodes) - {"merge_question_analyses", "merge_option_analyses", "tally_votes"}
    assert all(nodes[name].retry_policy is RETRY_POLICY for name in calling)


def test_routing_without_a_context_uses_the_defaults() -> None:
    class NoContext:
        context = None

    assert route_start({"question": QUESTION, "options": OPTIONS}, NoContext()) == "question_domains"


# ------------------------------------------------------------------ Studio


def test_studio_graph_is_compiled_without_checkpointer() -> None:
    assert graph.checkpointer is None
    assert graph.name == "medagents"
    nodes = set(graph.get_graph().nodes)
    assert {
        "question_domains",
        "option_domains",
        "question_analysis",
        "option_analysis",
        "synthesis",
        "vote",
        "advice",
        "revision",
        "decision",
        "direct_answer",
        "cot_answer",
    } <= nodes
    # Studio renders its input form and context panel from these schemas.
    assert set(graph.get_input_jsonschema()["properties"]) == {
        "question",
        "options",
        "gold_answer",
        "item_id",
    }
    assert graph.get_context_jsonschema()["properties"]["method"]["enum"][-1] == "syn_verif"
    assert {"pred_answer", "vote_history", "failures", "trace"} <= set(
        graph.get_output_jsonschema()["properties"]
    )


# ------------------------------------------------------------------ structured output


STRUCTURED_REPLIES = {
    "question_domains": '["Cardiology", "Emergency Medicine", "Internal Medicine", "Pharmacology", "Radiology"]',
    "option_domains": '["Cardiology", "Cardiology"]',  # a duplicate: still dropped and padded, recorded
    "vote": lambda messages, _n: (
        '{"answer": "NO"}' if "Pharmacology" in messages[0].text else '{"answer": "Yes"}'
    ),
    "decision": '{"answer": "Option: B"}',
    "cot": '{"answer": "Thought: antiplatelets.\\nOption: A"}',
}


def formats_by_stage(model: ScriptedChatModel) -> dict[str, set]:
    found: dict[str, set] = {}
    for call, response_format in zip(model.calls, model.response_formats, strict=True):
        schema = response_format and response_format["json_schema"]["schema"]
        found.setdefault(stage_of(call), set()).add(json.dumps(schema, sort_keys=True))
    return found


def test_structured_output_asks_each_structured_step_in_its_shape() -> None:
    name, model = fake(Script(**STRUCTURED_REPLIES))
    state = run(name, max_attempts=1)
    formats = formats_by_stage(model)
    shapes = {
        "question_domains": domains_shape(5, 50),
        "option_domains": domains_shape(2, 50),
        "vote": vote_shape(),
        "decision": letter_shape(list(OPTIONS)),
    }
    for stage, shape in shapes.items():
        assert formats.pop(stage) == {json.dumps(shape.server_schema(), sort_keys=True)}, stage
    assert set(formats) == {"question_analysis", "option_analysis", "synthesis", "advice", "revision"}
    assert all(found == {"null"} for found in formats.values())  # free text stays free
    assert state["question_domains"][:2] == ["Cardiology", "Emergency Medicine"]
    assert state["option_domains"] == ["Cardiology", "General Medicine"]
    assert [v["vote"] for v in state["vote_history"][0]["votes"]] == ["yes"] * 3 + ["no"] + ["yes"] * 3
    assert state["pred_answer"] == "B" and state["raw_output"] == '{"answer": "Option: B"}'
    assert [(f["stage"], f["error"]) for f in state["failures"]] == [
        ("option_domains", "dropped 1 duplicate field(s); padded 1 missing field(s) with generic ones")
    ]
    record = MEDAGENTS.outcome(ITEM, state, TASK).record
    assert record["structured"] == {"json_schema": 2 + 7 + 1}  # domain lists, votes, the decision


def test_cot_asks_for_reasoning_that_ends_in_the_letter() -> None:
    name, model = fake(Script(**STRUCTURED_REPLIES))
    assert run(name, method="base_cot")["pred_answer"] == "A"
    assert model.response_formats == [letter_shape(list(OPTIONS), reasoning=True).to_openai_response_format()]


def test_structured_output_off_sends_no_shapes_and_parses_free_text() -> None:
    name, model = fake()
    state = run(name, structured_output="off", max_attempts=1)
    assert set(model.response_formats) == {None}
    assert state["pred_answer"] == "A" and state["failures"] == []
    assert "structured" not in state["trace"][0]
    assert MEDAGENTS.outcome(ITEM, state, TASK).record["structured"] == {}
