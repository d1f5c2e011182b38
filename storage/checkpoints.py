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

from storage.database import check_database, database_errors, sqlite_file
from storage.paths import default_db, is_url

RUN_DURABILITY = "sync"
BUSY_TIMEOUT_SECONDS = 30

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
        saver.setup()
        return saver
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(_sqlite_path(db), check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
    saver = SqliteSaver(conn)
    saver.setup()  # creates the tables and switches the file to WAL
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
