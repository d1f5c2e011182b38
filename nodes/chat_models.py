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

import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable

from latent_backend.grammar_spec import GrammarSpec

LOCAL_PREFIX = "local"


@dataclass(frozen=True)
class ChatModelConfig:
    """Which model answers and how it samples.

    model: "local" for the embedded default, "local:<HF id | folder | .gguf>" for another local
    model, or a served model name together with `base_url` (OpenAI-compatible endpoint).
    The API key is read from the environment variable named by `api_key_env` at call time;
    it is never stored in config, state or the run store.
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

        return len(get_backend(self.model_ref).tokenize(text))

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_ref": self.model_ref,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "seed": self.seed,
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        from latent_backend import GenerationRequest, get_backend

        backend = get_backend(self.model_ref)
        request = GenerationRequest(
            messages=_message_dicts(messages),
            max_new_tokens=int(kwargs.get("max_tokens", self.max_tokens)),
            temperature=float(kwargs.get("temperature", self.temperature)),
            top_p=float(kwargs.get("top_p", self.top_p)),
            top_k=kwargs.get("top_k", self.top_k),
            seed=kwargs.get("seed", self.seed),
            stop=tuple(stop or ()),
            grammar=kwargs.get("grammar"),
        )
        started = time.perf_counter()
        result = backend.submit_generate(request)
        seconds = time.perf_counter() - started
        message = AIMessage(
            content=result.text,
            usage_metadata={
                "input_tokens": result.prompt_tokens,
                "output_tokens": result.generated_tokens,
                "total_tokens": result.prompt_tokens + result.generated_tokens,
            },
            response_metadata={
                "model_name": backend.model_id,
                "seconds": seconds,
                "finish_reason": result.finish_reason,
                "prompt_text": result.prompt_text,
                "prompt_ids": result.prompt_ids,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

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


def register_chat_model(name: str, model: BaseChatModel) -> None:
    """Make any LangChain chat model selectable as `ChatModelConfig(model=name)` (tests, plugins)."""
    _registered[name] = model
    _build_chat_model.cache_clear()


def is_registered(name: str | None) -> bool:
    return name is not None and name in _registered


def chat_model(config: ChatModelConfig) -> BaseChatModel:
    """The chat model for `config`: a registered one by name, else built once per configuration."""
    if config.model in _registered:
        return _registered[config.model]
    return _build_chat_model(config)


@lru_cache(maxsize=64)
def _build_chat_model(config: ChatModelConfig) -> BaseChatModel:
    if config.is_local:
        return LocalChatModel(
            model_ref=config.local_model_ref,
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
        base_url=config.base_url,
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
