import sqlite3

import pytest
import torch
from langgraph.graph import END, START, StateGraph

from latent_backend.kv_store import Entry, kv_store_for_db
from runners.threads import delete_thread
from storage.checkpoints import checkpointer, compile_with_saver, thread_config
from storage.run_store import RunStore, RunStoreError
from tests.fakes import Counter, counter_graph


def test_one_saver_per_database_in_wal_mode(db):
    assert checkpointer(db) is checkpointer(db)
    compile_with_saver(counter_graph(), db).invoke({"n": 1}, thread_config("t"), durability="sync")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id='t'").fetchone()[0] > 0


def test_deleting_a_thread_frees_its_checkpoints_and_kv_entries(db):
    graph = compile_with_saver(counter_graph(), db)
    graph.invoke({"n": 1}, thread_config("gone"), durability="sync")
    graph.invoke({"n": 1}, thread_config("kept"), durability="sync")
    store = kv_store_for_db(db)
    entry = Entry({"k.0": torch.zeros(1, 2, 4), "v.0": torch.zeros(1, 2, 4)})
    store.put("gone-entry", "gone", entry)
    store.put("kept-entry", "kept", entry)
    store.flush()
    delete_thread("gone", db)
    assert graph.get_state(thread_config("gone")).values == {}
    assert graph.get_state(thread_config("kept")).values == {"n": 2}
    assert not store.exists("gone-entry", "gone") and store.exists("kept-entry", "kept")
    assert [p.stem for p in store.root.rglob("*.safetensors")] == ["kept-entry"]


def test_compiled_graphs_tell_their_nodes_where_the_kv_caches_of_their_database_live(tmp_path):
    from langgraph.config import get_config

    from storage.paths import KV_DIR_CONFIG_KEY, kv_dir_for

    seen = []
    builder = StateGraph(Counter)
    builder.add_node("step", lambda state: seen.append(get_config()["configurable"][KV_DIR_CONFIG_KEY]) or {})
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    db = str(tmp_path / "runs.db")
    compile_with_saver(builder, db).invoke({"n": 1}, thread_config("t"), durability="sync")
    assert seen == [str(kv_dir_for(db))] == [str(tmp_path / "runs.db.kv")]


def test_run_store_resume_rules(db):
    store = RunStore(db)
    _, resumed = store.open_run("r", method="latent_mas", task="gsm8k", data="d", options={}, total_items=2)
    assert not resumed
    with pytest.raises(RunStoreError, match="cannot be resumed as text_mas/gsm8k"):
        store.open_run("r", method="text_mas", task="gsm8k", data="d", options={}, total_items=2)
    _, resumed = store.open_run("r", method="latent_mas", task="gsm8k", data="d", options={}, total_items=2)
    assert resumed

    common = {"position": 0, "group": None, "question": "q", "gold": "1", "record": {}, "seconds": 1.0}
    assert store.record_item(
        "r", item_id="a", prediction=None, correct=False, steps=[], error="boom", **common
    )
    assert store.finished_item_ids("r") == set()  # a failed item is retried on resume
    steps = [
        {
            "agent": "judger",
            "role": "judger",
            "prompt_tokens": 5,
            "generated_tokens": 7,
            "seconds": 0.5,
            "round": 2,
        }
    ]
    assert store.record_item("r", item_id="a", prediction="1", correct=True, steps=steps, **common)
    assert not store.record_item("r", item_id="a", prediction="2", correct=False, steps=[], **common)
    [item] = store.items("r")
    assert (item.prediction, item.status, item.generated_tokens) == ("1", "done", 7)
    [step] = store.steps("r", "a")
    assert step.extra == {"round": 2}
    store.delete_run("r")
    assert store.list_runs() == []
