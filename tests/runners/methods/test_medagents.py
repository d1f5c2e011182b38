"""The MedAgents evaluation adapter: options -> context, item -> input, final state -> graded record."""

from __future__ import annotations

import argparse

import pytest

from nodes.fields import OptionError
from runners.flags import add_context_flags
from runners.methods import Outcome, get_method
from runners.methods.medagents import MEDAGENTS, RECORD_FIELDS
from tasks import get_task
from tasks.base import TaskItem
from tests.graphs.test_medagents import ITEM, Script, fake

MEDQA = get_task("medqa")


def context(options: dict, task: str = "medqa"):
    return MEDAGENTS.context(options, task=task, db="unused.db")


def test_eval_method_contract() -> None:
    assert get_method("medagents") is MEDAGENTS
    assert MEDAGENTS.graph_module == "graphs.medagents"
    name, _ = fake()
    options = {
        "method": "syn_only",
        "model": name,
        "temperature": 0.3,
        "max_attempts": 4,
        "preset": "paper",
        "max_new_tokens": 128,
    }
    ctx = context(options)
    assert isinstance(ctx, MEDAGENTS.context_class)
    assert (ctx.method, ctx.model, ctx.temperature, ctx.max_attempts) == ("syn_only", name, 0.3, 4)
    assert ctx.chat_config("synthesizer", ctx.synthesis_max_tokens).max_tokens == 128
    assert ctx.chat_config("voter", ctx.vote_max_tokens).max_tokens == 30
    assert context({"method": "base_cot"}).method == "base_cot"
    assert context({"preset": "paper"}).temperature == 1.0
    with pytest.raises(ValueError):
        context({"method": "syn_verify"})

    compiled = MEDAGENTS.build_graph().compile()
    state = compiled.invoke(MEDAGENTS.make_input(ITEM, MEDQA), context=ctx)
    outcome = MEDAGENTS.outcome(ITEM, state, MEDQA)
    assert isinstance(outcome, Outcome)
    assert (outcome.prediction, outcome.correct, outcome.error) == ("A", True, None)
    record = outcome.record
    for key in (*RECORD_FIELDS, "failures", "item_id", "group", "grade_detail"):
        assert key in record, key
    assert record["gold_answer"] == "A" and record["item_id"] == "q1" and record["group"] == "step1"
    assert record["calls"] == 11 and record["prompt_tokens"] > 0 and record["generated_tokens"] > 0


def test_options_are_context_fields_checked_by_the_context() -> None:
    with pytest.raises(OptionError, match="'temperature'") as info:
        context({"temprature": 0.5})
    assert info.value.option == "temprature"
    bad = {
        "top_p": 1.5,
        "temperature": -0.1,
        "num_question_domains": 0,
        "num_option_domains": 0,
        "max_attempts": -1,
        "vote_max_tokens": 0,
        "max_new_tokens": 0,
        "timeout": 0.0,
        "method": "medagents",
        "role_models": {"judge": "x"},
    }
    for field, value in bad.items():
        with pytest.raises(OptionError) as info:
            context({field: value})
        assert info.value.option == field, field


def test_context_fields_are_the_cli_flags() -> None:
    parser = argparse.ArgumentParser()
    names = add_context_flags(parser, MEDAGENTS.context_class, title="medagents options")
    assert {"method", "preset", "max_new_tokens", "prompts_file", "role_models"} <= set(names)
    args = parser.parse_args(
        ["--method", "anal_only", "--max-new-tokens", "64", "--role-models", '{"decider": "m"}']
    )
    ctx = context({name: getattr(args, name) for name in names if hasattr(args, name)})
    assert (ctx.method, ctx.max_new_tokens, ctx.role_models) == ("anal_only", 64, {"decider": "m"})
    with pytest.raises(SystemExit):
        parser.parse_args(["--method", "syn_verify"])


def test_prompts_file_option(tmp_path) -> None:
    path = tmp_path / "prompts.json"
    path.write_text('{"medagents": {"vote.user": "{report} - {domain}: YES or NO?"}}')
    ctx = context({"prompts_file": str(path)})
    assert ctx.templates() == {"vote.user": "{report} - {domain}: YES or NO?"}


def test_context_is_prepended_for_pubmedqa_style_items() -> None:
    item = TaskItem(
        id="p",
        question="Does X help?",
        gold="A",
        context="Abstract text.",
        options={"A": "yes", "B": "no", "C": "maybe"},
    )
    assert MEDAGENTS.make_input(item, get_task("pubmedqa"))["question"] == "Abstract text. Does X help?"


GOLD = "Take ibuprofen with food or milk to avoid an upset stomach."


@pytest.mark.parametrize("method", ["syn_verif", "base_direct"])
def test_free_form_answer_is_graded_by_the_task(method: str) -> None:
    """MedicationQA: no options; a decider that answers the gold text verbatim scores ROUGE-1 1.0."""
    task = get_task("medicationqa")
    item = TaskItem(id="m1", question="How should I take ibuprofen?", gold=GOLD)
    name, model = fake(Script(decision=f"Answer: {GOLD}", direct=f"Answer: {GOLD}"))
    ctx = context({"model": name, "method": method}, task="medicationqa")
    state = MEDAGENTS.build_graph().compile().invoke(MEDAGENTS.make_input(item, task), context=ctx)
    assert "Reply with your answer in this format:\nAnswer:" in model.prompts()[-1]
    outcome = MEDAGENTS.outcome(item, state, task)
    assert outcome.prediction == GOLD and outcome.correct is True
    assert outcome.record["grade_detail"] == "rouge1_f=1.0000"
    assert outcome.record["options"] == {} and outcome.record["failures"] == []

    wrong = TaskItem(id="m2", question=item.question, gold="Apply the cream twice a day to dry skin.")
    assert MEDAGENTS.outcome(wrong, state, task).correct is False


def test_no_gold_leaves_correct_open() -> None:
    item = TaskItem(id="n", question=ITEM.question, options=ITEM.options)
    outcome = MEDAGENTS.outcome(item, {"pred_answer": "A", "trace": []}, MEDQA)
    assert (outcome.prediction, outcome.correct) == ("A", None)
