"""Evaluation methods: one registry, one adapter shape, grading through the task.

`METHODS` is the single list of methods. The CLI's choices, `langgraph.json` and the tests are
checked against it; each entry names the adapter that turns a data-set item into a graph input,
run options into the graph's context, and the final state into an `Outcome` the task graded.
Adapters are imported on first use, so commands that only read the run store never load torch.

A new method is one adapter module here, one graph module under `graphs/` and one node package
under `nodes/`, plus a line in `METHODS` and in `langgraph.json`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langgraph.graph import StateGraph

from nodes.fields import OptionError
from tasks import Grade, Task, TaskItem, get_task

if TYPE_CHECKING:
    from nodes.chat_models import ChatModelConfig

# name -> (adapter "module:attribute", graph module). The graph module is also langgraph.json's entry.
METHODS: dict[str, tuple[str, str]] = {
    "baseline": ("runners.methods.latentmas:BASELINE", "graphs.baseline"),
    "text_mas": ("runners.methods.latentmas:TEXT_MAS", "graphs.text_mas"),
    "latent_mas": ("runners.methods.latentmas:LATENT_MAS", "graphs.latent_mas"),
    "medagents": ("runners.methods.medagents:MEDAGENTS", "graphs.medagents"),
    "debate": ("runners.methods.debate:DEBATE", "graphs.debate"),
}


@dataclass
class Outcome:
    """The result of one item: what the run store keeps.

    `record` is the method's full JSON-serializable output record; `prediction` None with `error`
    set marks a failed item (it counts as wrong, never as an answer). `correct` is None where the
    task has no notion of right and wrong for the item (e.g. a translation without a reference).
    """

    prediction: str | None
    correct: bool | None
    record: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class EvalMethod(ABC):
    """What the evaluation runner and the CLI need from a method."""

    name: str
    graph_module: str

    def build_graph(self) -> StateGraph:
        """The uncompiled graph (the runner compiles it with the project's saver)."""
        return importlib.import_module(self.graph_module).build_graph()

    @property
    @abstractmethod
    def context_class(self) -> type:
        """The graph's `context_schema` dataclass: its fields are the method's options."""

    @abstractmethod
    def context(self, options: Mapping[str, Any], *, task: str, db: str) -> Any:
        """The context for a run: the given options (field values, validated), plus what the task
        and database imply."""

    def chat_configs(self, context: Any) -> list[ChatModelConfig]:
        """The chat models the context's agents talk to (for `prepare`)."""
        return []

    def prepare(self, context: Any, items: Sequence[TaskItem], task: Task) -> None:
        """Everything that can fail before any item runs, checked before a run is stored: the local
        models load, and their context can hold the token limits (raises OptionError,
        ModelLoadError)."""
        load_local_models(self.chat_configs(context))

    @abstractmethod
    def make_input(self, item: TaskItem, task: Task, context: Any = None) -> dict[str, Any]:
        """The graph input state for one item (`context`: the run's, for preset-dependent rendering)."""

    def task_for_run(self, task: str, context: Any) -> Task:
        """The task graded by the run's rules (the context's `grading_rules`; lenient without one)."""
        return get_task(task, grading=getattr(context, "grading_rules", "lenient"))

    @abstractmethod
    def outcome(self, item: TaskItem, state: Mapping[str, Any], task: Task) -> Outcome:
        """The graded result of one item's final state."""


def get_method(name: str) -> EvalMethod:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    module_name, attribute = METHODS[name][0].split(":")
    return getattr(importlib.import_module(module_name), attribute)


def load_local_models(configs: Sequence[ChatModelConfig]) -> None:
    """Load every local model among `configs` and check its token limit fits the model's context."""
    from nodes.chat_models import is_registered

    for config in dict.fromkeys(configs):
        if not config.is_local or is_registered(config.model):
            continue
        from latent_backend import get_backend

        backend = get_backend(config.local_model_ref, config.backend)
        if config.max_tokens >= backend.max_positions:
            raise OptionError(
                "max_new_tokens",
                f"a limit of {config.max_tokens} new tokens does not fit {backend.model_id}'s context "
                f"of {backend.max_positions} positions",
            )


def graded_outcome(grade: Grade, record: dict[str, Any], *, gradable: bool = True) -> Outcome:
    """An Outcome from the task's grade; `gradable=False` (no gold to compare with) leaves correct None."""
    record = {
        **record,
        "prediction": grade.prediction,
        "correct": grade.correct if gradable else None,
        "grade_detail": grade.detail,
    }
    return Outcome(prediction=grade.prediction, correct=grade.correct if gradable else None, record=record)
