"""Micro-batching: concurrent callers (graph threads, parallel branches) share one forward pass.

One graph thread runs per evaluation item; with B threads in flight their node calls reach the
backend at about the same moment. Calls with the same batching key are gathered until
`max_batch` are waiting or `max_wait_s` has passed, then run as one batch. With `max_batch=1`
every call runs at once, alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Slot:
    request: Any
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class MicroBatcher:
    def __init__(self, max_batch: int = 1, max_wait_s: float = 0.05) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queues: dict[Hashable, list[_Slot]] = {}
        self._cond = threading.Condition()
        self._run_lock = threading.Lock()  # one batch on the model at a time

    def configure(self, *, max_batch: int | None = None, max_wait_s: float | None = None) -> None:
        with self._cond:
            if max_batch is not None:
                self.max_batch = max(1, int(max_batch))
            if max_wait_s is not None:
                self.max_wait_s = max(0.0, float(max_wait_s))

    def submit(self, key: Hashable, request: Any, run_batch: Callable[[list[Any]], list[Any]]) -> Any:
        """Run `request` in a batch of same-key requests; returns its own result."""
        slot = _Slot(request)
        with self._cond:
            queue = self._queues.setdefault(key, [])
            queue.append(slot)
            self._cond.notify_all()
            # The slot at the head of its queue leads: it waits for company, then runs the batch.
            while not (queue and queue[0] is slot) and not slot.done.is_set():
                self._cond.wait()
            if slot.done.is_set():
                return self._unwrap(slot)
            deadline = time.monotonic() + self.max_wait_s
            while len(queue) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = queue[: self.max_batch]
            del queue[: self.max_batch]
            if not queue:
                self._queues.pop(key, None)
            self._cond.notify_all()  # the next in line, if any, becomes leader
        try:
            with self._run_lock:
                results = run_batch([s.request for s in batch])
            for s, result in zip(batch, results, strict=True):
                s.result = result
        except BaseException as exc:  # every caller of the batch sees the failure
            for s in batch:
                s.error = exc
        with self._cond:
            for s in batch:
                s.done.set()
            self._cond.notify_all()
        return self._unwrap(slot)

    @staticmethod
    def _unwrap(slot: _Slot) -> Any:
        if slot.error is not None:
            raise slot.error
        return slot.result
