"""Recompute on miss: a latent_mas item whose KV files are damaged, deleted or never written
finishes with the same greedy answer as an uninterrupted run (the handles' recipes rebuild them)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from graphs.latent_mas import build_graph
from latent_backend.kv_store import kv_store
from nodes.latentmas.context import MASContext
from storage.checkpoints import RUN_DURABILITY, compile_with_saver, thread_config
from storage.paths import kv_dir_for

pytestmark = pytest.mark.model
REPO = Path(__file__).resolve().parents[2]
QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def context_for(**options) -> MASContext:
    return MASContext(task="gsm8k", max_new_tokens=16, latent_steps=3, **options)


def finish(db: str, thread: str, **options) -> dict:
    graph = compile_with_saver(build_graph(), db)
    return graph.invoke({"question": QUESTION}, thread_config(thread), context=context_for(**options))


def stop_before_judger(db: str, thread: str, **options) -> dict:
    graph = compile_with_saver(build_graph(), db, interrupt_before=["judger"])
    config = thread_config(thread)
    graph.invoke({"question": QUESTION}, config, context=context_for(**options), durability=RUN_DURABILITY)
    snapshot = graph.get_state(config)
    assert snapshot.next == ("judger",)
    return snapshot.config  # names the checkpoint before the judger (resumable again and again)


def resume(db: str, config: dict, **options) -> dict:
    graph = compile_with_saver(build_graph(), db)
    return graph.invoke(None, config, context=context_for(**options), durability=RUN_DURABILITY)


def damage(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "flip":
        flipped = bytearray(raw)
        flipped[len(raw) // 2] ^= 0x01
        path.write_bytes(bytes(flipped))
    else:
        path.unlink()


@pytest.fixture
def recomputes(backend, monkeypatch):
    """The entries the backend rebuilt (by recipe id)."""
    rebuilt: list[str] = []
    real = backend._recompute

    def counting(recipe, parent, next_position):
        rebuilt.append(recipe["id"])
        return real(recipe, parent, next_position)

    monkeypatch.setattr(backend, "_recompute", counting)
    return rebuilt


def test_each_damaged_or_deleted_kv_file_is_rebuilt_and_the_answer_is_unchanged(backend, db, recomputes):
    reference = finish(db, "reference")
    stopped = stop_before_judger(db, "damaged")
    store = kv_store(kv_dir_for(db))
    assert store.flush(timeout=60)
    handle = compile_with_saver(build_graph(), db).get_state(stopped).values["kv"]
    entries = [recipe["id"] for recipe in handle["chain"]]  # planner, critic, refiner
    files = {path.stem: path for path in store.root.rglob("*.safetensors") if path.parent.name == "damaged"}
    assert sorted(files) == sorted(entries)
    originals = {entry_id: path.read_bytes() for entry_id, path in files.items()}
    for how in ("truncate", "flip", "delete"):
        for entry_id in entries:
            for other, raw in originals.items():
                files[other].write_bytes(raw)
            damage(files[entry_id], how)
            store.clear_memory()  # as after a restart: only the files are left
            recomputes.clear()
            state = resume(db, stopped)
            assert recomputes == [entry_id], (how, entry_id)  # the damaged entry alone, once
            assert (state["text"], state["answer"]) == (reference["text"], reference["answer"]), (
                how,
                entry_id,
            )


@pytest.mark.parametrize("handoff", [{"sequential_info_only": True}, {"latent_only": True}])
def test_trimmed_handoffs_rebuild_their_whole_chain_from_the_checkpoint_alone(
    backend, db, recomputes, handoff
):
    reference = finish(db, "reference", **handoff)
    stopped = stop_before_judger(db, "bare", **handoff)
    store = kv_store(kv_dir_for(db))
    store.flush()
    store.delete_namespace("bare")  # a worker with no KV files at all: only the checkpoint
    state = resume(db, stopped, **handoff)
    # The judger sees the refiner's positions only, yet rebuilding them needs planner and critic.
    assert len(recomputes) == 3
    assert (state["text"], state["answer"]) == (reference["text"], reference["answer"])


@pytest.mark.slow
def test_kill_9_while_the_writer_is_mid_file_then_resume_gives_the_same_answer(backend, db, recomputes):
    reference = finish(db, "reference")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.graphs.latent_crash_worker", db, "crashed"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen = set()
    while seen != {"MID-FILE", "STOPPED"}:
        line = worker.stdout.readline()
        assert line, "the worker ended before it was killed"
        seen.add(line.strip())
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    root = kv_dir_for(db)
    assert len(list((root / ".staging").glob("*.tmp"))) == 1  # the half-written file
    assert len(list((root / "crashed").glob("*.safetensors"))) == 2  # planner and critic made it

    config = compile_with_saver(build_graph(), db).get_state(thread_config("crashed")).config
    state = resume(db, config)
    assert len(recomputes) == 1  # the refiner's entry, never written
    assert (state["text"], state["answer"]) == (reference["text"], reference["answer"])
