"""The debate's evaluation adapter: options -> context, item -> input, final state -> graded outcome."""

from __future__ import annotations

import argparse

import pytest

from nodes.debate.context import DebateContext
from nodes.fields import OptionError
from runners.flags import add_context_flags
from runners.methods import get_method
from runners.methods.debate import DEBATE
from tasks import TaskItem, get_task
from tests.graphs.test_debate import TOPIC, mod, players, run

CIAR = get_task("ciar")
COMMONMT = get_task("commonmt")
DB = "unused.db"


def test_registered_under_its_name() -> None:
    assert get_method("debate") is DEBATE
    assert DEBATE.context_class is DebateContext
    assert set(DEBATE.build_graph().nodes) >= {"base_answer", "moderator", "judge_decide", "conclude"}


def test_context_from_options_and_task() -> None:
    ctx = DEBATE.context(
        {"max_rounds": 2, "temperature": 0.3, "model": "m", "base_url": "http://x/v1"}, task="ciar", db=DB
    )
    assert (ctx.mode, ctx.max_rounds, ctx.temperature) == ("qa", 2, 0.3)
    config = ctx.model_config_for("moderator")
    assert (config.model, config.base_url, config.temperature) == ("m", "http://x/v1", 0.3)
    assert DEBATE.context({"human_role": "moderator"}, task="custom", db=DB).human_role == "moderator"
    assert (
        DEBATE.context({"max_new_tokens": 64}, task="ciar", db=DB).model_config_for("judge").max_tokens == 64
    )
    assert DEBATE.context({}, task="commonmt", db=DB).mode == "translation"
    # a mode given in the options wins over the task's (`masgraph run debate --translate ...`)
    assert DEBATE.context({"mode": "translation"}, task="custom", db=DB).mode == "translation"


@pytest.mark.parametrize("rounds", [0, -1])
def test_max_rounds_below_one_is_rejected(rounds: int) -> None:
    with pytest.raises(OptionError, match="max_rounds") as caught:
        DEBATE.context({"max_rounds": rounds}, task="ciar", db=DB)
    assert caught.value.option == "max_rounds"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"mode": "x"}, "mode"),
    ],
)
def test_out_of_range_options_are_rejected(options: dict, field: str) -> None:
    with pytest.raises(OptionError) as caught:
        DEBATE.context(options, task="ciar", db=DB)
    assert caught.value.option == field


def test_an_unknown_option_names_the_closest_one() -> None:
    with pytest.raises(OptionError, match="'temperature'") as caught:
        DEBATE.context({"temprature": 0.5}, task="ciar", db=DB)
    assert caught.value.option == "temprature"
    with pytest.raises(OptionError, match="max_new_tokens"):
        DEBATE.context({"max_tokens": 64}, task="ciar", db=DB)


def test_cli_flags_are_the_context_fields_with_the_old_aliases() -> None:
    parser = argparse.ArgumentParser()
    names = add_context_flags(parser, DebateContext, title="debate options")
    assert "max_new_tokens" in names and "prompts_file" in names
    args = parser.parse_args(
        [
            "--human",
            "moderator",
            "--source",
            "de",
            "--target",
            "fr",
            "--max-rounds",
            "2",
            "--max-new-tokens",
            "9",
        ]
    )
    assert (args.human_role, args.source_lang, args.target_lang) == ("moderator", "de", "fr")
    assert (args.max_rounds, args.max_new_tokens) == (2, 9)


def test_qa_is_graded_through_the_task() -> None:
    item = TaskItem(id="ciar-1", question=TOPIC, gold=["1.5", "3/2"])
    assert DEBATE.make_input(item, CIAR) == {"debate_topic": TOPIC}
    ctx, _ = players({"moderator": [mod("1.5", side="Negative")]})
    outcome = DEBATE.outcome(item, run(ctx, DEBATE.make_input(item, CIAR)), CIAR)
    assert (outcome.prediction, outcome.correct, outcome.error) == ("1.5", True, None)
    assert outcome.record["debate_answer"] == "1.5" and outcome.record["correct"] is True
    assert outcome.record["grade_detail"] == "matched '1.5'"


def test_qa_answers_in_other_forms() -> None:
    item = TaskItem(id="c1", question=TOPIC, gold=["1.5", "3/2"])
    for answer, correct in (
        ("3/2", True),
        ("1.5 m/s", True),
        ("Her average speed is 1.5", True),
        ("2", False),
    ):
        ctx, _ = players({"moderator": [mod(answer)]})
        outcome = DEBATE.outcome(item, run(ctx), CIAR)
        assert (outcome.prediction, outcome.correct) == (answer, correct)
        assert outcome.record["debate_answer"] == answer


def test_no_answer_is_a_failed_outcome_with_the_reasons() -> None:
    ctx, _ = players({"moderator": [mod()], "judge": ["c", "no json", "still no json"]}, max_rounds=1)
    state = run(ctx)
    outcome = DEBATE.outcome(TaskItem(id="x", question=TOPIC, gold=["1.5"]), state, CIAR)
    assert outcome.prediction is None and outcome.correct is False
    assert outcome.error == "the debate produced no answer (judge_decide: unparseable)"
    assert outcome.record["decided_by"] is None


def test_translation_input_and_ungraded_outcome() -> None:
    mt_item = TaskItem(
        id="m1",
        question="吃掉敌人一个师。",
        gold="Destroy a division of the enemy.",
        meta={"src_lng": "zh", "tgt_lng": "en"},
    )
    assert (
        DEBATE.context({"source_lang": "zh", "target_lang": "en"}, task="commonmt", db=DB).mode
        == "translation"
    )
    state_in = DEBATE.make_input(mt_item, COMMONMT)
    assert state_in == {
        "source": "吃掉敌人一个师。",
        "src_lng": "Chinese",
        "tgt_lng": "English",
        "reference": "Destroy a division of the enemy.",
    }
    ctx, _ = players(
        {"moderator": [mod("Destroy an enemy division.", key="debate_translation")]}, mode="translation"
    )
    outcome = DEBATE.outcome(mt_item, run(ctx, state_in), COMMONMT)
    assert outcome.correct is None and outcome.prediction == "Destroy an enemy division."
    assert outcome.record["reference"] == "Destroy a division of the enemy."
    assert outcome.record["correct"] is None and outcome.record["grade_detail"].startswith("rouge1_f=")


def test_translation_languages_default_to_the_context() -> None:
    item = TaskItem(id="m2", question="Good day.", gold=None)
    assert DEBATE.make_input(item, COMMONMT) == {"source": "Good day."}
    ctx, fakes = players(
        {"base": ["Guten Tag."], "moderator": [mod("Guten Tag!", key="debate_translation")]},
        mode="translation",
        source_lang="en",
        target_lang="de",
    )
    outcome = DEBATE.outcome(item, run(ctx, DEBATE.make_input(item, COMMONMT)), COMMONMT)
    assert fakes["base"].calls[0][0].text == "Translate the following text from English to German: Good day."
    assert (outcome.prediction, outcome.correct) == ("Guten Tag!", None)
    assert outcome.record["reference"] == ""


def test_translation_without_answer_is_failed_but_not_wrong() -> None:
    ctx, _ = players(
        {"moderator": [mod(key="debate_translation")], "judge": ["c", "x", "y"]},
        mode="translation",
        max_rounds=1,
    )
    item = TaskItem(id="m3", question="你好", gold="Hello")
    outcome = DEBATE.outcome(item, run(ctx, DEBATE.make_input(item, COMMONMT)), COMMONMT)
    assert outcome.prediction is None and outcome.correct is None and outcome.error
