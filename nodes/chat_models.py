"""Chat models for text agents: the embedded local model or any OpenAI-compatible endpoint.

Text agents (MedAgents experts, debaters, text-MAS agents) talk to a LangChain `BaseChatModel`.
`LocalChatModel` adapts the latent backend's batched generator, so everything runs offline and
concurrent calls from parallel graph branches are batched through the model together.
`chat_model()` builds either kind from a `ChatModelConfig` and caches the instance.

`LocalChatModel.with_structured_output(schema)` decodes under a grammar (constrained decoding), so
the reply always has the schema's shape unless the token budget cuts it (then it is a parsing error,
never a repaired reply). It takes what `ChatOpenAI.with_structured_output(method="json_schema")`
takes (a JSON schema, an OpenAI `response_format`, a pydantic model) and, beyond that, a
`GrammarSpec` (a regex or a choice).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable

from latent_backend.grammar_spec import GrammarSpec
from latent_backend.registry import DEFAULT_BACKEND, BackendChoice
from nodes.fields import option
from storage.paths import MASK, mask_url

LOCAL_PREFIX = "local"
BACKEND_HELP = (
    "Local backend: 'transformers' (any model; fp32 on CPU), 'llamacpp' (a GGUF file, quantized, CPU; "
    "pip install 'masgraph[llamacpp]') or 'auto' (llama.cpp for a GGUF on a CPU-only machine when "
    "installed, else transformers)."
)


def backend_option() -> Any:
    """The `backend` option of every graph whose agents may run on the local backend."""
    return option(DEFAULT_BACKEND, BACKEND_HELP)


PASSWORD_ENV = "MASGRAPH_BASE_URL_PASSWORD"


class EndpointError(RuntimeError):
    """A call to an OpenAI-compatible endpoint failed: one line naming the endpoint (password
    masked) and why. `transient` errors (connection, timeout, 429, 5xx) are retried by the graphs."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: it crosses processes (e.g. from a Ray worker)
        return (partial(type(self), transient=self.transient), (str(self),))


def endpoint_error(config: ChatModelConfig, exc: BaseException, *, transient: bool) -> EndpointError:
    """The EndpointError for a failed call to `config`'s endpoint."""
    status = getattr(exc, "status_code", None)
    innermost = exc
    while innermost.__cause__ is not None or innermost.__context__ is not None:
        innermost = innermost.__cause__ or innermost.__context__  # type: ignore[assignment]
    reason = " ".join(str(innermost).split()) or type(innermost).__name__
    if isinstance(status, int):
        reason = f"HTTP {status}: " + " ".join(str(exc).split())
    where = f"model endpoint {mask_url(config.base_url or '')} (model {config.model!r})"
    return EndpointError(f"{where}: {reason}"[:500], transient=transient)


def unmask_url(url: str) -> str:
    """A stored base URL whose password was masked gets it back from ${PASSWORD_ENV}."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password != MASK:
        return url
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        raise EndpointError(
            f"the password of {url} is not stored; set ${PASSWORD_ENV} to call it", transient=False
        )
    netloc = f"{parts.username}:{password}@{parts.netloc.rsplit('@', 1)[1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class ChatModelConfig:
    """Which model answers and how it samples.

    model: "local" for the embedded default, "local:<HF id | folder | .gguf>" for another local
    model, or a served model name together with `base_url` (OpenAI-compatible endpoint).
    The API key is read from the environment variable named by `api_key_env` at call time;
    it is never stored in config, state or the run store. A password inside `base_url` is used
    as given, but stored masked (`storage.paths.mask_url`); a masked one is read from
    $MASGRAPH_BASE_URL_PASSWORD at call time.
    """

    model: str = LOCAL_PREFIX
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None  # None: the model's own default (a local model's generation_config)
    seed: int | None = 42
    timeout: float = 600.0
    backend: BackendChoice = DEFAULT_BACKEND  # which local backend serves a local model

    @property
    def is_local(self) -> bool:
        return self.base_url is None

    @property
    def local_model_ref(self) -> str | None:
        """The latent backend's model reference (None = embedded default)."""
        if self.model in (LOCAL_PREFIX, "", None):
            return None
        if self.model.startswith(LOCAL_PREFIX + ":"):
            return self.model[len(LOCAL_PREFIX) + 1 :]
        return self.model


def _message_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    out = []
    for message in messages:
        role = roles.get(message.type)
        if role is None:
            raise ValueError(f"LocalChatModel cannot render a {message.type!r} message")
        out.append({"role": role, "content": message.text})
    return out


class LocalChatModel(BaseChatModel):
    """A chat model over the latent backend's batched text generator (CPU or CUDA, offline)."""

    model_ref: str | None = None
    backend: BackendChoice = DEFAULT_BACKEND
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None
    seed: int | None = 42

    @property
    def _llm_type(self) -> str:
        return "masgraph-local"

    def get_num_tokens(self, text: str) -> int:
        """Tokens of `text` by the local model's own tokenizer (no special tokens)."""
        from latent_backend import get_backend

        return len(get_backend(self.model_ref, self.backend).tokenize(text))

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_ref": self.model_ref,
            "backend": self.backend,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "seed": self.seed,
        }

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any) -> Any:
        from latent_backend import GenerationRequest

        return GenerationRequest(
            messages=_message_dicts(messages),
            max_new_tokens=int(kwargs.get("max_tokens", self.max_tokens)),
            temperature=float(kwargs.get("temperature", self.temperature)),
            top_p=float(kwargs.get("top_p", self.top_p)),
            top_k=kwargs.get("top_k", self.top_k),
            seed=kwargs.get("seed", self.seed),
            stop=tuple(stop or ()),
            on_token=kwargs.get("on_token"),
            grammar=kwargs.get("grammar"),
        )

    @staticmethod
    def _metadata(result: Any, model_id: str, seconds: float) -> dict[str, Any]:
        """The reply's usage and response metadata (on the whole message, or on a stream's last chunk)."""
        return {
            "usage_metadata": {
                "input_tokens": result.prompt_tokens,
                "output_tokens": result.generated_tokens,
                "total_tokens": result.prompt_tokens + result.generated_tokens,
            },
            "response_metadata": {
                "model_name": model_id,
                "seconds": seconds,
                "finish_reason": result.finish_reason,
                "prompt_text": result.prompt_text,
                "prompt_ids": result.prompt_ids,
            },
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        from latent_backend import get_backend

        backend = get_backend(self.model_ref, self.backend)
        started = time.perf_counter()
        result = backend.submit_generate(self._request(messages, stop, **kwargs))
        metadata = self._metadata(result, backend.model_id, time.perf_counter() - started)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=result.text, **metadata))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Text as the decode loop writes it (LangGraph's `stream_mode="messages"` shows it live).

        The call may be batched with other callers'; this row's tokens come back through a relay.
        The pieces join into exactly the text `_generate` returns; the last chunk carries the usage.
        """
        from latent_backend import get_backend
        from latent_backend.streaming import Relay, TextDeltas

        backend = get_backend(self.model_ref, self.backend)
        started = time.perf_counter()
        relay = Relay(
            lambda emit: backend.submit_generate(self._request(messages, stop, on_token=emit, **kwargs))
        )
        deltas = TextDeltas(backend.decode, stop or ())
        for token in relay:
            if piece := deltas.push(token):
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        result = relay.result
        metadata = self._metadata(result, backend.model_id, time.perf_counter() - started)
        last = AIMessageChunk(content=deltas.rest(result.text), chunk_position="last", **metadata)
        yield ChatGenerationChunk(message=last)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | GrammarSpec,
        *,
        include_raw: bool = False,
        method: str = "json_schema",
        **kwargs: Any,
    ) -> Runnable:
        """Replies decoded under `schema`'s grammar, parsed (a dict, a pydantic object, or the text of
        a regex or choice). With `include_raw`: {"raw", "parsed", "parsing_error"}, as in LangChain."""
        from nodes.structured import grammar_of, structured_parser

        if method != "json_schema":
            raise ValueError(f"LocalChatModel supports method='json_schema' only, got {method!r}")
        spec = grammar_of(schema)
        return structured_parser(self.bind(grammar=spec, **kwargs), spec, schema, include_raw=include_raw)


_registered: dict[str, BaseChatModel] = {}
PLUGINS_ENV = "MASGRAPH_PLUGINS"


def register_chat_model(name: str, model: BaseChatModel) -> None:
    """Make any LangChain chat model selectable as `ChatModelConfig(model=name)` (tests, plugins)."""
    _registered[name] = model
    _build_chat_model.cache_clear()


@lru_cache(maxsize=1)
def load_plugins() -> tuple[str, ...]:
    """Import the modules named in $MASGRAPH_PLUGINS (comma-separated), once per process.

    A plugin registers chat models with `register_chat_model` when imported, so every process that
    runs graphs (the CLI, an evaluation, `langgraph dev`) can select them by name.
    """
    names = tuple(n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"{PLUGINS_ENV}: cannot import plugin module {name!r}: {exc}") from exc
    return names


def is_registered(name: str | None) -> bool:
    load_plugins()
    return name is not None and name in _registered


def chat_model(config: ChatModelConfig) -> BaseChatModel:
    """The chat model for `config`: a registered one by name, else built once per configuration."""
    load_plugins()
    if config.model in _registered:
        return _registered[config.model]
    return _build_chat_model(config)


@lru_cache(maxsize=64)
def _build_chat_model(config: ChatModelConfig) -> BaseChatModel:
    if config.is_local:
        return LocalChatModel(
            model_ref=config.local_model_ref,
            backend=config.backend,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            seed=config.seed,
        )
    from langchain_openai import ChatOpenAI

    api_key = os.environ.get(config.api_key_env) or "not-needed"  # local servers accept any key
    return ChatOpenAI(
        model=config.model,
        base_url=unmask_url(config.base_url or ""),
        api_key=api_key,
        temperature=config.temperature,
        top_p=config.top_p,
        seed=config.seed,
        max_completion_tokens=config.max_tokens,
        # llama.cpp's server (and some others) ignore max_completion_tokens but honour max_tokens.
        extra_body={
            "max_tokens": config.max_tokens,
            **({"top_k": config.top_k} if config.top_k is not None else {}),  # vLLM, llama.cpp
        },
        timeout=config.timeout,
        max_retries=0,  # retries belong to the graph's RetryPolicy, so they are visible there
    )
