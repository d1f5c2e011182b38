"""Code tasks (MBPP+, HumanEval+): the reply's last ```python block plus the item's tests, run in
the sandbox; the item passes when that program exits cleanly within its limits."""

from __future__ import annotations

import re

from tasks.answers import extract_code_block
from tasks.base import Grade, Task, TaskError, TaskItem
from tasks.reference_rules import reference_code_block
from tasks.sandbox import run_untrusted

__all__ = ["CodeTask", "build_program"]


class CodeTask(Task):
    """Code generation: the last ```python block plus the item's tests, run in the sandbox; the
    item passes when that program exits cleanly within the time limit. `memory_mb` and
    `max_disk_mb` cap the whole run (see `tasks.sandbox.run_untrusted`)."""

    def __init__(
        self, name: str, *, timeout_s: float = 10, memory_mb: int = 1024, max_disk_mb: int = 64
    ) -> None:
        super().__init__(name, "Write the complete solution as Python code in one ```python code block.")
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.max_disk_mb = max_disk_mb

    def prompt(self, item: TaskItem) -> str:
        question = item.question.strip()
        if item.meta.get("entry_point") and re.search(r"^\s*def ", question, re.MULTILINE):
            # HumanEval: the question is a signature with a docstring.
            question = f"Complete the following Python function.\n```python\n{question}\n```"
        tests = item.meta.get("test_list")
        if isinstance(tests, list) and tests:
            question += "\nYour code should pass these tests:\n" + "\n".join(str(t) for t in tests)
        return question

    def extract(self, item: TaskItem, text: str) -> str | None:
        return extract_code_block(text)

    def reference_grade(self, item: TaskItem, text: str) -> Grade | None:
        code = reference_code_block(text)
        if code is None:
            return Grade(None, False, "python error: No python code block found")
        ok, reason = self._run(build_program(code, item, separator="\n"))
        return Grade(code, ok, reason)

    def judge(self, item: TaskItem, prediction: str) -> tuple[bool, str | None]:
        return self._run(build_program(prediction, item))

    def _run(self, program: str) -> tuple[bool, str | None]:
        result = run_untrusted(
            program,
            timeout_s=self.timeout_s,
            cpu_s=max(1, int(self.timeout_s)),
            memory_mb=self.memory_mb,
            max_disk_mb=self.max_disk_mb,
        )
        return result.ok, result.reason

    def check_item(self, item: TaskItem) -> None:
        super().check_item(item)
        if not isinstance(item.gold, str) or not item.gold.strip():
            raise TaskError(f"item {item.id}: the gold must be test code")


def build_program(code: str, item: TaskItem, *, separator: str | None = None) -> str:
    """The model's code followed by the item's tests (and `check(entry_point)` when the tests
    define `check`, as HumanEval's do). `separator` joins code and tests verbatim (the reference
    rules' "\n"); by default they are trimmed and set apart by blank lines."""
    tests = str(item.gold or "")
    if separator is None:
        program = f"{code.rstrip()}\n\n\n{tests.strip()}\n"
    else:
        program = f"{code}{separator}{tests}"
    entry_point = item.meta.get("entry_point")
    if (
        isinstance(entry_point, str)
        and entry_point.isidentifier()
        and re.search(r"^def check\(", tests, re.M)
    ):
        program += f"\n\ncheck({entry_point})\n"
    return program
