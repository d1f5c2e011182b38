"""KV handles: entries hold deltas, handles carry recipes, misses are rebuilt (every backend).

A latent agent's entry holds only the positions it added. A handle's cache is its chain of
entries: with handoff "all" the parent's cache followed by the delta, with "sequential" /
"latent" the delta alone. Resolving a handle yields those entries as segments, which the batch
assembly copies into place, so no cache is ever stored or concatenated twice.

An entry the store cannot serve (never written, evicted, deleted, damaged) is rebuilt from its
recipe: the same prompt token ids read on top of the parent's cache (rebuilt first if need be),
the same latent steps. A rebuilt entry is memoised in memory (not written back: the handle's
thread may be gone). Each rebuilt entry is logged once per process.

What an entry holds is the backend's business, through a `Codec`: the transformers backend files
per-layer K/V tensors (`LayerCodec`), the llama.cpp backend a sequence state
(`latent_backend.llamacpp.kv`). The chain, recipes and rebuilding are the same for both.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import torch

from latent_backend.batch_cache import LayerKV, Segment, segment_positions
from latent_backend.errors import KVStoreError
from latent_backend.kv_store import Entry, KVStore
from latent_backend.requests import KVHandle, KVRecipe, RolloutRequest, encode_tokens

log = logging.getLogger(__name__)

# (recipe, the parent's cache as segments, the parent's next position) -> the rebuilt delta
Recompute = Callable[[KVRecipe, list[Any], int], Any]


class Codec(Protocol):
    """A backend's deltas <-> store entries."""

    def write(self, delta: Any) -> Entry: ...

    def read(self, entry: Entry, recipe: KVRecipe) -> Any:
        """The entry's delta, checked against its recipe (`KVStoreError` if it does not match)."""

    def positions(self, delta: Any) -> int: ...

    def nbytes(self, delta: Any) -> int: ...


_logged: set[str] = set()
_logged_lock = threading.Lock()


def to_entry(layers: Segment, model_id: str) -> Entry:
    tensors = {}
    for index, layer in enumerate(layers):
        tensors[f"k.{index}"] = layer.keys
        tensors[f"v.{index}"] = layer.values
    return Entry(tensors, {"model_id": model_id, "positions": str(segment_positions(layers))})


def from_entry(entry: Entry, recipe: KVRecipe, layers: int) -> Segment:
    """The entry's layers, checked against what its recipe says it holds."""
    try:
        segment = [LayerKV(entry.tensors[f"k.{i}"], entry.tensors[f"v.{i}"]) for i in range(layers)]
    except KeyError as exc:
        raise KVStoreError(f"KV entry {recipe['id']} lacks tensor {exc}") from exc
    if len(entry.tensors) != 2 * layers or segment_positions(segment) != recipe["positions"]:
        raise KVStoreError(
            f"KV entry {recipe['id']} holds {segment_positions(segment)} positions in "
            f"{len(entry.tensors) // 2} layers; its recipe says {recipe['positions']} in {layers}"
        )
    return segment


class LayerCodec:
    """The transformers backend's entries: per-layer K/V tensors."""

    def __init__(self, model_id: str, layers: int) -> None:
        self.model_id, self.layers = model_id, layers

    def write(self, delta: Segment) -> Entry:
        return to_entry(delta, self.model_id)

    def read(self, entry: Entry, recipe: KVRecipe) -> Segment:
        return from_entry(entry, recipe, self.layers)

    @staticmethod
    def positions(delta: Segment) -> int:
        return segment_positions(delta)

    @staticmethod
    def nbytes(delta: Segment) -> int:
        return sum(t.numel() * t.element_size() for layer in delta for t in (layer.keys, layer.values))


def concat(segments: list[Segment]) -> Segment:
    """Segments joined into one cache (fresh tensors)."""
    present = [segment for segment in segments if segment]
    if not present:
        return []
    return [
        LayerKV(
            torch.cat([segment[layer].keys for segment in present], dim=1),
            torch.cat([segment[layer].values for segment in present], dim=1),
        )
        for layer in range(len(present[0]))
    ]


def new_handle(
    parent: KVHandle | None,
    request: RolloutRequest,
    prompt: list[int],
    delta: Any,
    *,
    model_id: str,
    next_position: int,
    codec: Codec | None = None,
) -> KVHandle:
    """The handle a rollout returns: the parent's chain plus this step's recipe (`codec`: how
    the backend counts its delta; the transformers backend's by default)."""
    codec = codec or LayerCodec(model_id, 0)
    recipe = KVRecipe(
        id=uuid.uuid4().hex,
        parent=parent["id"] if parent else None,
        namespace=request.namespace,
        tokens=encode_tokens(prompt),
        latent_steps=request.latent_steps,
        realign=request.realign,
        think=request.think,
        handoff=request.handoff,
        positions=codec.positions(delta),
        next_position=next_position,
    )
    nbytes = codec.nbytes(delta)
    keeps_parent = parent is not None and request.handoff == "all"
    return KVHandle(
        id=recipe["id"],
        model_id=model_id,
        namespace=request.namespace,
        positions=recipe["positions"] + (parent["positions"] if keeps_parent else 0),
        next_position=next_position,
        parent=recipe["parent"],
        nbytes=nbytes + (parent["nbytes"] if keeps_parent else 0),
        chain=[*(parent["chain"] if parent else []), recipe],
    )


def resolve(
    handle: KVHandle,
    store: KVStore,
    *,
    model_id: str,
    recompute: Recompute,
    layers: int = 0,
    codec: Codec | None = None,
) -> list[Any]:
    """The handle's cache as segments, oldest first; missing entries are rebuilt. `codec`: how the
    backend reads its entries (default: the transformers backend's, with `layers` layers)."""
    if handle.get("model_id") != model_id:
        raise KVStoreError(
            f"KV handle {handle.get('id')} belongs to model {handle.get('model_id')!r}, "
            f"not {model_id!r}: a cache cannot be reused across models or backends"
        )
    chain = handle.get("chain")
    if not chain or chain[-1]["id"] != handle["id"]:
        raise KVStoreError(
            f"KV handle {handle.get('id')} carries no recipe chain (made by an older masgraph?): "
            "it cannot be rebuilt; start the thread again"
        )
    for earlier, later in zip(chain, chain[1:], strict=False):
        if later["parent"] != earlier["id"]:
            raise KVStoreError(f"KV handle {handle['id']}: broken recipe chain at entry {later['id']}")
    return _Resolver(chain, store, codec or LayerCodec(model_id, layers), recompute).segments(len(chain))


class _Resolver:
    def __init__(self, chain: list[KVRecipe], store: KVStore, codec: Codec, recompute: Recompute) -> None:
        self.chain, self.store, self.codec, self.recompute = chain, store, codec, recompute

    def segments(self, end: int) -> list[Any]:
        """The cache of the handle that chain[end - 1] made."""
        segments = []
        for index in range(end - 1, -1, -1):
            segments.append(self.entry(index))
            if self.chain[index]["handoff"] != "all":
                break
        return segments[::-1]

    def entry(self, index: int) -> Any:
        recipe = self.chain[index]
        try:
            return self.codec.read(self.store.get(recipe["id"], recipe["namespace"]), recipe)
        except KVStoreError as exc:
            with _logged_lock:
                first = recipe["id"] not in _logged
                _logged.add(recipe["id"])
            if first:
                log.warning("%s; rebuilding it from its recipe", exc)
        parent = self.segments(index) if index else []
        delta = self.recompute(recipe, parent, self.chain[index - 1]["next_position"] if index else 0)
        if self.codec.positions(delta) != recipe["positions"]:
            raise KVStoreError(
                f"KV entry {recipe['id']} rebuilt with {self.codec.positions(delta)} positions, "
                f"its recipe says {recipe['positions']}"
            )
        self.store.put(recipe["id"], recipe["namespace"], self.codec.write(delta), persist=False)
        return delta
