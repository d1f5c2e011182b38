"""Item leases: one owner at a time, renewed while alive, released when the item is recorded,
free again when they expire or their owner's process is gone."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from storage.leases import new_owner, owner_is_dead
from storage.run_store import RunStore


def store_with_run(db: str) -> RunStore:
    store = RunStore(db)
    store.open_run("r", method="baseline", task="gsm8k", data=None, options={}, total_items=2)
    return store


def record(store: RunStore, item_id: str, owner: str | None) -> bool:
    return store.record_item(
        "r", item_id=item_id, position=0, group=None, question="q", gold="1", prediction="1",
        correct=True, record={}, steps=[], seconds=0.0, owner=owner,
    )  # fmt: skip


def test_one_owner_at_a_time_until_released_by_the_record(db):
    store = store_with_run(db)
    first, second = new_owner(), new_owner()
    assert store.claim_item("r", "a", first)
    assert not store.claim_item("r", "a", second)
    assert store.claim_item("r", "a", first)  # the owner may claim again
    assert store.claim_item("r", "b", second)  # other items are free
    assert store.live_owners("r") == {first, second}
    assert record(store, "a", first)
    assert store.claim_item("r", "a", second)  # the record released it


def test_expired_leases_are_free_and_renewal_keeps_them(db):
    store = store_with_run(db)
    first, second = new_owner(), new_owner()
    assert store.claim_item("r", "a", first, ttl=0.2)
    with store.lease_keeper(first, ttl=0.2):
        time.sleep(0.6)  # three lease lengths, renewed every 0.05 s
        assert not store.claim_item("r", "a", second)
    # The keeper released the lease at exit.
    assert store.claim_item("r", "a", second, ttl=0.2)
    time.sleep(0.3)  # not renewed: expired
    assert store.claim_item("r", "a", first)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def test_only_one_of_many_concurrent_claimers_wins(db, request, kind):
    db = db if kind == "sqlite" else request.getfixturevalue("postgres_db")
    store = store_with_run(db)
    owners = [new_owner() for _ in range(8)]
    wins: list[str] = []
    barrier = threading.Barrier(len(owners))

    def claim(owner: str) -> None:
        other = RunStore(db)  # its own engine, as another process would have
        barrier.wait()
        if other.claim_item("r", "a", owner):
            wins.append(owner)

    threads = [threading.Thread(target=claim, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert store.live_owners("r") == set(wins)


def test_a_dead_local_owner_is_taken_over_at_once(db):
    store = store_with_run(db)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        dead = f"{socket.gethostname()}/{child.pid}/x"
        assert not owner_is_dead(dead)
        assert store.claim_item("r", "a", dead, ttl=600)
        assert not store.claim_item("r", "a", new_owner())
    finally:
        child.kill()
        child.wait()
    assert owner_is_dead(dead)
    assert store.live_owners("r") == set()
    assert store.claim_item("r", "a", new_owner())
    assert not owner_is_dead(f"another-host/{child.pid}/x")  # elsewhere, only expiry frees it
