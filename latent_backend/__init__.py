"""The latent backend: models, batched generation, latent rollouts and the KV-cache store."""

from latent_backend.backend import (
    GenerationRequest,
    GenerationResult,
    LatentBackend,
    PromptError,
    RolloutRequest,
    RolloutResult,
    configure_batching,
    get_backend,
)
from latent_backend.kv_store import KVHandle, KVStore, KVStoreError, kv_store, kv_store_for_db
from latent_backend.models import LoadedModel, ModelLoadError, load_model

__all__ = [
    "GenerationRequest",
    "GenerationResult",
    "KVHandle",
    "KVStore",
    "KVStoreError",
    "LatentBackend",
    "LoadedModel",
    "ModelLoadError",
    "PromptError",
    "RolloutRequest",
    "RolloutResult",
    "configure_batching",
    "get_backend",
    "kv_store",
    "kv_store_for_db",
    "load_model",
]
