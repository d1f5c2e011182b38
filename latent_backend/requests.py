"""What goes into and comes out of the backend: requests, results and KV handles (no torch here).

A `KVHandle` is a small JSON-able dict that travels in graph state (checkpointed), never a tensor;
the cache it names lives in the KV store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from typing_extensions import TypedDict

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

    on_token: called with each generated token id of this row as it is decoded (streaming); it runs
    on the decoding thread, so it should only hand the id over (e.g. `queue.put`).
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
    on_token: Callable[[int], None] | None = field(default=None, compare=False, repr=False)


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
    on_step: called as `on_step(step, latent_steps, cache_positions)` after the prompt is read
    (step 0) and after each latent step, on the rollout's thread (progress for streaming).
    """

    messages: list[dict[str, str]]
    namespace: str
    kv: KVHandle | None = None
    latent_steps: int = 10
    realign: bool = True
    think: bool = False
    handoff: Handoff = "all"
    on_step: Callable[[int, int, int], None] | None = field(default=None, compare=False, repr=False)


@dataclass
class RolloutResult:
    handle: KVHandle
    prompt_tokens: int
    latent_steps: int
    last_hidden: torch.Tensor  # [hidden] of the last step; for tests and analysis, never state
    prompt_text: str | None = None  # the rendered chat the agent read
    prompt_ids: list[int] | None = None  # its token ids
