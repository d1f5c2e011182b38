"""LangGraph Studio's server on the project database (`masgraph studio`), driven through `langgraph_sdk`:
every graph is served with the schemas Studio renders as forms, and the CLI and Studio share one
thread space. The server is started once per database kind and stopped by its PID.

The server selects a scripted chat model by name: `MASGRAPH_PLUGINS=tests.studio_plugin` makes every
process of the test (the server and the CLI) register it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from latent_backend.kv_store import Entry, KVStore
from runners.methods import METHODS
from storage.paths import kv_dir_for
from tests.studio_plugin import MODEL

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
TOPIC = "What is 1 + 1?"


def verdict(answer: str, reason: str) -> dict[str, str]:
    return {
        "Whether there is a preference": "Yes",
        "Supported Side": "Negative",
        "Reason": reason,
        "debate_answer": answer,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Studio:
    url: str
    db: str
    log: Path
    env: dict[str, str]

    def masgraph(self, *args: str) -> dict[str, Any]:
        """Run the masgraph CLI in its own process, on the server's database; its JSON result."""
        done = subprocess.run(
            [sys.executable, "-m", "runners.cli", *args, "--db", self.db, "--json"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)


def start_studio(db: str, log: Path) -> Iterator[Studio]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MASGRAPH_PLUGINS": "tests.studio_plugin",
        "MASGRAPH_STUDIO_SYNC_SECONDS": "0.5",
        "LANGGRAPH_NO_VERSION_CHECK": "1",
    }
    command = [sys.executable, "-m", "runners.cli", "studio", "--db", db, "--port", str(port), "--no-browser"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ok", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer /ok within 180 s"
                time.sleep(0.5)
        yield Studio(f"http://127.0.0.1:{port}", db, log, env)
    finally:
        process.send_signal(signal.SIGTERM)  # `masgraph studio` became the server: same PID
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def studio(request, tmp_path_factory) -> Iterator[Studio]:
    folder = tmp_path_factory.mktemp("studio")
    db = str(folder / "studio.db") if request.param == "sqlite" else postgres_database(request)
    yield from start_studio(db, folder / "server.log")


def postgres_database(request) -> str:
    """A fresh database on the session's throwaway PostgreSQL server (module-scoped, like the server)."""
    import uuid

    import psycopg

    server = request.getfixturevalue("postgres_server")
    name = f"studio_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"


def sdk_run(coroutine_function, studio: Studio) -> Any:
    from langgraph_sdk import get_client

    return asyncio.run(coroutine_function(get_client(url=studio.url)))


def plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def python_history(db: str, thread_id: str) -> list[dict[str, Any]]:
    from graphs.debate import build_graph
    from storage.checkpoints import compile_with_saver, thread_config

    graph = compile_with_saver(build_graph(), db)
    return [
        {
            "checkpoint_id": s.config["configurable"]["checkpoint_id"],
            "next": list(s.next),
            "values": plain(s.values),
        }
        for s in graph.get_state_history(thread_config(thread_id))
    ]


def sdk_history(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"checkpoint_id": s["checkpoint"]["checkpoint_id"], "next": s["next"], "values": plain(s["values"])}
        for s in states
    ]


def test_every_graph_is_served_with_its_schemas(studio: Studio) -> None:
    async def read(client) -> list[tuple[str, dict[str, Any]]]:
        assistants = await client.assistants.search(limit=50)
        return [(a["graph_id"], await client.assistants.get_schemas(a["assistant_id"])) for a in assistants]

    served = dict(sdk_run(read, studio))
    expected = set(json.loads((ROOT / "langgraph.json").read_text())["graphs"])
    assert expected == set(METHODS) <= set(served)
    for graph_id in expected:
        for kind in ("input_schema", "output_schema", "context_schema"):
            assert served[graph_id].get(kind, {}).get("properties"), (graph_id, kind)


def test_deleting_a_thread_in_studio_frees_its_kv_entries(studio: Studio) -> None:
    async def delete_new_thread(client) -> str:
        thread_id = (await client.threads.create())["thread_id"]
        for namespace in (thread_id, "another-thread"):
            kv.put("entry", namespace, Entry({"k.0": torch.ones(1, 2, 2), "v.0": torch.ones(1, 2, 2)}))
        kv.flush()
        await client.threads.delete(thread_id)
        return thread_id

    kv = KVStore(kv_dir_for(studio.db))
    thread_id = sdk_run(delete_new_thread, studio)
    assert not (kv.root / thread_id).exists()
    assert (kv.root / "another-thread" / "entry.safetensors").exists()


def test_a_mistyped_option_is_an_error_naming_the_closest_one(studio: Studio) -> None:
    """Not silently dropped by the server (graphs/studio.py checks every run's context)."""

    async def run(client) -> str:
        thread = await client.threads.create()
        try:
            result = await client.runs.wait(
                thread["thread_id"], "baseline", input={"question": "2+2?"}, context={"temprature": 0.5}
            )
        except Exception as error:  # the SDK raises on an error status
            return str(error) + getattr(getattr(error, "response", None), "text", "")
        return json.dumps(result)

    result = sdk_run(run, studio)
    assert "did you mean 'temperature'" in result, result


def test_cli_and_studio_share_threads_both_ways(studio: Studio) -> None:
    # 1. A debate started by the CLI pauses at the human moderator ...
    paused = studio.masgraph("run", "debate", "--topic", TOPIC, "--human", "moderator", "--model", MODEL)
    cli_thread = paused["thread_id"]
    assert paused["status"] == "interrupted"

    async def finish_in_studio(client) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        deadline = time.monotonic() + 60
        while True:  # ... appears in the server once registered ...
            try:
                thread = await client.threads.get(cli_thread)
                break
            except Exception:
                assert time.monotonic() < deadline, "the CLI thread never appeared in the server"
                await asyncio.sleep(0.5)
        # ... and runs to completion there, with the options it recorded.
        context = thread["metadata"]["masgraph_context"]
        await client.runs.wait(
            cli_thread, "debate", command={"resume": verdict("2", "studio")}, context=context
        )
        return (
            thread,
            await client.threads.get_state(cli_thread),
            await client.threads.get_history(cli_thread),
        )

    thread, state, history = sdk_run(finish_in_studio, studio)
    assert thread["metadata"]["graph_id"] == "debate"
    assert thread["metadata"]["masgraph_context"] == {"human_role": "moderator", "model": MODEL}
    assert state["next"] == [] and state["values"]["record"]["debate_answer"] == "2"
    assert (
        state["values"]["record"]["decided_by"] == "human" and state["values"]["record"]["Reason"] == "studio"
    )
    assert sdk_history(history) == python_history(studio.db, cli_thread)
    assert studio.masgraph("resume", "--thread", cli_thread)["answer"] == "2"  # the CLI sees Studio's ending

    # 2. A debate started in Studio pauses at the human moderator ...
    async def start_in_studio(client) -> tuple[str, dict[str, Any]]:
        thread = await client.threads.create()
        context = {"model": MODEL, "human_role": "moderator"}
        await client.runs.wait(thread["thread_id"], "debate", input={"debate_topic": TOPIC}, context=context)
        return thread["thread_id"], await client.threads.get_state(thread["thread_id"])

    studio_thread, paused_state = sdk_run(start_in_studio, studio)
    assert paused_state["next"] == ["moderator"]
    assert paused_state["interrupts"][0]["value"]["kind"] == "debate_moderator"

    # ... and `masgraph resume` finishes it from its checkpoints alone.
    done = studio.masgraph("resume", "--thread", studio_thread, "--answer", json.dumps(verdict("3", "cli")))
    assert done["status"] == "done" and done["answer"] == "3"
    assert done["record"]["decided_by"] == "human" and done["record"]["Reason"] == "cli"

    async def read_back(client) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return await client.threads.get_state(studio_thread), await client.threads.get_history(studio_thread)

    state, history = sdk_run(read_back, studio)
    assert state["next"] == [] and state["values"]["record"]["debate_answer"] == "3"
    # 3. The same history both ways: the server's and Python's, checkpoint by checkpoint.
    both = python_history(studio.db, studio_thread)
    assert sdk_history(history) == both and len(both) >= 6
    assert both[0]["values"]["record"]["Reason"] == "cli" and both[-1]["next"] == ["__start__"]


def test_the_server_finds_every_checkpointer_method_it_asks_for(studio: Studio) -> None:
    log = studio.log.read_text(errors="replace")
    assert "Using custom checkpointer" in log
    assert "Custom checkpointer missing" not in log
