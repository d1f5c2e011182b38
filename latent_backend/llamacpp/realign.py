"""The latent realignment of a GGUF model: W_a and the target norm, from the file's own weights.

The same ridge map as the transformers backend, W_a = (W_out^T W_out + lambda I)^-1 W_out^T W_in in
fp32, over the vocabulary's real tokens (rows llama.cpp marks unused -- padding -- are left out), and
the target norm is the mean input-embedding row norm. The input embedding (`token_embd.weight`) and
the output matrix (`output.weight`, absent when tied to the embedding) are dequantized from the GGUF
with the `gguf` package. That takes seconds, so the result is cached on disk per file (path, size,
modification time) and per ridge lambda, and in memory per backend.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from latent_backend.errors import ModelLoadError
from storage.paths import cache_dir

log = logging.getLogger(__name__)

INPUT_EMBEDDING = "token_embd.weight"
OUTPUT_MATRIX = "output.weight"


def _cache_path(gguf_path: Path, ridge: float) -> Path:
    stat = gguf_path.stat()
    identity = f"{gguf_path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}:{ridge!r}"
    return (
        cache_dir() / "realign" / f"{gguf_path.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}.npz"
    )


def weights(gguf_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(W_in, W_out) dequantized to fp32, [vocab, hidden] each (W_out is W_in when tied)."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    tensors = {
        t.name: t for t in GGUFReader(str(gguf_path)).tensors if t.name in (INPUT_EMBEDDING, OUTPUT_MATRIX)
    }
    if INPUT_EMBEDDING not in tensors:
        raise ModelLoadError(f"{gguf_path} has no {INPUT_EMBEDDING}: no latent realignment for this model")
    w_in = np.asarray(
        dequantize(tensors[INPUT_EMBEDDING].data, tensors[INPUT_EMBEDDING].tensor_type), np.float32
    )
    if OUTPUT_MATRIX not in tensors:
        return w_in, w_in
    w_out = np.asarray(
        dequantize(tensors[OUTPUT_MATRIX].data, tensors[OUTPUT_MATRIX].tensor_type), np.float32
    )
    return w_in, w_out


def realignment(gguf_path: Path, rows: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    """(W_a [hidden, hidden] fp32, target norm) over the vocabulary rows `rows` (cached on disk)."""
    path = _cache_path(gguf_path, ridge)
    if path.is_file():
        with np.load(path) as cached:
            if cached["rows"].shape == rows.shape and np.array_equal(cached["rows"], rows):
                return cached["w_a"], float(cached["target_norm"])
    log.info("computing the latent realignment of %s (one-off, cached in %s)", gguf_path.name, path)
    w_in, w_out = weights(gguf_path)
    w_in, w_out = w_in[rows], w_out[rows]
    target_norm = float(np.linalg.norm(w_in, axis=1).mean())
    gram = w_out.T @ w_out + np.float32(ridge) * np.eye(w_out.shape[1], dtype=np.float32)
    w_a = np.linalg.solve(gram, w_out.T @ w_in).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(staging, w_a=w_a, target_norm=np.float32(target_norm), rows=rows)
    os.replace(staging, path)  # atomic: a reader never sees half a file
    return w_a, target_norm


def align(hidden: np.ndarray, w_a: np.ndarray | None, target_norm: float) -> np.ndarray:
    """Hidden states [rows, hidden] -> input embeddings: h W_a (or h itself), rescaled to the norm.

    Row by row: BLAS computes a matrix product with other kernels (other rounding) than a
    vector-matrix one, and a row's thought must not depend on the size of its batch."""
    aligned = np.stack([row @ w_a for row in hidden]) if w_a is not None else hidden
    norms = np.maximum(np.linalg.norm(aligned, axis=-1, keepdims=True), 1e-6)
    return (aligned * (np.float32(target_norm) / norms)).astype(np.float32)
