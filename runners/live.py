"""`--stream`: what the agents write and how far latent agents are, shown live while a graph runs.

Text comes from LangGraph's `messages` stream (chat-model tokens) and the `custom` stream (the
latent judger's text, latent steps); both go to stderr, so stdout keeps only the result.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

STREAM_MODES = ["messages", "custom", "updates", "values"]


def run_graph(
    graph: Any, payload: Any, config: dict[str, Any], context: Any, *, durability: str, live: bool
) -> dict[str, Any]:
    """`graph.invoke`, or the same run streamed and shown live; returns the graph's output."""
    if not live:
        return graph.invoke(payload, config, context=context, durability=durability)
    printer = LivePrinter()
    output: dict[str, Any] = {}
    try:
        for mode, chunk in graph.stream(
            payload, config, context=context, durability=durability, stream_mode=STREAM_MODES
        ):
            if mode == "values":
                output = chunk
            else:
                printer.show(mode, chunk)
    finally:
        printer.close()
    return output


class LivePrinter:
    """Writes each agent's text under a header naming it; latent progress rewrites one line."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.speaker: str | None = None
        self.progress = False  # the cursor is on a progress line

    def show(self, mode: str, chunk: Any) -> None:
        if mode == "messages":
            message, metadata = chunk
            self._text(metadata.get("langgraph_node", "?"), message.text)
        elif mode == "custom" and isinstance(chunk, dict):
            if "latent_step" in chunk:
                self._step(chunk)
            elif "text" in chunk:
                self._text(str(chunk.get("agent", "?")), str(chunk["text"]))
        elif mode == "updates" and isinstance(chunk, dict):
            for node in chunk:
                if node == self.speaker:
                    self._end_line()
                    self.speaker = None

    def close(self) -> None:
        self._end_line()
        self.out.flush()

    def _text(self, agent: str, text: str) -> None:
        if not text:
            return
        if agent != self.speaker:
            self._end_line()
            self.out.write(f"[{agent}] ")
            self.speaker = agent
        self.out.write(text)
        self.out.flush()

    def _step(self, event: dict[str, Any]) -> None:
        if self.speaker is not None:
            self._end_line()
            self.speaker = None
        self.out.write(
            f"\r[{event.get('agent', '?')}] latent step {event['latent_step']}/{event.get('latent_steps', '?')}"
            f" · {event.get('kv_positions', '?')} cached positions"
        )
        self.progress = True
        if event["latent_step"] == event.get("latent_steps"):
            self._end_line()
        self.out.flush()

    def _end_line(self) -> None:
        if self.speaker is not None or self.progress:
            self.out.write("\n")
        self.progress = False
