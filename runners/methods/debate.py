"""Evaluation adapter of the debate graph (transitional: wraps the graph module's old adapter)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from runners.methods import EvalMethod, Outcome
from tasks import Task, TaskItem


class _Adapter(EvalMethod):
    name = "debate"
    graph_module = "graphs.debate"

    @property
    def _legacy(self) -> Any:
        return importlib.import_module(self.graph_module).EVAL_METHOD

    @property
    def context_class(self) -> type:
        return importlib.import_module(self.graph_module).DebateContext

    def context(self, options: Mapping[str, Any], *, task: str, db: str) -> Any:
        renamed = {"human_role": "human", "source_lang": "source", "target_lang": "target", "max_tokens": "max_new_tokens"}
        legacy = {renamed.get(key, key): value for key, value in options.items()}
        return self._legacy.context({**legacy, "task": task})

    def make_input(self, item: TaskItem, task: Task) -> dict[str, Any]:
        return self._legacy.make_input(item, {"task": task.name})

    def outcome(self, item: TaskItem, state: Mapping[str, Any], task: Task) -> Outcome:
        return self._legacy.outcome(item, dict(state), {"task": task.name})


DEBATE = _Adapter()
