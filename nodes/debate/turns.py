"""One player's turn: a model call on the player's memory plus what it is told now.

A transport error propagates, so the node's RetryPolicy retries it; any other error becomes a
failed turn (an error string and a trace entry with the failure), and the debate carries on.
"""

from __future__ import annotations

import time

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from nodes.agent_call import TraceEntry, ask, is_transient
from nodes.debate.context import DebateContext
from nodes.debate.state import Message

TRACE_ROLES = {
    "base": "baseline",
    "affirmative": "debater",
    "negative": "debater",
    "moderator": "moderator",
    "judge": "judge",
}


def chat(memory: list[Message]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](m["content"]) for m in memory]


def failed_call(agent: str, role: str, exc: Exception, seconds: float) -> TraceEntry:
    return TraceEntry(
        agent=agent,
        role=role,
        prompt_tokens=0,
        generated_tokens=0,
        seconds=round(seconds, 4),
        failure=f"{type(exc).__name__}: {exc}",
    )


def turn(
    ctx: DebateContext, role: str, memory: list[Message], new: list[Message], round_: int
) -> tuple[str | None, TraceEntry, str | None]:
    """One model call for `role` on its memory plus the new events: (reply, trace, error)."""
    started = time.perf_counter()
    try:
        reply = ask(
            ctx.model_config_for(role, memory + new),
            chat(memory + new),
            agent=role,
            role=TRACE_ROLES[role],
            round=round_,
        )
    except Exception as exc:
        if is_transient(exc):
            raise
        return (
            None,
            failed_call(role, TRACE_ROLES[role], exc, time.perf_counter() - started),
            f"{type(exc).__name__}: {exc}",
        )
    return reply.text, reply.trace, None
