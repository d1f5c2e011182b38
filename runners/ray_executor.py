"""Evaluation on Ray: N actors (workers), each with its own model backend, run the items of one run.

What runs where. The driver (the `masgraph eval --executor ray` process) loads the items, checks
the options, opens the run, feeds the items to the workers, shows the one progress bar and writes
the run store (the run, each item's record, the summary). Each worker is a Ray actor: it builds the graph, its checkpointer and its model
backend once (`num_gpus=1` on a cluster with GPUs, so one worker per GPU; on CPUs the cluster's
CPUs are shared out), and runs up to `RunSpec.in_flight` items at once on its own threads, whose
model calls its own micro-batcher batches together.

Who records. The driver: a worker claims an item with a lease (`storage.leases`) before its graph
runs, checkpoints the graph in the shared database as it goes, and returns the item's record; the
driver writes it, releasing the worker's lease in the same transaction. An item whose worker dies
before its record arrives is run again elsewhere, from its checkpoints (a finished graph is only
recorded). No item is recorded twice: `(run_id, item_id)` is unique, and a done item is never
recorded again (`RunStore.record_item`). Through the same leases, a Ray run and a plain `masgraph
eval --run-id` can work on one run together.

A dead worker (kill -9, a lost node) fails the calls it had in flight with `ActorDiedError`. Ray
reports an actor dead once its process is gone, so the driver frees the dead worker's leases at
once (on any host) and hands its items to the workers left; they continue each item from its last
checkpoint in the shared database, or record a graph that had finished without running it again.
(A worker Ray cannot reach is dropped too, but its leases are left to lapse: it may still run.)
Dead workers are not replaced; the run fails only when none is left (`--run-id` resumes it).

Shared state: checkpoints, run store and leases live in the run's database. A cluster of several
hosts needs a postgresql:// database (a SQLite file is refused there); a SQLite file serves the
workers of one host. LatentMAS KV caches stay in each worker's local KV store; a worker that
continues another's item rebuilds the entries it lacks from their recipes (the handles in state).
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from runners.item_runner import ItemRecord, RunSpec, item_runner
from storage.database import DatabaseError, describe
from storage.leases import LeaseKeeper, lease_seconds, new_owner
from storage.paths import is_url
from storage.run_store import RunStore
from tasks import TaskItem

log = logging.getLogger(__name__)
RAY_EXTRA = "the ray executor needs the extra: pip install 'masgraph[ray]'"
CLOSE_SECONDS = 30.0
# Ray forwards the workers' output to the driver: no model-loading bars or notices there.
WORKER_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class ItemWorker:
    """One worker (a Ray actor): one model backend, `in_flight` item threads, its own lease owner."""

    def __init__(self, spec: RunSpec, cpus: float | None = None) -> None:
        self.spec, self.owner, self.cpus = spec, new_owner(), cpus
        self.runner: Any = None
        self.keeper: LeaseKeeper | None = None

    def prepare(self, items: list[TaskItem]) -> str:
        """Load the models and check the agents fit them (errors go to the driver); the owner name."""
        self.runner = item_runner(self.spec, items, self.owner)
        if self.cpus is not None and "torch" in sys.modules:
            # The backend gives torch every core of the host; a worker gets its share of them.
            import torch

            torch.set_num_threads(max(1, int(self.cpus)))
        self.keeper = self.runner.store.lease_keeper(self.owner)
        self.keeper.__enter__()
        return self.owner

    def run(self, position: int, item: TaskItem) -> ItemRecord | str:
        """The item's record for the driver to write, or "busy" / "skipped" (`ItemRunner.compute`)."""
        return self.runner.compute(position, item)

    def close(self) -> None:
        if self.keeper is not None:
            self.keeper.__exit__(None, None, None)


class RayExecutor:
    """Runs pending items on `workers` Ray actors; see the module docstring."""

    def __init__(
        self, spec: RunSpec, items: Sequence[TaskItem], *, workers: int, address: str | None
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError(RAY_EXTRA) from None
        self.ray, self.spec = ray, spec
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        self.store = RunStore(spec.db)
        self.workers: list[Any] = []
        self.alive: set[int] = set()
        self.owner_of: list[str] = []
        try:
            self._start(items, workers)
        except BaseException:
            self.close()
            raise

    def _start(self, items: Sequence[TaskItem], count: int) -> None:
        nodes = [node for node in self.ray.nodes() if node.get("Alive")]
        if len(nodes) > 1 and not is_url(self.spec.db):
            raise DatabaseError(
                f"database {describe(self.spec.db)} is a local file, but the Ray cluster has {len(nodes)} "
                "hosts: give them a shared postgresql:// database (--db)"
            )
        placement = _placement(self.ray.cluster_resources(), count, gpu=_uses_local_model(self.spec))
        actor = self.ray.remote(ItemWorker).options(
            max_concurrency=self.spec.in_flight + 1, runtime_env={"env_vars": WORKER_ENV}, **placement
        )
        self.workers = [actor.remote(self.spec, placement.get("num_cpus")) for _ in range(count)]
        self.alive = set(range(count))
        shared_items = self.ray.put(list(items))
        self.owner_of = self._get([worker.prepare.remote(shared_items) for worker in self.workers])

    def owners(self) -> set[str]:
        return {self.owner_of[index] for index in self.alive if index < len(self.owner_of)}

    def run(self, pending: list[tuple[int, TaskItem]], bar: Any) -> None:
        """Feed the items to the workers; busy items (another process holds them) come back later,
        the items of a worker that died go to the others."""
        queue: deque[tuple[int, TaskItem]] = deque(pending)
        later: list[tuple[float, int, TaskItem]] = []  # (when to try again, position, item)
        in_flight: dict[Any, tuple[int, int, TaskItem]] = {}  # call -> (worker, position, item)
        load = dict.fromkeys(self.alive, 0)
        while queue or later or in_flight:
            now = time.monotonic()
            queue.extend((position, item) for when, position, item in later if when <= now)
            later = [entry for entry in later if entry[0] > now]
            while queue and self.alive and min(load[i] for i in self.alive) < self.spec.in_flight:
                index = min(self.alive, key=lambda i: load[i])
                position, item = queue.popleft()
                in_flight[self.workers[index].run.remote(position, item)] = (index, position, item)
                load[index] += 1
            if not in_flight:
                time.sleep(0.1)
                continue
            done, _ = self.ray.wait(list(in_flight), num_returns=1, timeout=0.5)
            for call in done:
                index, position, item = in_flight.pop(call)
                load[index] -= 1
                try:
                    status = self._get(call)
                except self.ray.exceptions.RayActorError as exc:
                    self._lost(index, dead=isinstance(exc, self.ray.exceptions.ActorDiedError))
                    queue.appendleft((position, item))
                    continue
                if status == "busy":
                    later.append((time.monotonic() + min(2.0, lease_seconds() / 4), position, item))
                    continue
                if isinstance(status, dict):
                    self.store.record_item(self.spec.run_id, **status)
                bar.update(1)

    def _lost(self, index: int, *, dead: bool) -> None:
        """Stop feeding a worker that failed a call; free its leases when Ray says it is dead (an
        unreachable one's leases lapse unless it comes back and renews them)."""
        if index not in self.alive:
            return
        self.alive.discard(index)
        if dead:
            self.store.release_owner(self.owner_of[index])
        log.warning(
            "Ray worker %s died; %d worker(s) go on with its items", self.owner_of[index], len(self.alive)
        )
        if not self.alive:
            raise RuntimeError("every Ray worker died; run the same command with --run-id to resume the run")

    def _get(self, calls: Any) -> Any:
        """ray.get, with an error raised inside a worker re-raised as itself (one clear line)."""
        try:
            return self.ray.get(calls)
        except self.ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, Exception):
                raise exc.cause from None
            raise

    def close(self) -> None:
        """Release the workers' leases and stop them (and the local cluster this driver started)."""
        ray = self.ray
        closing = [self.workers[index].close.remote() for index in self.alive]
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=CLOSE_SECONDS)
        for worker in self.workers:
            ray.kill(worker)
        self.workers, self.alive = [], set()
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False


def _uses_local_model(spec: RunSpec) -> bool:
    return spec.method == "latent_mas" or not spec.options.get("base_url")


def _placement(resources: dict[str, float], workers: int, *, gpu: bool) -> dict[str, Any]:
    """Ray resources of one worker: a GPU each where the cluster has GPUs (and the agents run a local
    model), else an equal share of the CPUs (the worker gives torch that many threads)."""
    gpus = int(resources.get("GPU", 0))
    if gpu and gpus:
        if workers > gpus:
            raise ValueError(f"--workers {workers}: the Ray cluster has {gpus} GPU(s), one per worker")
        return {"num_gpus": 1}
    cpus = float(resources.get("CPU", 1.0))
    return {"num_cpus": cpus / workers, "scheduling_strategy": "SPREAD"}
