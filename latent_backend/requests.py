"""What goes into and comes out of the backend: requests, results and KV handles (no torch here).

A `KVHandle` is a small JSON-able dict that travels in graph state (checkpointed), never a tensor;
the cache it names lives in the KV store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from typing_extensions import TypedDict

from latent_backend.grammar_spec import GrammarSpec

if TYPE_CHECKING:
    import torch

Handoff = Literal["all", "sequential", "latent"]


class KVHandle(TypedDict):
    """A reference to one stored cache of a single sequence (no padding).

    positions: cached positions; next_position: the rotary position the next token takes (equal to
    positions unless earlier positions were trimmed away by sequential_info_only / latent_only).
    """

    id: str
    model_id: str
    namespace: str
    positions: int
    next_position: int
    parent: str | None
    nbytes: int
    sha256: str


@dataclass(frozen=True)
class GenerationRequest:
    """Decode text for one chat, optionally on top of a stored cache (the judger's case).

    grammar: the shape the reply must have (constrained decoding); a reply cut by
    `max_new_tokens` is unfinished (finish_reason "length") and does not match it.
    """

    messages: list[dict[str, str]]
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None  # None: the model's generation_config; 0: off
    min_p: float | None = None  # None: the model's generation_config
    seed: int | None = 42
    stop: tuple[str, ...] = ()
    kv: KVHandle | None = None
    think: bool = False
    grammar: GrammarSpec | None = None


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    generated_tokens: int
    finish_reason: Literal["stop", "length"]
    kv_positions: int = 0  # cached positions the prompt was read on top of
    token_ids: list[int] | None = None
    prompt_text: str | None = None  # the rendered chat the model read (the agent's input)
    prompt_ids: list[int] | None = None  # its token ids


@dataclass(frozen=True)
class RolloutRequest:
    """One latent agent: read `messages` on top of `kv`, then think `latent_steps` latent steps.

    handoff: which positions the returned handle keeps -- "all" (cache + prompt + latent),
    "sequential" (only this agent's prompt + latent positions: sequential_info_only), or
    "latent" (only the latent positions: latent_only).
    """

    messages: list[dict[str, str]]
    namespace: str
    kv: KVHandle | None = None
    latent_steps: int = 10
    realign: bool = True
    think: bool = False
    handoff: Handoff = "all"


@dataclass
class RolloutResult:
    handle: KVHandle
    prompt_tokens: int
    latent_steps: int
    last_hidden: torch.Tensor  # [hidden] of the last step; for tests and analysis, never state
    prompt_text: str | None = None  # the rendered chat the agent read
    prompt_ids: list[int] | None = None  # its token ids
