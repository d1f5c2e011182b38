"""How much MedAgents' parallel Send branches save in wall-clock time.

A tiny OpenAI-compatible server on 127.0.0.1 answers every /v1/chat/completions call after a fixed
delay with a canned reply suited to the stage (recognised from the default prompts' wording).
One syn_verif item runs through the graph (a) with the default parallel branches and (b) one call
at a time (`max_concurrency=1`), for a consensus scenario (18 calls) and one with a dissent round.
Results go to stdout and bench/results/medagents_fanout.md. The server stops when the run ends.

    .venv/bin/python bench/medagents_fanout.py [--latency 0.3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphs.medagents import build_graph  # noqa: E402
from nodes.medagents.context import MedAgentsContext  # noqa: E402
from runners.methods.medagents import MEDAGENTS  # noqa: E402
from tasks import get_task  # noqa: E402
from tasks.base import TaskItem  # noqa: E402

ITEM = TaskItem(
    id="bench-1",
    question="A 58-year-old man has crushing chest pain radiating to the left arm for 30 minutes. "
    "What is the most appropriate first drug?",
    gold="A",
    options={"A": "Aspirin", "B": "Amoxicillin", "C": "Omeprazole", "D": "Ibuprofen", "E": "Lorazepam"},
)
DISSENTERS = ("Radiology.", "Pharmacology.")  # vote system prompts end with the domain


def canned_reply(system: str, user: str, scenario: str) -> str:
    """A well-formed reply for the stage this prompt belongs to."""
    if "subfields of medicine most relevant" in user:
        return "Medical Field: Cardiology | Emergency Medicine | Internal Medicine | Pharmacology | Radiology"
    if "best suited to judge these options" in user:
        return "Medical Field: Cardiology | Pharmacology"
    if "explain what condition the scenario depicts" in user:
        return "The picture is an acute coronary syndrome; time to reperfusion matters most."
    if "assess each option in turn" in user:
        return "A: antiplatelet, indicated. B, C, D, E: do not treat ischemia; eliminate."
    if "Key Knowledge: [the extracted key knowledge]" in user:
        return (
            "Key Knowledge: suspected ACS is treated with aspirin at once.\n"
            "Total Analysis: aspirin is the first drug; the others do not treat ischemia."
        )
    if "Reply with one word only: YES or NO" in user:
        disagrees = scenario == "dissent" and system.endswith(DISSENTERS) and "ECG" not in user
        return "NO" if disagrees else "YES"
    if "Revisions: [your proposed revisions]" in user:
        return "Revisions: mention that an ECG must be taken within 10 minutes."
    if "Revise the analysis according to this advice" in user:
        return "Total Analysis: aspirin first, and an ECG within 10 minutes."
    return "Option: A"


class FakeOpenAI(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, latency: float, scenario: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.latency = latency
        self.scenario = scenario
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # keep the bench output readable
        pass

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        with self.server.lock:
            self.server.calls += 1
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            time.sleep(self.server.latency)  # stands in for generation time
            text = canned_reply(system, user, self.server.scenario)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1
        prompt_tokens = len((system + " " + user).split())
        completion_tokens = len(text.split())
        payload = json.dumps(
            {
                "id": f"chatcmpl-{self.server.calls}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def run_once(server: FakeOpenAI, max_concurrency: int | None) -> tuple[float, dict[str, Any]]:
    # An unset key variable: the bench never reads a real credential and sends none.
    ctx = MedAgentsContext(model="fake", base_url=server.base_url, api_key_env="MEDAGENTS_BENCH_NO_KEY")
    compiled = build_graph().compile()
    config: dict[str, Any] = {} if max_concurrency is None else {"max_concurrency": max_concurrency}
    started = time.perf_counter()
    state = compiled.invoke(MEDAGENTS.make_input(ITEM, get_task("medqa")), config=config, context=ctx)
    return time.perf_counter() - started, state


MODES: tuple[tuple[str, int | None], ...] = (
    ("parallel (default pool)", None),
    ("parallel (max_concurrency=8)", 8),
    ("one at a time (max_concurrency=1)", 1),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.3, help="server delay per call, seconds")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per mode (median kept)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results" / "medagents_fanout.md"
    )
    args = parser.parse_args()
    os.environ.setdefault("NO_PROXY", "127.0.0.1")  # never route the local server via a proxy

    rows: list[dict[str, Any]] = []
    for scenario in ("consensus", "dissent"):
        server = FakeOpenAI(args.latency, scenario)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            run_once(server, None)  # warm-up: client construction, imports
            for label, max_concurrency in MODES:
                times = []
                for _ in range(args.repeats):
                    server.calls = server.max_in_flight = 0
                    seconds, state = run_once(server, max_concurrency)
                    times.append(seconds)
                    assert state["pred_answer"] == "A", state.get("failures")
                    assert len(state["trace"]) == server.calls
                rows.append(
                    {
                        "scenario": scenario,
                        "mode": label,
                        "calls": server.calls,
                        "max_in_flight": server.max_in_flight,
                        "seconds": statistics.median(times),
                        "all": times,
                        "rounds": len(state["vote_history"]),
                    }
                )
                print(
                    f"{scenario:9s} {label:35s} calls={server.calls:2d} "
                    f"max_in_flight={server.max_in_flight} "
                    f"median={statistics.median(times):.2f}s runs={[round(t, 2) for t in times]}"
                )
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    lines = [
        "# MedAgents fan-out: parallel Send branches vs one call at a time",
        "",
        f"One syn_verif item against a local fake OpenAI-compatible server answering each call after "
        f"{args.latency:.2f} s; median of {args.repeats} runs; {os.cpu_count()} CPU cores "
        f"(LangGraph's default thread pool: min(32, cores + 4) = {min(32, (os.cpu_count() or 1) + 4)} "
        "workers). 'consensus': every expert agrees at once (2+5+2+1+7+1 = 18 calls); 'dissent': two "
        "domains (three experts) vote no in round 1, give advice, one revision, then all agree.",
        "",
        "| scenario | mode | calls | max calls in flight | wall-clock s | calls x latency s | "
        "speed-up vs one at a time |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        serial = next(
            r["seconds"]
            for r in rows
            if r["scenario"] == row["scenario"] and r["mode"].startswith("one at a time")
        )
        lines.append(
            f"| {row['scenario']} | {row['mode']} | {row['calls']} | {row['max_in_flight']} "
            f"| {row['seconds']:.2f} | {row['calls'] * args.latency:.1f} "
            f"| {serial / row['seconds']:.2f}x |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[-len(rows) - 2 :]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
