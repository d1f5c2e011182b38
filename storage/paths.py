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


MASK = "***"
_SECRET_QUERY_KEYS = ("key", "token", "secret", "password", "passwd", "pwd", "sig", "auth")


def mask_url(url: str) -> str:
    """`url` with its credentials masked: the password (or a lone user name, often a token) and
    query values whose names look secret (`api_key`, `token`, ...) become `***`."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        secret = [any(word in name.lower() for word in _SECRET_QUERY_KEYS) for name, _ in pairs]
        if any(secret):
            query = urlencode(
                [(n, MASK if s else v) for (n, v), s in zip(pairs, secret, strict=True)], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_secrets(value: object) -> object:
    """A JSON-like value with every URL in it masked (`mask_url`): what may be stored or shown."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {key: mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value


def studio_dir_for(db: str) -> Path:
    """Where `masgraph studio` runs the LangGraph server for `db` (its own thread list lives there):
    `<db>.studio/` beside a SQLite database, else one directory per URL in the data dir."""
    if is_url(db):
        return data_dir() / "studio" / hashlib.sha256(db.encode()).hexdigest()[:16]
    return Path(db).expanduser().resolve().with_name(Path(db).name + ".studio")
