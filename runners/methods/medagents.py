"""Evaluation adapter of the medagents graph (transitional: wraps the graph module's old adapter)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from runners.methods import EvalMethod, Outcome
from tasks import Task, TaskItem


class _Adapter(EvalMethod):
    name = "medagents"
    graph_module = "graphs.medagents"

    @property
    def _legacy(self) -> Any:
        return importlib.import_module(self.graph_module).EVAL_METHOD

    @property
    def context_class(self) -> type:
        return importlib.import_module(self.graph_module).MedAgentsContext

    def context(self, options: Mapping[str, Any], *, task: str, db: str) -> Any:
        return self._legacy.context({**options, "task": task})

    def make_input(self, item: TaskItem, task: Task) -> dict[str, Any]:
        return self._legacy.make_input(item, {"task": task.name})

    def outcome(self, item: TaskItem, state: Mapping[str, Any], task: Task) -> Outcome:
        return self._legacy.outcome(item, dict(state), {"task": task.name})


MEDAGENTS = _Adapter()
