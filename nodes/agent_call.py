"""One agent turn through a chat model, with its trace entry (tokens, seconds, failure).

Every node that calls a model is added with `RETRY_POLICY`: transport trouble is retried by
LangGraph; a persistent failure fails the node (and the item), recorded, never turned into an answer.
Every graph's state has a `trace` channel (a list reduced with `operator.add`) of `TraceEntry`
dicts; the evaluation runner sums tokens from it and writes one run-store step per entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NotRequired, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.types import RetryPolicy
from typing_extensions import TypedDict

from nodes.chat_models import ChatModelConfig, EndpointError, chat_model, endpoint_error

T = TypeVar("T")


class TraceEntry(TypedDict):
    """One agent call, as recorded in graph state and in the run store."""

    agent: str
    role: str
    prompt_tokens: int
    generated_tokens: int
    seconds: float
    latent_steps: NotRequired[int]
    kv_positions: NotRequired[int]
    failure: NotRequired[str | None]
    output: NotRequired[str]
    # The rendered chat the model read (local models; LatentMAS agents). Its token ids are the
    # tokenizer's reading of it; they are not kept, to keep checkpoints small.
    input: NotRequired[str]
    structured: NotRequired[str]  # how a structured reply was asked for (nodes.structured.Via)


@dataclass(frozen=True)
class AgentReply:
    text: str
    trace: TraceEntry
    value: Any = None  # a structured reply's parsed shape (nodes.structured); None otherwise


def usage_of(message: AIMessage) -> tuple[int, int]:
    """(prompt, generated) token counts reported by the model, 0 when it reported none."""
    usage = message.usage_metadata or {}
    return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


def ask(
    config: ChatModelConfig,
    messages: list[BaseMessage] | tuple[str, str],
    *,
    agent: str,
    role: str,
    record_input: bool = False,
    **extra: Any,
) -> AgentReply:
    """Send one chat turn; `messages` is a message list or a (system, user) pair.

    `record_input` keeps the rendered prompt in the trace entry, when the model
    reports it (the local backend does; an endpoint does not).

    Transport errors propagate so the node's RetryPolicy can retry them; what the reply *says*
    is the caller's to parse and, when it is unusable, to record as a failure.
    """
    messages = chat_messages(messages)
    started = time.perf_counter()
    reply = call_endpoint(config, lambda: chat_model(config).invoke(messages))
    trace = trace_entry(reply, started, agent=agent, role=role, record_input=record_input, **extra)
    return AgentReply(text=reply.text, trace=trace)


def call_endpoint(config: ChatModelConfig, call: Callable[[], T]) -> T:
    """`call()`, with an endpoint's client errors turned into one `EndpointError` naming the
    endpoint (transient ones stay retryable)."""
    try:
        return call()
    except EndpointError:
        raise
    except Exception as exc:
        if config.base_url is None or not _is_client_error(exc):
            raise
        raise endpoint_error(config, exc, transient=is_transient(exc)) from exc


def chat_messages(messages: list[BaseMessage] | tuple[str, str]) -> list[BaseMessage]:
    """A message list, or a (system, user) pair as one."""
    if isinstance(messages, tuple):
        system, user = messages
        return [SystemMessage(system), HumanMessage(user)]
    return messages


def trace_entry(
    reply: AIMessage, started: float, *, agent: str, role: str, record_input: bool = False, **extra: Any
) -> TraceEntry:
    """The trace entry of a call that started at `started` (perf_counter) and got `reply` (see `ask`
    for `record_input`)."""
    prompt_tokens, generated_tokens = usage_of(reply)
    entry = TraceEntry(
        agent=agent,
        role=role,
        prompt_tokens=prompt_tokens,
        generated_tokens=generated_tokens,
        seconds=round(time.perf_counter() - started, 4),
        output=reply.text,
    )
    metadata = reply.response_metadata or {}
    if record_input and metadata.get("prompt_ids") is not None:
        entry["input"] = metadata.get("prompt_text") or ""
    entry.update(extra)  # type: ignore[typeddict-item]
    return entry


def is_transient(exc: BaseException) -> bool:
    """Transport trouble worth retrying (connection, timeout, 408/409/429, 5xx); not bad requests or bugs.

    Graph nodes pass this to `RetryPolicy(retry_on=...)`.
    """
    if isinstance(exc, EndpointError):
        return exc.transient
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai is a dependency
        openai = None
    if openai is not None:
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code in (408, 409, 429) or exc.status_code >= 500
        if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
            return True
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    if isinstance(exc, ConnectionError | TimeoutError | httpx.TransportError):
        return True
    # Other clients' errors, recognised by name or by an HTTP status attribute.
    if type(exc).__name__ in _TRANSIENT_NAMES:
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status in (408, 409, 429) or status >= 500)


def _is_client_error(exc: BaseException) -> bool:
    """An error of the HTTP client talking to an endpoint (not a bug in our code)."""
    import httpx

    module = type(exc).__module__.split(".")[0]
    return module in ("openai", "langchain_openai", "httpx", "httpx2") or isinstance(
        exc, httpx.HTTPError | ConnectionError | TimeoutError
    )


_TRANSIENT_NAMES = frozenset(
    {
        "APIConnectionError",
        "APITimeoutError",
        "RateLimitError",
        "InternalServerError",
        "ServiceUnavailableError",
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "ReadError",
        "RemoteProtocolError",
        "PoolTimeout",
    }
)


# The one retry policy of every node that calls a model (transport errors only; see is_transient).
RETRY_POLICY = RetryPolicy(
    max_attempts=3, initial_interval=1.0, backoff_factor=2.0, max_interval=30.0, retry_on=is_transient
)
