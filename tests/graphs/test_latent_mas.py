"""The latent_mas graph on the embedded model: handles in state, ablations, checkpoints."""

import sqlite3

import pytest
import torch

from graphs.latent_mas import build_graph
from nodes.latentmas.context import MASContext
from storage.checkpoints import checkpointer, compile_with_saver, thread_config
from storage.paths import kv_dir_for

pytestmark = pytest.mark.model

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def run(db: str, thread: str, **options) -> dict:
    graph = compile_with_saver(build_graph(), db)
    settings = {
        "task": "gsm8k",
        "max_new_tokens": 16,
        "latent_steps": 3,
        "kv_dir": str(kv_dir_for(db)),
        **options,
    }
    context = MASContext(**settings)
    return graph.invoke(
        {"item_id": thread, "question": QUESTION}, thread_config(thread), context=context, durability="sync"
    )


def by_agent(state: dict) -> dict[str, dict]:
    return {entry["agent"]: entry for entry in state["trace"]}


def test_sequential_hands_a_growing_cache_from_agent_to_agent(backend, db):
    state = run(db, "seq")
    trace = by_agent(state)
    assert list(trace) == ["planner", "critic", "refiner", "judger"]
    assert trace["planner"]["kv_positions"] == trace["planner"]["prompt_tokens"] + 3
    assert (
        trace["critic"]["kv_positions"]
        == trace["planner"]["kv_positions"] + trace["critic"]["prompt_tokens"] + 3
    )
    assert trace["judger"]["kv_positions"] == trace["refiner"]["kv_positions"] == state["kv"]["positions"]
    assert trace["judger"]["generated_tokens"] > 0 and state["text"]
    assert set(state["kv"]) == {
        "id",
        "model_id",
        "namespace",
        "positions",
        "next_position",
        "parent",
        "nbytes",
        "chain",
    }
    assert [recipe["handoff"] for recipe in state["kv"]["chain"]] == ["all", "all", "all"]


def test_hierarchical_chains_three_solvers_then_the_summarizer(backend, db):
    state = run(db, "hier", topology="hierarchical")
    assert [e["agent"] for e in state["trace"]] == ["math", "science", "code", "summarizer"]


def test_ablation_flags_change_what_the_judger_sees(backend, db):
    full = by_agent(run(db, "full"))
    seq = by_agent(run(db, "seq-only", sequential_info_only=True))
    latent = by_agent(run(db, "latent-only", latent_only=True))
    assert (
        seq["judger"]["kv_positions"] == seq["refiner"]["prompt_tokens"] + 3 < full["judger"]["kv_positions"]
    )
    assert latent["judger"]["kv_positions"] == 3

    kept = by_agent(run(db, "zero-kept", latent_steps=0))
    dropped = by_agent(run(db, "zero-dropped", latent_steps=0, zero_step_handoff="none"))
    prompts = sum(kept[a]["prompt_tokens"] for a in ("planner", "critic", "refiner"))
    assert kept["judger"]["kv_positions"] == prompts
    assert dropped["judger"]["kv_positions"] == 0


def test_checkpoint_rows_hold_no_tensors(backend, db):
    state = run(db, "rows")
    saver = checkpointer(db)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT type, checkpoint FROM checkpoints WHERE thread_id = 'rows'").fetchall()
    rows += conn.execute("SELECT type, value FROM writes WHERE thread_id = 'rows'").fetchall()
    assert rows
    found_handles = 0

    def walk(value):
        nonlocal found_handles
        assert not isinstance(value, torch.Tensor)
        assert not (isinstance(value, bytes | bytearray) and len(value) > 4096)
        if isinstance(value, dict):
            found_handles += "chain" in value
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list | tuple):
            for inner in value:
                walk(inner)

    for kind, blob in rows:
        assert len(blob) < 16 * 1024, "a checkpoint row should hold handles (recipes), not caches"
        walk(saver.serde.loads_typed((kind, blob)))
    assert found_handles > 0
    assert state["kv"]["nbytes"] > 1_000_000  # the cache itself is megabytes, in the KV store
