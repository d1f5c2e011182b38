"""The latent backend: models, batched generation, latent rollouts and the KV-cache store.

Names are imported lazily, so `from latent_backend.errors import ...` (or a command that only
names an exception) does not pay for importing torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GenerationRequest": "latent_backend.requests",
    "GenerationResult": "latent_backend.requests",
    "LatentBackend": "latent_backend.backend",
    "RolloutRequest": "latent_backend.requests",
    "RolloutResult": "latent_backend.requests",
    "configure_batching": "latent_backend.backend",
    "get_backend": "latent_backend.backend",
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
