"""Streaming out of the batched backend: text as it is decoded, progress as latent steps run.

A request may carry a callback that the decode loop (or the latent rollout) calls once per token
(or step) of its own row. The loop runs on whichever caller's thread leads the batch, so the
waiting caller gets its events through a `Relay`: the work runs on a worker thread and the events
come out, in order, on the caller's thread while the work goes on.

`TextDeltas` turns one row's token ids into text pieces whose concatenation is exactly the final
text (`final_text`: decoded, cut at the first stop string, stripped): a piece is only given out
once no later token can change it (no half-decoded character, no trailing whitespace, no tail that
may still grow into a stop string).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

R = TypeVar("R")
_END = object()


def final_text(decoded: str, stop: Sequence[str]) -> str:
    """The reply text: decoded text cut at the first stop string (in `stop` order), stripped."""
    for marker in stop:
        if marker and marker in decoded:
            decoded = decoded[: decoded.index(marker)]
    return decoded.strip()


class TextDeltas:
    """Incremental text of one generated row; `push(token)` returns the new safe piece (maybe "")."""

    def __init__(self, decode: Callable[[list[int]], str], stop: Sequence[str] = ()) -> None:
        self._decode = decode
        self._stop = [s for s in stop if s]
        self._tokens: list[int] = []
        self.emitted = ""

    def push(self, token: int) -> str:
        self._tokens.append(token)
        decoded = self._decode(self._tokens)
        text = final_text(decoded, self._stop).rstrip("\ufffd")  # a multi-byte character half-way
        text = text[: len(text) - self._stop_prefix(text)].rstrip()
        if len(text) <= len(self.emitted) or not text.startswith(self.emitted):
            return ""
        piece, self.emitted = text[len(self.emitted) :], text
        return piece

    def rest(self, final: str) -> str:
        """What remains of the final text after the pieces given out (they are always its prefix)."""
        return final[len(self.emitted) :] if final.startswith(self.emitted) else ""

    def _stop_prefix(self, text: str) -> int:
        """Length of the longest tail of `text` that a stop string starts with (it may yet be cut)."""
        longest = 0
        for marker in self._stop:
            for size in range(min(len(marker) - 1, len(text)), longest, -1):
                if text.endswith(marker[:size]):
                    longest = size
                    break
        return longest


class Relay(Generic[R]):
    """Run `work(emit)` on a worker thread; iterate to receive what it emits, then read `result`.

    Iterating re-raises the work's exception after the events emitted before it.
    """

    def __init__(self, work: Callable[[Callable[[Any], None]], R]) -> None:
        self._work = work
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self.result: R | None = None

    def _run(self) -> None:
        try:
            self.result = self._work(self._events.put)
        except BaseException as exc:  # handed to the iterating caller
            self._error = exc
        finally:
            self._events.put(_END)

    def __iter__(self) -> Iterator[Any]:
        worker = threading.Thread(target=self._run, name="relay", daemon=True)
        worker.start()
        while (event := self._events.get()) is not _END:
            yield event
        worker.join()
        if self._error is not None:
            raise self._error
