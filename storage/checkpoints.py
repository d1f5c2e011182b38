"""LangGraph checkpointers: one SQLite saver per database per process (PostgreSQL by URL).

Runners compile graphs with `checkpointer(db)` and invoke with `durability="sync"`, so a crash
inside node N leaves node N-1's checkpoint on disk. `studio_checkpointer` is the
async factory that `langgraph.json` names, so Studio's runs persist to the same database.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph

from storage.database import check_database, database_errors, retry_races, sqlite_file
from storage.paths import default_db, is_url

RUN_DURABILITY = "sync"
BUSY_TIMEOUT_SECONDS = 30
SETUP_LOCK_ID = 0x6D67_6370  # PostgreSQL advisory lock serializing the checkpoint tables' creation

_savers: dict[str, BaseCheckpointSaver] = {}
_lock = threading.Lock()


def _sqlite_path(db: str) -> str:
    return str(sqlite_file(db))


def checkpointer(db: str | None = None) -> BaseCheckpointSaver:
    """The process-wide saver for `db` (a SQLite path or a postgresql:// URL)."""
    key = db or default_db()
    with _lock:
        if key not in _savers:
            check_database(key)  # one line naming the path or the (masked) URL
            with database_errors(key):
                _savers[key] = _open_saver(key)
        return _savers[key]


def _open_saver(db: str) -> BaseCheckpointSaver:
    if is_url(db):
        from langgraph.checkpoint.postgres import PostgresSaver  # check_database: the extra is there
        from psycopg import Connection

        conn = Connection.connect(db, autocommit=True, prepare_threshold=0)
        saver = PostgresSaver(conn)
        # One process at a time runs the saver's migrations (a session lock, held only meanwhile).
        conn.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK_ID,))
        try:
            retry_races(saver.setup, db)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_ID,))
        return saver
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(_sqlite_path(db), check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
    saver = SqliteSaver(conn)
    retry_races(saver.setup, db)  # creates the tables and switches the file to WAL
    return saver


def compile_with_saver(builder: StateGraph, db: str | None = None, **kwargs: Any):
    """Compile a graph builder for a runner: checkpointed to `db`."""
    return builder.compile(checkpointer=checkpointer(db), **kwargs)


def thread_config(thread_id: str, **configurable: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, **configurable}}


@contextlib.asynccontextmanager
async def studio_checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """Async SQLite saver for `langgraph dev` (named in langgraph.json); database = $MASGRAPH_DB."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(_sqlite_path(default_db())) as saver:
        await saver.setup()
        yield saver
