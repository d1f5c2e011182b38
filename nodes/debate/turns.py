"""One player's turn: a model call on the player's memory plus what it is told now.

A transport error propagates, so the node's RetryPolicy retries it; any other error becomes a
failed turn (an error string and a trace entry with the failure), and the debate carries on.
"""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from latent_backend.grammar_spec import GrammarSpec
from nodes.agent_call import TraceEntry, ask, is_transient
from nodes.debate.context import DebateContext
from nodes.debate.state import Message
from nodes.structured import ask_structured

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
    text, trace, error, _ = shaped_turn(ctx, role, memory, new, round_, None)
    return text, trace, error


def shaped_turn(
    ctx: DebateContext,
    role: str,
    memory: list[Message],
    new: list[Message],
    round_: int,
    shape: GrammarSpec | None,
) -> tuple[str | None, TraceEntry, str | None, Any]:
    """`turn`, asking for the reply in `shape` (see nodes.structured) when one is given.

    The fourth value is the parsed shape, or None (no shape, or a reply not readable in it).
    """
    started = time.perf_counter()
    config = ctx.model_config_for(role, memory + new)
    messages = chat(memory + new)
    try:
        if shape is None:
            reply = ask(config, messages, agent=role, role=TRACE_ROLES[role], round=round_)
            return reply.text, reply.trace, None, None
        shaped = ask_structured(config, messages, shape, agent=role, role=TRACE_ROLES[role], round=round_)
        return shaped.text, shaped.trace, None, shaped.value
    except Exception as exc:
        if is_transient(exc):
            raise
        return (
            None,
            failed_call(role, TRACE_ROLES[role], exc, time.perf_counter() - started),
            f"{type(exc).__name__}: {exc}",
            None,
        )
