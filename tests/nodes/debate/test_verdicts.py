"""Tolerant, eval-free reading of the MAD moderator's and judge's JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodes.debate.verdicts import extract_json_objects, moderator_json_format, parse_judge, parse_moderator

STRICT = (
    '{"Whether there is a preference": "Yes", "Supported Side": "Negative", '
    '"Reason": "r", "debate_answer": "1.5"}'
)


@pytest.mark.parametrize(
    "reply",
    [
        STRICT,
        "```json\n" + STRICT + "\n```",
        "```\n" + STRICT + "\n```",
        "After weighing both sides, my verdict is:\n" + STRICT + "\nI hope this helps.",
        "{'Whether there is a preference': 'Yes', 'Supported Side': 'Negative', 'Reason': 'r', 'debate_answer': '1.5'}",
        '{"Whether there is a preference": true, "Supported Side": "negative", "Reason": "r", "debate_answer": 1.5}',
        "{'Whether there is a preference': True, 'Supported Side': 'Negative side', 'Reason': 'r', "
        "'debate_answer': 1.5,}",
        '{"whether there is a preference": "yes", "supported side": "NEGATIVE", "reason": "r", '
        '"Debate Answer": "1.5",\n}',
        "\u201cignored\u201d {\u201cWhether there is a preference\u201d: \u201cYes\u201d, \u201cSupported Side\u201d: "
        "\u201cNegative\u201d, \u201cReason\u201d: \u201cr\u201d, \u201cdebate_answer\u201d: \u201c1.5\u201d}",
    ],
)
def test_moderator_reply_variants(reply: str) -> None:
    verdict, error = parse_moderator(reply)
    assert error is None
    assert (verdict.preference, verdict.supported_side, verdict.reason, verdict.answer) == (
        "Yes",
        "Negative",
        "r",
        "1.5",
    )


def test_null_none_and_false() -> None:
    verdict, _ = parse_moderator(
        '{"Whether there is a preference": false, "Supported Side": null, '
        '"Reason": null, "debate_answer": null}'
    )
    assert (verdict.preference, verdict.supported_side, verdict.answer) == ("No", "", "")
    verdict, _ = parse_moderator(
        "{'Whether there is a preference': False, 'Supported Side': None, "
        "'Reason': 'tie', 'debate_answer': None}"
    )
    assert (verdict.preference, verdict.reason, verdict.answer) == ("No", "tie", "")


def test_translation_key_and_strings_with_braces_and_quotes() -> None:
    verdict, _ = parse_moderator(
        '{"Whether there is a preference": "Yes", "Supported Side": "Affirmative", '
        '"Reason": "the {braces} and \\"quotes\\" are fine; it\'s ok", '
        '"debate_translation": "Destroy a division."}'
    )
    assert verdict.answer == "Destroy a division." and "{braces}" in verdict.reason
    assert verdict.to_json("translation")["debate_translation"] == "Destroy a division."


def test_echoed_format_then_real_answer_takes_the_real_one() -> None:
    reply = "The format is " + moderator_json_format("qa") + ". My answer: " + STRICT
    verdict, _ = parse_moderator(reply)
    assert verdict.answer == "1.5"
    # the echoed template alone ("Yes or No") is not a verdict
    assert parse_moderator(moderator_json_format("qa"))[0] is None


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "I cannot decide.",
        "__import__('os').system('touch /tmp/pwned_xyz')",
        "{'debate_answer': __import__('os').system('touch /tmp/pwned_xyz')}",
        '{"Whether there is a preference": "Yes", "debate_answer": (lambda: 1)()}',
        '{"Reason": "no verdict keys at all"}',
        '{"Whether there is a preference": "Maybe", "debate_answer": ""}',
        '{"Whether there is a preference": "Yes", "debate_answer": ["a", "b"]}',
        '{"Whether there is a preference": "Yes", "debate_answer": "1.5"',  # truncated
        "[1, 2, 3]",
    ],
)
def test_unreadable_replies_are_rejected_and_never_run(reply: str) -> None:
    marker = Path("/tmp/pwned_xyz")
    if marker.exists():
        marker.unlink()
    verdict, error = parse_moderator(reply)
    assert verdict is None and error
    assert not marker.exists()


def test_human_dict_is_validated_with_the_same_schema() -> None:
    verdict, _ = parse_moderator(
        {
            "Whether there is a preference": "Yes",
            "Supported Side": "Affirmative",
            "Reason": "r",
            "debate_answer": "3/2",
        }
    )
    assert verdict.answer == "3/2"
    assert parse_moderator({"Whether there is a preference": "perhaps"})[0] is None


def test_judge_schema() -> None:
    verdict, _ = parse_judge("Final:\n```json\n{'Reason': 'r', 'debate_answer': 15,}\n```")
    assert (verdict.reason, verdict.answer) == ("r", "15")
    assert parse_judge('{"Reason": "r"}')[0] is None
    assert parse_judge('{"Reason": "r", "debate_translation": "Hi."}')[0].answer == "Hi."


def test_extract_json_objects_ignores_prose_apostrophes() -> None:
    text = "I don't know, but here's {\"a\": 1} and {'b': True} and {not json}"
    assert extract_json_objects(text) == [{"a": 1}, {"b": True}]
