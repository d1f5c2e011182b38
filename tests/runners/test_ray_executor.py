"""`--executor ray`: Ray actors run the items of one run on a shared database, on a local Ray cluster
(`ray.init(num_cpus=2)`, once per session). Model calls go to fake OpenAI-compatible servers that
count them, so "every item run once" is counted, not assumed. The driver is this test process."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from runners.cli import main
from runners.evaluate import evaluate
from storage.run_store import RunStore, item_thread_id
from tests.db_kinds import DB_KINDS, checkpoints_per_thread, database, query
from tests.fake_endpoint import FakeEndpoint, arithmetic_reply, sum_items

pytestmark = [pytest.mark.ray, pytest.mark.slow]
CALLS_PER_ITEM = 4  # text_mas, sequential: planner, critic, refiner, judger


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'masgraph[ray]'")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def write_items(tmp_path: Path, count: int) -> tuple[str, list[str]]:
    items = sum_items(count)
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return str(path), [item["question"] for item in items]


def text_mas(data: str, db: str, run_id: str, servers: list[str], **settings) -> dict:
    return evaluate(
        "text_mas",
        task="gsm8k",
        data=data,
        db=db,
        run_id=run_id,
        options={"model": "fake", "base_url": servers[0]},
        base_urls=servers if len(servers) > 1 else (),
        progress=False,
        **settings,
    ).to_dict()


def calls_per_question(endpoints: list[FakeEndpoint], questions: list[str]) -> dict[str, int]:
    return {
        q: sum(n for endpoint in endpoints for text, n in endpoint.calls.items() if q in text)
        for q in questions
    }


def recorded(db: str, run_id: str) -> dict[str, int]:
    return dict(query(db, "SELECT item_id, COUNT(*) FROM mg_items WHERE run_id = ? GROUP BY item_id", run_id))


@pytest.mark.parametrize("kind", DB_KINDS)
def test_workers_share_a_server_pool_and_match_the_in_process_run(ray_cluster, tmp_path, request, kind):
    data, questions = write_items(tmp_path, 8)
    db = database(kind, tmp_path, request)
    with (
        FakeEndpoint(delay=0.05, reply=arithmetic_reply) as first,
        FakeEndpoint(0.05, arithmetic_reply) as second,
    ):
        servers = [first.url, second.url]
        local = text_mas(data, db, "local", servers)
        before = calls_per_question([first, second], questions)
        summary = text_mas(data, db, "ray", servers, executor="ray", workers=2)
        after = calls_per_question([first, second], questions)
    assert (summary["n"], summary["failed"], summary["correct"]) == (8, 0, local["correct"])
    assert {q: after[q] - before[q] for q in questions} == dict.fromkeys(questions, CALLS_PER_ITEM)
    store = RunStore(db)
    rows = store.items("ray")
    assert recorded(db, "ray") == {f"q{i}": 1 for i in range(8)}
    assert [(r.item_id, r.prediction, r.correct) for r in rows] == [
        (r.item_id, r.prediction, r.correct) for r in store.items("local")
    ]
    # Item i talked to server i mod 2 only, and its record says which.
    assert [r.record["base_url"] for r in rows] == [servers[i % 2] for i in range(8)]
    for i, question in enumerate(questions):
        assert (
            sum(n for text, n in (first, second)[i % 2].calls.items() if question in text)
            == 2 * CALLS_PER_ITEM
        )
    assert store.get_run("ray").options["base_url"] == servers
    assert store.get_run("ray").status == "completed" and store.live_owners("ray") == set()


@pytest.mark.parametrize("kind", DB_KINDS)
def test_killing_a_worker_mid_run_loses_and_duplicates_nothing(ray_cluster, tmp_path, request, kind):
    """kill -9 of one worker's process while it holds an item part-way through its graph: the other
    worker takes its items over at once (same run, same database), resuming them from checkpoints."""
    count = 12
    data, questions = write_items(tmp_path, count)
    db = database(kind, tmp_path, request)
    result: dict = {}
    with FakeEndpoint(delay=0.3, reply=arithmetic_reply) as endpoint:
        reference = text_mas(data, db, "reference", [endpoint.url], concurrency=4)
        endpoint.calls.clear()
        settings = {"executor": "ray", "workers": 2, "concurrency": 2}
        run = threading.Thread(
            target=lambda: result.update(text_mas(data, db, "r", [endpoint.url], **settings))
        )
        run.start()
        victim, finished_before = _wait_for_a_worker_mid_item(db, "r", run)
        os.kill(victim, signal.SIGKILL)
        run.join(timeout=300)
        assert not run.is_alive()
    assert (result["n"], result["failed"], result["correct"]) == (count, 0, reference["correct"])
    assert recorded(db, "r") == {f"q{i}": 1 for i in range(count)}
    store = RunStore(db)
    assert {r.item_id: r.prediction for r in store.items("r")} == {
        r.item_id: r.prediction for r in store.items("reference")
    }
    calls = calls_per_question([endpoint], questions)
    for question, item in zip(questions, sum_items(count), strict=True):
        if item["id"] in finished_before:
            assert calls[question] == CALLS_PER_ITEM, question  # recorded before the kill: not run again
        else:  # continued from its last checkpoint: at most the call under way when killed repeats
            assert CALLS_PER_ITEM <= calls[question] <= CALLS_PER_ITEM + 1, (question, calls[question])
    # No thread forked: each has the checkpoints of exactly one pass through the graph.
    threads = set(store.item_threads("r"))
    assert {t: n for t, n in checkpoints_per_thread(db).items() if t in threads} == dict.fromkeys(
        threads, CALLS_PER_ITEM + 2
    )
    assert store.get_run("r").status == "completed" and store.live_owners("r") == set()


@pytest.mark.model
def test_a_latent_item_killed_with_its_worker_continues_on_another_that_rebuilds_its_kv(
    ray_cluster, tmp_path
):
    """latent_mas on the embedded model, KV entries in memory only: the worker that takes over a
    killed worker's item lacks every KV entry of it and rebuilds them from the handles' recipes."""
    count = 4
    data, _ = write_items(tmp_path, count)
    db = str(tmp_path / "latent.db")
    options = {"latent_steps": 2, "max_new_tokens": 12, "kv_persistence": "memory"}
    common = {"task": "gsm8k", "data": data, "db": db, "options": options, "progress": False}
    reference = evaluate("latent_mas", run_id="reference", **common).to_dict()
    result: dict = {}
    run = threading.Thread(
        target=lambda: result.update(
            evaluate("latent_mas", run_id="r", executor="ray", workers=2, **common).to_dict()
        )
    )
    run.start()
    victim, _ = _wait_for_a_worker_mid_item(db, "r", run, recorded=1)
    os.kill(victim, signal.SIGKILL)
    run.join(timeout=600)
    assert not run.is_alive()
    assert (result["n"], result["failed"], result["correct"]) == (count, 0, reference["correct"])
    assert recorded(db, "r") == {f"q{i}": 1 for i in range(count)}
    store = RunStore(db)
    assert {r.item_id: r.prediction for r in store.items("r")} == {
        r.item_id: r.prediction for r in store.items("reference")
    }
    # The survivor said so (its stderr, in the Ray session's logs): it rebuilt the killed item's KV.
    logs = Path(ray_cluster._private.worker._global_node.get_logs_dir_path())
    said = "".join(path.read_text(errors="replace") for path in logs.glob("worker-*.err"))
    rebuilt = re.findall(r"namespace '([^']+)'\) is not at .*; rebuilding it from its recipe", said)
    assert set(rebuilt) & set(store.item_threads("r"))


def _wait_for_a_worker_mid_item(
    db: str, run_id: str, run: threading.Thread, recorded: int = 2
) -> tuple[int, set[str]]:
    """The pid of a worker holding an item with some of its graph checkpointed, once `recorded` items
    are recorded; and the items recorded by then."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert run.is_alive(), "the run ended before a worker could be killed"
        done = {row[0] for row in query(db, "SELECT item_id FROM mg_items WHERE run_id = ?", run_id)}
        held = query(
            db, "SELECT item_id, owner FROM mg_leases WHERE run_id = ? AND owner IS NOT NULL", run_id
        )
        if len(done) >= recorded:
            counts = checkpoints_per_thread(db)
            for item_id, owner in held:
                if counts.get(item_thread_id(run_id, item_id), 0) >= 3 and item_id not in done:
                    return int(owner.split("/")[1]), done
        time.sleep(0.05)
    raise AssertionError("no worker was seen mid-item")


def test_a_bad_option_found_by_the_workers_is_one_line_and_stores_no_run(ray_cluster, tmp_path, capsys):
    """The model loads in the workers only: its context-length check fails there and comes back as
    the same one-line error the in-process executor gives."""
    data, _ = write_items(tmp_path, 2)
    db = str(tmp_path / "runs.db")
    args = ["eval", "baseline", "--task", "gsm8k", "--data", data, "--db", db, "--max-new-tokens", "100000"]
    assert main([*args, "--executor", "ray", "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("masgraph: error: --max-new-tokens: a limit of 100000 new tokens does not fit")
    assert len(err.splitlines()) == 1
    assert RunStore(db).list_runs() == []
