"""Tasks: how an item becomes a prompt, what answer format is asked for, and how a reply is graded.

A `Task` never raises on a model's reply: an unreadable reply is `Grade(prediction=None,
correct=False)`. It raises `TaskError` only for bad items (`check_item`, used at load time).
The answer extractors live in `tasks.answers` and are re-exported here for other modules.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from tasks.answers import (
    _letter_of_fragment,
    extract_boxed,
    extract_choice_letter,
    extract_code_block,
    extract_number,
    normalize_answer,
    numbers_equal,
    parse_number,
)
from tasks.base import Grade, Task, TaskError, TaskItem
from tasks.reference_rules import reference_boxed_answer, reference_integer_equal

__all__ = [
    "ChoiceTask",
    "ExactMatchTask",
    "FreeFormTask",
    "MixedTask",
    "NumberTask",
    "PubMedQATask",
    "Task",
    "WinograndeTask",
    "extract_boxed",
    "extract_choice_letter",
    "extract_code_block",
    "extract_number",
    "normalize_answer",
    "numbers_equal",
    "parse_number",
]


class NumberTask(Task):
    """Numeric answers (GSM8K, AIME): first number in the last box, else the last number."""

    def __init__(self, name: str, *, integer: bool = False) -> None:
        super().__init__(name, "Put the final answer, a single number, inside \\boxed{}.")
        self.integer = integer

    def extract(self, item: TaskItem, text: str) -> str | None:
        return extract_number(text)

    def reference_grade(self, item: TaskItem, text: str) -> Grade | None:
        prediction = reference_boxed_answer(text)
        if not prediction or item.gold is None:
            return Grade(prediction or None, False, "reference grading: no answer or no gold")
        if self.integer:
            return Grade(prediction, reference_integer_equal(prediction, item.gold), "reference grading")
        return Grade(prediction, prediction == str(item.gold).strip().lower(), "reference grading")

    def answer_pattern(self, item: TaskItem | None = None) -> str | None:
        return r"-?[0-9][0-9,]*" if self.integer else r"-?[0-9][0-9,]*(?:\.[0-9]+)?(?:/[0-9]+)?"

    def judge(self, item: TaskItem, prediction: str) -> tuple[bool, str | None]:
        value = parse_number(prediction)
        if self.integer and (value is None or value.denominator != 1):
            return False, "not an integer"
        return numbers_equal(prediction, item.gold), None

    def check_item(self, item: TaskItem) -> None:
        super().check_item(item)
        gold = parse_number(item.gold)
        if gold is None or (self.integer and gold.denominator != 1):
            kind = "an integer" if self.integer else "a number"
            raise TaskError(f"item {item.id}: gold answer {item.gold!r} is not {kind}")


class ChoiceTask(Task):
    """Multiple choice: the option key, preferably from `\\boxed{}`; a box holding an option's
    exact text counts as that option."""

    def __init__(self, name: str, *, letters: str = "ABCDE", instruction: str | None = None) -> None:
        super().__init__(name, instruction or "Put the letter of the correct option inside \\boxed{}.")
        self.letters = letters

    def answer_pattern(self, item: TaskItem | None = None) -> str | None:
        letters = "".join(item.options) if item is not None and item.options else self.letters
        return "[" + re.escape(letters) + "]"

    def extract(self, item: TaskItem, text: str) -> str | None:
        box = extract_boxed(text)
        if box is not None:
            letter = _letter_of_fragment(box, self.letters, ignore_case=True)
            if letter:
                return letter
            by_text = _option_by_text(box, item.options)
            if by_text:
                return by_text
        return extract_choice_letter(text, self.letters)

    def judge(self, item: TaskItem, prediction: str) -> tuple[bool, str | None]:
        return prediction.upper() == str(item.gold).strip().upper(), None

    def reference_answer_grade(self, item: TaskItem, answer: str) -> Grade | None:
        # MedAgents' scoring: the letter it read equals the gold letter, exactly.
        return Grade(answer, answer.strip() == str(item.gold).strip(), "reference grading")

    def reference_grade(self, item: TaskItem, text: str) -> Grade | None:
        # The original's rule for every multiple-choice task: the boxed answer, lower-cased, equals
        # the gold letter (so "\boxed{1}" or "the answer is C" without a box is never right).
        prediction = reference_boxed_answer(text)
        if not prediction or item.gold is None:
            return Grade(prediction or None, False, "reference grading: no answer or no gold")
        return Grade(prediction, prediction == str(item.gold).strip().lower(), "reference grading")

    def check_item(self, item: TaskItem) -> None:
        super().check_item(item)
        keys = list(item.options) if item.options else list(self.letters)
        if item.options and not set(keys) <= set(self.letters):
            raise TaskError(f"item {item.id}: option labels {keys} are not among {', '.join(self.letters)}")
        if str(item.gold).strip().upper() not in keys:
            raise TaskError(f"item {item.id}: gold answer {item.gold!r} is not one of {', '.join(keys)}")


class PubMedQATask(ChoiceTask):
    """yes/no/maybe as options A/B/C; a plain "yes", "no" or "maybe" answer counts too."""

    _DECLARED = re.compile(r"\banswer\b(?:\s+is\s*:?|\s*:)\s*[*_\"']*(yes|no|maybe)\b", re.IGNORECASE)

    def __init__(self) -> None:
        super().__init__(
            "pubmedqa",
            letters="ABC",
            instruction=(
                "Put the letter of the correct option (A for yes, B for no, C for maybe) inside \\boxed{}."
            ),
        )

    def extract(self, item: TaskItem, text: str) -> str | None:
        letter = super().extract(item, text)
        if letter is not None:
            return letter
        words = self._DECLARED.findall(text)
        return _option_by_text(words[-1], item.options) if words else None


class WinograndeTask(ChoiceTask):
    def __init__(self) -> None:
        super().__init__(
            "winogrande",
            letters="12",
            instruction=(
                "Put the number of the option that correctly fills the blank (1 or 2) inside \\boxed{}."
            ),
        )


class FreeFormTask(Task):
    """Free-form answers (MedicationQA): ROUGE-1 F1 against the reference; at least `threshold`
    counts as correct. The score is kept in Grade.detail."""

    _scorer: Any = None
    _lock = threading.Lock()

    def __init__(self, name: str, *, threshold: float = 0.3) -> None:
        super().__init__(name, "Answer the question in a few sentences.")
        self.threshold = threshold

    def extract(self, item: TaskItem, text: str) -> str | None:
        return text.strip() or None

    def judge(self, item: TaskItem, prediction: str) -> tuple[bool, str | None]:
        score = self.rouge1(str(item.gold), prediction)
        return score >= self.threshold, f"rouge1_f={score:.4f}"

    @classmethod
    def rouge1(cls, reference: str, prediction: str) -> float:
        with cls._lock:  # the scorer is built once (it loads a stemmer); building is not thread-safe
            if cls._scorer is None:
                from rouge_score import rouge_scorer

                cls._scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
        return float(cls._scorer.score(reference, prediction)["rouge1"].fmeasure)

    def check_item(self, item: TaskItem) -> None:
        super().check_item(item)
        if not isinstance(item.gold, str) or not item.gold.strip():
            raise TaskError(f"item {item.id}: the gold must be a reference answer text")


class TranslationTask(FreeFormTask):
    """Translation (CommonMT): the reply is the translation; with a reference, ROUGE-1 F1 against it
    is kept in Grade.detail as a rough signal (the MAD paper judged translations by COMET/humans)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.answer_instruction = "Reply with the translation only."

    def check_item(self, item: TaskItem) -> None:
        if not item.question.strip():
            raise TaskError(f"item {item.id}: empty source text")


class ExactMatchTask(Task):
    """Short answers with a list of accepted spellings (CIAR, custom): equal after normalization,
    or numerically equal ("3/2" == "1.5" == "\\frac{3}{2}"; "48%" == "0.48")."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "Put the final answer inside \\boxed{}.")

    def answer_pattern(self, item: TaskItem | None = None) -> str | None:
        return r"[^{}\n]{1,64}"

    def extract(self, item: TaskItem, text: str) -> str | None:
        box = extract_boxed(text)
        return box if box else (text.strip() or None)

    def judge(self, item: TaskItem, prediction: str) -> tuple[bool, str | None]:
        accepted = [str(a) for a in (item.gold if isinstance(item.gold, list) else [item.gold])]
        wanted = normalize_answer(prediction)
        for answer in accepted:
            if normalize_answer(answer) == wanted:
                return True, f"matched {answer!r}"
        # A whole-number answer ("$1.50") compares as is; a sentence by its answer number.
        number = prediction if parse_number(prediction) is not None else extract_number(prediction)
        for answer in accepted:
            if number is not None and numbers_equal(number, answer):
                return True, f"matched {answer!r} numerically"
        return False, None

    def check_item(self, item: TaskItem) -> None:
        super().check_item(item)
        accepted = item.gold if isinstance(item.gold, list) else [item.gold]
        if not accepted or not all(isinstance(a, str) and a.strip() for a in accepted):
            raise TaskError(f"item {item.id}: the gold must be an answer or a list of accepted answers")


class MixedTask(Task):
    """Items of several tasks in one data set: each is prompted and graded by the task named in
    its meta["task"] (items without one are graded as `default`)."""

    def __init__(self, lookup: Callable[[str], Task], *, default: str = "custom") -> None:
        super().__init__(
            "mixed",
            "Put the final answer inside \\boxed{}: the number for a calculation, "
            "the option letter for a multiple-choice question.",
        )
        self._lookup = lookup
        self.default = default

    def task_for(self, item: TaskItem) -> Task:
        name = item.meta.get("task") or self.default
        task = self._lookup(str(name))
        if isinstance(task, MixedTask):
            raise TaskError(f"item {item.id}: an item cannot have task 'mixed'")
        return task.with_grading(self.grading)

    def prompt(self, item: TaskItem) -> str:
        return self.task_for(item).prompt(item)

    def instruction_for(self, item: TaskItem) -> str:
        return self.task_for(item).answer_instruction

    def answer_pattern(self, item: TaskItem | None = None) -> str | None:
        return None if item is None else self.task_for(item).answer_pattern(item)

    def extract(self, item: TaskItem, text: str) -> str | None:
        return self.task_for(item).extract(item, text)

    def judge(self, item: TaskItem, prediction: str) -> tuple[bool, str | None]:
        return self.task_for(item).judge(item, prediction)

    def grade(self, item: TaskItem, text: str | None) -> Grade:
        return self.task_for(item).grade(item, text)

    def check_item(self, item: TaskItem) -> None:
        self.task_for(item).check_item(item)


def _option_by_text(answer: str, options: dict[str, str] | None) -> str | None:
    """The key of the one option whose text the answer is (after normalization)."""
    if not options:
        return None
    wanted = normalize_answer(answer)
    matches = [key for key, text in options.items() if normalize_answer(text) == wanted]
    return matches[0] if len(matches) == 1 else None
