"""Evaluation with resume: one checkpointed graph thread per item, results in the run store.

Resume rules: items the run store holds as done are skipped; an item whose thread stopped
mid-graph continues from its last checkpoint (`invoke(None)`); an item whose graph finished but
was not yet recorded is recorded from its final checkpoint without re-running anything.
`(run_id, item_id)` is unique in the store, so nothing is ever recorded twice.

Several processes may work on one run (the same `--run-id`, or workers sharing it): each item is
claimed with a lease before its graph runs (`storage.leases`), so one process runs it and the
others wait until it is recorded; a killed process's items are taken over once its leases lapse.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from latent_backend.batching import MicroBatcher
from runners.methods import EvalMethod, Outcome, get_method
from runners.thread_space import eval_metadata
from runners.threads import free_thread_kv
from storage.checkpoints import RUN_DURABILITY, compile_with_saver, thread_config
from storage.leases import lease_seconds, new_owner
from storage.paths import default_db
from storage.run_store import RunStore
from tasks import Task, TaskError, TaskItem, get_task, load_items

log = logging.getLogger(__name__)


@dataclass
class EvalSummary:
    run_id: str
    method: str
    task: str
    n: int
    correct: int
    accuracy: float
    failed: int
    prompt_tokens: int
    generated_tokens: int
    seconds: float  # wall-clock of this invocation
    item_seconds: float  # sum of per-item wall-clock over the whole run (items overlap when batched)
    skipped: int  # items already done before this invocation (resume)
    groups: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id(method: str, task: str) -> str:
    return f"{method}-{task}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def evaluate(
    method_name: str,
    *,
    task: str,
    data: str,
    limit: int | None = None,
    batch_size: int = 1,
    concurrency: int | None = None,
    run_id: str | None = None,
    db: str | None = None,
    options: dict[str, Any] | None = None,
    progress: bool = True,
    keep_kv: bool = False,
    reference: str | None = None,
) -> EvalSummary:
    """Run (or resume, or join) an evaluation; returns the summary over every item of the run.

    Everything that can be checked is checked before the run is stored: the options, the data,
    the database, the models (they are loaded) and whether the agents fit the model's context.
    Items are claimed with leases, so another process may work on the same run at the same time:
    each item is run by one of them, and each waits until the other's items are recorded.
    """
    method = get_method(method_name)
    task_obj = get_task(task)  # fail fast on an unknown task, before anything is stored
    items = load_items(data, task=task, limit=limit, reference=reference)
    if not items:
        raise TaskError(
            f"{data}: no items to evaluate" + (f" (--limit {limit})" if limit is not None else "")
        )
    db = db or default_db()
    options = dict(options or {})
    context = method.context(options, task=task, db=db)
    task_obj = method.task_for_run(task, context)  # graded by the run's rules (lenient or reference)
    store = RunStore(db)
    method.prepare(context, items, task_obj)
    graph = compile_with_saver(method.build_graph(), db, name=method_name)
    batcher = _local_batcher(options)
    run_id = run_id or new_run_id(method_name, task)
    store.open_run(run_id, method=method_name, task=task, data=data, options=options, total_items=len(items))
    owner = new_owner()
    runner = _ItemRunner(graph, method, context, task_obj, store, run_id, db, keep_kv, batcher, owner)
    if batcher is not None:
        batcher.configure(max_batch=batch_size)
    done = store.finished_item_ids(run_id)
    pending = [(position, item) for position, item in enumerate(items) if item.id not in done]

    bar = _progress(
        total=len(items), initial=len(items) - len(pending), enabled=progress, desc=f"{method_name}/{task}"
    )
    try:
        with store.lease_keeper(owner):
            _run_items(runner, pending, workers=max(1, batch_size, concurrency or 1), bar=bar)
    except BaseException as exc:
        # Ctrl-C or a crash: what is recorded stays, --run-id resumes the rest. The run is
        # "running" still while another process works on it.
        with contextlib.suppress(Exception):  # never mask the error that stopped the run
            if not store.live_owners(run_id) - {owner}:
                store.set_status(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    finally:
        bar.close()
    summary = summarize(
        store,
        run_id,
        method_name,
        task,
        seconds=time.perf_counter() - runner.started,
        skipped=len(items) - len(pending),
    )
    store.finish_run(run_id, "completed", _metrics(summary))
    return summary


def _run_items(runner: _ItemRunner, pending: list[tuple[int, TaskItem]], *, workers: int, bar: Any) -> None:
    """Run the pending items on a thread pool; items another process holds are tried again until
    that process has recorded them (or died, and its leases expired)."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="item")
    try:
        while pending:
            futures = {
                pool.submit(runner.run, position, item): (position, item) for position, item in pending
            }
            pending = []
            for future in as_completed(futures):
                if future.result() == "busy":
                    pending.append(futures[future])
                else:
                    bar.update(1)
            if pending:
                log.info("waiting for %d item(s) another process is working on", len(pending))
                time.sleep(min(2.0, lease_seconds() / 4))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # start no further item
        raise
    finally:
        pool.shutdown(wait=True)


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
class _ItemRunner:
    """Runs one item's graph thread and records its outcome (called from the item thread pool)."""

    graph: Any
    method: EvalMethod
    context: Any
    task: Task
    store: RunStore
    run_id: str
    db: str
    keep_kv: bool
    batcher: MicroBatcher | None
    owner: str  # the name this evaluation claims items under
    started: float = field(default_factory=time.perf_counter)
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    def run(self, position: int, item: TaskItem) -> str:
        """ "recorded" (run here), "skipped" (another process recorded it meanwhile), or "busy"."""
        if not self.store.claim_item(self.run_id, item.id, self.owner):
            return "busy"
        if self._recorded_elsewhere(item):
            self.store.release_item(self.run_id, item.id, self.owner)
            return "skipped"
        # While this thread works on its item, the batcher waits for it before running a batch.
        with self.batcher.participant() if self.batcher is not None else contextlib.nullcontext():
            self._run(position, item)
        return "recorded"

    def _recorded_elsewhere(self, item: TaskItem) -> bool:
        """Done, or failed while this evaluation ran: another process took care of it."""
        status = self.store.item_status(self.run_id, item.id)
        if status is None:
            return False
        state, finished = status
        finished = finished if finished.tzinfo else finished.replace(tzinfo=UTC)
        return state == "done" or finished >= self.since

    def _run(self, position: int, item: TaskItem) -> None:
        graph, thread_id = self.graph, self.store.item_thread(self.run_id, item.id)
        config = {**thread_config(thread_id), "metadata": eval_metadata(self.run_id, item.id)}
        started = time.perf_counter()
        try:
            snapshot = graph.get_state(config)
            if snapshot.next:  # stopped mid-graph: continue from the last checkpoint
                state = graph.invoke(None, config, context=self.context, durability=RUN_DURABILITY)
            elif snapshot.values and snapshot.metadata and snapshot.metadata.get("step", -1) >= 0:
                state = snapshot.values  # the graph finished before the crash; only the record is missing
            else:
                payload = self.method.make_input(item, self.task, self.context)
                state = graph.invoke(payload, config, context=self.context, durability=RUN_DURABILITY)
            if graph.get_state(config).next:
                raise RuntimeError("the graph stopped at an interrupt; evaluations cannot wait for a person")
            outcome = self.method.outcome(item, state, self.task)
            steps = list(state.get("trace") or [])
        except Exception as exc:  # a failing item fails alone; the run goes on and resume retries it
            log.debug("item %s failed:\n%s", item.id, traceback.format_exc())
            outcome = Outcome(prediction=None, correct=False, error=f"{type(exc).__name__}: {exc}")
            steps = _partial_trace(graph, config)
        self.store.record_item(
            self.run_id,
            item_id=item.id,
            position=position,
            group=item.group,
            question=item.question,
            gold=item.gold,
            prediction=outcome.prediction,
            correct=outcome.correct,
            record=outcome.record,
            steps=steps,
            seconds=time.perf_counter() - started,
            error=outcome.error,
            owner=self.owner,
        )
        if not self.keep_kv and outcome.error is None:  # the item is done: free its caches
            free_thread_kv(thread_id, self.db, getattr(self.context, "kv_dir", None))


def _partial_trace(graph: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return list(graph.get_state(config).values.get("trace") or [])
    except Exception:  # the trace is a courtesy on failure; never mask the item's own error
        return []


def summarize(
    store: RunStore, run_id: str, method: str, task: str, *, seconds: float, skipped: int
) -> EvalSummary:
    rows = store.items(run_id)
    groups: dict[str, dict[str, float]] = {}
    for row in rows:
        for group in ("all", row.group) if row.group else ("all",):
            entry = groups.setdefault(group, {"n": 0, "correct": 0})
            entry["n"] += 1
            entry["correct"] += int(bool(row.correct))
    for entry in groups.values():
        entry["accuracy"] = round(entry["correct"] / entry["n"], 4) if entry["n"] else 0.0
    correct = sum(int(bool(r.correct)) for r in rows)
    return EvalSummary(
        run_id=run_id,
        method=method,
        task=task,
        n=len(rows),
        correct=correct,
        accuracy=round(correct / len(rows), 4) if rows else 0.0,
        failed=sum(r.status == "failed" for r in rows),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        generated_tokens=sum(r.generated_tokens for r in rows),
        seconds=round(seconds, 3),
        item_seconds=round(sum(r.seconds for r in rows), 3),
        skipped=skipped,
        groups=groups,
    )


def _metrics(summary: EvalSummary) -> dict[tuple[str, str], float]:
    metrics = {
        (name, "all"): float(getattr(summary, name))
        for name in ("n", "correct", "accuracy", "failed", "prompt_tokens", "generated_tokens", "seconds")
    }
    for group, entry in summary.groups.items():
        metrics[("accuracy", group)] = entry["accuracy"]
        metrics[("n", group)] = entry["n"]
    return metrics


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="item", dynamic_ncols=True)
