"""Evaluation adapter of the MedAgents graph: item -> input, options -> context, state -> graded record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.chat_models import ChatModelConfig
from nodes.fields import context_from
from nodes.medagents.context import ROLES, MedAgentsContext
from nodes.medagents.reference import reference_question
from nodes.medagents.state import MedAgentsInput
from runners.methods import EvalMethod, Outcome, graded_outcome
from tasks import Task, TaskItem

# What the record keeps of the final state (besides failures, call and token counts, the grade).
RECORD_FIELDS: tuple[str, ...] = (
    "question",
    "options",
    "pred_answer",
    "gold_answer",
    "question_domains",
    "option_domains",
    "question_analyses",
    "option_analyses",
    "syn_report",
    "vote_history",
    "revision_history",
    "syn_repo_history",
    "raw_output",
)


class MedAgentsMethod(EvalMethod):
    name = "medagents"
    graph_module = "graphs.medagents"

    @property
    def context_class(self) -> type[MedAgentsContext]:
        return MedAgentsContext

    def context(self, options: Mapping[str, Any], *, task: str, db: str) -> MedAgentsContext:
        """The options are MedAgentsContext fields; the agents' prompts do not depend on the task."""
        return context_from(MedAgentsContext, dict(options))

    def chat_configs(self, context: MedAgentsContext) -> list[ChatModelConfig]:
        return [context.chat_config(role, 1) for role in ROLES]

    def make_input(self, item: TaskItem, task: Task, context: Any = None) -> dict[str, Any]:
        question = item.question
        if getattr(context, "preset", None) == "reference":
            question = reference_question(question)
        # PubMedQA-style items carry a context that the method reads before the question.
        if item.context and item.context not in question:
            question = f"{item.context} {question}"
        return MedAgentsInput(
            question=question, options=dict(item.options or {}), gold_answer=item.gold, item_id=item.id
        )

    def outcome(self, item: TaskItem, state: Mapping[str, Any], task: Task) -> Outcome:
        """The answer the decider gave (an option letter, or free text), judged by the task as given."""
        record: dict[str, Any] = {"item_id": item.id, "group": item.group}
        for key in RECORD_FIELDS:
            record[key] = state.get(key)
        record["gold_answer"] = item.gold
        record["failures"] = list(state.get("failures") or [])
        trace = state.get("trace") or []
        record["calls"] = len(trace)
        record["prompt_tokens"] = sum(t.get("prompt_tokens", 0) for t in trace)
        record["generated_tokens"] = sum(t.get("generated_tokens", 0) for t in trace)
        # How structured replies were asked for: calls per way ("grammar", "json_schema", ...).
        ways = [t["structured"] for t in trace if t.get("structured")]
        record["structured"] = {way: ways.count(way) for way in sorted(set(ways))}
        grade = task.grade_answer(item, state.get("pred_answer"))
        return graded_outcome(grade, record, gradable=item.gold is not None)


MEDAGENTS = MedAgentsMethod()
