"""`grading="reference"`: the original LatentMAS/MedAgents scoring decisions on crafted replies, beside
the lenient rules where the two disagree."""

from __future__ import annotations

import pytest

from tasks import TaskError, TaskItem, get_task
from tasks.reference_rules import reference_boxed_answer, reference_code_block

MCQ = TaskItem(
    id="m", question="q", gold="C", options={"A": "a", "B": "b", "C": "Colorectal cancer", "D": "d"}
)
NUMBER = TaskItem(id="n", question="q", gold="18")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{18}", "18"),
        ("\\boxed{18.0}", "18.0"),
        ("\\boxed{\\text{C}}", "\\text{c"),  # the box ends at the first closing brace
        ("\\boxed{ B }", "b"),
        ("\\boxed{\\frac{1}{2}}", "1"),
        ("\\boxed{-3} then \\boxed{1,000}", "1"),  # the last box, its first number
        ("3 apples and 4.5", "4.5"),  # no box: the last number anywhere
        ("\\boxed{}", ""),
        ("no answer at all", None),
    ],
)
def test_the_original_extraction_table(text, expected):
    assert reference_boxed_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "lenient", "reference"),
    [
        ("The answer is \\boxed{C}.", True, True),
        ("\\boxed{c}", True, True),
        ("\\boxed{\\text{C}}", True, False),  # nested braces
        ("The answer is C.", True, False),  # no box
        ("\\boxed{C. Colorectal cancer}", True, False),  # the whole box is the answer: not 'c'
        ("\\boxed{Colorectal cancer}", True, False),  # an option's text
        ("\\boxed{A} at first, finally \\boxed{C}", True, True),
        ("\\boxed{3}", False, False),
    ],
)
def test_multiple_choice_decisions(text, lenient, reference):
    assert get_task("medqa").grade(MCQ, text).correct is lenient
    assert get_task("medqa", grading="reference").grade(MCQ, text).correct is reference


@pytest.mark.parametrize(
    ("text", "lenient", "reference"),
    [
        ("\\boxed{18}", True, True),
        ("\\boxed{18.0}", True, False),  # string comparison: 18.0 != 18
        ("so 18 in all", True, True),
        ("\\boxed{\\$18}", True, True),
        ("\\boxed{1,8}", False, False),
        ("\\boxed{18 clips}", True, True),
    ],
)
def test_number_decisions(text, lenient, reference):
    assert get_task("gsm8k").grade(NUMBER, text).correct is lenient
    assert get_task("gsm8k", grading="reference").grade(NUMBER, text).correct is reference


def test_aime_compares_integers_and_rejects_decimals():
    item = TaskItem(id="a", question="q", gold="204")
    reference = get_task("aime2024", grading="reference")
    assert reference.grade(item, "\\boxed{204}").correct
    assert reference.grade(item, "\\boxed{+204}").correct  # int("+204") == 204
    assert not reference.grade(item, "\\boxed{204.0}").correct  # int("204.0") raises: wrong


def test_winogrande_reads_the_number():
    item = TaskItem(id="w", question="q", gold="2", options={"1": "x", "2": "y"})
    assert get_task("winogrande", grading="reference").grade(item, "\\boxed{2}").correct
    assert not get_task("winogrande", grading="reference").grade(item, "Option 2 fits.\\boxed{y}").correct


def test_code_block_rule():
    assert reference_code_block("```Python\nx = 1\n``` and ```python def f(): pass```") == "def f(): pass"
    assert reference_code_block("```\nplain fence\n```") is None
    task = get_task("mbppplus", grading="reference")
    graded = task.grade(TaskItem(id="c", question="q", gold="assert f() == 1"), "```\ndef f(): return 1\n```")
    assert graded.prediction is None and not graded.correct
    assert graded.detail == "python error: No python code block found"


def test_answers_read_by_a_method_compare_letters_exactly():
    reference = get_task("medqa", grading="reference")
    assert reference.grade_answer(MCQ, "C").correct
    assert not reference.grade_answer(MCQ, "c").correct  # MedAgents compares the letters as they are
    assert get_task("medqa").grade_answer(MCQ, "c").correct


def test_tasks_without_an_original_rule_keep_the_lenient_one_and_the_shared_task_is_untouched():
    item = TaskItem(id="x", question="q", gold=["1.5 m/s"])
    assert get_task("ciar", grading="reference").grade(item, "So \\\\boxed{1.5 m/s}.").correct
    assert get_task("medqa").grading == "lenient"  # with_grading copies; the registry's task is shared
    with pytest.raises(TaskError, match="unknown grading 'strict'"):
        get_task("medqa", grading="strict")


def test_mixed_items_are_graded_by_their_task_with_the_runs_rules():
    item = TaskItem(id="x", question="q", gold="18", meta={"task": "gsm8k"})
    assert get_task("mixed").grade(item, "\\boxed{18.0}").correct
    assert not get_task("mixed", grading="reference").grade(item, "\\boxed{18.0}").correct
