"""Evaluation adapter of the MAD debate graph: CIAR-style questions (qa) or CommonMT-style translation.

The mode follows the task (a translation task debates translations) unless the options name it.
A qa answer is graded by the task as the debate gave it; a translation has no right or wrong here
(`correct` is None), but the task's ROUGE-1 against a reference is kept in the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nodes.chat_models import ChatModelConfig
from nodes.debate.context import DebateContext
from nodes.debate.state import debate_input
from nodes.debate.verdicts import answer_key
from nodes.fields import context_from
from runners.methods import EvalMethod, Outcome, graded_outcome
from tasks import Task, TaskItem

DEBATE_ROLES = ("base", "affirmative", "negative", "moderator", "judge")
TRANSLATION_TASKS = ("commonmt", "mt", "translation", "wmt")


def mode_for(task: str) -> str:
    """The debate mode a task implies: 'translation' for translation tasks, else 'qa'."""
    return "translation" if task.lower().startswith(TRANSLATION_TASKS) else "qa"


@dataclass(frozen=True)
class DebateMethod(EvalMethod):
    name: str = "debate"
    graph_module: str = "graphs.debate"

    @property
    def context_class(self) -> type[DebateContext]:
        return DebateContext

    def context(self, options: Mapping[str, Any], *, task: str, db: str) -> DebateContext:
        return context_from(DebateContext, {"mode": mode_for(task), **options})

    def chat_configs(self, context: DebateContext) -> list[ChatModelConfig]:
        return [context.model_config_for(role) for role in DEBATE_ROLES]

    def make_input(self, item: TaskItem, task: Task, context: Any = None) -> dict[str, Any]:
        """qa: the item's question is the topic. Translation: the item's text, its languages from
        the item's meta (else the context's), and the gold as the reference."""
        if mode_for(task.name) == "qa":
            return dict(debate_input(item.question))
        gold = item.gold[0] if isinstance(item.gold, list) and item.gold else item.gold
        meta = item.meta or {}
        return dict(
            debate_input(
                source_text=item.question,
                source_lang=meta.get("src_lng") or meta.get("source_lang"),
                target_lang=meta.get("tgt_lng") or meta.get("target_lang"),
                reference=None if gold is None else str(gold),
            )
        )

    def outcome(self, item: TaskItem, state: Mapping[str, Any], task: Task) -> Outcome:
        record = dict(state.get("record") or {})
        mode = record.get("mode") or mode_for(task.name)
        answer = record.get(answer_key(mode)) or ""
        if not answer:
            reasons = "; ".join(f"{f['node']}: {f['kind']}" for f in record.get("failures") or [])
            return Outcome(
                prediction=None,
                correct=False if mode == "qa" else None,
                record=record,
                error="the debate produced no answer" + (f" ({reasons})" if reasons else ""),
            )
        return graded_outcome(task.grade_answer(item, answer), record, gradable=mode == "qa")


DEBATE = DebateMethod()
