"""Which backend serves a model, and the process-wide instance of each (model, backend) pair.

Two backends serve the same interface (render, count_tokens, tokenize, generate, rollout, the
micro-batched submit_* calls, KV handles through the KV store): transformers (`backend.py`, any
model, fp32 on the CPU, bf16 on CUDA) and llama.cpp (`llamacpp/`, GGUF files, quantized, CPU).
A run names one: "transformers", "llamacpp", or "auto" -- llama.cpp for a GGUF model on a
CPU-only machine when llama-cpp-python is installed, transformers otherwise, logged once with why.

Invariants:
- Importing this module imports neither torch nor llama_cpp (options name `BackendChoice`).
- A model gets one backend object per kind per process; both kinds of one model may coexist.
- Their KV handles never mix: each backend's `model_id` differs, and a handle of another model id
  is refused by the KV chain with a one-line `KVStoreError`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from latent_backend.errors import ModelLoadError

if TYPE_CHECKING:
    from latent_backend.backend import LatentBackend
    from latent_backend.llamacpp.backend import LlamaCppBackend

log = logging.getLogger(__name__)

BackendChoice = Literal["transformers", "llamacpp", "auto"]
BACKEND_CHOICES: tuple[str, ...] = get_args(BackendChoice)
DEFAULT_BACKEND: BackendChoice = "transformers"

_backends: dict[tuple[str, str], LlamaCppBackend] = {}
_lock = threading.Lock()
_explained: set[tuple[str, str]] = set()


def gguf_file(model_ref: str | None) -> Path | None:
    """The GGUF file a model reference names (None: the embedded default), or None for other models."""
    from latent_backend.models import embedded_gguf_path

    ref = model_ref or os.environ.get("MASGRAPH_MODEL") or None
    if ref is None:
        return embedded_gguf_path()
    path = Path(ref).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}")
        return path
    if path.is_dir() and not (path / "config.json").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        return ggufs[0] if len(ggufs) == 1 else None
    return None


def choose(model_ref: str | None, backend: str = DEFAULT_BACKEND) -> tuple[str, str]:
    """(the backend kind that serves `model_ref`, why); a bad choice is a one-line error."""
    from latent_backend.llamacpp.runtime import REQUIREMENT, available

    if backend not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    if backend == "transformers":
        return "transformers", "asked for"
    gguf = gguf_file(model_ref)
    if backend == "llamacpp":
        if gguf is None:
            raise ModelLoadError(f"the llama.cpp backend runs GGUF files; model {model_ref!r} is not one")
        if not available():
            raise ModelLoadError(
                f"the llama.cpp backend needs {REQUIREMENT}: pip install 'masgraph[llamacpp]' (or make llamacpp)"
            )
        return "llamacpp", "asked for"
    if gguf is None:
        return "transformers", "the model is not a GGUF file"
    import torch

    if torch.cuda.is_available():
        return "transformers", "a CUDA device is available"
    if not available():
        return "transformers", f"{REQUIREMENT} is not installed (pip install 'masgraph[llamacpp]')"
    return "llamacpp", "a GGUF model on a CPU-only machine"


def get_backend(
    model_ref: str | None = None, backend: str = DEFAULT_BACKEND
) -> LatentBackend | LlamaCppBackend:
    """The process-wide backend of `backend` kind for a model reference (None: the embedded default)."""
    kind, why = choose(model_ref, backend)
    if backend == "auto":
        with _lock:
            first = (model_ref or "", kind) not in _explained
            _explained.add((model_ref or "", kind))
        if first:
            log.info("backend auto -> %s for model %s: %s", kind, model_ref or "(embedded)", why)
    if kind == "transformers":
        from latent_backend.backend import get_backend as transformers_backend

        return transformers_backend(model_ref)
    from latent_backend.llamacpp.backend import LlamaCppBackend
    from latent_backend.models import EMBEDDED_MODEL_ID, embedded_gguf_path

    gguf = gguf_file(model_ref)
    assert gguf is not None  # choose() said llamacpp
    key = (str(gguf.resolve()), kind)
    with _lock:
        if key not in _backends:
            name = EMBEDDED_MODEL_ID if gguf == embedded_gguf_path() else gguf.stem
            _backends[key] = LlamaCppBackend(gguf, name)
        return _backends[key]


def configure_batching(
    max_batch: int,
    max_wait_s: float | None = None,
    model_ref: str | None = None,
    backend: str = DEFAULT_BACKEND,
) -> None:
    """Let up to `max_batch` concurrent calls share one batch (evaluation --batch-size)."""
    get_backend(model_ref, backend).batcher.configure(max_batch=max_batch, max_wait_s=max_wait_s)
