"""Shared fixtures. Tests never touch the user's database: MASGRAPH_DATA_DIR points at a temp dir.
The converted embedded model is shared (MASGRAPH_CACHE_DIR is left alone) so it is converted once."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ["MASGRAPH_DATA_DIR"] = tempfile.mkdtemp(prefix="masgraph-test-data-")
os.environ.pop("MASGRAPH_DB", None)
os.environ.pop("MASGRAPH_MODEL", None)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def backend():
    """The embedded SmolLM2 backend (loaded once per test session)."""
    from latent_backend import get_backend

    return get_backend()


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "masgraph.db")
