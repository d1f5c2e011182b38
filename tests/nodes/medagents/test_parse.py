"""MedAgents parsers: strict where the original guessed (a failed call is never an answer or a vote)."""

from __future__ import annotations

import pytest

from nodes.medagents import parse
from nodes.medagents.parse import (
    GENERIC_DOMAINS,
    clean_advice,
    parse_answer_letter,
    parse_domains,
    parse_report,
    parse_vote,
)

LETTERS = "ABCDE"


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("Option: C", "C"),
        ("Option: (C)", "C"),
        ("**Option:** C", "C"),
        ("Option: [B]", "B"),
        ("(C)", "C"),
        ("**C**", "C"),
        ("\\boxed{C}", "C"),
        ("the answer is C. Aspirin inhibits platelets.", "C"),
        ("C", "C"),
        ("E.", "E"),
        ("D) Antacids", "D"),
        ("Thought: Option A is tempting but wrong.\nOption: D", "D"),
        ("Option: B\n\nOn reflection, Option: C", "C"),
    ],
)
def test_clear_letters_are_read(text: str, letter: str) -> None:
    assert parse_answer_letter(text, LETTERS) == letter


@pytest.mark.parametrize(
    "text",
    [
        "ERROR.",  # the original's failed-call placeholder read as answer "E"
        "ERROR",
        "",
        "I cannot decide.",
        "A patient with these findings needs more tests.",
        "The answer is a bit unclear.",
        "Answer: a combination of factors",
        "Option: F",  # not one of the options
        "Either B or C could be right.",
        "Option: A or B",
    ],
)
def test_unclear_text_is_no_letter(text: str) -> None:
    assert parse_answer_letter(text, LETTERS) is None


@pytest.mark.parametrize("parser", ["shared", "fallback"])
def test_fallback_parser_is_as_strict(parser: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if parser == "fallback":
        monkeypatch.setattr(parse, "_shared_choice_letter", None)
    assert parse_answer_letter("Option: C", LETTERS) == "C"
    assert parse_answer_letter("ERROR.", LETTERS) is None
    assert parse_answer_letter("Option: A or B", LETTERS) is None
    assert parse_answer_letter("the answer is a bit unclear", LETTERS) is None
    assert parse_answer_letter("Option: E", "ABCD") is None


def test_letters_are_limited_to_the_options() -> None:
    assert parse_answer_letter("Option: E", "ABCD") is None
    assert parse_answer_letter("Option: C", ["A", "B", "C"]) == "C"


@pytest.mark.parametrize(
    ("text", "vote"),
    [
        ("YES", "yes"),
        ("yes.", "yes"),
        ("No.", "no"),
        ("**NO**", "no"),
        ("[YES]", "yes"),
        ("Yes, no revisions are needed.", "yes"),
        ("No - the report misses the ECG; yes, the rest is fine.", "no"),
        ("My opinion is consistent with the report: yes", "yes"),
        ("I do not agree. No.", "no"),
    ],
)
def test_votes_are_whole_words(text: str, vote: str) -> None:
    assert parse_vote(text) == vote


@pytest.mark.parametrize(
    "text",
    [
        "ERROR.",  # the original counted this as yes
        "",
        "The diagnostic reasoning is sound.",  # "no" inside "diagnostic" is not a no
        "Nothing to add; I cannot say.",
        "Not sure.",
        "I agree with part of it, yes and no.",
        "Noted.",
    ],
)
def test_unclear_votes_are_none(text: str) -> None:
    assert parse_vote(text) is None


def test_domains_exact() -> None:
    parsed = parse_domains("Medical Field: Cardiology | Neurology | Pathology | Pharmacology | Radiology", 5)
    assert parsed.domains == ["Cardiology", "Neurology", "Pathology", "Pharmacology", "Radiology"]
    assert parsed.problems == []


def test_domains_tolerate_markdown_and_preamble() -> None:
    text = (
        "Sure! The format is Medical Field: Field1 | Field2\n"
        "**Medical Field:** 1. Cardiology | 2. Pharmacology."
    )
    assert parse_domains(text, 2).domains == ["Cardiology", "Pharmacology"]


def test_domains_deduplicated_case_insensitively_then_padded() -> None:
    parsed = parse_domains("Medical Field: Cardiology | cardiology | General Medicine | CARDIOLOGY", 5)
    assert parsed.domains == [
        "Cardiology",
        "General Medicine",
        "Internal Medicine",
        "Emergency Medicine",
        "Family Medicine",
    ]
    assert any("duplicate" in p for p in parsed.problems)
    assert any("padded 3" in p for p in parsed.problems)


def test_domains_trimmed() -> None:
    parsed = parse_domains("Medical Field: A | B | C", 2)
    assert parsed.domains == ["A", "B"] and parsed.problems == ["trimmed 1 extra field(s)"]


def test_domains_missing_line_is_all_generic() -> None:
    parsed = parse_domains("ERROR.", 5)
    assert parsed.domains == list(GENERIC_DOMAINS[:5])
    assert parsed.problems[0] == "no 'Medical Field:' line in the reply"


def test_domains_more_than_generic_names() -> None:
    parsed = parse_domains("", 10)
    assert len(parsed.domains) == 10 == len({d.casefold() for d in parsed.domains})


def test_report_sections() -> None:
    parsed = parse_report("Key Knowledge: K1\nmore K\nTotal Analysis: T1")
    assert (parsed.key_knowledge, parsed.total_analysis) == ("K1\nmore K", "T1")
    parsed = parse_report("## **Total Analysis:** T first\n**Key Knowledge**: K after")
    assert (parsed.key_knowledge, parsed.total_analysis) == ("K after", "T first")
    parsed = parse_report("just prose")
    assert (parsed.key_knowledge, parsed.total_analysis) == (None, None)
    assert parse_report("Total Analysis: only").key_knowledge is None


def test_advice_label_removed() -> None:
    assert clean_advice("Revisions: mention the ECG.") == "mention the ECG."
    assert clean_advice("**Revisions:** add troponin") == "add troponin"
    assert clean_advice("add troponin") == "add troponin"
