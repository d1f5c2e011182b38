"""Deleting what a thread or an evaluation run left behind: checkpoints, KV-cache entries, run-store rows.

One owner for the whole lifecycle, so no caller frees one kind of state and forgets another.
"""

from __future__ import annotations

from storage.checkpoints import checkpointer
from storage.paths import default_db
from storage.run_store import RunStore


def delete_thread(thread_id: str, db: str | None = None) -> None:
    """Delete a thread's checkpoints and the KV-cache entries it created."""
    from latent_backend.kv_store import kv_store_for_db

    db = db or default_db()
    checkpointer(db).delete_thread(thread_id)
    kv_store_for_db(db).delete_namespace(thread_id)


def delete_run(run_id: str, db: str | None = None) -> None:
    """Delete an evaluation run: every thread it started, recorded or not (checkpoints and KV
    entries, by exact thread id), then its rows."""
    db = db or default_db()
    store = RunStore(db)
    store.get_run(run_id)  # a clear error for an unknown run
    for thread_id in store.item_threads(run_id):
        delete_thread(thread_id, db)
    store.delete_run(run_id)
