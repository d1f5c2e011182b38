"""LangGraph checkpointers: one saver per database per process, SQLite by path, PostgreSQL by URL.

Runners compile graphs with `checkpointer(db)` and invoke with `durability="sync"`, so a crash
inside node N leaves node N-1's checkpoint on disk. The savers (`storage.savers`) serve sync and
async calls, so a graph from `compile_with_saver` supports `invoke`/`stream` and `ainvoke`/`astream`.
`studio_checkpointer` is the factory `langgraph.json` names: the LangGraph server uses the same
saver on the same database ($MASGRAPH_DB, a path or a postgresql:// URL), so a thread started in
the CLI, in Python or in Studio is one thread space. Every saver made here runs the hooks
registered with `on_thread_delete` after it deletes a thread, whoever asks (the CLI, Studio, a
prune), so what a thread left outside the checkpoint tables (its KV caches) goes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph

from storage.database import check_database, database_errors, retry_races, sqlite_file
from storage.paths import KV_DIR_CONFIG_KEY, default_db, is_url, kv_dir_for, mask_secrets
from storage.savers import SqliteCheckpointer

RUN_DURABILITY = "sync"
BUSY_TIMEOUT_SECONDS = 30
SETUP_LOCK_ID = 0x6D67_6370  # PostgreSQL advisory lock serializing the checkpoint tables' creation

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
    """`saver`, whose delete_thread also runs the thread-delete hooks. Its async twin, and prune's
    whole-thread strategies, call delete_thread (`storage.savers`), so they run them too."""
    delete = saver.delete_thread

    def delete_thread(thread_id: str) -> None:
        delete(thread_id)
        for hook in list(_delete_hooks):
            hook(db, str(thread_id))

    saver.delete_thread = delete_thread  # type: ignore[method-assign]
    return saver


def _sqlite_path(db: str) -> str:
    return str(sqlite_file(db))


def checkpointer(db: str | None = None) -> BaseCheckpointSaver:
    """The process-wide saver for `db` (a SQLite path or a postgresql:// URL)."""
    key = db or default_db()
    with _lock:
        if key not in _savers:
            check_database(key)  # one line naming the path or the (masked) URL
            with database_errors(key):
                _savers[key] = _with_delete_hooks(_open_saver(key), key)
        return _savers[key]


def _open_saver(db: str) -> BaseCheckpointSaver:
    if is_url(db):
        from psycopg import Connection  # check_database: the extra is there

        from storage.postgres_saver import PostgresCheckpointer

        conn = Connection.connect(db, autocommit=True, prepare_threshold=0)
        saver = PostgresCheckpointer(conn)
        # One process at a time runs the saver's migrations (a session lock, held only meanwhile).
        conn.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK_ID,))
        try:
            retry_races(saver.setup, db)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_ID,))
        return saver
    conn = sqlite3.connect(_sqlite_path(db), check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
    saver = SqliteCheckpointer(conn)
    retry_races(saver.setup, db)  # creates the tables and switches the file to WAL
    return saver


def compile_with_saver(builder: StateGraph, db: str | None = None, **kwargs: Any):
    """Compile a graph builder for a runner: checkpointed to `db`, its KV caches beside `db`.

    `name` (a graph id of langgraph.json, e.g. "debate") names the graph in traces and goes into
    every checkpoint's metadata as `graph_id`, the key the LangGraph server files threads under.
    """
    db = db or default_db()
    graph = builder.compile(checkpointer=checkpointer(db), **kwargs).with_config(
        configurable={KV_DIR_CONFIG_KEY: str(kv_dir_for(db))}
    )
    name = kwargs.get("name")
    return graph.with_config(metadata={"graph_id": name}) if name else graph


def thread_config(thread_id: str, context: Any = None, **configurable: Any) -> dict[str, Any]:
    """The run config of a thread. Given the run's `context` (a graph's context dataclass), its plain
    fields (text, numbers, booleans) go into the checkpoints' metadata, as the LangGraph server
    records a run's context, so `masgraph resume` rebuilds the same context from the thread alone."""
    config: dict[str, Any] = {"configurable": {"thread_id": thread_id, **configurable}}
    if context is not None:
        values = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
        plain = {k: v for k, v in values.items() if isinstance(v, str | int | float | bool)}
        config["metadata"] = mask_secrets(plain)  # an endpoint URL's password never reaches a checkpoint
    return config


@contextlib.asynccontextmanager
async def studio_checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """The saver of $MASGRAPH_DB for `langgraph dev` (named in langgraph.json): the very saver the
    CLI uses, opened off the event loop (a PostgreSQL URL connects over the network)."""
    yield await asyncio.to_thread(checkpointer, default_db())
