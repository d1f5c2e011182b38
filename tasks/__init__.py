"""Evaluation tasks: data loading, prompts, answer extraction and grading, and the code sandbox."""

from tasks.answers import (
    extract_boxed,
    extract_choice_letter,
    extract_code_block,
    extract_number,
    normalize_answer,
    numbers_equal,
    parse_number,
)
from tasks.base import Grade, TaskError, TaskItem, stable_id
from tasks.graders import Task
from tasks.loaders import item_from_record, load_items, load_parallel_text, sample_path
from tasks.registry import get_task, task_names
from tasks.sandbox import SandboxResult, run_untrusted

__all__ = [
    "Grade",
    "SandboxResult",
    "Task",
    "TaskError",
    "TaskItem",
    "extract_boxed",
    "extract_choice_letter",
    "extract_code_block",
    "extract_number",
    "get_task",
    "item_from_record",
    "load_items",
    "load_parallel_text",
    "normalize_answer",
    "numbers_equal",
    "parse_number",
    "run_untrusted",
    "sample_path",
    "stable_id",
    "task_names",
]
