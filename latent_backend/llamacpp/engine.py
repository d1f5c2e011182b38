"""One GGUF model and one llama.cpp context, over llama-cpp-python's low-level (ctypes) API.

Row r of a batch is sequence r of the context (its "slot"). The context is made so that a row's
result never depends on its batch or slot, and so that sequence states move between contexts:

- `kv_unified=False`: each sequence has its own KV stream (with one shared buffer, results depend
  on which cells a sequence occupies and on what else is in the batch); flash attention off, KV in
  f16. Both are part of the state format (`STATE_FORMAT`).
- `embeddings` is off except around the decodes that need hidden states (with it on, every entry of
  a batch is an output); pooling is off, so a hidden state is the final norm's output per position.
- Every decode is cut into chunks of at most `N_BATCH` entries: more aborts the process.

The context (its `slots` and the cells per slot) is recreated when a batch needs more slots; it
holds nothing between batches (the backend restores each row's state and clears it afterwards).
A context is used by one thread at a time (the backend's batcher); tokenizing is safe from any.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from pathlib import Path

import numpy as np

from latent_backend.errors import KVStoreError, ModelLoadError
from latent_backend.llamacpp.runtime import llama

N_BATCH = 512
CELL_STEP = 1024
STATE_FORMAT = "kv_unified0-fa0-f16"  # what else a saved sequence state depends on (see module doc)


def file_key(path: Path) -> str:
    """A short identity of a GGUF file: its size and the hash of its first and last MiB (the header,
    metadata and the end of the weights), cheap for files of any size and equal across machines."""
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, path.stat().st_size - (1 << 20)))
        digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:12]


class Engine:
    def __init__(self, path: Path, *, positions: int | None = None, threads: int | None = None) -> None:
        lib = self.lib = llama()
        params = lib.llama_model_default_params()
        params.n_gpu_layers = 0
        self.model = lib.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise ModelLoadError(f"llama.cpp cannot load {path} (see the log above for why)")
        self.path = path
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_embd = int(lib.llama_model_n_embd(self.model))
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self.n_layer = int(lib.llama_model_n_layer(self.model))
        train = int(lib.llama_model_n_ctx_train(self.model)) or 4096
        self.positions = min(train, positions) if positions else train  # the most a sequence may hold
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.ctx = None
        self.slots = 0  # sequences of the current context
        self.cells = 0  # KV cells of each sequence in the current context
        self._embeddings = False

    # -- context ----------------------------------------------------------------------------
    def ensure(self, rows: int, cells: int) -> None:
        """A context with at least `rows` sequences of at least `cells` KV cells each.

        A smaller one is replaced by an empty one sized to the largest need seen so far (cells in
        steps of 1024, at most `positions`): llama.cpp allocates the whole KV buffer up front."""
        cells = min(self.positions, -(-max(cells, 1) // CELL_STEP) * CELL_STEP)
        if self.ctx is not None and rows <= self.slots and cells <= self.cells:
            return
        rows, cells = max(rows, self.slots), max(cells, self.cells)
        self._free_context()
        lib = self.lib
        params = lib.llama_context_default_params()
        params.n_ctx = rows * cells  # kv_unified=False: each sequence gets n_ctx / n_seq_max
        params.n_batch = params.n_ubatch = N_BATCH
        params.n_seq_max = rows
        params.n_threads = params.n_threads_batch = self.threads
        params.embeddings = False
        params.pooling_type = lib.LLAMA_POOLING_TYPE_NONE
        params.kv_unified = False
        params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.type_k = params.type_v = lib.GGML_TYPE_F16
        self.ctx = lib.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise ModelLoadError(
                f"llama.cpp cannot make a context of {rows} x {self.positions} positions for {self.path}"
            )
        self.mem = lib.llama_get_memory(self.ctx)
        self.token_batch = lib.llama_batch_init(N_BATCH, 0, 1)
        self.embed_batch = lib.llama_batch_init(rows, self.n_embd, 1)
        self.slots, self.cells = rows, int(lib.llama_n_ctx_seq(self.ctx))
        self._embeddings = False

    def _free_context(self) -> None:
        if self.ctx is not None:
            self.lib.llama_batch_free(self.token_batch)
            self.lib.llama_batch_free(self.embed_batch)
            self.lib.llama_free(self.ctx)
            self.ctx = None

    def close(self) -> None:
        self._free_context()
        if self.model:
            self.lib.llama_model_free(self.model)
            self.model = None

    def embeddings(self, on: bool) -> None:
        """Hidden states out (and every batch entry an output) while on."""
        if on != self._embeddings:
            self.lib.llama_set_embeddings(self.ctx, on)
            self._embeddings = on

    # -- decoding ---------------------------------------------------------------------------
    def decode_tokens(
        self, tokens: list[int], positions: list[int], seqs: list[int], outputs: list[bool]
    ) -> np.ndarray:
        """Decode token entries (any number, chunked); returns the logits -- in embeddings mode the
        hidden states -- of the entries marked in `outputs`, in order."""
        batch, width = self.token_batch, self.n_embd if self._embeddings else self.n_vocab
        rows: list[np.ndarray] = []
        for start in range(0, len(tokens), N_BATCH):
            end = min(start + N_BATCH, len(tokens))
            for slot, index in enumerate(range(start, end)):
                batch.token[slot] = tokens[index]
                batch.pos[slot] = positions[index]
                batch.n_seq_id[slot] = 1
                batch.seq_id[slot][0] = seqs[index]
                batch.logits[slot] = outputs[index]
            batch.n_tokens = end - start
            self._decode(batch)
            rows += [self._output(slot, width) for slot in range(end - start) if outputs[start + slot]]
        return np.stack(rows) if rows else np.zeros((0, width), dtype=np.float32)

    def decode_embeds(self, embeds: np.ndarray, positions: list[int], seqs: list[int]) -> np.ndarray:
        """Decode one input embedding per row (embeddings mode); returns the rows' hidden states."""
        batch = self.embed_batch
        embeds = np.ascontiguousarray(embeds, dtype=np.float32)
        ctypes.memmove(batch.embd, embeds.ctypes.data, embeds.nbytes)
        for slot, (position, seq) in enumerate(zip(positions, seqs, strict=True)):
            batch.pos[slot] = position
            batch.n_seq_id[slot] = 1
            batch.seq_id[slot][0] = seq
            batch.logits[slot] = True
        batch.n_tokens = len(seqs)
        self._decode(batch)
        return np.stack([self._output(slot, self.n_embd) for slot in range(len(seqs))])

    def _decode(self, batch) -> None:
        code = self.lib.llama_decode(self.ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode failed with code {code} (1: no KV slot; -1: invalid batch)")

    def _output(self, slot: int, width: int) -> np.ndarray:
        if self._embeddings:
            pointer = self.lib.llama_get_embeddings_ith(self.ctx, slot)
        else:
            pointer = self.lib.llama_get_logits_ith(self.ctx, slot)
        if not pointer:
            raise RuntimeError(f"llama.cpp gave no output for batch entry {slot}")
        return np.ctypeslib.as_array(pointer, shape=(width,)).copy()

    # -- sequences ----------------------------------------------------------------------------
    def clear(self, seq: int) -> None:
        self.lib.llama_memory_seq_rm(self.mem, seq, -1, -1)

    def drop_before(self, seq: int, position: int) -> None:
        """Forget a sequence's positions below `position` (the others keep their rotary positions)."""
        if position > 0 and not self.lib.llama_memory_seq_rm(self.mem, seq, 0, position):
            raise RuntimeError("llama.cpp cannot drop part of this model's sequence state")

    def next_position(self, seq: int) -> int:
        return int(self.lib.llama_memory_seq_pos_max(self.mem, seq)) + 1

    def save(self, seq: int) -> bytes:
        size = self.lib.llama_state_seq_get_size(self.ctx, seq)
        buffer = (ctypes.c_uint8 * size)()
        written = self.lib.llama_state_seq_get_data(self.ctx, buffer, size, seq)
        if written != size:
            raise RuntimeError(f"llama_state_seq_get_data wrote {written} of {size} bytes")
        return bytes(buffer)

    def load(self, seq: int, state: bytes) -> None:
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if self.lib.llama_state_seq_set_data(self.ctx, buffer, len(state), seq) == 0:
            raise KVStoreError("llama.cpp refused a sequence state (see the log above for why)")

    # -- vocabulary ---------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text`, special tokens parsed, no BOS added (the chat template writes it)."""
        raw = text.encode("utf-8")
        buffer = (self.lib.llama_token * (len(raw) + 8))()
        count = self.lib.llama_tokenize(self.vocab, raw, len(raw), buffer, len(buffer), False, True)
        if count < 0:
            raise ValueError(f"cannot tokenize a text of {len(raw)} bytes")
        return list(buffer[:count])

    def detokenize(self, tokens: list[int], *, special: bool = False) -> str:
        """Text of `tokens`; special tokens (chat markers, EOS) are dropped unless `special`."""
        if not tokens:
            return ""
        ids = (self.lib.llama_token * len(tokens))(*tokens)
        size = 8 * len(tokens) + 16
        while True:
            buffer = ctypes.create_string_buffer(size)
            count = self.lib.llama_detokenize(self.vocab, ids, len(tokens), buffer, size, False, special)
            if count >= 0:
                return buffer.raw[:count].decode("utf-8", errors="replace")
            size = -count + 16

    def token_text(self, token: int) -> str:
        return self.detokenize([token], special=True)

    def is_end(self, token: int) -> bool:
        return bool(self.lib.llama_vocab_is_eog(self.vocab, token))

    def is_unused(self, token: int) -> bool:
        return bool(self.lib.llama_vocab_get_attr(self.vocab, token) & self.lib.LLAMA_TOKEN_ATTR_UNUSED)

    def meta(self, key: str) -> str | None:
        """A GGUF metadata value as text (None when the file lacks the key)."""
        size = 1 << 16
        while True:
            buffer = ctypes.create_string_buffer(size)
            count = self.lib.llama_model_meta_val_str(self.model, key.encode(), buffer, size)
            if count < 0:
                return None
            if count < size:
                return buffer.value.decode("utf-8", errors="replace")
            size = count + 1

    def meta_number(self, key: str, kind: type[int] | type[float]) -> int | float | None:
        """A numeric GGUF metadata value (None when missing or not a number)."""
        text = self.meta(key)
        try:
            return kind(text) if text is not None else None
        except ValueError:
            return None
