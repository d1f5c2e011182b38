"""Checkpoint savers for sync and async callers alike, with the upkeep `langgraph dev` asks for.

The library's `SqliteSaver` and `PostgresSaver` are sync; their async methods refuse to run, so a
graph compiled with them cannot be `ainvoke`d. The savers here run each async method's sync twin
in a worker thread (`asyncio.to_thread`): one saver per database per process then serves the
CLI, evaluations, Python callers (sync or async) and the LangGraph server on its event loop,
without blocking that loop. Both libraries' savers lock their connection, so the threads are safe.

They also implement what the LangGraph server uses to keep a database tidy:
`delete_for_runs` (checkpoints of rolled-back runs, found by the `run_id` the server writes into
checkpoint metadata), `prune` (`keep_latest`: the newest checkpoint of each namespace and its
writes; `delete`: the whole thread) and `copy_thread`, plus `thread_heads()`, every thread with
the metadata of its newest checkpoint, which is how threads started outside the server are
registered with it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver

PRUNE_STRATEGIES = ("keep_latest", "delete", "delete_all")


def check_prune(thread_ids: Sequence[str], strategy: str) -> list[str]:
    if isinstance(thread_ids, str):
        raise TypeError("thread_ids must be a sequence of thread ids, not a str")
    if strategy not in PRUNE_STRATEGIES:
        raise ValueError(f"unknown prune strategy {strategy!r}; use one of {', '.join(PRUNE_STRATEGIES)}")
    return [str(t) for t in thread_ids]


class AsyncFromSync:
    """Async saver methods that run the sync ones in a worker thread."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)  # type: ignore[attr-defined]

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,  # noqa: A002 - the saver API's name
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        # The sync generator holds the connection's lock while it yields: drain it in the thread.
        rows = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))  # type: ignore[attr-defined]
        )
        for row in rows:
            yield row

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)  # type: ignore[attr-defined]

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)  # type: ignore[attr-defined]

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)  # type: ignore[attr-defined]

    async def adelete_for_runs(self, run_ids: Iterable[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, list(run_ids))  # type: ignore[attr-defined]

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)  # type: ignore[attr-defined]

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)  # type: ignore[attr-defined]

    async def aget_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Any:
        return await asyncio.to_thread(self.get_delta_channel_history, config=config, channels=channels)  # type: ignore[attr-defined]


class SqliteCheckpointer(AsyncFromSync, SqliteSaver):
    """`SqliteSaver` with async methods and the server's upkeep methods."""

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        ids = [str(r) for r in run_ids]
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        owned = f"json_extract(CAST(metadata AS TEXT), '$.run_id') IN ({marks})"
        with self.cursor() as cur:
            cur.execute(
                "DELETE FROM writes WHERE (thread_id, checkpoint_ns, checkpoint_id) IN "
                f"(SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints WHERE {owned})",
                ids,
            )
            cur.execute(f"DELETE FROM checkpoints WHERE {owned}", ids)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        ids = check_prune(thread_ids, strategy)
        if strategy != "keep_latest":
            for thread_id in ids:
                self.delete_thread(thread_id)
            return
        older = (
            "checkpoint_id < (SELECT MAX(m.checkpoint_id) FROM checkpoints m "
            "WHERE m.thread_id = c.thread_id AND m.checkpoint_ns = c.checkpoint_ns)"
        )
        with self.cursor() as cur:
            for thread_id in ids:
                cur.execute(
                    "DELETE FROM writes WHERE thread_id = ? AND (thread_id, checkpoint_ns, checkpoint_id) IN "
                    f"(SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints c "
                    f"WHERE c.thread_id = ? AND {older})",
                    (thread_id, thread_id),
                )
                cur.execute(f"DELETE FROM checkpoints AS c WHERE c.thread_id = ? AND {older}", (thread_id,))
                # The kept checkpoint's parent is gone: it becomes the root of its history.
                cur.execute(
                    "UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = ?", (thread_id,)
                )

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source, target = str(source_thread_id), str(target_thread_id)
        with self.cursor() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
                "parent_checkpoint_id, type, checkpoint, metadata) "
                "SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, "
                "CASE WHEN json_extract(CAST(metadata AS TEXT), '$.thread_id') IS NULL THEN metadata "
                "ELSE CAST(json_set(CAST(metadata AS TEXT), '$.thread_id', ?) AS BLOB) END "
                "FROM checkpoints WHERE thread_id = ?",
                (target, target, source),
            )
            cur.execute(
                "INSERT OR REPLACE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, "
                "idx, channel, type, value) SELECT ?, checkpoint_ns, checkpoint_id, task_id, task_path, idx, "
                "channel, type, value FROM writes WHERE thread_id = ?",
                (target, source),
            )

    def thread_heads(self) -> dict[str, dict[str, Any]]:
        """Every thread id with the metadata of its newest root checkpoint."""
        with self.cursor(transaction=False) as cur:
            cur.execute(
                "SELECT c.thread_id, CAST(c.metadata AS TEXT) FROM checkpoints c "
                "JOIN (SELECT thread_id, MAX(checkpoint_id) AS head FROM checkpoints "
                "WHERE checkpoint_ns = '' GROUP BY thread_id) h "
                "ON c.thread_id = h.thread_id AND c.checkpoint_ns = '' AND c.checkpoint_id = h.head"
            )
            return {thread_id: json.loads(meta) if meta else {} for thread_id, meta in cur.fetchall()}
