"""Micro-batching: concurrent callers (graph threads, parallel branches) share one forward pass.

One graph thread runs per evaluation item; with B threads in flight their node calls reach the
backend at about the same moment. Calls with the same batching key are gathered, then run as one
batch when `max_batch` are waiting, or when every registered participant (an evaluation item in
flight, see `participant()`) is waiting, or after `max_wait_s`. Waiting for the participants,
rather than for a time window alone, keeps a slow thread from splitting a batch in two. With
`max_batch=1` every call runs at once, alone.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

# After everyone is waiting, a short grace lets sibling branches of one item (Send fan-out) join.
GRACE_S = 0.005


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
        self._participants = 0
        self._cond = threading.Condition()
        self._run_lock = threading.Lock()  # one batch on the model at a time

    def configure(self, *, max_batch: int | None = None, max_wait_s: float | None = None) -> None:
        with self._cond:
            if max_batch is not None:
                self.max_batch = max(1, int(max_batch))
            if max_wait_s is not None:
                self.max_wait_s = max(0.0, float(max_wait_s))

    @contextlib.contextmanager
    def participant(self) -> Iterator[None]:
        """Count the calling thread as a participant while it works on one item."""
        with self._cond:
            self._participants += 1
        try:
            yield
        finally:
            with self._cond:
                self._participants -= 1
                self._cond.notify_all()

    def _everyone_waiting(self) -> bool:
        return self._participants > 0 and sum(map(len, self._queues.values())) >= self._participants

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
            # Participants may be slow to arrive (a long prefill elsewhere), so they get a longer wait.
            patience = self.max_wait_s if self._participants == 0 else max(self.max_wait_s, 2.0)
            deadline = time.monotonic() + patience
            grace_until = None
            while len(queue) < self.max_batch:
                now = time.monotonic()
                if self._everyone_waiting():
                    grace_until = grace_until or now + GRACE_S
                    if now >= grace_until:
                        break
                if now >= deadline:
                    break
                self._cond.wait(min(deadline, grace_until or deadline) - now)
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
