"""Where masgraph keeps things by default (each overridable by an environment variable)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def data_dir() -> Path:
    """Run database and KV-cache files: $MASGRAPH_DATA_DIR, default ~/.local/share/masgraph."""
    path = Path(os.environ.get("MASGRAPH_DATA_DIR") or Path.home() / ".local" / "share" / "masgraph")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Converted models and realignment matrices: $MASGRAPH_CACHE_DIR, default ~/.cache/masgraph."""
    path = Path(os.environ.get("MASGRAPH_CACHE_DIR") or Path.home() / ".cache" / "masgraph")
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db() -> str:
    """The default database: $MASGRAPH_DB, else masgraph.db in the data dir."""
    return os.environ.get("MASGRAPH_DB") or str(data_dir() / "masgraph.db")


def is_url(db: str) -> bool:
    return "://" in db


# The graph config key under which a compiled graph tells its nodes where its KV caches live.
KV_DIR_CONFIG_KEY = "masgraph_kv_dir"


def kv_dir_for(db: str) -> Path:
    """KV-cache files live beside the SQLite database they belong to (`<db>.kv/`); for a database
    URL, in the data dir under a name derived from the URL (one directory per database)."""
    if is_url(db):
        return data_dir() / "kv" / hashlib.sha256(db.encode()).hexdigest()[:16]
    return Path(db).expanduser().resolve().with_name(Path(db).name + ".kv")
