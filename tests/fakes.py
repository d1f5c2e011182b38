"""A scripted chat model for tests: deterministic replies, recorded calls, optional failures.

Register it with `nodes.chat_models.register_chat_model("fake-...", model)` and select it by
name through a graph's context, so graphs run end to end without a real model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, StateGraph
from pydantic import ConfigDict, PrivateAttr
from typing_extensions import TypedDict

Reply = Callable[[list[BaseMessage]], str]


class ScriptedError(ConnectionError):
    """What a scripted failure raises: a transport error (graphs' RetryPolicy retries it)."""


class ScriptedChatModel(BaseChatModel):
    """Answers from a callable `(messages) -> str` or, in call order, from a list of strings.

    - `calls` holds every call's message list (recorded under a lock: graph branches run on
      several threads at once).
    - `fail_on` raises `ScriptedError` on those 0-based call numbers; `fail_when(messages)`
      raises when it returns True (e.g. "every call whose prompt mentions X").
    - A reply that is an `Exception` instance is raised instead of returned.
    - Usage is reported as whitespace-separated word counts, so token sums are checkable.
    - `with_structured_output(schema)` behaves like an OpenAI-compatible server's: `response_formats`
      records each call's response_format (None for plain calls) and the reply text is parsed as JSON.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: Any = None  # Callable[[list[BaseMessage]], str | Exception] | list[str | Exception]
    fail_on: frozenset[int] = frozenset()
    fail_when: Any = None  # Callable[[list[BaseMessage]], bool] | None
    default_reply: str = ""

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _formats: list[Any] = PrivateAttr(default_factory=list)

    def __init__(
        self,
        replies: Reply | Sequence[str | Exception] | None = None,
        *,
        fail_on: Iterable[int] = (),
        fail_when: Callable[[list[BaseMessage]], bool] | None = None,
        default_reply: str = "",
        **kwargs: Any,
    ) -> None:
        if replies is not None and not callable(replies):
            replies = list(replies)
        super().__init__(
            replies=replies,
            fail_on=frozenset(fail_on),
            fail_when=fail_when,
            default_reply=default_reply,
            **kwargs,
        )

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def get_num_tokens(self, text: str) -> int:
        """Whitespace-separated words, like the usage it reports (no tokenizer download)."""
        return len(text.split())

    @property
    def calls(self) -> list[list[BaseMessage]]:
        with self._lock:
            return list(self._calls)

    @property
    def call_count(self) -> int:
        with self._lock:
            return len(self._calls)

    @property
    def response_formats(self) -> list[Any]:
        with self._lock:
            return list(self._formats)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Any:
        from nodes.structured import grammar_of, structured_parser

        llm = self.bind(response_format=schema)
        return structured_parser(llm, grammar_of(schema), schema, include_raw=include_raw)

    def prompts(self) -> list[str]:
        """Each call's messages joined into one string (handy for `in` checks)."""
        return ["\n".join(m.text for m in call) for call in self.calls]

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._formats.clear()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            index = len(self._calls)
            self._calls.append(list(messages))
            self._formats.append(kwargs.get("response_format"))
        if index in self.fail_on or (self.fail_when is not None and self.fail_when(messages)):
            raise ScriptedError(f"scripted failure on call {index}")
        if callable(self.replies):
            reply: Any = self.replies(messages)
        elif isinstance(self.replies, list):
            reply = self.replies[index] if index < len(self.replies) else self.default_reply
        else:
            reply = self.default_reply
        if isinstance(reply, BaseException):
            raise reply
        text = str(reply)
        prompt_tokens = sum(len(m.text.split()) for m in messages)
        output_tokens = len(text.split())
        message = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": prompt_tokens,
                "output_tokens": output_tokens,
                "total_tokens": prompt_tokens + output_tokens,
            },
            response_metadata={"model_name": "scripted-fake"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


# A one-node graph for saver and thread tests: each run adds 1 to `n`.
class Counter(TypedDict):
    n: int


def counter_graph() -> StateGraph:
    builder = StateGraph(Counter)
    builder.add_node("step", lambda state: {"n": state["n"] + 1})
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder
