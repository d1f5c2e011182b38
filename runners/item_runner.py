"""What a worker runs: one item's checkpointed graph thread, claimed, run or resumed, and recorded.

Resume rules: an item whose thread stopped mid-graph continues from its last checkpoint
(`invoke(None)`); an item whose graph finished but was not yet recorded is recorded from its final
checkpoint without re-running anything. An item is claimed with a lease first (`storage.leases`),
and the lease is released in the transaction that records it (here, or by a Ray driver that got
the record from its worker: `ItemRunner.compute`); a finished item's KV entries are freed before
its record is written (a crash in between records it from its final checkpoint, no KV needed); `(run_id, item_id)` is unique in the
store and a done item is never recorded again, so no item is recorded twice, whichever worker
(a thread of this process, another `masgraph eval`, a Ray actor) runs it.

A pool of OpenAI-compatible servers (`RunSpec.base_urls`) is spread over the items by position:
item i talks to server i mod n, all its agents to the same one (a server's prefix cache then serves
the whole item, and a resumed item returns to its server); the server is recorded with the item.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from latent_backend.batching import MicroBatcher
from runners.methods import EvalMethod, Outcome, get_method
from runners.thread_space import eval_metadata
from runners.threads import free_thread_kv
from storage.checkpoints import RUN_DURABILITY, compile_with_saver, thread_config
from storage.paths import mask_url
from storage.run_store import RunStore
from tasks import Task, TaskItem

log = logging.getLogger(__name__)
ItemRecord = dict[str, Any]  # one finished item: the keyword arguments of RunStore.record_item


@dataclass(frozen=True)
class RunSpec:
    """What any worker needs to run items of one run (picklable: Ray ships it to its workers)."""

    method: str
    task: str
    options: dict[str, Any]
    db: str
    run_id: str
    keep_kv: bool = False
    batch_size: int = 1
    concurrency: int | None = None
    base_urls: tuple[str, ...] = ()

    @property
    def in_flight(self) -> int:
        """Items one worker runs at once (its item threads)."""
        return max(1, self.batch_size, self.concurrency or 1)


def item_runner(spec: RunSpec, items: Sequence[TaskItem], owner: str) -> ItemRunner:
    """A worker's runner: the method's context, graph and models for `spec` (models are loaded and
    the agents checked against the model's context here: `items` are what is checked)."""
    method = get_method(spec.method)
    context = method.context(spec.options, task=spec.task, db=spec.db)
    task_obj = method.task_for_run(spec.task, context)  # graded by the run's rules (lenient or reference)
    method.prepare(context, items, task_obj)
    batcher = _local_batcher(spec.options)
    if batcher is not None:
        batcher.configure(max_batch=spec.batch_size)
    graph = compile_with_saver(method.build_graph(), spec.db, name=spec.method)
    return ItemRunner(
        graph, method, context, task_obj, RunStore(spec.db), spec.run_id, spec.db, spec.keep_kv, batcher,
        owner, spec.base_urls,
    )  # fmt: skip


def _local_batcher(options: dict[str, Any]) -> MicroBatcher | None:
    """The embedded/local model's micro-batcher, when this run's agents call the local backend."""
    from nodes.chat_models import LOCAL_PREFIX, ChatModelConfig, is_registered

    if options.get("base_url") or is_registered(options.get("model")):
        return None
    from latent_backend.registry import DEFAULT_BACKEND, get_backend

    # Text methods name the local model "local" / "local:<ref>", LatentMAS by its bare reference.
    model_ref = ChatModelConfig(model=options.get("model") or LOCAL_PREFIX).local_model_ref
    return get_backend(model_ref, options.get("backend") or DEFAULT_BACKEND).batcher


@dataclass
class ItemRunner:
    """Runs one item's graph thread and records its outcome (called from a worker's item threads)."""

    graph: Any
    method: EvalMethod
    context: Any
    task: Task
    store: RunStore
    run_id: str
    db: str
    keep_kv: bool
    batcher: MicroBatcher | None
    owner: str  # the name this worker claims items under
    base_urls: tuple[str, ...] = ()  # a pool of servers for the text agents, spread over the items
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    def run(self, position: int, item: TaskItem) -> str:
        """ "recorded" (run here), "skipped" (another process recorded it meanwhile), or "busy"."""
        result = self.compute(position, item)
        if isinstance(result, str):
            return result
        self.store.record_item(self.run_id, **result)
        return "recorded"

    def compute(self, position: int, item: TaskItem) -> ItemRecord | str:
        """Claim the item and run or resume its graph: its record (`RunStore.record_item`'s keywords;
        recording it releases this worker's lease), or "skipped" / "busy" as `run` says."""
        if not self.store.claim_item(self.run_id, item.id, self.owner):
            return "busy"
        if self._recorded_elsewhere(item):
            self.store.release_item(self.run_id, item.id, self.owner)
            return "skipped"
        # While this thread works on its item, the batcher waits for it before running a batch.
        with self.batcher.participant() if self.batcher is not None else contextlib.nullcontext():
            return self._run(position, item)

    def _context_for(self, position: int) -> tuple[Any, str | None]:
        """The run's context, its `base_url` replaced by the pool's server for this item (if any)."""
        if not self.base_urls:
            return self.context, None
        server = self.base_urls[position % len(self.base_urls)]
        return dataclasses.replace(self.context, base_url=server), server

    def _recorded_elsewhere(self, item: TaskItem) -> bool:
        """Done, or failed while this evaluation ran: another process took care of it."""
        status = self.store.item_status(self.run_id, item.id)
        if status is None:
            return False
        state, finished = status
        finished = finished if finished.tzinfo else finished.replace(tzinfo=UTC)
        return state == "done" or finished >= self.since

    def _run(self, position: int, item: TaskItem) -> ItemRecord:
        graph, thread_id = self.graph, self.store.item_thread(self.run_id, item.id)
        config = {**thread_config(thread_id), "metadata": eval_metadata(self.run_id, item.id)}
        context, server = self._context_for(position)
        started = time.perf_counter()
        try:
            snapshot = graph.get_state(config)
            if snapshot.next:  # stopped mid-graph: continue from the last checkpoint
                state = graph.invoke(None, config, context=context, durability=RUN_DURABILITY)
            elif snapshot.values and snapshot.metadata and snapshot.metadata.get("step", -1) >= 0:
                state = snapshot.values  # the graph finished before the crash; only the record is missing
            else:
                payload = self.method.make_input(item, self.task, context)
                state = graph.invoke(payload, config, context=context, durability=RUN_DURABILITY)
            if graph.get_state(config).next:
                raise RuntimeError("the graph stopped at an interrupt; evaluations cannot wait for a person")
            outcome = self.method.outcome(item, state, self.task)
            steps = list(state.get("trace") or [])
        except Exception as exc:  # a failing item fails alone; the run goes on and resume retries it
            log.debug("item %s failed:\n%s", item.id, traceback.format_exc())
            outcome = Outcome(prediction=None, correct=False, error=f"{type(exc).__name__}: {exc}")
            steps = _partial_trace(graph, config)
        if not self.keep_kv and outcome.error is None:  # the item is done: free its caches
            free_thread_kv(thread_id, self.db, getattr(self.context, "kv_dir", None))
        return {
            "item_id": item.id,
            "position": position,
            "group": item.group,
            "question": item.question,
            "gold": item.gold,
            "prediction": outcome.prediction,
            "correct": outcome.correct,
            "record": outcome.record if server is None else {**outcome.record, "base_url": mask_url(server)},
            "steps": steps,
            "seconds": time.perf_counter() - started,
            "error": outcome.error,
            "owner": self.owner,
        }


def _partial_trace(graph: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return list(graph.get_state(config).values.get("trace") or [])
    except Exception:  # the trace is a courtesy on failure; never mask the item's own error
        return []
