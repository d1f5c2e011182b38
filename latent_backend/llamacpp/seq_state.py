"""llama.cpp sequence states as data: parse, join and write back `llama_state_seq_get_data` bytes.

A KV entry of the llama.cpp backend holds the positions one agent added (a delta); a handle's cache
is its chain of entries, joined here into one state that `llama_state_seq_set_data` restores. The
layout (llama.cpp as vendored by llama-cpp-python 0.3.36, `llama_kv_cache::state_write`):

    u32 magic, i32 seq_id, u32 n_stream, then per stream: u32 cell_count and, if non-zero,
    cell_count x (i32 pos, u32 n_seq_id = 1, i32 seq_id), u32 v_trans, u32 n_layer,
    n_layer x (i32 k_type, u64 k_row_bytes, cell_count x k_row_bytes),
    v_trans 0: n_layer x (i32 v_type, u64 v_row_bytes, cell_count x v_row_bytes)
    v_trans 1: n_layer x (i32 v_type, u32 element_bytes, u32 n_embd_v, n_embd_v x cell_count x element_bytes)

Invariants:
- A single sequence's state has at most one non-empty stream, and restoring puts it into the
  destination sequence's stream whatever its index: states are stored with one stream
  (`n_stream=1`, seq 0) and written out for the stream count of the context that restores them,
  so a stored state does not depend on the batch size (the number of sequences) of either context.
- Parsing consumes the bytes exactly, or fails: a layout this module does not know (cells with
  M-RoPE positions, layers without V) is refused, never misread.
- Joining keeps cells in order (positions ascending when the chain's are) and checks that every
  part has the same tensor types and row sizes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

MAGIC = 0xAF143CD8
_CELL = np.dtype([("pos", "<i4"), ("n_seq", "<u4"), ("seq", "<i4")])


class StateFormatError(ValueError):
    """Bytes that are not a single-sequence state in the known layout."""


@dataclass
class Layer:
    """One layer's K or V rows. Untransposed: data [cells, row_bytes]; transposed V:
    data [n_embd_v, cells * element_bytes] (one row per embedding channel)."""

    ggml_type: int
    row_bytes: int  # bytes per cell (untransposed) or per element (transposed)
    n_embd: int  # transposed V only, else 0
    data: np.ndarray


@dataclass
class SeqState:
    positions: np.ndarray  # int32 [cells]
    v_trans: bool
    keys: list[Layer]
    values: list[Layer]

    @property
    def cells(self) -> int:
        return int(self.positions.shape[0])


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = memoryview(data), 0

    def scalar(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise StateFormatError("state ends early")
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return value

    def array(self, dtype: np.dtype | str, count: int) -> np.ndarray:
        dtype = np.dtype(dtype)
        if self.at + dtype.itemsize * count > len(self.data):
            raise StateFormatError("state ends early")
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += dtype.itemsize * count
        return out


def parse(blob: bytes) -> SeqState | None:
    """The state in `blob` (None: the sequence was empty)."""
    reader = _Reader(blob)
    if reader.scalar("<I") != MAGIC:
        raise StateFormatError("not a llama.cpp sequence state (bad magic)")
    reader.scalar("<i")  # the sequence it was saved from: irrelevant when restoring
    found: SeqState | None = None
    for _ in range(reader.scalar("<I")):
        cells = reader.scalar("<I")
        if cells == 0:
            continue
        if found is not None:
            raise StateFormatError("more than one non-empty stream: not a single-sequence state")
        found = _parse_stream(reader, cells)
    if reader.at != len(blob):
        raise StateFormatError(f"{len(blob) - reader.at} unread bytes at the end of the state")
    return found


def _parse_stream(reader: _Reader, cells: int) -> SeqState:
    meta = reader.array(_CELL, cells)
    if np.any(meta["n_seq"] != 1):
        raise StateFormatError("cells shared by several sequences (or with extended positions)")
    v_trans, layers = reader.scalar("<I"), reader.scalar("<I")
    keys = []
    for _ in range(layers):
        ggml_type, row = reader.scalar("<i"), reader.scalar("<Q")
        keys.append(Layer(ggml_type, row, 0, reader.array(np.uint8, cells * row).reshape(cells, row)))
    values = []
    for _ in range(layers):
        ggml_type = reader.scalar("<i")
        if v_trans:
            element, embd = reader.scalar("<I"), reader.scalar("<I")
            data = reader.array(np.uint8, embd * cells * element).reshape(embd, cells * element)
            values.append(Layer(ggml_type, element, embd, data))
        else:
            row = reader.scalar("<Q")
            values.append(Layer(ggml_type, row, 0, reader.array(np.uint8, cells * row).reshape(cells, row)))
    return SeqState(meta["pos"].copy(), bool(v_trans), keys, values)


def join(parts: list[SeqState]) -> SeqState:
    """One state holding the cells of `parts`, in order."""
    if not parts:
        raise ValueError("nothing to join")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    for part in parts[1:]:
        same = part.v_trans == first.v_trans and len(part.keys) == len(first.keys)
        same = same and all(
            (a.ggml_type, a.row_bytes, a.n_embd) == (b.ggml_type, b.row_bytes, b.n_embd)
            for a, b in zip(part.keys + part.values, first.keys + first.values, strict=True)
        )
        if not same:
            raise StateFormatError("the states to join have different layouts (another model or context)")
    axis_v = 1 if first.v_trans else 0

    def stacked(index: int, kind: str, axis: int) -> Layer:
        layers = [getattr(part, kind)[index] for part in parts]
        head = layers[0]
        return Layer(
            head.ggml_type, head.row_bytes, head.n_embd, np.concatenate([x.data for x in layers], axis)
        )

    return SeqState(
        np.concatenate([part.positions for part in parts]),
        first.v_trans,
        [stacked(i, "keys", 0) for i in range(len(first.keys))],
        [stacked(i, "values", axis_v) for i in range(len(first.values))],
    )


def serialize(state: SeqState | None, *, n_stream: int = 1) -> bytes:
    """`state` as bytes `llama_state_seq_set_data` reads, for a context with `n_stream` streams."""
    out = [struct.pack("<IiI", MAGIC, 0, n_stream)]
    if state is None:
        out.append(bytes(4 * n_stream))
        return b"".join(out)
    cells = state.cells
    meta = np.zeros(cells, dtype=_CELL)
    meta["pos"], meta["n_seq"], meta["seq"] = state.positions, 1, 0
    out += [struct.pack("<I", cells), meta.tobytes(), struct.pack("<II", int(state.v_trans), len(state.keys))]
    for layer in state.keys:
        out += [struct.pack("<iQ", layer.ggml_type, layer.row_bytes), layer.data.tobytes()]
    for layer in state.values:
        if state.v_trans:
            out.append(struct.pack("<iII", layer.ggml_type, layer.row_bytes, layer.n_embd))
        else:
            out.append(struct.pack("<iQ", layer.ggml_type, layer.row_bytes))
        out.append(layer.data.tobytes())
    out.append(bytes(4 * (n_stream - 1)))  # the other streams are empty
    return b"".join(out)
