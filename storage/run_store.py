"""The run store: evaluation runs, their items, per-agent steps and results (SQLAlchemy).

SQLite by default (the same file as the checkpoints), PostgreSQL by URL with the optional extra.
An item is written in one transaction with its steps, and (run_id, item_id) is unique, so a
resumed run can neither lose nor duplicate an item.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage import leases
from storage.database import create_tables, open_engine
from storage.paths import default_db, mask_secrets
from storage.run_tables import Base, Item, ItemThread, Result, Run, Step, Thread, item_thread_id

__all__ = ["Item", "Run", "RunStore", "RunStoreError", "Step", "Thread", "item_thread_id"]


class RunStoreError(ValueError):
    pass


STEP_COLUMNS = (
    "agent",
    "role",
    "prompt_tokens",
    "generated_tokens",
    "latent_steps",
    "kv_positions",
    "seconds",
    "failure",
)


class RunStore:
    """Runs, items, steps, results and threads of one database; options are stored with every URL's
    credentials masked. Items are claimed with leases (`storage.leases`) so that several processes
    can share a run."""

    def __init__(self, db: str | None = None) -> None:
        self.db = db or default_db()
        self.engine = open_engine(self.db)
        create_tables(self.engine, Base.metadata, self.db)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    # -- runs ------------------------------------------------------------------------------
    def open_run(
        self,
        run_id: str,
        *,
        method: str,
        task: str,
        data: str | None,
        options: dict[str, Any],
        total_items: int,
    ) -> tuple[Run, bool]:
        """Create the run, or return the existing one to resume (same method and task only)."""
        try:
            return self._open_run(run_id, method, task, data, mask_secrets(options), total_items)
        except IntegrityError:  # another process created the same run a moment ago: join it
            return self._open_run(run_id, method, task, data, mask_secrets(options), total_items)

    def _open_run(
        self, run_id: str, method: str, task: str, data: str | None, options: Any, total_items: int
    ) -> tuple[Run, bool]:
        with self.session() as session, session.begin():
            run = session.get(Run, run_id)
            if run is None:
                run = Run(
                    id=run_id,
                    method=method,
                    task=task,
                    data=data,
                    options=options,
                    total_items=total_items,
                    status="running",
                )
                session.add(run)
                return run, False
            if (run.method, run.task) != (method, task):
                raise RunStoreError(
                    f"run {run_id!r} is a {run.method}/{run.task} run; it cannot be resumed "
                    f"as {method}/{task}"
                )
            run.status = "running"
            run.total_items = max(run.total_items, total_items)
            return run, True

    def get_run(self, run_id: str) -> Run:
        with self.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise RunStoreError(f"no run {run_id!r} in {self.db}")
            return run

    def list_runs(self) -> list[Run]:
        with self.session() as session:
            return list(session.scalars(select(Run).order_by(Run.created_at.desc())))

    def finish_run(self, run_id: str, status: str, metrics: dict[tuple[str, str], float]) -> None:
        with self.session() as session, session.begin():
            run = session.get(Run, run_id)
            run.status = status
            for result in list(run.results):
                session.delete(result)
            session.flush()
            for (metric, group), value in metrics.items():
                session.add(Result(run_id=run_id, metric=metric, group=group, value=float(value)))

    def results(self, run_id: str) -> dict[tuple[str, str], float]:
        with self.session() as session:
            rows = session.scalars(select(Result).where(Result.run_id == run_id))
            return {(r.metric, r.group): r.value for r in rows}

    def delete_run(self, run_id: str) -> None:
        with self.session() as session, session.begin():
            run = session.get(Run, run_id)
            if run is None:
                raise RunStoreError(f"no run {run_id!r} in {self.db}")
            session.delete(run)

    def set_status(self, run_id: str, status: str) -> None:
        with self.session() as session, session.begin():
            run = session.get(Run, run_id)
            if run is not None:
                run.status = status

    # -- leases (storage.leases) ----------------------------------------------------------------
    def claim_item(self, run_id: str, item_id: str, owner: str, ttl: float | None = None) -> bool:
        """Take the item for `owner`; False while another live process holds it."""
        return leases.claim(self._sessions, run_id, item_id, owner, ttl or leases.lease_seconds())

    def release_item(self, run_id: str, item_id: str, owner: str) -> None:
        with self.session() as session, session.begin():
            leases.release(session, run_id, item_id, owner)

    def release_owner(self, owner: str) -> None:
        """Free every lease `owner` holds (a worker known to be dead: its items may run elsewhere now)."""
        leases.release_all(self._sessions, owner)

    def lease_keeper(self, owner: str, ttl: float | None = None) -> leases.LeaseKeeper:
        """Keeps `owner`'s leases alive while it works (a context manager); releases them at exit."""
        return leases.LeaseKeeper(self._sessions, owner, ttl or leases.lease_seconds())

    def live_owners(self, run_id: str) -> set[str]:
        return leases.live_owners(self._sessions, run_id)

    def item_status(self, run_id: str, item_id: str) -> tuple[str, datetime] | None:
        """(done | failed, when it was recorded) of a recorded item, None when it is not recorded."""
        with self.session() as session:
            query = select(Item.status, Item.finished_at).where(
                Item.run_id == run_id, Item.item_id == item_id
            )
            row = session.execute(query).first()
            return None if row is None else (row[0], row[1])

    def recorded_count(self, run_id: str) -> int:
        with self.session() as session:
            return int(
                session.scalar(select(func.count()).select_from(Item).where(Item.run_id == run_id)) or 0
            )

    # -- single-run threads -------------------------------------------------------------------
    def save_thread(
        self, thread_id: str, *, method: str, options: dict[str, Any], item: dict[str, Any]
    ) -> None:
        with self.session() as session, session.begin():
            existing = session.get(Thread, thread_id)
            if existing is not None and existing.method != method:
                raise RunStoreError(
                    f"thread {thread_id!r} already runs the {existing.method} graph, not {method}"
                )
            if existing is None:
                session.add(Thread(id=thread_id, method=method, options=mask_secrets(options), item=item))

    def get_thread(self, thread_id: str) -> Thread:
        with self.session() as session:
            thread = session.get(Thread, thread_id)
            if thread is None:
                raise RunStoreError(f"no thread {thread_id!r} in {self.db} (start it with `masgraph run`)")
            return thread

    # -- item threads --------------------------------------------------------------------------
    def item_thread(self, run_id: str, item_id: str) -> str:
        """The item's graph thread id, registered with the run before the graph first runs."""
        thread_id = item_thread_id(run_id, item_id)
        with contextlib.suppress(IntegrityError), self.session() as session, session.begin():
            query = select(ItemThread).where(ItemThread.run_id == run_id, ItemThread.item_id == item_id)
            if session.scalar(query) is None:  # (a concurrent registration of the same row is fine)
                session.add(ItemThread(run_id=run_id, item_id=item_id, thread_id=thread_id))
        return thread_id

    def item_threads(self, run_id: str) -> list[str]:
        """Every thread the run started, recorded or not."""
        with self.session() as session:
            return list(session.scalars(select(ItemThread.thread_id).where(ItemThread.run_id == run_id)))

    # -- items -----------------------------------------------------------------------------
    def finished_item_ids(self, run_id: str) -> set[str]:
        with self.session() as session:
            query = select(Item.item_id).where(Item.run_id == run_id, Item.status == "done")
            return set(session.scalars(query))

    def record_item(
        self,
        run_id: str,
        *,
        item_id: str,
        position: int,
        group: str | None,
        question: str | None,
        gold: Any,
        prediction: str | None,
        correct: bool | None,
        record: dict[str, Any],
        steps: list[dict[str, Any]],
        seconds: float,
        error: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """Write one finished item and its steps atomically; False if it was already recorded.

        A failed item is replaced when its retry is recorded (resume retries failures). `owner`'s
        lease on the item is released in the same transaction.
        """
        with self.session() as session, session.begin():
            if owner is not None:
                leases.release(session, run_id, item_id, owner)
            query = select(Item).where(Item.run_id == run_id, Item.item_id == item_id)
            existing = session.scalar(query)
            if existing is not None:
                if existing.status == "done":
                    return False
                session.delete(existing)
                session.flush()
            item = Item(
                run_id=run_id,
                item_id=item_id,
                position=position,
                group=group,
                question=question,
                gold=gold,
                prediction=prediction,
                correct=correct,
                record=record,
                status="failed" if error else "done",
                error=error,
                seconds=seconds,
                prompt_tokens=sum(int(s.get("prompt_tokens") or 0) for s in steps),
                generated_tokens=sum(int(s.get("generated_tokens") or 0) for s in steps),
            )
            for seq, step in enumerate(steps):
                known = {k: step.get(k) for k in STEP_COLUMNS}
                extra = {k: v for k, v in step.items() if k not in STEP_COLUMNS}
                item.steps.append(Step(seq=seq, **known, extra=extra))
            session.add(item)
            return True

    def items(self, run_id: str) -> list[Item]:
        with self.session() as session:
            query = select(Item).where(Item.run_id == run_id).order_by(Item.position)
            return list(session.scalars(query))

    def steps(self, run_id: str, item_id: str) -> list[Step]:
        with self.session() as session:
            item_pk = session.scalar(select(Item.id).where(Item.run_id == run_id, Item.item_id == item_id))
            return list(session.scalars(select(Step).where(Step.item_pk == item_pk).order_by(Step.seq)))

    def iter_export(self, run_id: str) -> Iterator[dict[str, Any]]:
        self.get_run(run_id)
        with self.session() as session:
            query = select(Item).where(Item.run_id == run_id).order_by(Item.position)
            for item in session.scalars(query):
                yield {
                    "run_id": run_id,
                    "item_id": item.item_id,
                    "position": item.position,
                    "group": item.group,
                    "status": item.status,
                    "question": item.question,
                    "gold": item.gold,
                    "prediction": item.prediction,
                    "correct": item.correct,
                    "prompt_tokens": item.prompt_tokens,
                    "generated_tokens": item.generated_tokens,
                    "seconds": item.seconds,
                    "error": item.error,
                    "record": item.record,
                    "steps": [
                        {**{k: getattr(s, k) for k in STEP_COLUMNS}, **(s.extra or {})} for s in item.steps
                    ],
                }

    def export_jsonl(self, run_id: str, out: TextIO) -> int:
        count = 0
        for row in self.iter_export(run_id):
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
        return count
