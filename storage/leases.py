"""Item leases: several processes (or workers) share one evaluation run, and no item runs twice.

A process claims an item before it runs the item's graph. The claim is one conditional UPDATE of
the item's `mg_leases` row (unowned, already the claimer's, or expired), so of two claimers exactly
one wins, on SQLite and PostgreSQL alike. The owner renews all its leases while it works
(`LeaseKeeper`, a heartbeat thread) and releases each in the transaction that records the item;
a process that dies stops renewing, so its items are free once their lease expires, or at once
when the dead owner ran on this host (its process id no longer runs).

Expiry times are the claimer's wall clock in epoch seconds: hosts sharing one run need clocks
that agree to well within the lease time (`MASGRAPH_LEASE_SECONDS`, default 60; NTP does).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage.run_tables import Lease

log = logging.getLogger(__name__)


def lease_seconds() -> float:
    """How long a claim lasts without renewal: $MASGRAPH_LEASE_SECONDS, default 60."""
    return float(os.environ.get("MASGRAPH_LEASE_SECONDS") or 60.0)


def new_owner() -> str:
    """A claimer's name: host, process id and a random part (unique per evaluation call)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True only when `owner` is certainly gone: a process of this host that no longer runs."""
    host, _, rest = owner.partition("/")
    pid_text = rest.split("/", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    try:  # a killed child that its parent has not reaped yet still answers kill(0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state == "Z"


def claim(sessions: sessionmaker[Session], run_id: str, item_id: str, owner: str, ttl: float) -> bool:
    """Take the item's lease for `owner` (True), unless another live owner holds it (False)."""
    _ensure_row(sessions, run_id, item_id)
    now = time.time()
    with sessions() as session, session.begin():
        free = or_(Lease.owner.is_(None), Lease.owner == owner, Lease.expires < now)
        if _take(session, run_id, item_id, free, owner, now + ttl):
            return True
        holder = session.scalar(select(Lease.owner).where(_row(run_id, item_id)))
        if holder is not None and owner_is_dead(holder):
            log.info("item %s of run %s: its owner %s is gone; taking it over", item_id, run_id, holder)
            return _take(session, run_id, item_id, Lease.owner == holder, owner, now + ttl)
    return False


def release(session: Session, run_id: str, item_id: str, owner: str) -> None:
    """Give the item's lease back (inside the caller's transaction, e.g. the one recording the item)."""
    session.execute(
        update(Lease)
        .where(_row(run_id, item_id), Lease.owner == owner)
        .values(owner=None, expires=None)
        .execution_options(synchronize_session=False)
    )


def renew(sessions: sessionmaker[Session], owner: str, ttl: float) -> int:
    """Extend every lease `owner` holds; returns how many it holds."""
    with sessions() as session, session.begin():
        result: Any = session.execute(
            update(Lease)
            .where(Lease.owner == owner)
            .values(expires=time.time() + ttl)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)


def release_all(sessions: sessionmaker[Session], owner: str) -> None:
    with sessions() as session, session.begin():
        session.execute(
            update(Lease)
            .where(Lease.owner == owner)
            .values(owner=None, expires=None)
            .execution_options(synchronize_session=False)
        )


def live_owners(sessions: sessionmaker[Session], run_id: str) -> set[str]:
    """Owners holding an unexpired lease on an item of the run."""
    with sessions() as session:
        query = select(Lease.owner).where(
            Lease.run_id == run_id, Lease.owner.is_not(None), Lease.expires >= time.time()
        )
        return {owner for owner in session.scalars(query) if not owner_is_dead(owner)}


class LeaseKeeper:
    """Renews an owner's leases every quarter lease while it works; releases them all at exit."""

    def __init__(self, sessions: sessionmaker[Session], owner: str, ttl: float) -> None:
        self.sessions, self.owner, self.ttl = sessions, owner, ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        try:
            release_all(self.sessions, self.owner)
        except Exception as exc:  # the leases then expire on their own
            log.warning("could not release the leases of %s: %s", self.owner, exc)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                renew(self.sessions, self.owner, self.ttl)
            except Exception as exc:  # a busy database: the next beat tries again
                log.warning("lease renewal failed: %s", exc)


def _row(run_id: str, item_id: str) -> Any:
    return (Lease.run_id == run_id) & (Lease.item_id == item_id)


def _take(session: Session, run_id: str, item_id: str, condition: Any, owner: str, expires: float) -> bool:
    result: Any = session.execute(
        update(Lease)
        .where(_row(run_id, item_id), condition)
        .values(owner=owner, expires=expires)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _ensure_row(sessions: sessionmaker[Session], run_id: str, item_id: str) -> None:
    with sessions() as session:
        try:
            with session.begin():
                if session.scalar(select(Lease.id).where(_row(run_id, item_id))) is None:
                    session.add(Lease(run_id=run_id, item_id=item_id))
        except IntegrityError:
            pass  # a concurrent claimer inserted the row first
