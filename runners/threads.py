"""Deleting what a thread or an evaluation run left behind: checkpoints, KV-cache entries, run-store rows.

One owner for the whole lifecycle, so no caller frees one kind of state and forgets another. A
thread's KV entries are filed under its thread id (exactly), beside the database; importing this
module makes every saver of `storage.checkpoints` free them when it deletes the thread, also when
Studio / `langgraph dev` deletes it (langgraph.json names `studio_checkpointer` below).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver

from storage import checkpoints
from storage.paths import default_db, kv_dir_for
from storage.run_store import RunStore


def free_thread_kv(thread_id: str, db: str, kv_dir: str | Path | None = None) -> int:
    """Free a thread's KV entries (memory, queued writes, files); returns how many files went."""
    folder = Path(kv_dir) if kv_dir else kv_dir_for(db)
    if "latent_backend.kv_store" not in sys.modules and not folder.is_dir():
        return 0  # no store in this process and nothing on disk: no need to load torch
    from latent_backend.kv_store import kv_store

    return kv_store(folder).delete_namespace(thread_id)


def _free_kv_of_deleted_thread(db: str, thread_id: str) -> None:
    free_thread_kv(thread_id, db)


checkpoints.on_thread_delete(_free_kv_of_deleted_thread)


def delete_thread(thread_id: str, db: str | None = None, kv_dir: str | Path | None = None) -> None:
    """Delete a thread's checkpoints and the KV-cache entries it created (`kv_dir`: where they
    are, when not beside `db`)."""
    db = db or default_db()
    checkpoints.checkpointer(db).delete_thread(thread_id)  # the delete hook frees the KV entries
    if kv_dir:
        free_thread_kv(thread_id, db, kv_dir)


def delete_run(run_id: str, db: str | None = None) -> None:
    """Delete an evaluation run: every thread it started, recorded or not (checkpoints and KV
    entries, by exact thread id), then its rows."""
    db = db or default_db()
    store = RunStore(db)
    run = store.get_run(run_id)  # a clear error for an unknown run
    kv_dir = (run.options or {}).get("kv_dir")
    for thread_id in store.item_threads(run_id):
        delete_thread(thread_id, db, kv_dir)
    store.delete_run(run_id)


@contextlib.asynccontextmanager
async def studio_checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """The checkpointer langgraph.json names: storage's async saver, with this module's hook."""
    async with checkpoints.studio_checkpointer() as saver:
        yield saver
