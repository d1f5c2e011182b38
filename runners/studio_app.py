"""Runs inside the LangGraph server (langgraph.json `http.app`): threads started outside it appear in it.

The server keeps its own list of threads (for `langgraph dev`, in `.langgraph_api/` of its working
directory) beside the checkpointer, and answers "thread not found" for a thread that exists only in
the checkpoints, as every `masgraph run` thread, evaluation item and Python thread does at first.
While the server runs, this app registers every such thread with it, every few seconds, through the
SDK's in-process client: under its `graph_id` (so Studio lists it with its graph) and with what the
thread recorded about itself (`runners.thread_space.server_metadata`); a registered thread whose
checkpoints are deleted leaves the server too. Thread ids that are not UUIDs (made by older
versions) are left out: the server cannot hold them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from runners.thread_space import server_metadata
from storage.checkpoints import checkpointer
from storage.paths import default_db

SYNC_SECONDS = float(os.environ.get("MASGRAPH_STUDIO_SYNC_SECONDS", "2"))
log = logging.getLogger("masgraph.studio")


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


async def register_threads(client: Any, saver: Any, known: set[str]) -> tuple[list[str], list[str]]:
    """Register with the server every thread of `saver` not in `known`, and remove from it the known
    threads whose checkpoints are gone (`masgraph runs delete`); returns (registered, removed)."""
    heads = await asyncio.to_thread(saver.thread_heads)
    added, removed = [], []
    for thread_id, head in heads.items():
        if thread_id in known or not _is_uuid(thread_id):
            continue
        metadata = server_metadata(head) or {}
        await client.threads.create(thread_id=thread_id, if_exists="do_nothing", metadata=metadata)
        known.add(thread_id)
        added.append(thread_id)
    for thread_id in sorted(known - set(heads)):
        with contextlib.suppress(Exception):  # already deleted in Studio: nothing to do
            await client.threads.delete(thread_id)
        known.discard(thread_id)
        removed.append(thread_id)
    return added, removed


async def _keep_registering() -> None:
    from langgraph_sdk import get_client

    client = get_client()  # no URL: the server this app runs in, in-process
    known: set[str] = set()
    while True:
        try:
            saver = await asyncio.to_thread(lambda: checkpointer(default_db()))  # may open the database
            added, removed = await register_threads(client, saver, known)
            if added or removed:
                log.info(
                    "threads from outside the server: %d registered, %d removed", len(added), len(removed)
                )
        except Exception as exc:  # the server may still be starting; try again at the next tick
            log.warning("thread registration failed: %r", exc)
        await asyncio.sleep(SYNC_SECONDS)


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(_keep_registering())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


app = Starlette(lifespan=lifespan)
