"""The same test on SQLite and on PostgreSQL: `@pytest.mark.parametrize("kind", DB_KINDS)` and
`database(kind, tmp_path, request)` give a fresh database of that kind (PostgreSQL: a new database on
the throwaway server of the `postgres_db` fixture, skipped with the reason where it cannot start).
`query(db, sql, *params)` reads either kind with `?` placeholders."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

DB_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def database(kind: str, tmp_path: Path, request: pytest.FixtureRequest, name: str = "masgraph.db") -> str:
    if kind == "sqlite":
        return str(tmp_path / name)
    return request.getfixturevalue("postgres_db")


def query(db: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows of `sql`; a table that does not exist yet reads as no rows."""
    if db.startswith("postgresql://"):
        import psycopg

        try:
            with psycopg.connect(db) as conn:
                return [tuple(row) for row in conn.execute(sql.replace("?", "%s"), params).fetchall()]
        except psycopg.errors.UndefinedTable:
            return []
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def checkpoints_per_thread(db: str) -> dict[str, int]:
    """Root-namespace checkpoints of every thread."""
    rows = query(
        db, "SELECT thread_id, COUNT(*) FROM checkpoints WHERE checkpoint_ns = '' GROUP BY thread_id"
    )
    return dict(rows)
