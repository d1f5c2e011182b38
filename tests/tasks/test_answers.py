"""Answer extraction: boxes, numbers, option letters, code blocks."""

from __future__ import annotations

import pytest

from tasks import (
    extract_boxed,
    extract_choice_letter,
    extract_code_block,
    extract_number,
    normalize_answer,
    numbers_equal,
    parse_number,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{42}", "42"),
        (r"\boxed{1} then \boxed{2}", "2"),
        (r"\boxed{\frac{3}{2}}", r"\frac{3}{2}"),
        (r"\boxed{\frac{1}{\sqrt{2}}} done", r"\frac{1}{\sqrt{2}}"),
        (r"\boxed {7}", "7"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed{5} and then \boxed{7", "5"),  # an unclosed (cut-off) box is skipped
        (r"\boxed{}", ""),
        (r"\fbox{B}", "B"),
        ("no box here", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_boxed(text: str | None, expected: str | None) -> None:
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"The answer is \boxed{\frac{3}{2}}.", "3/2"),
        (r"\boxed{\dfrac{-1}{4}}", "-1/4"),
        (r"\boxed{1,000}", "1000"),
        (r"\boxed{\$5}", "5"),
        (r"\boxed{x = 12 or 13}", "12"),  # the first number in the box
        (r"\boxed{-3}", "-3"),
        ("First 3, then 7, so 42.", "42"),  # no box: the last number
        ("x-2 gives 5-3", "3"),  # hyphens and minus signs between terms are not signs
        ("The total is 1{,}234.", "1234"),
        ("It is 2.5 km", "2.5"),
        ("a ratio of 3/4", "3/4"),
        (r"\boxed{no number}", None),  # a box without a number is no answer, not a fallback
        (r"\boxed{}", None),
        ("no digits", None),
        ("", None),
    ],
)
def test_extract_number(text: str, expected: str | None) -> None:
    assert extract_number(text) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("3/2", "1.5"),
        ("1,000", "1000"),
        (r"\frac{3}{2}", "1.5"),
        ("$5", "5"),
        ("5.0", "5"),
        (r"$\dfrac{3}{2}$", "3/2"),
        ("48%", "0.48"),
        (5, "5.00"),
        (0.1, "1/10"),
        ("-0.5", "-1/2"),
        ("12.", "12"),
    ],
)
def test_numbers_equal(a: object, b: object) -> None:
    assert numbers_equal(a, b)
    assert numbers_equal(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("5", "6"),
        ("1.5", "1.50001"),
        ("abc", "abc"),
        ("5 apples", "5"),
        ("1/0", "1"),
        (None, "1"),
        (True, "1"),
        ("", "0"),
        ("48%", "48"),
    ],
)
def test_numbers_not_equal(a: object, b: object) -> None:
    assert not numbers_equal(a, b)


def test_parse_number_is_exact() -> None:
    assert parse_number("0.1") + parse_number("0.2") == parse_number("0.3")  # type: ignore[operator]
    assert parse_number("7 apples") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\boxed{C}", "C"),
        (r"The answer is \boxed{c}.", "C"),
        (r"\boxed{\text{B}}", "B"),
        (r"\boxed{B. Oral ulcers}", "B"),
        (r"Option A looks good but \boxed{D}", "D"),
        ("Option: C", "C"),
        ("(C)", "C"),
        ("**C**", "C"),
        ("C", "C"),
        ("c", "C"),
        ("C.", "C"),
        ("C. Colorectal cancer", "C"),
        ("the answer is C. Colorectal cancer is the risk.", "C"),
        ("After weighing everything, the answer is (D).", "D"),
        ("**Answer:** D", "D"),
        ("The correct answer is option (B).", "B"),
        ("The answer is: **C**.", "C"),
        ("Final answer: E", "E"),
        ("Answer:\n\nB", "B"),
        ("Answer: C, because the others are wrong", "C"),
        ("Option A is wrong. Option B is wrong. Option: C", "C"),
        ("The answer is A. Wait, no: the answer is C.", "C"),  # the last declaration wins
        ("I think (B) is right.", "B"),
        ("C is correct.", "C"),
    ],
)
def test_extract_choice_letter_accepts_clear_answers(text: str, expected: str) -> None:
    assert extract_choice_letter(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "A or B",
        "The answer is A or B.",
        "answer: C and D",
        "ERROR.",  # a failed call is never option E
        "Answer: A combination of drugs is needed.",  # the article, not option A
        "the answer is a tough one",
        "(A) and (B) both look plausible",
        "A. Hemolytic uremic syndrome\nB. Oral ulcers\nC. Colorectal cancer",  # a listing, not an answer
        "A 34-year-old man has diarrhea.",
        "The diagnosis is Crohn disease.",
        "no letter here at all",
        r"\boxed{}",
        "",
    ],
)
def test_extract_choice_letter_rejects_unclear_text(text: str) -> None:
    assert extract_choice_letter(text) is None


def test_extract_choice_letter_respects_the_letter_set() -> None:
    assert extract_choice_letter("The answer is E.", letters="ABCD") is None
    assert extract_choice_letter(r"\boxed{2}", letters="12") == "2"
    assert extract_choice_letter("The answer is 1.", letters="12") == "1"
    assert extract_choice_letter("The answer is 12.", letters="12") is None
    assert extract_choice_letter("answer: 1 or 2", letters="12") is None


def test_extract_code_block_takes_the_last_closed_python_block() -> None:
    text = "First:\n```python\nx = 1\n```\nBetter:\n```Python\nx = 2\n```\nNot code:\n```\nx = 3\n```"
    assert extract_code_block(text) == "x = 2\n"
    assert extract_code_block("```py\ny = 1\n```") == "y = 1\n"
    assert extract_code_block("def f(): return 1") is None  # unfenced text is not taken as code
    assert extract_code_block("```python\ndef f(): return 1") is None  # unclosed
    assert extract_code_block("```python\n\n```") is None
    assert extract_code_block(None) is None


def test_normalize_answer() -> None:
    assert normalize_answer(r"  \text{Paris}. ") == "paris"
    assert normalize_answer('"5 Cents"') == "5 cents"
    assert normalize_answer("$0.05$") == "0.05"
    assert normalize_answer("New   York") == "new york"
