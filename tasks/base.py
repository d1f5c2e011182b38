"""The shapes every task shares: an item to answer, and the grade of an answer."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


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
