"""The PostgreSQL saver (optional extra `masgraph[postgres]`): sync and async, with the upkeep methods
the LangGraph server uses (see `storage.savers`). `prune` is the library's; the rest is added here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.checkpoint.postgres import PostgresSaver

from storage.savers import AsyncFromSync, check_prune


class PostgresCheckpointer(AsyncFromSync, PostgresSaver):
    """`PostgresSaver` with async methods, `delete_for_runs`, `copy_thread` and `thread_heads`."""

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        ids = [str(r) for r in run_ids]
        if not ids:
            return
        with self._cursor(pipeline=True) as cur:
            cur.execute(
                "DELETE FROM checkpoint_writes w USING checkpoints c WHERE c.metadata->>'run_id' = ANY(%s) "
                "AND w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns "
                "AND w.checkpoint_id = c.checkpoint_id",
                (ids,),
            )
            cur.execute("DELETE FROM checkpoints WHERE metadata->>'run_id' = ANY(%s)", (ids,))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        ids = check_prune(thread_ids, strategy)
        if strategy != "keep_latest":
            for thread_id in ids:  # one by one, so the thread-delete hooks see each thread
                self.delete_thread(thread_id)
            return
        super().prune(ids, strategy="keep_latest")

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source, target = str(source_thread_id), str(target_thread_id)
        with self._cursor(pipeline=True) as cur:
            cur.execute(
                "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, "
                "type, checkpoint, metadata) SELECT %s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, "
                "type, checkpoint, CASE WHEN metadata ? 'thread_id' "
                "THEN jsonb_set(metadata, '{thread_id}', to_jsonb(%s::text)) ELSE metadata END "
                "FROM checkpoints WHERE thread_id = %s ON CONFLICT DO NOTHING",
                (target, target, source),
            )
            cur.execute(
                "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
                "SELECT %s, checkpoint_ns, channel, version, type, blob FROM checkpoint_blobs "
                "WHERE thread_id = %s ON CONFLICT DO NOTHING",
                (target, source),
            )
            cur.execute(
                "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, "
                "idx, channel, type, blob) SELECT %s, checkpoint_ns, checkpoint_id, task_id, task_path, idx, "
                "channel, type, blob FROM checkpoint_writes WHERE thread_id = %s ON CONFLICT DO NOTHING",
                (target, source),
            )

    def thread_heads(self) -> dict[str, dict[str, Any]]:
        with self._cursor() as cur:
            cur.execute(
                "SELECT DISTINCT ON (thread_id) thread_id, metadata FROM checkpoints "
                "WHERE checkpoint_ns = '' ORDER BY thread_id, checkpoint_id DESC"
            )
            return {row["thread_id"]: dict(row["metadata"] or {}) for row in cur.fetchall()}
