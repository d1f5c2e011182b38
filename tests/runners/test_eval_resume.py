"""Evaluation resume: kill -9 in the middle, re-run with --run-id, same predictions, no duplicates."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from storage.run_store import RunStore, item_thread_id
from tests.db_kinds import DB_KINDS, database, query

pytestmark = [pytest.mark.model, pytest.mark.slow]

ITEMS = [
    {"id": f"q{i}", "question": f"What is {a} plus {b}?", "answer": str(a + b)}
    for i, (a, b) in enumerate([(2, 3), (10, 5), (7, 1), (4, 4)])
]


def eval_command(data: str, db: str, run_id: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "runners.cli",
        "eval",
        "latent_mas",
        "--task",
        "gsm8k",
        "--data",
        data,
        "--db",
        db,
        "--run-id",
        run_id,
        "--latent-steps",
        "2",
        "--max-new-tokens",
        "12",
        "--json",
        "--no-progress",
    ]


def checkpoints_of(db: str, thread_id: str) -> int:
    rows = query(db, "SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?", thread_id)
    return rows[0][0] if rows else 0


@pytest.mark.parametrize("kind", DB_KINDS)
def test_killed_eval_resumes_without_losing_or_duplicating_items(tmp_path, request, kind):
    data = tmp_path / "items.jsonl"
    data.write_text("\n".join(json.dumps(item) for item in ITEMS) + "\n")
    db = database(kind, tmp_path, request, "eval.db")

    reference = subprocess.run(
        eval_command(str(data), db, "reference"), capture_output=True, text=True, check=True
    )
    assert json.loads(reference.stdout)["n"] == len(ITEMS)

    process = subprocess.Popen(
        eval_command(str(data), db, "crashy"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    # Kill once the second item's graph is part-way through (some of its checkpoints exist).
    second_item = item_thread_id("crashy", "q1")
    while time.monotonic() < deadline and checkpoints_of(db, second_item) < 3:
        time.sleep(0.05)
    assert checkpoints_of(db, second_item) >= 3, "the eval never reached the second item's graph"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted_done = RunStore(db).finished_item_ids("crashy")
    assert len(interrupted_done) < len(ITEMS)

    resumed = subprocess.run(
        eval_command(str(data), db, "crashy"), capture_output=True, text=True, check=True
    )
    summary = json.loads(resumed.stdout)
    assert summary["n"] == len(ITEMS) and summary["skipped"] == len(interrupted_done)

    store = RunStore(db)
    crashy = {row.item_id: row.prediction for row in store.items("crashy")}
    expected = {row.item_id: row.prediction for row in store.items("reference")}
    assert crashy == expected
    counts = query(db, "SELECT item_id, COUNT(*) FROM mg_items WHERE run_id = ? GROUP BY item_id", "crashy")
    assert sorted(counts) == [(item["id"], 1) for item in ITEMS]
