"""One thread space for the CLI, Python and Studio: what a thread records about itself, read back.

Every checkpoint a runner writes names its graph under `graph_id` (the key the LangGraph server uses
too; `compile_with_saver(..., name=...)` adds it). A `masgraph run` thread also records its task,
options and item (`masgraph_*` keys, JSON text, since checkpoint metadata keeps only primitive
values), and an evaluation item its run. So `masgraph resume` rebuilds a thread's graph and context
from the checkpoint alone, wherever the thread started: in Studio, the server writes the `graph_id`
and copies the run's context fields (the primitive ones: numbers, strings, booleans) into the
checkpoint metadata, which is where they are read from.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from typing import Any

from runners.methods import METHODS, get_method
from storage.checkpoints import checkpointer, thread_config
from storage.paths import mask_secrets
from tasks import TaskItem

GRAPH_KEY = "graph_id"
TASK_KEY, OPTIONS_KEY, ITEM_KEY = "masgraph_task", "masgraph_options", "masgraph_item"
RUN_KEY, ITEM_ID_KEY = "masgraph_run", "masgraph_item_id"
HISTORY_LIMIT = 1000  # checkpoints searched for the thread's origin, newest first


class ThreadIdError(ValueError):
    pass


def check_thread_id(thread_id: str) -> str:
    """A thread id the LangGraph server accepts too (a UUID), in its canonical form."""
    try:
        return str(uuid.UUID(thread_id))
    except ValueError:
        raise ThreadIdError(
            f"thread id {thread_id!r} is not a UUID; the LangGraph server (Studio) accepts only UUIDs, "
            "so masgraph does too (leave --thread out for a new one)"
        ) from None


def run_metadata(task: str, options: dict[str, Any], item: TaskItem) -> dict[str, str]:
    """Checkpoint metadata of a `masgraph run` thread."""
    return {
        TASK_KEY: task,
        OPTIONS_KEY: json.dumps(mask_secrets(options), ensure_ascii=False, default=str),  # as the run store
        ITEM_KEY: json.dumps(item.to_dict(), ensure_ascii=False, default=str),
    }


def eval_metadata(run_id: str, item_id: str) -> dict[str, str]:
    """Checkpoint metadata of an evaluation item's thread."""
    return {RUN_KEY: run_id, ITEM_ID_KEY: item_id}


@dataclass
class ThreadOrigin:
    """Where a thread came from: its graph, and (when recorded) its task, options and item."""

    method: str
    task: str | None
    options: dict[str, Any]
    item: dict[str, Any] | None


def thread_origin(db: str, thread_id: str) -> ThreadOrigin | None:
    """What the thread's checkpoints say about it (None: no checkpoint names a known graph).

    The newest `masgraph run` record wins; a thread without one (started in Studio or the SDK) gets
    the context fields of its newest checkpoint that names a graph as its options.
    """
    fallback: ThreadOrigin | None = None
    for snapshot in checkpointer(db).list(thread_config(thread_id), limit=HISTORY_LIMIT):
        metadata = snapshot.metadata or {}
        method = metadata.get(GRAPH_KEY)
        if method not in METHODS:
            continue
        if OPTIONS_KEY in metadata:
            item = json.loads(metadata[ITEM_KEY]) if ITEM_KEY in metadata else None
            return ThreadOrigin(method, metadata.get(TASK_KEY), json.loads(metadata[OPTIONS_KEY]), item)
        if fallback is None:
            fields = {f.name for f in dataclasses.fields(get_method(method).context_class)}
            options = {k: v for k, v in metadata.items() if k in fields}
            fallback = ThreadOrigin(method, options.get("task"), options, None)
    return fallback


def item_from_state(thread_id: str, state: dict[str, Any]) -> TaskItem:
    """The item of a thread started from a graph input (Studio, SDK): the question it was asked."""
    question = state.get("question") or state.get("debate_topic") or state.get("source") or ""
    return TaskItem(id=thread_id, question=str(question), gold=None, options=state.get("options") or None)


def server_metadata(head: dict[str, Any]) -> dict[str, Any] | None:
    """The LangGraph server's metadata for a thread from its newest checkpoint's metadata (None: the
    thread runs no known graph). Studio lists a thread under its `graph_id`."""
    method = head.get(GRAPH_KEY)
    if method not in METHODS:
        return None
    metadata: dict[str, Any] = {GRAPH_KEY: method}
    if OPTIONS_KEY in head:
        metadata["masgraph_context"] = json.loads(head[OPTIONS_KEY])
        metadata[TASK_KEY] = head.get(TASK_KEY)
    for key in (RUN_KEY, ITEM_ID_KEY):
        if key in head:
            metadata[key] = head[key]
    return metadata
