"""Evaluation adapter shared by the single-agent, text-MAS and LatentMAS graphs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from langgraph.graph import StateGraph

from runners.methods import Outcome
from tasks.base import TaskItem

# CLI option name -> MASContext field, where they differ.
OPTION_ALIASES = {"prompt": "topology"}


@dataclass(frozen=True)
class MASMethod:
    name: str
    build: Callable[[], StateGraph]

    def build_graph(self) -> StateGraph:
        return self.build()

    def context(self, options: dict[str, Any]):
        from nodes.mas import MASContext

        known = {f.name for f in fields(MASContext)}
        values = {OPTION_ALIASES.get(k, k): v for k, v in options.items() if v is not None}
        return MASContext(**{k: v for k, v in values.items() if k in known})

    def make_input(self, item: TaskItem, options: dict[str, Any]) -> dict[str, Any]:
        from tasks import get_task

        task = get_task(options["task"])
        return {
            "item_id": item.id,
            "question": task.prompt(item),
            "answer_instruction": task.instruction_for(item),
        }

    def outcome(self, item: TaskItem, state: dict[str, Any], options: dict[str, Any]) -> Outcome:
        from tasks import get_task

        text = state.get("text") or ""
        grade = get_task(options["task"]).grade(item, text)
        record = {
            "question": item.question,
            "gold": item.gold,
            "prediction": grade.prediction,
            "raw_prediction": text,
            "correct": grade.correct,
            "grade_detail": grade.detail,
            "agents": state.get("trace") or [],
        }
        return Outcome(prediction=grade.prediction, correct=grade.correct, record=record)
