"""Evaluation adapter of the single-agent, text-MAS and LatentMAS graphs (one shape, three graphs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nodes.chat_models import ChatModelConfig
from nodes.fields import context_from
from nodes.latentmas.budget import check_chain
from nodes.latentmas.context import MASContext
from nodes.latentmas.reference import reference_question
from runners.methods import EvalMethod, Outcome, graded_outcome
from storage.paths import kv_dir_for
from tasks import Task, TaskItem


@dataclass(frozen=True)
class MASMethod(EvalMethod):
    name: str
    graph_module: str

    @property
    def context_class(self) -> type[MASContext]:
        return MASContext

    def context(self, options: Mapping[str, Any], *, task: str, db: str) -> MASContext:
        values = {"task": task, "kv_dir": str(kv_dir_for(db)), **options}
        return context_from(MASContext, values)

    def chat_configs(self, context: MASContext) -> list[ChatModelConfig]:
        return [context.chat_config()]

    def prepare(self, context: MASContext, items: Sequence[TaskItem], task: Task) -> None:
        """Text agents: the generic checks. LatentMAS: its agents run on the local backend, and the
        chain of agents must fit the model's context (checked on the shortest item; an item too
        long for it fails alone, before its first agent runs)."""
        if self.name != "latent_mas":
            return super().prepare(context, items, task)
        from latent_backend import get_backend

        backend = get_backend(context.model, context.backend)
        if items:
            shortest = min(items, key=lambda item: len(task.prompt(item)))
            first = self.make_input(shortest, task, context)
            check_chain(context, backend, first["question"], first["answer_instruction"])

    def make_input(self, item: TaskItem, task: Task, context: Any = None) -> dict[str, Any]:
        question = task.prompt(item)
        if getattr(context, "preset", None) == "reference":  # the original's data loaders' wording
            question = reference_question(task.name, item, question)
        return {
            "item_id": item.id,
            "question": question,
            "answer_instruction": task.instruction_for(item),
            "answer_pattern": task.answer_pattern(item),
        }

    def outcome(self, item: TaskItem, state: Mapping[str, Any], task: Task) -> Outcome:
        text = state.get("text") or ""
        record = {
            "question": item.question,
            "gold": item.gold,
            "raw_prediction": text,
            "agents": list(state.get("trace") or []),
        }
        return graded_outcome(task.grade(item, text), record)


BASELINE = MASMethod("baseline", "graphs.baseline")
TEXT_MAS = MASMethod("text_mas", "graphs.text_mas")
LATENT_MAS = MASMethod("latent_mas", "graphs.latent_mas")
