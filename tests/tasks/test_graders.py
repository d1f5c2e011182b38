"""Tasks: prompts, answer instructions and grading of model replies."""

from __future__ import annotations

import pytest

from tasks import Grade, TaskError, TaskItem, get_task, load_items, sample_path, task_names
from tasks.code_task import CodeTask, build_program

ALL_TASKS = {
    "gsm8k",
    "aime2024",
    "aime2025",
    "gpqa",
    "arc_easy",
    "arc_challenge",
    "medqa",
    "medmcqa",
    "mmlu_medical",
    "pubmedqa",
    "medicationqa",
    "winogrande",
    "mbppplus",
    "humanevalplus",
    "ciar",
    "custom",
    "mixed",
    "commonmt",
}
OPTIONS = {"A": "Hemolysis", "B": "Oral ulcers", "C": "Colorectal cancer", "D": "Pancreatic cancer"}


def item(gold: object, **kwargs: object) -> TaskItem:
    return TaskItem(id="t", question=str(kwargs.pop("question", "Q?")), gold=gold, **kwargs)  # type: ignore[arg-type]


def test_registry_knows_every_task() -> None:
    assert set(task_names()) == ALL_TASKS
    for name in ALL_TASKS:
        task = get_task(name)
        assert task.name == name
        assert task.answer_instruction
    assert get_task("ARC-Easy") is get_task("arc_easy")


def test_unknown_task_lists_known_names() -> None:
    with pytest.raises(
        TaskError, match="unknown task 'chess'; known tasks: aime2024, aime2025, arc_challenge"
    ):
        get_task("chess")


def test_boxed_instructions() -> None:
    assert r"\boxed{}" in get_task("medqa").answer_instruction
    assert "letter" in get_task("medqa").answer_instruction
    assert r"\boxed{}" in get_task("gsm8k").answer_instruction
    assert "```python" in get_task("mbppplus").answer_instruction


# -- numbers ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "prediction", "correct"),
    [
        (r"So she pays \boxed{18} dollars.", "18", True),
        (r"\boxed{\$18.00}", "18.00", True),
        (r"\boxed{\frac{36}{2}}", "36/2", True),
        ("10 + 8 = 18", "18", True),  # no box: the last number
        (r"\boxed{17}", "17", False),
        (r"It is 18, I mean \boxed{19}", "19", False),  # the box wins over other numbers
        ("I am not sure.", None, False),
    ],
)
def test_gsm8k_grading(text: str, prediction: str | None, correct: bool) -> None:
    assert get_task("gsm8k").grade(item("18"), text) == Grade(
        prediction, correct, None if prediction else "no answer found"
    )


def test_gsm8k_thousands_and_fractions() -> None:
    assert get_task("gsm8k").grade(item("1000"), r"\boxed{1,000}").correct
    assert get_task("gsm8k").grade(item("1.5"), r"\boxed{\frac{3}{2}}").correct


def test_aime_compares_integers() -> None:
    aime = get_task("aime2024")
    assert aime.grade(item("33"), r"\boxed{033}").correct
    grade = aime.grade(item("33"), r"\boxed{33.5}")
    assert (grade.correct, grade.detail) == (False, "not an integer")
    with pytest.raises(TaskError, match="not an integer"):
        aime.check_item(item("2.5"))


def test_grading_without_gold_still_extracts() -> None:
    # nodes.mas reads predictions by grading a placeholder item
    grade = get_task("gsm8k").grade(TaskItem(id="-", question="", gold=None), r"\boxed{42}")
    assert grade == Grade("42", False, "no gold answer")
    assert get_task("medqa").grade(TaskItem(id="-", question="", gold=None), "Option: C").prediction == "C"
    assert get_task("medqa").grade(item("C"), None).prediction is None


# -- multiple choice ----------------------------------------------------------------------------
def test_choice_prompt_renders_options_without_instruction() -> None:
    prompt = get_task("medqa").prompt(item("C", question="Which risk?", options=OPTIONS))
    assert prompt == ("Which risk?\nA. Hemolysis\nB. Oral ulcers\nC. Colorectal cancer\nD. Pancreatic cancer")


@pytest.mark.parametrize(
    ("text", "prediction", "correct"),
    [
        (r"Reasoning... \boxed{C}", "C", True),
        (r"\boxed{c}", "C", True),
        (r"\boxed{Colorectal cancer}", "C", True),  # the exact text of an option counts as that option
        ("Option: C", "C", True),
        ("The answer is (B).", "B", False),
        ("A or C", None, False),
        ("ERROR.", None, False),
    ],
)
def test_medqa_grading(text: str, prediction: str | None, correct: bool) -> None:
    grade = get_task("medqa").grade(item("C", options=OPTIONS), text)
    assert (grade.prediction, grade.correct) == (prediction, correct)


def test_choice_check_item() -> None:
    with pytest.raises(TaskError, match="'F' is not one of A, B, C, D"):
        get_task("gpqa").check_item(item("F", options=OPTIONS))
    with pytest.raises(TaskError, match="no gold"):
        get_task("gpqa").check_item(item(None, options=OPTIONS))
    get_task("gpqa").check_item(item("b"))  # the letter may come without options (listed in the question)


def test_pubmedqa_prompt_and_grading() -> None:
    pubmed = get_task("pubmedqa")
    question = item(
        "B",
        question="Does X help?",
        context="A trial found no effect.",
        options={"A": "yes", "B": "no", "C": "maybe"},
    )
    assert (
        pubmed.prompt(question)
        == "Context: A trial found no effect.\n\nDoes X help?\nA. yes\nB. no\nC. maybe"
    )
    assert pubmed.grade(question, r"\boxed{B}").correct
    assert pubmed.grade(question, r"\boxed{no}").prediction == "B"
    assert pubmed.grade(question, "The answer is: no.").prediction == "B"
    assert pubmed.grade(question, "The answer is maybe").prediction == "C"
    assert pubmed.grade(question, "This is not diagnostic.").prediction is None  # no "no" inside words


def test_winogrande_grading() -> None:
    wino = get_task("winogrande")
    question = item(
        "2",
        question="The cup did not fit in the box because _ was too small.",
        options={"1": "the cup", "2": "the box"},
    )
    assert wino.prompt(question).endswith("\n1. the cup\n2. the box")
    assert wino.grade(question, r"\boxed{2}") == Grade("2", True, None)
    assert wino.grade(question, r"\boxed{the box}").correct
    assert wino.grade(question, r"\boxed{1}").correct is False
    assert wino.grade(question, "1 or 2").prediction is None


# -- free form and exact match ------------------------------------------------------------------
def test_medicationqa_rouge() -> None:
    task = get_task("medicationqa")
    reference = "Take ibuprofen with food or milk to reduce stomach upset."
    close = task.grade(item(reference), "You should take ibuprofen with food or milk to avoid stomach upset.")
    far = task.grade(item(reference), "Paris is the capital of France.")
    assert close.correct and close.detail is not None and close.detail.startswith("rouge1_f=")
    assert float(close.detail.split("=")[1]) > 0.6
    assert not far.correct and far.detail == "rouge1_f=0.0000"
    assert task.grade(item(reference), "   ").prediction is None


@pytest.mark.parametrize(
    ("text", "correct"),
    [
        (r"\boxed{1.5}", True),
        (r"\boxed{3/2}", True),
        (r"\boxed{\frac{3}{2}}", True),
        ("1.5", True),
        ("The average speed is 3/2 m/s.", True),
        (r"\boxed{2}", False),
        ("2 m/s", False),
    ],
)
def test_ciar_grading(text: str, correct: bool) -> None:
    assert get_task("ciar").grade(item(["1.5", "3/2"]), text).correct is correct


def test_ciar_percentages_and_text_answers() -> None:
    ciar = get_task("ciar")
    assert ciar.grade(item(["48%", "0.48"]), r"\boxed{48\%}").correct
    assert ciar.grade(item(["48%", "0.48"]), "0.48").correct
    assert not ciar.grade(item(["48%", "0.48"]), "48").correct
    assert get_task("custom").grade(item(["Paris"]), r"\boxed{\text{paris}}").correct
    assert get_task("custom").grade(item("Paris"), "Paris.").correct
    assert not get_task("custom").grade(item(["Paris"]), "Lyon").correct


def test_mixed_dispatches_on_the_item_task() -> None:
    mixed = get_task("mixed")
    demo = {i.id: i for i in load_items(sample_path("demo"))}
    assert mixed.grade(demo["demo-1"], r"\boxed{5}").correct
    assert mixed.grade(demo["demo-3"], r"\boxed{B}").correct
    assert not mixed.grade(demo["demo-3"], r"\boxed{5}").correct
    assert mixed.grade(demo["demo-5"], "Option: B").correct
    assert mixed.grade(demo["demo-6"], r"\boxed{Paris}").correct
    assert mixed.instruction_for(demo["demo-3"]) == get_task("arc_easy").answer_instruction
    assert "A. ice\nB. water" in mixed.prompt(demo["demo-3"])
    assert mixed.grade(item(["7"]), r"\boxed{7}").correct  # no task on the item: graded as custom
    with pytest.raises(TaskError, match="cannot have task 'mixed'"):
        mixed.grade(item("1", meta={"task": "mixed"}), "1")


# -- code ---------------------------------------------------------------------------------------
HUMANEVAL = TaskItem(
    id="HumanEval/0",
    question="def inc(x):\n    '''Return x plus one.'''\n",
    gold="def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n",
    meta={"entry_point": "inc"},
)
MBPP = TaskItem(
    id="11",
    question="Write a function add(a, b) that adds two numbers.",
    gold="assert add(1, 2) == 3\nassert add(-1, 1) == 0",
    meta={"test_list": ["assert add(1, 2) == 3"]},
)


def test_code_prompts() -> None:
    assert (
        get_task("humanevalplus")
        .prompt(HUMANEVAL)
        .startswith("Complete the following Python function.\n```python\ndef inc")
    )
    assert (
        get_task("mbppplus")
        .prompt(MBPP)
        .endswith("Your code should pass these tests:\nassert add(1, 2) == 3")
    )


def test_build_program_calls_check_for_humaneval() -> None:
    program = build_program("def inc(x):\n    return x + 1\n", HUMANEVAL)
    assert program.rstrip().endswith("check(inc)")
    assert "check(" not in build_program("def add(a, b):\n    return a + b", MBPP)


def test_code_without_block_is_not_run() -> None:
    grade = get_task("mbppplus").grade(MBPP, "def add(a, b): return a + b")
    assert grade == Grade(None, False, "no answer found")


@pytest.mark.slow
def test_code_grading_runs_the_tests(strict_sandbox: None) -> None:
    good = "Here:\n```python\ndef add(a, b):\n    return a + b\n```"
    bad = "```python\ndef add(a, b):\n    return a - b\n```"
    passed = get_task("mbppplus").grade(MBPP, good)
    assert (passed.prediction, passed.correct, passed.detail) == (
        "def add(a, b):\n    return a + b\n",
        True,
        "passed",
    )
    failed = get_task("mbppplus").grade(MBPP, bad)
    assert not failed.correct and failed.detail is not None and "AssertionError" in failed.detail
    assert get_task("humanevalplus").grade(HUMANEVAL, "```python\ndef inc(x):\n    return x + 1\n```").correct
    # check() must really be called: a wrong solution fails although defining check() alone would not
    assert not get_task("humanevalplus").grade(HUMANEVAL, "```python\ndef inc(x):\n    return x\n```").correct


@pytest.mark.slow
def test_code_grading_times_out(strict_sandbox: None) -> None:
    grade = CodeTask("mbppplus", timeout_s=1).grade(MBPP, "```python\nwhile True:\n    pass\n```")
    assert not grade.correct
    assert grade.detail is not None and ("timed out" in grade.detail or "CPU time" in grade.detail)
