"""Structured replies: one way for agents to ask for a JSON schema, a regex or a choice.

`ask_structured` sends one chat turn that must come back in a shape (a `GrammarSpec`):
- The local model (`LocalChatModel`) decodes under the grammar, so the reply has the shape unless
  the token budget cut it.
- An OpenAI-compatible server is asked through `with_structured_output(method="json_schema")`, i.e.
  `response_format` with a JSON schema (vLLM, SGLang, llama.cpp's llama-server, OpenAI). A server
  that refuses it (HTTP 400/422 about the response format) is asked in the older
  `{"type": "json_object", "schema": ...}` form (llama-cpp-python's server), and one that refuses
  both gets a plain request. Each step down is logged once per endpoint and remembered.
  Choices and regexes reach servers as `{"answer": ...}` objects with an enum or a pattern
  (`GrammarSpec.server_schema`), the one form every such server takes.
- A reply that cannot be parsed in the shape (cut by the token budget, or from a server that ignored
  the schema) comes back with `value` None: the caller reads `text` with its strict free-text parser,
  exactly as with structured output off. Parsed values go through the caller's validation too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from pydantic import BaseModel

from latent_backend.grammar_spec import GrammarSpec
from nodes.agent_call import TraceEntry, call_endpoint, chat_messages, trace_entry
from nodes.chat_models import ChatModelConfig, LocalChatModel, chat_model

StructuredMode = Literal["auto", "off"]
STRUCTURED_OPTION_HELP = (
    "'auto': structured replies are asked for in their shape (constrained decoding on the local "
    "model, response_format on servers); 'off': free text read by the strict parsers (the originals')."
)
# How a structured reply was asked for (recorded in trace entries): the local grammar, a server's
# response_format json_schema or json_object+schema, or plain text after a server refused both.
Via = Literal["grammar", "json_schema", "json_object", "text"]
_SERVER_FORMS: tuple[Via, ...] = ("json_schema", "json_object", "text")
_REFUSAL_WORDS = ("response_format", "json_schema", "schema", "grammar", "structured")

log = logging.getLogger("masgraph.structured")
_server_form: dict[tuple[str | None, str], int] = {}  # endpoint -> index into _SERVER_FORMS
_server_lock = threading.Lock()


@dataclass(frozen=True)
class StructuredReply:
    text: str  # the reply as written
    value: Any  # the parsed shape (dict, list, or a choice's/regex's text); None if unparsed
    trace: TraceEntry
    via: Via
    error: str | None = None  # why `value` is None


# -- schemas -> grammars -> parsers ------------------------------------------------------------------
def grammar_of(schema: dict[str, Any] | type | GrammarSpec) -> GrammarSpec:
    """The grammar of what `with_structured_output` accepts: a GrammarSpec, a pydantic model, a JSON
    schema, or an OpenAI response_format / json_schema entry."""
    if isinstance(schema, GrammarSpec):
        return schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return GrammarSpec.json_schema(schema.model_json_schema())
    if isinstance(schema, dict):
        if schema.get("type") == "json_schema" and "json_schema" in schema:
            schema = schema["json_schema"]
        if "schema" in schema and "name" in schema:
            schema = schema["schema"]
        return GrammarSpec.json_schema(schema)
    raise TypeError(f"cannot make a grammar of {schema!r}")


def _parse_reply(message: AIMessage, spec: GrammarSpec, schema: Any) -> Any:
    if (message.response_metadata or {}).get("finish_reason") == "length":
        raise OutputParserException("the reply was cut by the token limit", llm_output=message.text)
    if spec.kind != "json_schema":
        return message.text
    try:
        value = json.loads(message.text)
    except json.JSONDecodeError as exc:
        raise OutputParserException(f"not JSON: {exc}", llm_output=message.text) from exc
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_validate(value)
    return value


def structured_parser(llm: Runnable, spec: GrammarSpec, schema: Any, *, include_raw: bool) -> Runnable:
    """`llm` followed by the parse of its reply, shaped like LangChain's `with_structured_output`."""
    parser = RunnableLambda(lambda message: _parse_reply(message, spec, schema))
    if not include_raw:
        return llm | parser
    parse = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parse.with_fallbacks([unparsed], exception_key="parsing_error")


# -- asking ---------------------------------------------------------------------------------------------
def ask_structured(
    config: ChatModelConfig,
    messages: list[BaseMessage] | tuple[str, str],
    spec: GrammarSpec,
    *,
    agent: str,
    role: str,
    **extra: Any,
) -> StructuredReply:
    """One chat turn whose reply must have `spec`'s shape. Transport errors propagate (RetryPolicy)."""
    messages = chat_messages(messages)
    model = chat_model(config)
    started = time.perf_counter()
    out, via = call_endpoint(config, lambda: _invoke(model, config, spec, messages))
    raw: AIMessage = out["raw"]
    value, error = out.get("parsed"), out.get("parsing_error")
    if value is not None and via != "grammar":
        try:
            value = spec.server_value(value)
        except ValueError as exc:
            value, error = None, exc
    if isinstance(value, BaseModel):
        value = value.model_dump()
    trace = trace_entry(raw, started, agent=agent, role=role, structured=via, **extra)
    reason = None if value is not None else (str(error) if error else "no structured reply")
    return StructuredReply(text=raw.text, value=value, trace=trace, via=via, error=reason)


def _invoke(
    model: Any, config: ChatModelConfig, spec: GrammarSpec, messages: list[BaseMessage]
) -> tuple[dict[str, Any], Via]:
    if isinstance(model, LocalChatModel):
        return model.with_structured_output(spec, include_raw=True).invoke(messages), "grammar"
    endpoint = (config.base_url, config.model)
    with _server_lock:
        start = _server_form.get(endpoint, 0)
    for index in range(start, len(_SERVER_FORMS)):
        via = _SERVER_FORMS[index]
        try:
            return _server_runnable(model, spec, via).invoke(messages), via
        except Exception as exc:
            if (cut := _cut_reply(exc)) is not None:
                return {"raw": cut, "parsed": None, "parsing_error": exc}, via
            if via == "text" or not _refused(exc):
                raise
            _step_down(endpoint, index, exc)
    raise AssertionError("unreachable: plain text is always asked last")


def _server_runnable(model: Any, spec: GrammarSpec, via: Via) -> Runnable:
    if via in ("json_schema", "json_object"):
        # response_format bound as is and the reply parsed here: LangChain's own json_schema path
        # converts the schema to a function first, which fails for non-object schemas (lists).
        form = (
            spec.to_openai_response_format()
            if via == "json_schema"
            else spec.to_json_object_response_format()
        )
        server_spec = GrammarSpec.json_schema(spec.server_schema())
        return structured_parser(model.bind(response_format=form), server_spec, None, include_raw=True)
    plain: Callable[[AIMessage], dict[str, Any]] = lambda raw: {  # noqa: E731
        "raw": raw,
        "parsed": None,
        "parsing_error": None,
    }
    return model | RunnableLambda(plain)


def _cut_reply(exc: BaseException) -> AIMessage | None:
    """The reply of a structured call the token budget cut (the OpenAI client raises instead of
    returning it): unparsed, as any cut reply is, never a failed call."""
    completion = getattr(exc, "completion", None)
    if type(exc).__name__ != "LengthFinishReasonError" or completion is None or not completion.choices:
        return None
    usage = completion.usage
    return AIMessage(
        content=completion.choices[0].message.content or "",
        usage_metadata={
            "input_tokens": usage.prompt_tokens if usage else 0,
            "output_tokens": usage.completion_tokens if usage else 0,
            "total_tokens": usage.total_tokens if usage else 0,
        },
    )


def _refused(exc: BaseException) -> bool:
    """A server's refusal of the structured form (not a transport error, not another bad request)."""
    status = getattr(exc, "status_code", None)
    text = str(exc).lower()
    if status == 500:  # llama-cpp-python's server answers an unknown response_format with a 500
        return "response_format" in text
    return status in (400, 422) and any(word in text for word in _REFUSAL_WORDS)


def _step_down(endpoint: tuple[str | None, str], index: int, exc: BaseException) -> None:
    with _server_lock:
        if _server_form.get(endpoint, 0) > index:
            return
        _server_form[endpoint] = index + 1
    nxt = _SERVER_FORMS[index + 1]
    log.warning(
        "%s at %s refused response_format %s (%s); asking with %s from now on",
        endpoint[1],
        endpoint[0] or "(registered model)",
        _SERVER_FORMS[index],
        str(exc).splitlines()[0][:200],
        "json_object + schema" if nxt == "json_object" else "plain text, parsed and retried",
    )
