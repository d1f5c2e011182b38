"""The latent backend's exceptions, importable without torch (light commands name them cheaply)."""

from __future__ import annotations


class ModelLoadError(RuntimeError):
    """A model reference that cannot be loaded; the message names the reference and why."""


class PromptError(ValueError):
    """A prompt the model cannot take: empty, or longer than its context."""


class KVStoreError(LookupError):
    """A handle that cannot be resolved: missing, corrupt, or from another model."""


class GrammarError(ValueError):
    """A grammar that cannot be compiled, or a decoder that broke one (a bug, never a model's fault)."""
