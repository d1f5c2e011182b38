"""What goes into and comes out of the backend: requests, results and KV handles (no torch here).

A `KVHandle` is a small JSON-able dict that travels in graph state (checkpointed), never a tensor.
It is a recipe plus an address: its `chain` holds the recipe of every entry it was built from
(oldest first, its own last), so the cache can be rebuilt from the checkpoint alone when the KV
store has lost an entry (a restarted process, another machine, a damaged file).
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from typing_extensions import TypedDict

from latent_backend.grammar_spec import GrammarSpec

if TYPE_CHECKING:
    import torch

Handoff = Literal["all", "sequential", "latent"]


class KVRecipe(TypedDict):
    """How one KV entry was made: a latent agent's step, enough to redo it exactly.

    The entry holds only the positions this step added (its delta). Redoing it reads `tokens` (the
    rendered prompt, see `encode_tokens`) on top of the parent handle's cache, then thinks
    `latent_steps` latent steps. handoff: "all" -- the handle's cache is the parent's plus this
    delta; "sequential" / "latent" -- the delta alone (the parent is still needed to redo it).
    """

    id: str  # the entry's id (the id of the handle this step returned)
    parent: str | None  # the parent entry's id (the previous recipe of the chain)
    namespace: str  # where the entry is filed (the graph thread that made it)
    tokens: str
    latent_steps: int
    realign: bool
    think: bool
    handoff: Handoff
    positions: int  # positions in the entry (the delta)
    next_position: int  # the rotary position the next token takes after this step


class KVHandle(TypedDict):
    """A reference to the cache of a single sequence (no padding): a recipe chain plus an address.

    positions: cached positions the handle resolves to; next_position: the rotary position the next
    token takes (equal to positions unless earlier positions were trimmed away by
    sequential_info_only / latent_only); nbytes: bytes of the resolved cache.
    """

    id: str
    model_id: str
    namespace: str
    positions: int
    next_position: int
    parent: str | None
    nbytes: int
    chain: list[KVRecipe]


def encode_tokens(token_ids: list[int]) -> str:
    """Token ids as compact text for a recipe: "<width>:" + base64 of zlib-compressed little-endian
    integers, 2 bytes wide when every id fits (vocabularies up to 65536), else 4."""
    width, code = (2, "H") if max(token_ids, default=0) < 1 << 16 else (4, "I")
    packed = struct.pack(f"<{len(token_ids)}{code}", *token_ids)
    return f"{width}:{base64.b64encode(zlib.compress(packed, 9)).decode()}"


def decode_tokens(text: str) -> list[int]:
    width, payload = text.split(":", 1)
    raw = zlib.decompress(base64.b64decode(payload))
    code = {"2": "H", "4": "I"}[width]
    return list(struct.unpack(f"<{len(raw) // int(width)}{code}", raw))


@dataclass(frozen=True)
class GenerationRequest:
    """Decode text for one chat, optionally on top of a stored cache (the judger's case).

    on_token: called with each generated token id of this row as it is decoded (streaming); it runs
    on the decoding thread, so it should only hand the id over (e.g. `queue.put`).
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
    on_token: Callable[[int], None] | None = field(default=None, compare=False, repr=False)
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
    persist: bool = True  # False: the entry lives in memory only (recomputed if evicted)
    on_step: Callable[[int, int, int], None] | None = field(default=None, compare=False, repr=False)


@dataclass
class RolloutResult:
    handle: KVHandle
    prompt_tokens: int
    latent_steps: int
    last_hidden: torch.Tensor  # [hidden] of the last step; for tests and analysis, never state
    prompt_text: str | None = None  # the rendered chat the agent read
    prompt_ids: list[int] | None = None  # its token ids
