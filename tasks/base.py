"""The shapes every task shares: an item to answer, the grade of an answer, and the `Task` contract.

A `Task` never raises on a model's reply: an unreadable reply is `Grade(prediction=None,
correct=False)`. It raises `TaskError` only for bad items (`check_item`, used at load time).
"""

from __future__ import annotations

import copy
import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from tasks.reference_rules import GRADINGS


@dataclass(frozen=True)
class TaskItem:
    """One question of a data set, in a shape every graph can read.

    `id` is stable across runs (taken from the data when it has one, else a hash of the
    content), so a resumed evaluation recognises the items it already finished.
    `group` names the sub-score an item counts towards (e.g. MedQA "step1").
    """

    id: str
    question: str
    gold: Any = None
    options: dict[str, str] | None = None
    context: str | None = None
    group: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "gold": self.gold,
            "options": self.options,
            "context": self.context,
            "group": self.group,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskItem:
        return cls(
            **{k: data.get(k) for k in ("id", "question", "gold", "options", "context", "group")},
            meta=data.get("meta") or {},
        )


@dataclass(frozen=True)
class Grade:
    """What a grader read from a model's text: the extracted prediction and whether it is right.

    `prediction` is None when no answer could be extracted; that is never counted correct.
    """

    prediction: str | None
    correct: bool
    detail: str | None = None


def stable_id(*parts: Any) -> str:
    """A short content hash, for items whose data carries no id."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


class TaskError(ValueError):
    """Bad task input: unknown task, malformed data file (names file and line), bad field."""


class Task(ABC):
    """One benchmark's prompt rendering and grading.

    `prompt(item)` is the question as the model should see it (context, question, option lines),
    without `answer_instruction`, which the method's prompt template places itself.
    `grading` is "lenient" (ours) or "reference" (the original code's rules, `tasks.reference_rules`,
    for the tasks it graded; the others keep the lenient rules): see `with_grading`.
    """

    name: str
    answer_instruction: str
    grading: str = "lenient"

    def __init__(self, name: str, answer_instruction: str) -> None:
        self.name = name
        self.answer_instruction = answer_instruction

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def prompt(self, item: TaskItem) -> str:
        question = item.question.strip()
        if item.options:
            question += "\n" + "\n".join(f"{key}. {text}" for key, text in item.options.items())
        return f"Context: {item.context.strip()}\n\n{question}" if item.context else question

    def with_grading(self, grading: str) -> Task:
        """This task graded by other rules (a copy; the shared instance is left as it is)."""
        if grading not in GRADINGS:
            raise TaskError(f"unknown grading {grading!r}; choose one of: {', '.join(GRADINGS)}")
        if grading == self.grading:
            return self
        twin = copy.copy(self)
        twin.grading = grading
        return twin

    def instruction_for(self, item: TaskItem) -> str:
        """The answer instruction for one item (differs from `answer_instruction` for `mixed`)."""
        return self.answer_instruction

    def answer_pattern(self, item: TaskItem | None = None) -> str | None:
        """A regex of what this task's answers put inside `\\boxed{}` (for `item`, when given);
        None when answers are not boxed. Used to ask for the answer format by constrained decoding."""
        return None

    @abstractmethod
    def extract(self, item: TaskItem, text: str) -> str | None:
        """The answer a reply gives, in the form compared with the gold; None if there is none."""

    @abstractmethod
    def judge(self, item: TaskItem, prediction: str) -> tuple[bool, str | None]:
        """Whether an extracted prediction is right, and a note on how that was decided."""

    def reference_grade(self, item: TaskItem, text: str) -> Grade | None:
        """The original code's grade of a reply; None where it had no rule (lenient rules apply)."""
        return None

    def grade(self, item: TaskItem, text: str | None) -> Grade:
        if self.grading == "reference":
            reference = self.reference_grade(item, text or "")
            if reference is not None:
                return reference
        prediction = self.extract(item, text or "")
        if prediction is None:
            return Grade(prediction=None, correct=False, detail="no answer found")
        if item.gold is None:  # e.g. extraction only, with a placeholder item
            return Grade(prediction=prediction, correct=False, detail="no gold answer")
        correct, detail = self.judge(item, prediction)
        return Grade(prediction=prediction, correct=correct, detail=detail)

    def grade_answer(self, item: TaskItem, answer: str | None) -> Grade:
        """Grade an answer a method has already read from its replies (e.g. MedAgents' option letter,
        a debate's answer): judged as given, not extracted again."""
        if answer is None or not str(answer).strip():
            return Grade(prediction=None, correct=False, detail="no answer")
        if item.gold is None:
            return Grade(prediction=answer, correct=False, detail="no gold answer")
        if self.grading == "reference":
            decided = self.reference_answer_grade(item, str(answer))
            if decided is not None:
                return decided
        correct, detail = self.judge(item, str(answer).strip())
        return Grade(prediction=answer, correct=correct, detail=detail)

    def reference_answer_grade(self, item: TaskItem, answer: str) -> Grade | None:
        """The original code's decision on an answer a method read itself (None: judge as usual)."""
        return None

    def check_item(self, item: TaskItem) -> None:
        """Raise TaskError when this task cannot grade `item` (wrong kind of gold)."""
        if item.gold is None:
            raise TaskError(f"item {item.id}: no gold answer")
