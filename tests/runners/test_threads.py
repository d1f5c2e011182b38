"""Lifecycle: deleting a run or a thread frees exactly its checkpoints, KV entries and rows."""

import asyncio
import sqlite3

import torch

from latent_backend.kv_store import Entry, kv_store_for_db
from runners.threads import delete_run, studio_checkpointer
from storage.checkpoints import compile_with_saver, thread_config
from storage.run_store import RunStore
from tests.fakes import counter_graph

LONG_RUN_ID = "r" * 100


def entry() -> Entry:
    return Entry({"k.0": torch.ones(1, 3, 4), "v.0": torch.ones(1, 3, 4)})


def start_run(db: str, run_id: str) -> list[str]:
    """A run with a recorded item and one that was started but never recorded; each has
    checkpoints and two KV entries. Returns the two thread ids."""
    store = RunStore(db)
    store.open_run(run_id, method="latent_mas", task="gsm8k", data="d", options={}, total_items=2)
    graph = compile_with_saver(counter_graph(), db)
    kv = kv_store_for_db(db)
    threads = []
    for item_id in ("done", "unrecorded"):
        thread_id = store.item_thread(run_id, item_id)
        graph.invoke({"n": 1}, thread_config(thread_id), durability="sync")
        for index in range(2):
            kv.put(f"{thread_id}-{index}", thread_id, entry())
        threads.append(thread_id)
    common = {"position": 0, "group": None, "question": "q", "gold": "1", "record": {}, "seconds": 1.0}
    store.record_item(run_id, item_id="done", prediction="1", correct=True, steps=[], **common)
    kv.flush()
    return threads


def checkpoint_count(db: str, thread_id: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?", (thread_id,)).fetchone()[
            0
        ]


def kv_files(db: str, thread_id: str) -> int:
    return sum(1 for _ in kv_store_for_db(db).root.rglob(f"{thread_id}-*.safetensors"))


def test_runs_delete_removes_exactly_that_runs_checkpoints_kv_entries_and_rows(db):
    runs = {run_id: start_run(db, run_id) for run_id in ("R", "R_2", "R:2", LONG_RUN_ID)}
    delete_run("R", db)
    store = RunStore(db)
    assert {run.id for run in store.list_runs()} == {"R_2", "R:2", LONG_RUN_ID}
    assert store.item_threads("R") == [] and store.items("R") == []
    for run_id, threads in runs.items():
        for thread_id in threads:
            present = run_id != "R"
            assert (checkpoint_count(db, thread_id) > 0) == present, (run_id, thread_id)
            assert kv_files(db, thread_id) == (2 if present else 0), (run_id, thread_id)
        if run_id != "R":
            assert sorted(store.item_threads(run_id)) == sorted(threads)
            assert [item.item_id for item in store.items(run_id)] == ["done"]

    delete_run(LONG_RUN_ID, db)
    assert {run.id for run in RunStore(db).list_runs()} == {"R_2", "R:2"}
    assert all(kv_files(db, t) == 0 and checkpoint_count(db, t) == 0 for t in runs[LONG_RUN_ID])
    assert all(kv_files(db, t) == 2 for t in runs["R_2"] + runs["R:2"])


def test_a_studio_thread_deletion_frees_the_threads_kv_files(tmp_path, monkeypatch):
    db = str(tmp_path / "studio.db")
    monkeypatch.setenv("MASGRAPH_DB", db)
    kv = kv_store_for_db(db)

    async def scenario() -> None:
        async with studio_checkpointer() as saver:
            graph = counter_graph().compile(checkpointer=saver)
            for thread_id in ("gone", "kept"):
                await graph.ainvoke({"n": 1}, thread_config(thread_id))
                kv.put(f"{thread_id}-0", thread_id, entry())
            kv.flush()
            await saver.adelete_thread("gone")  # what `langgraph dev` calls when Studio deletes a thread
            assert (await graph.aget_state(thread_config("gone"))).values == {}
            assert (await graph.aget_state(thread_config("kept"))).values == {"n": 2}

    asyncio.run(scenario())
    assert kv_files(db, "gone") == 0 and not kv.exists("gone-0", "gone")
    assert kv_files(db, "kept") == 1
