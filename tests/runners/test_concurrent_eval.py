"""Two `masgraph eval` processes at once: on a fresh database, on the same --run-id, and after one
of them is killed. Model calls go to a fake OpenAI-compatible endpoint that counts them, so "every
item done exactly once" is counted, not assumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.run_store import RunStore
from tests.db_kinds import DB_KINDS, checkpoints_per_thread, database
from tests.fake_endpoint import FakeEndpoint

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = [f"What is {n} + {n}?" for n in range(1, 7)]
CALLS_PER_ITEM = 4  # text_mas, sequential: planner, critic, refiner, judger


def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "items.jsonl"
    lines = [json.dumps({"id": f"q{i}", "question": q, "answer": "4"}) for i, q in enumerate(QUESTIONS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_eval(
    endpoint: FakeEndpoint, data: Path, db: Path | str, *extra: str, **env: str
) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "runners.cli",
        "eval",
        "text_mas",
        "--task",
        "gsm8k",
        "--data",
        str(data),
    ]
    command += ["--db", str(db), "--base-url", endpoint.url, "--model", "fake", "--json", "--no-progress"]
    return subprocess.Popen(
        [*command, *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def calls_per_question(endpoint: FakeEndpoint) -> dict[str, int]:
    return {q: sum(n for text, n in endpoint.calls.items() if q in text) for q in QUESTIONS}


@pytest.mark.parametrize("kind", DB_KINDS)
def test_two_evals_on_a_fresh_database_and_the_same_run_do_each_item_once(tmp_path, request, kind):
    data = data_file(tmp_path)
    db = database(kind, tmp_path, request, "fresh.db")
    with FakeEndpoint(delay=0.2) as endpoint:
        first = start_eval(endpoint, data, db, "--run-id", "shared")
        second = start_eval(endpoint, data, db, "--run-id", "shared")
        summaries = [finish(first), finish(second)]
    assert [(s["run_id"], s["n"], s["correct"], s["failed"]) for s in summaries] == [("shared", 6, 6, 0)] * 2
    assert calls_per_question(endpoint) == {q: CALLS_PER_ITEM for q in QUESTIONS}
    assert endpoint.total == len(QUESTIONS) * CALLS_PER_ITEM
    store = RunStore(db)
    assert sorted(row.item_id for row in store.items("shared")) == [f"q{i}" for i in range(6)]
    assert store.get_run("shared").status == "completed"
    # No thread forked: every item's thread has the checkpoints of exactly one pass through the graph.
    counts = checkpoints_per_thread(db)
    assert sorted(counts) == sorted(store.item_threads("shared"))
    assert set(counts.values()) == {CALLS_PER_ITEM + 2}  # input, START, one per agent


def test_two_evals_of_their_own_runs_on_a_fresh_database(tmp_path):
    data, db = data_file(tmp_path), tmp_path / "fresh.db"
    with FakeEndpoint(delay=0.05) as endpoint:
        processes = [start_eval(endpoint, data, db), start_eval(endpoint, data, db)]
        summaries = [finish(process) for process in processes]
    assert len({s["run_id"] for s in summaries}) == 2
    assert [(s["n"], s["failed"]) for s in summaries] == [(6, 0), (6, 0)]
    assert calls_per_question(endpoint) == {q: 2 * CALLS_PER_ITEM for q in QUESTIONS}


@pytest.mark.parametrize("kind", DB_KINDS)
def test_a_killed_evals_items_are_taken_over_at_once_by_the_next(tmp_path, request, kind):
    """The killed process's leases would last 10 minutes; the next process sees its owner is gone."""
    data, db = data_file(tmp_path), database(kind, tmp_path, request, "runs.db")
    with FakeEndpoint(delay=0.3) as endpoint:
        doomed = start_eval(endpoint, data, db, "--run-id", "r", MASGRAPH_LEASE_SECONDS="600")
        deadline = time.monotonic() + 120
        while endpoint.total < 2 * CALLS_PER_ITEM + 2:  # two items recorded, the third under way
            assert doomed.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        before = calls_per_question(endpoint)
        started = time.monotonic()
        summary = finish(start_eval(endpoint, data, db, "--run-id", "r"))
        took = time.monotonic() - started
    assert (summary["n"], summary["correct"], summary["failed"]) == (6, 6, 0)
    assert took < 120  # no wait for the 600 s lease
    after = calls_per_question(endpoint)
    finished_before = [q for q in QUESTIONS if before[q] == CALLS_PER_ITEM]
    assert len(finished_before) >= 2
    for q in QUESTIONS:
        if q in finished_before:
            assert after[q] == CALLS_PER_ITEM, q  # recorded items are not run again
        else:  # the interrupted item continues from its last checkpoint: at most its last call repeats
            assert CALLS_PER_ITEM <= after[q] <= CALLS_PER_ITEM + 1, (q, before[q], after[q])
    assert sorted(row.item_id for row in RunStore(str(db)).items("r")) == [f"q{i}" for i in range(6)]
