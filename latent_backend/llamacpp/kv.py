"""KV handles on the llama.cpp backend: sequence states through the shared KV store and recipes.

The same design as the transformers backend (`latent_backend.kv_chain`): a rollout's entry holds
only the positions its agent added (the prompt and latent positions; with handoff "latent" the
latent ones only), as a llama.cpp sequence state; a handle resolves to its chain's entries, joined
into one state (`seq_state.join`) and restored into a sequence with `llama_state_seq_set_data`;
an entry the store cannot serve is rebuilt from its recipe on the resolved parent.

Invariants:
- An entry is one uint8 tensor, the state written with one stream (`seq_state.serialize`), so it
  restores into a context of any batch size. Its model identity (`LlamaCppBackend.model_id`) names
  the GGUF file, llama.cpp's version and the context settings the layout depends on; a handle of
  another model or backend is refused with a `KVStoreError` before llama.cpp reads any byte.
- A state is parsed and checked against its recipe (cell count) when it is read, so a damaged
  entry is rebuilt rather than restored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from latent_backend import kv_chain
from latent_backend.errors import KVStoreError
from latent_backend.kv_store import Entry, KVStore
from latent_backend.llamacpp.engine import Engine
from latent_backend.llamacpp.seq_state import SeqState, StateFormatError, join, parse, serialize
from latent_backend.requests import KVHandle, KVRecipe, RolloutRequest, decode_tokens

if TYPE_CHECKING:
    from latent_backend.llamacpp.backend import LlamaCppBackend

STATE_TENSOR = "llama_state_seq"


class StateCodec:
    """Entries <-> sequence states (None: an empty delta)."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    def write(self, state: SeqState | None) -> Entry:
        data = torch.frombuffer(bytearray(serialize(state)), dtype=torch.uint8)
        return Entry(
            {STATE_TENSOR: data}, {"model_id": self.model_id, "positions": str(self.positions(state))}
        )

    def read(self, entry: Entry, recipe: KVRecipe) -> SeqState | None:
        tensor = entry.tensors.get(STATE_TENSOR)
        if tensor is None:
            raise KVStoreError(f"KV entry {recipe['id']} holds no llama.cpp sequence state")
        try:
            state = parse(tensor.numpy().tobytes())
        except StateFormatError as exc:
            raise KVStoreError(f"KV entry {recipe['id']}: {exc}") from exc
        if self.positions(state) != recipe["positions"]:
            raise KVStoreError(
                f"KV entry {recipe['id']} holds {self.positions(state)} positions; "
                f"its recipe says {recipe['positions']}"
            )
        return state

    @staticmethod
    def positions(state: SeqState | None) -> int:
        return state.cells if state is not None else 0

    @staticmethod
    def nbytes(state: SeqState | None) -> int:
        if state is None:
            return 0
        return sum(layer.data.nbytes for layer in state.keys + state.values)


def resolve(backend: LlamaCppBackend, handle: KVHandle, store: KVStore | None) -> SeqState | None:
    """The handle's whole cache as one state (missing entries rebuilt from their recipes)."""
    if store is None:
        raise ValueError("a KV handle was given without a KV store")

    def recompute(recipe: KVRecipe, parent: list[SeqState | None], parent_next: int) -> SeqState | None:
        tokens = decode_tokens(recipe["tokens"])
        return backend.recompute(
            _joined(parent), parent_next, tokens, recipe["latent_steps"], recipe["realign"], recipe["handoff"]
        )

    segments = kv_chain.resolve(
        handle, store, model_id=backend.model_id, codec=StateCodec(backend.model_id), recompute=recompute
    )
    return _joined(segments)


def _joined(segments: list[SeqState | None]) -> SeqState | None:
    present = [s for s in segments if s is not None and s.cells]
    return join(present) if present else None


def delta(
    engine: Engine, row: int, start: int, next_position: int, steps: int, handoff: str
) -> SeqState | None:
    """What row `row` added after its parent's positions (before `start`): its prompt and latent
    positions, or with handoff "latent" the latent positions only. Trims the row's sequence."""
    engine.drop_before(row, next_position - steps if handoff == "latent" else start)
    return parse(engine.save(row))


def store_delta(
    backend: LlamaCppBackend,
    request: RolloutRequest,
    prompt: list[int],
    state: SeqState | None,
    next_position: int,
    store: KVStore,
) -> KVHandle:
    """File a rollout's delta and return its handle (the parent's recipe chain plus this step's)."""
    codec = StateCodec(backend.model_id)
    handle = kv_chain.new_handle(
        request.kv,
        request,
        prompt,
        state,
        model_id=backend.model_id,
        next_position=next_position,
        codec=codec,
    )
    store.put(handle["id"], request.namespace, codec.write(state), persist=request.persist)
    return handle


def to_bytes(state: SeqState, n_stream: int) -> bytes:
    return serialize(state, n_stream=n_stream)
