"""`masgraph run` and `masgraph resume`: one question as one checkpointed graph thread.

A thread remembers which method, task, options and item it runs (the run store's thread table and
its checkpoints' metadata, `runners.thread_space`), so `resume` rebuilds exactly the same graph and
context, also for a thread started in Studio or from Python. Interrupts (a human moderator) are
answered from `--answer` or at the terminal; without either, the thread stays paused and resumable.
`--stream` shows the agents' text and latent progress live while the graph runs.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from runners.live import run_graph
from runners.methods import EvalMethod, get_method
from runners.thread_space import item_from_state, run_metadata, thread_origin
from storage.checkpoints import RUN_DURABILITY, compile_with_saver, thread_config
from storage.run_store import RunStore, RunStoreError
from tasks import TaskItem


class CLIError(Exception):
    """Bad input from the user: printed as one clear line, exit code 2."""


@dataclass
class ThreadRun:
    """What a thread runs: its graph, context, task and item, rebuilt identically on resume.

    `item` is None for a thread started from a graph input (Studio, SDK): it is read from the state.
    """

    method: EvalMethod
    task: str
    options: dict[str, Any]
    item: TaskItem | None
    thread_id: str
    db: str
    stream: bool = False

    def start(self) -> dict[str, Any]:
        context = self.method.context(self.options, task=self.task, db=self.db)  # validated before storing
        assert self.item is not None
        store = RunStore(self.db)
        self.method.prepare(context, [self.item], self.method.task_for_run(self.task, context))  # models load
        stored = {"task": self.task, **self.options}  # URLs stored with their passwords masked
        store.save_thread(self.thread_id, method=self.method.name, options=stored, item=self.item.to_dict())
        return self._drive(context, answer=None, start=True)

    @classmethod
    def load(cls, thread_id: str, db: str) -> ThreadRun:
        """The thread's record in the run store, else what its checkpoints say (Studio, Python)."""
        try:
            thread = RunStore(db).get_thread(thread_id)
        except RunStoreError:
            origin = thread_origin(db, thread_id)
            if origin is None:
                raise CLIError(
                    f"no thread {thread_id!r} in {db} (start one with `masgraph run`, from Python or in Studio)"
                ) from None
            options = {k: v for k, v in origin.options.items() if k != "task"}
            item = TaskItem.from_dict(origin.item) if origin.item else None
            task = origin.task or default_task(origin.method, options)
            return cls(get_method(origin.method), task, options, item, thread_id, db)
        options = dict(thread.options)
        task = str(options.pop("task", None) or "custom")
        item = TaskItem.from_dict(thread.item)
        return cls(get_method(thread.method), task, options, item, thread_id, db)

    def resume(self, answer: Any) -> dict[str, Any]:
        context = self.method.context(self.options, task=self.task, db=self.db)
        return self._drive(context, answer=answer, start=False)

    def _drive(self, context: Any, *, answer: Any, start: bool) -> dict[str, Any]:
        """Invoke until the graph ends, answering interrupts from `answer` or the terminal."""
        from langgraph.types import Command

        graph = compile_with_saver(self.method.build_graph(), self.db, name=self.method.name)
        config = thread_config(self.thread_id)
        snapshot = graph.get_state(config)
        if not start and not snapshot.values:
            raise CLIError(f"thread {self.thread_id!r} has no checkpoint in {self.db}")
        if self.item is None:
            self.item = item_from_state(self.thread_id, snapshot.values)
        config["metadata"] = run_metadata(self.task, self.options, self.item)
        started = time.perf_counter()
        if snapshot.values and not snapshot.next:  # finished already: show its result
            return self._result(graph, config, snapshot.values, 0.0, context)
        task = self.method.task_for_run(self.task, context)
        payload: Any = self.method.make_input(self.item, task, context) if not snapshot.values else None
        while True:
            snapshot = graph.get_state(config)
            pending = [i for task in snapshot.tasks for i in task.interrupts]
            if pending:
                if answer is None:
                    answer = ask_person(pending[0].value)
                    if answer is None:
                        return self._result(
                            graph, config, snapshot.values, time.perf_counter() - started, context
                        )
                payload, answer = Command(resume=answer), None
            state = run_graph(graph, payload, config, context, durability=RUN_DURABILITY, live=self.stream)
            if not graph.get_state(config).next:
                return self._result(graph, config, state, time.perf_counter() - started, context)
            payload = None

    def _result(
        self, graph: Any, config: dict[str, Any], state: dict[str, Any], seconds: float, context: Any
    ) -> dict[str, Any]:
        if graph.get_state(config).next:
            return {
                "thread_id": self.thread_id,
                "status": "interrupted",
                "resume": f"masgraph resume --thread {self.thread_id} --answer JSON",
            }
        assert self.item is not None
        outcome = self.method.outcome(self.item, state, self.method.task_for_run(self.task, context))
        trace = state.get("trace") or []
        return {
            "thread_id": self.thread_id,
            "status": "done",
            "method": self.method.name,
            "answer": outcome.prediction if outcome.prediction is not None else state.get("answer"),
            "text": state.get("text") or "",
            "prompt_tokens": sum(int(t.get("prompt_tokens") or 0) for t in trace),
            "generated_tokens": sum(int(t.get("generated_tokens") or 0) for t in trace),
            "seconds": round(seconds, 3),
            "error": outcome.error,
            "record": outcome.record,
        }


def default_task(method: str, options: dict[str, Any]) -> str:
    """The task of a thread that names none: MedAgents answers MedQA-style questions, a translation
    debate is graded as CommonMT, anything else as free text."""
    if method == "medagents":
        return "medqa"
    if method == "debate" and options.get("mode") == "translation":
        return "commonmt"
    return "custom"


def new_thread_id() -> str:
    """A fresh thread id: a UUID, which the LangGraph server accepts too."""
    return str(uuid.uuid4())


def ask_person(request: Any) -> Any:
    """Show an interrupt to the person at the terminal; None when nobody is there."""
    print("\n=== the graph waits for you ===", file=sys.stderr)
    print(json.dumps(request, indent=2, ensure_ascii=False, default=str), file=sys.stderr)
    if not sys.stdin.isatty():
        return None
    while True:
        text = input("Your decision as JSON (empty line: stop here and resume later): ").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            print(f"not valid JSON ({exc}); try again", file=sys.stderr)


def print_result(result: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    elif result["status"] == "interrupted":
        print(f"paused: resume with `{result['resume']}`")
    else:
        print(result["text"] or "")
        print(
            f"\nanswer: {result['answer']}   ({result['prompt_tokens']} prompt + {result['generated_tokens']} "
            f"generated tokens, {result['seconds']} s, thread {result['thread_id']})",
            file=sys.stderr,
        )
