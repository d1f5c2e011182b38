"""The latent backend: models, batched generation, latent rollouts and the KV-cache store.

Names are imported lazily, so `from latent_backend.errors import ...` (or a command that only
names an exception) does not pay for importing torch and transformers.

Importing the package sets `OMP_WAIT_POLICY=PASSIVE` unless the environment already has a value:
OpenMP reads it once, when the first OpenMP library loads, and torch loads one that llama.cpp then
shares. With OpenMP's default (threads spin between operations) a llama.cpp decode on a busy CPU
was measured 20x slower. So it must be set before torch is first imported (`TORCH_BEFORE_OMP`
records when it was not). `OPENBLAS_NUM_THREADS=1` likewise, before numpy loads: the llama.cpp
backend's realignment products are tiny, and a BLAS thread pool competing with llama.cpp's threads
made them cost tens of milliseconds per latent step.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

TORCH_BEFORE_OMP = "torch" in sys.modules and "OMP_WAIT_POLICY" not in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

_EXPORTS = {
    "GenerationRequest": "latent_backend.requests",
    "GenerationResult": "latent_backend.requests",
    "LatentBackend": "latent_backend.backend",
    "RolloutRequest": "latent_backend.requests",
    "RolloutResult": "latent_backend.requests",
    "configure_batching": "latent_backend.registry",
    "get_backend": "latent_backend.registry",
    "KVHandle": "latent_backend.requests",
    "KVStore": "latent_backend.kv_store",
    "kv_store": "latent_backend.kv_store",
    "kv_store_for_db": "latent_backend.kv_store",
    "LoadedModel": "latent_backend.models",
    "load_model": "latent_backend.models",
    "KVStoreError": "latent_backend.errors",
    "ModelLoadError": "latent_backend.errors",
    "PromptError": "latent_backend.errors",
    "GrammarError": "latent_backend.errors",
    "GrammarSpec": "latent_backend.grammar_spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'latent_backend' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
