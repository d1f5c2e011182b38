"""Structured replies from a real OpenAI-compatible server: llama-cpp-python's server on the embedded
GGUF, started by the fixture. A debate and a MedAgents item complete with every structured reply
asked for through response_format (`make test-server`; needs `llama-cpp-python[server]`).

llama-cpp-python's server takes the older `{"type": "json_object", "schema": ...}` form and answers
the OpenAI `json_schema` form with HTTP 422, so these runs also show the one-time step down.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from graphs.debate import build_graph as debate_graph
from graphs.medagents import build_graph as medagents_graph
from latent_backend.models import embedded_gguf_path
from nodes.debate.context import DebateContext
from nodes.debate.state import debate_input
from nodes.medagents.context import MedAgentsContext
from runners.methods.medagents import MEDAGENTS
from tasks import get_task
from tasks.base import TaskItem

pytestmark = [pytest.mark.server, pytest.mark.slow]

STARTUP_S = 600  # loading the model on a busy 2-core machine takes minutes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (make test-server)")
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path())]
    command += [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "2",
        "--interrupt_requests",
        "False",
    ]
    # The server logs verbosely: to a file, since an undrained pipe would fill and stall it.
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=out, env=env)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the llama.cpp server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                urllib.request.urlopen(f"{base_url}/models", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"the llama.cpp server did not answer within {STARTUP_S} s: "
                        + log.read_text(errors="replace")[-2000:]
                    )
                time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def structured_calls(trace: list[dict]) -> list[str]:
    return [entry["structured"] for entry in trace if "structured" in entry]


def test_a_debate_completes_with_structured_verdicts(server: str, caplog) -> None:
    context = DebateContext(model="smollm2", base_url=server, max_new_tokens=96, max_rounds=1)
    topic = "A bat and a ball cost $1.10 in total. The bat costs $1.00 more than the ball. What does the ball cost?"
    with caplog.at_level(logging.WARNING, logger="masgraph.structured"):
        state = debate_graph().compile().invoke(debate_input(topic), context=context)
    record = state["record"]
    assert record["success"] is True and record["debate_answer"], (
        record.get("failures"),
        [(e["agent"], e.get("structured"), e.get("failure")) for e in state["trace"]],
    )
    assert all(verdict["ok"] for verdict in state["verdicts"])
    # The moderator's (and the judge's) verdicts: asked as JSON schemas, answered in them.
    assert set(structured_calls(state["trace"])) == {"json_object"}
    assert not any(entry.get("failure") for entry in state["trace"])
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) <= 1  # said once per endpoint (a module-wide memory: maybe already said)


def test_a_medagents_item_completes_with_structured_votes_letters_and_domains(server: str) -> None:
    item = TaskItem(
        id="server-1",
        question="A 60-year-old man has crushing chest pain for 30 minutes. What should he be given first?",
        gold="A",
        options={"A": "Aspirin", "B": "Amoxicillin", "C": "Omeprazole", "D": "Loratadine"},
    )
    context = MedAgentsContext(
        model="smollm2", base_url=server, method="syn_verif", max_attempts=1, max_new_tokens=64
    )
    state = medagents_graph().compile().invoke(MEDAGENTS.make_input(item, get_task("medqa")), context=context)
    assert state["pred_answer"] in item.options
    votes = [vote["vote"] for round_ in state["vote_history"] for vote in round_["votes"]]
    assert len(votes) == 5 + 2 and None not in votes
    assert len(state["question_domains"]) == 5 and len(state["option_domains"]) == 2
    stages = {entry["stage"]: entry.get("structured") for entry in state["trace"]}
    for stage in ("question_domains", "option_domains", "vote", "decision"):
        assert stages[stage] == "json_object", stage
    assert stages["synthesis"] is None  # free text stays free
    assert not [f for f in state["failures"] if f["stage"] in ("vote", "decision")]
