"""Evaluation with resume: one checkpointed graph thread per item, results in the run store.

The driver side: load and check everything, open the run, hand the pending items to an executor,
summarize. Items the run store holds as done are skipped; how one item is claimed, run or resumed
and recorded is `runners.item_runner` (the same for every executor).

Executors: "local" (the default) runs the items on a thread pool of this process, with one model
backend and its micro-batcher; "ray" runs them on Ray actors (`runners.ray_executor`), each a
worker like this process. Several processes may work on one run at once (the same `--run-id`):
each item is claimed with a lease before its graph runs (`storage.leases`), so one of them runs
it and the others wait until it is recorded; a killed process's items are taken over once its
leases lapse.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from runners.item_runner import ItemRunner, RunSpec, item_runner
from runners.methods import get_method
from storage.leases import lease_seconds, new_owner
from storage.paths import default_db
from storage.run_store import RunStore
from tasks import TaskError, TaskItem, get_task, load_items

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
    base_urls: Sequence[str] = (),
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
) -> EvalSummary:
    """Run (or resume, or join) an evaluation; returns the summary over every item of the run.

    Everything that can be checked is checked before the run is stored: the options, the data,
    the database, the models (they are loaded, by every worker) and whether the agents fit the
    model's context. Items are claimed with leases, so another process may work on the same run at
    the same time: each item is run by one of them, and each waits until the other's items are
    recorded. `base_urls`: a pool of OpenAI-compatible servers for the text agents (replaces the
    `base_url` option). `executor="ray"`: `workers` Ray actors (`address`: the cluster's; None
    starts a local one) run the items.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    if executor == "local" and (workers != 1 or address is not None):
        raise ValueError("--workers and --address are for --executor ray")
    method = get_method(method_name)
    get_task(task)  # fail fast on an unknown task, before anything is stored
    items = load_items(data, task=task, limit=limit, reference=reference)
    if not items:
        raise TaskError(
            f"{data}: no items to evaluate" + (f" (--limit {limit})" if limit is not None else "")
        )
    db = db or default_db()
    options = dict(options or {})
    if base_urls:
        options["base_url"] = base_urls[0]  # what the checks see; each item gets its own below
    method.context(options, task=task, db=db)  # bad options fail here, before a worker starts
    store = RunStore(db)
    spec = RunSpec(
        method=method_name,
        task=task,
        options=options,
        db=db,
        run_id=run_id or new_run_id(method_name, task),
        keep_kv=keep_kv,
        batch_size=batch_size,
        concurrency=concurrency,
        base_urls=tuple(base_urls),
    )
    pool = _executor(spec, items, executor, workers, address)
    try:
        return _evaluate(spec, store, items, pool, data=data, progress=progress)
    finally:
        pool.close()


def _evaluate(
    spec: RunSpec, store: RunStore, items: list[TaskItem], pool: Executor, *, data: str, progress: bool
) -> EvalSummary:
    stored_options = {**spec.options, **({"base_url": list(spec.base_urls)} if spec.base_urls else {})}
    store.open_run(
        spec.run_id,
        method=spec.method,
        task=spec.task,
        data=data,
        options=stored_options,
        total_items=len(items),
    )
    done = store.finished_item_ids(spec.run_id)
    pending = [(position, item) for position, item in enumerate(items) if item.id not in done]
    started = time.perf_counter()
    bar = _progress(
        total=len(items),
        initial=len(items) - len(pending),
        enabled=progress,
        desc=f"{spec.method}/{spec.task}",
    )
    try:
        pool.run(pending, bar)
    except BaseException as exc:
        # Ctrl-C or a crash: what is recorded stays, --run-id resumes the rest. The run is
        # "running" still while another process works on it.
        with contextlib.suppress(Exception):  # never mask the error that stopped the run
            if not store.live_owners(spec.run_id) - pool.owners():
                status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                store.set_status(spec.run_id, status)
        raise
    finally:
        bar.close()
    summary = summarize(
        store,
        spec.run_id,
        spec.method,
        spec.task,
        seconds=time.perf_counter() - started,
        skipped=len(items) - len(pending),
    )
    store.finish_run(spec.run_id, "completed", _metrics(summary))
    return summary


EXECUTORS = ("local", "ray")


class Executor(Protocol):
    def run(self, pending: list[tuple[int, TaskItem]], bar: Any) -> None: ...
    def owners(self) -> set[str]: ...
    def close(self) -> None: ...


class LocalExecutor:
    """The items on a thread pool of this process (one model backend, one micro-batcher)."""

    def __init__(self, spec: RunSpec, items: Sequence[TaskItem]) -> None:
        self.spec, self.owner = spec, new_owner()
        self.runner = item_runner(spec, items, self.owner)

    def run(self, pending: list[tuple[int, TaskItem]], bar: Any) -> None:
        with self.runner.store.lease_keeper(self.owner):
            _run_items(self.runner, pending, workers=self.spec.in_flight, bar=bar)

    def owners(self) -> set[str]:
        return {self.owner}

    def close(self) -> None:
        pass


def _executor(
    spec: RunSpec, items: Sequence[TaskItem], kind: str, workers: int, address: str | None
) -> Executor:
    if kind == "ray":
        from runners.ray_executor import RayExecutor

        return RayExecutor(spec, items, workers=workers, address=address)
    return LocalExecutor(spec, items)


def _run_items(runner: ItemRunner, pending: list[tuple[int, TaskItem]], *, workers: int, bar: Any) -> None:
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
