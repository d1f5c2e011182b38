"""What the evaluation runner needs from a graph: the contract every evaluable method fulfils.

A method module (e.g. `graphs.latent_mas`) exposes an `EvalMethod`; `METHODS` maps CLI names to
the import path of each, loaded lazily so `masgraph runs list` never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from langgraph.graph import StateGraph

from tasks.base import TaskItem


@dataclass
class Outcome:
    """The result of one item: what the run store keeps.

    `record` is the method's full JSON-serializable output record (SPEC fields); `prediction`
    None with `error` set marks a failed item (it counts as wrong, never as an answer).
    """

    prediction: str | None
    correct: bool | None
    record: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class EvalMethod(Protocol):
    name: str

    def build_graph(self) -> StateGraph:
        """The uncompiled graph builder (the runner compiles it with the SQLite saver)."""
        ...

    def context(self, options: dict[str, Any]) -> Any:
        """The `context_schema` instance for this run, from CLI/Python options (task, model, ...)."""
        ...

    def make_input(self, item: TaskItem, options: dict[str, Any]) -> dict[str, Any]:
        """The graph input state for one item."""
        ...

    def outcome(self, item: TaskItem, state: dict[str, Any], options: dict[str, Any]) -> Outcome:
        """Grade the final state of one item's thread."""
        ...


METHODS: dict[str, str] = {
    "baseline": "graphs.baseline:EVAL_METHOD",
    "text_mas": "graphs.text_mas:EVAL_METHOD",
    "latent_mas": "graphs.latent_mas:EVAL_METHOD",
    "medagents": "graphs.medagents:EVAL_METHOD",
    "debate": "graphs.debate:EVAL_METHOD",
}


def get_method(name: str) -> EvalMethod:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    module_name, attr = METHODS[name].split(":")
    return getattr(importlib.import_module(module_name), attr)
