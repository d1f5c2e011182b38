"""The known tasks by name."""

from __future__ import annotations

from tasks.base import TaskError
from tasks.code_task import CodeTask
from tasks.graders import (
    ChoiceTask,
    ExactMatchTask,
    FreeFormTask,
    MixedTask,
    NumberTask,
    PubMedQATask,
    Task,
    TranslationTask,
    WinograndeTask,
)

__all__ = ["TASKS", "get_task", "task_names"]


def get_task(name: str, grading: str = "lenient") -> Task:
    """The task called `name` (case-insensitive; "-" and "_" alike), graded by `grading` rules
    ("lenient", or "reference": the original code's; see `tasks.reference_rules`)."""
    key = str(name).strip().lower().replace("-", "_")
    try:
        task = TASKS[key]
    except KeyError:
        raise TaskError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}") from None
    return task.with_grading(grading)


def task_names() -> list[str]:
    return sorted(TASKS)


# Tasks hold no per-run state, so one shared instance each is enough.
TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        NumberTask("gsm8k"),
        NumberTask("aime2024", integer=True),
        NumberTask("aime2025", integer=True),
        ChoiceTask("gpqa"),
        ChoiceTask("arc_easy"),
        ChoiceTask("arc_challenge"),
        ChoiceTask("medqa"),
        ChoiceTask("medmcqa"),
        ChoiceTask("mmlu_medical"),
        PubMedQATask(),
        FreeFormTask("medicationqa"),
        WinograndeTask(),
        CodeTask("mbppplus"),
        CodeTask("humanevalplus"),
        ExactMatchTask("ciar"),
        ExactMatchTask("custom"),
        TranslationTask("commonmt"),
        MixedTask(get_task),
    )
}
