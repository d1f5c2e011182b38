"""Evaluation with resume: one checkpointed graph thread per item, results in the run store.

Resume rules: items the run store holds as done are skipped; an item whose thread stopped
mid-graph continues from its last checkpoint (`invoke(None)`); an item whose graph finished but
was not yet recorded is recorded from its final checkpoint without re-running anything.
`(run_id, item_id)` is unique in the store, so nothing is ever recorded twice.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

from latent_backend.batching import MicroBatcher
from runners.methods import EvalMethod, Outcome, get_method
from runners.threads import free_thread_kv
from storage.checkpoints import RUN_DURABILITY, compile_with_saver, thread_config
from storage.paths import default_db
from storage.run_store import RunStore
from tasks import Task, TaskItem, get_task, load_items

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
    """Run (or resume) an evaluation; returns the summary over every item of the run.

    `options` are the method's context fields; they are validated before anything is stored.
    """
    method = get_method(method_name)
    task_obj = get_task(task)  # fail fast on an unknown task, before anything is stored
    items = load_items(data, task=task, limit=limit, reference=reference)
    db = db or default_db()
    options = dict(options or {})
    context = method.context(options, task=task, db=db)
    store = RunStore(db)
    run_id = run_id or new_run_id(method_name, task)
    store.open_run(run_id, method=method_name, task=task, data=data, options=options, total_items=len(items))
    runner = _ItemRunner(
        graph=compile_with_saver(method.build_graph(), db),
        method=method,
        context=context,
        task=task_obj,
        store=store,
        run_id=run_id,
        db=db,
        keep_kv=keep_kv,
        batcher=_local_batcher(options),
    )
    if runner.batcher is not None:
        runner.batcher.configure(max_batch=batch_size)
    done = store.finished_item_ids(run_id)
    pending = [(position, item) for position, item in enumerate(items) if item.id not in done]

    started = time.perf_counter()
    bar = _progress(
        total=len(items), initial=len(items) - len(pending), enabled=progress, desc=f"{method_name}/{task}"
    )
    pool = ThreadPoolExecutor(max_workers=max(1, batch_size, concurrency or 1), thread_name_prefix="item")
    try:
        futures = [pool.submit(runner.run, position, item) for position, item in pending]
        for future in as_completed(futures):
            future.result()
            bar.update(1)
    except BaseException:
        # Ctrl-C or a crash: start no further item; what is recorded stays, --run-id resumes the rest.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        bar.close()
    summary = summarize(
        store,
        run_id,
        method_name,
        task,
        seconds=time.perf_counter() - started,
        skipped=len(items) - len(pending),
    )
    store.finish_run(run_id, "completed", _metrics(summary))
    return summary


def _local_batcher(options: dict[str, Any]) -> MicroBatcher | None:
    """The embedded/local model's micro-batcher, when this run's agents call the local backend."""
    from nodes.chat_models import is_registered

    if options.get("base_url") or is_registered(options.get("model")):
        return None
    from latent_backend import get_backend

    return get_backend(options.get("model")).batcher


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

    def run(self, position: int, item: TaskItem) -> None:
        # While this thread works on its item, the batcher waits for it before running a batch.
        with self.batcher.participant() if self.batcher is not None else contextlib.nullcontext():
            self._run(position, item)

    def _run(self, position: int, item: TaskItem) -> None:
        graph, thread_id = self.graph, self.store.item_thread(self.run_id, item.id)
        config = thread_config(thread_id)
        started = time.perf_counter()
        try:
            snapshot = graph.get_state(config)
            if snapshot.next:  # stopped mid-graph: continue from the last checkpoint
                state = graph.invoke(None, config, context=self.context, durability=RUN_DURABILITY)
            elif snapshot.values and snapshot.metadata and snapshot.metadata.get("step", -1) >= 0:
                state = snapshot.values  # the graph finished before the crash; only the record is missing
            else:
                payload = self.method.make_input(item, self.task)
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
