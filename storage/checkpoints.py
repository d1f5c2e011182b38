"""LangGraph checkpointers: one SQLite saver per database per process (PostgreSQL by URL).

Runners compile graphs with `checkpointer(db)` and invoke with `durability="sync"`, so a crash
inside node N leaves node N-1's checkpoint on disk. `studio_checkpointer` is the async saver for
`langgraph dev` (langgraph.json names runners.threads.studio_checkpointer, which wraps it), so
Studio's runs persist to the same database. Every saver made here runs the hooks registered with
`on_thread_delete` after it deletes a thread, whoever asks (the CLI, Studio), so what a thread
left outside the checkpoint tables (its KV caches) goes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph

from storage.paths import KV_DIR_CONFIG_KEY, default_db, is_url, kv_dir_for

RUN_DURABILITY = "sync"
BUSY_TIMEOUT_SECONDS = 30

_savers: dict[str, BaseCheckpointSaver] = {}
_lock = threading.Lock()

ThreadDeleteHook = Callable[[str, str], None]  # (database, thread id)
_delete_hooks: list[ThreadDeleteHook] = []
SaverT = TypeVar("SaverT", bound=BaseCheckpointSaver)


def on_thread_delete(hook: ThreadDeleteHook) -> None:
    """Run `hook(db, thread_id)` after any saver made here deletes a thread."""
    if hook not in _delete_hooks:
        _delete_hooks.append(hook)


def _with_delete_hooks(saver: SaverT, db: str) -> SaverT:
    """`saver`, whose delete_thread / adelete_thread also run the thread-delete hooks."""
    delete, adelete = saver.delete_thread, saver.adelete_thread

    def delete_thread(thread_id: str) -> None:
        delete(thread_id)
        for hook in list(_delete_hooks):
            hook(db, str(thread_id))

    async def adelete_thread(thread_id: str) -> None:
        await adelete(thread_id)
        for hook in list(_delete_hooks):
            await asyncio.to_thread(hook, db, str(thread_id))  # hooks touch files: off the event loop

    saver.delete_thread = delete_thread  # type: ignore[method-assign]
    saver.adelete_thread = adelete_thread  # type: ignore[method-assign]
    return saver


def _sqlite_path(db: str) -> str:
    path = Path(db).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path.resolve())


def checkpointer(db: str | None = None) -> BaseCheckpointSaver:
    """The process-wide saver for `db` (a SQLite path or a postgresql:// URL)."""
    key = db or default_db()
    with _lock:
        if key not in _savers:
            _savers[key] = _with_delete_hooks(_open_saver(key), key)
        return _savers[key]


def _open_saver(db: str) -> BaseCheckpointSaver:
    if is_url(db):
        if not db.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"unsupported database URL {db!r}: use a SQLite path or postgresql://...")
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg import Connection
        except ImportError as exc:  # pragma: no cover - optional extra
            raise ImportError("PostgreSQL needs the extra: pip install 'masgraph[postgres]'") from exc
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
    """Compile a graph builder for a runner: checkpointed to `db`, its KV caches beside `db`."""
    db = db or default_db()
    graph = builder.compile(checkpointer=checkpointer(db), **kwargs)
    return graph.with_config(configurable={KV_DIR_CONFIG_KEY: str(kv_dir_for(db))})


def thread_config(thread_id: str, **configurable: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, **configurable}}


@contextlib.asynccontextmanager
async def studio_checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """Async SQLite saver for `langgraph dev` (named in langgraph.json); database = $MASGRAPH_DB."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    db = default_db()
    async with AsyncSqliteSaver.from_conn_string(_sqlite_path(db)) as saver:
        await saver.setup()
        yield _with_delete_hooks(saver, db)
