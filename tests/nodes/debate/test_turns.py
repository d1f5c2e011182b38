"""One player's turn: transport errors propagate (the node retries), other errors are recorded."""

from __future__ import annotations

import uuid

import pytest

from nodes.agent_call import is_transient
from nodes.chat_models import register_chat_model
from nodes.debate.context import DebateContext
from nodes.debate.state import message
from nodes.debate.turns import turn
from tests.fakes import ScriptedChatModel


def _context(replies: list[str | Exception]) -> DebateContext:
    name = f"debate-turn-{uuid.uuid4().hex[:8]}"
    register_chat_model(name, ScriptedChatModel(replies))
    return DebateContext(model=name)


def test_a_turn_sends_the_memory_and_the_new_messages() -> None:
    ctx = _context(["hello back"])
    memory = [message("system", "S"), message("user", "U1"), message("assistant", "A1")]
    text, trace, error = turn(ctx, "negative", memory, [message("user", "U2")], 2)
    assert (text, error) == ("hello back", None)
    assert (trace["agent"], trace["role"], trace["round"]) == ("negative", "debater", 2)
    assert trace["output"] == "hello back" and not trace.get("failure")


def test_a_failed_turn_is_recorded_and_a_transport_error_propagates() -> None:
    ctx = _context([RuntimeError("context length exceeded"), ConnectionError("reset")])
    text, trace, error = turn(ctx, "affirmative", [], [message("user", "U")], 1)
    assert text is None and error == "RuntimeError: context length exceeded"
    assert trace["failure"] == error and trace["generated_tokens"] == 0
    with pytest.raises(ConnectionError):
        turn(ctx, "affirmative", [], [message("user", "U")], 1)


def test_is_transient() -> None:
    class RateLimitError(Exception):
        pass

    class BadRequest(Exception):
        status_code = 400

    class Unavailable(Exception):
        status_code = 503

    assert is_transient(ConnectionError()) and is_transient(TimeoutError()) and is_transient(RateLimitError())
    assert is_transient(Unavailable())
    assert not is_transient(BadRequest()) and not is_transient(RuntimeError("context length exceeded"))
