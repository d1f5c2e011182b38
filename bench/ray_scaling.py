"""Benchmark: `masgraph eval --executor ray` with 1 worker against N workers, on a local Ray cluster.

    OMP_NUM_THREADS=1 .venv/bin/python bench/ray_scaling.py --part served --items 40 --workers 4
    OMP_NUM_THREADS=1 .venv/bin/python bench/ray_scaling.py --part latent --items 6 --workers 2
    ... --db postgresql://...   # checkpoints and the run store on PostgreSQL instead of a SQLite file

served: text_mas on `--items` "What is A + B?" items against a local fake OpenAI-compatible server
(tests/fake_endpoint.py) that answers each request after a fixed `--delay`, so an item costs its four
sequential agent calls of waiting, as with a remote GPU server; the in-process executor is the
reference. latent: latent_mas on the embedded model, few items and tokens (the workers share this
machine's CPUs). Each row: items/s over the run (workers started and models loaded before the clock
starts), the start-up separately, and whether the predictions equal the reference's. Writes
bench/results/ray_scaling_<part>[_postgres].md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

from runners.evaluate import evaluate
from storage.run_store import RunStore
from tests.fake_endpoint import FakeEndpoint, arithmetic_reply, sum_items


def run(label: str, db: str, data: str, task: str, method: str, options: dict[str, Any], **settings) -> dict:
    started = time.perf_counter()
    summary = evaluate(method, task=task, data=data, db=db, options=options, progress=False, **settings)
    total = time.perf_counter() - started
    predictions = {row.item_id: row.prediction for row in RunStore(db).items(summary.run_id)}
    return {
        "label": label,
        "summary": summary,
        "startup": total - summary.seconds,
        "predictions": predictions,
    }


def table(rows: list[dict]) -> list[str]:
    reference = rows[0]["predictions"]
    lines = [
        "| executor | run (s) | items/s | start-up (s) | accuracy | failed | predictions = first row |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row["summary"]
        same = sum(reference.get(k) == v for k, v in row["predictions"].items())
        lines.append(
            f"| {row['label']} | {s.seconds:.1f} | {s.n / s.seconds:.2f} | {row['startup']:.1f} | "
            f"{s.accuracy:.3f} | {s.failed} | {same}/{len(reference)} |"
        )
    return lines


def served(args: argparse.Namespace, db: str, folder: Path) -> tuple[str, list[dict]]:
    data = folder / "items.jsonl"
    data.write_text("".join(json.dumps(item) + "\n" for item in sum_items(args.items)))
    rows = []
    with FakeEndpoint(delay=args.delay, reply=arithmetic_reply) as endpoint:
        options = {"model": "fake", "base_url": endpoint.url}
        common = (db, str(data), "gsm8k", "text_mas", options)
        rows.append(run("local, 1 item at a time", *common))
        for workers in (1, args.workers):
            rows.append(run(f"ray, {workers} worker(s)", *common, executor="ray", workers=workers))
        rows.append(run(f"local, {args.workers} item threads", *common, concurrency=args.workers))
    head = (
        f"text_mas (4 sequential agent calls per item) on {args.items} items against the fake "
        f"OpenAI-compatible server, {args.delay} s per request; one item at a time per worker."
    )
    return head, rows


def latent(args: argparse.Namespace, db: str, folder: Path) -> tuple[str, list[dict]]:
    data = folder / "items.jsonl"
    data.write_text("".join(json.dumps(item) + "\n" for item in sum_items(args.items)))
    options = {"max_new_tokens": args.max_new_tokens, "latent_steps": args.latent_steps, "temperature": 0.0}
    common = (db, str(data), "gsm8k", "latent_mas", options)
    rows = [run("local, 1 item at a time", *common)]
    for workers in (1, args.workers):
        rows.append(run(f"ray, {workers} worker(s)", *common, executor="ray", workers=workers))
    head = (
        f"latent_mas on {args.items} items, greedy, max_new_tokens {args.max_new_tokens}, latent_steps "
        f"{args.latent_steps}, embedded SmolLM2-135M on the CPU; each worker loads its own copy of the model."
    )
    return head, rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["served", "latent"], required=True)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.2, help="served: seconds per request")
    parser.add_argument("--cpus", type=int, default=2, help="the local Ray cluster's CPUs")
    parser.add_argument("--db", help="default: a fresh SQLite file; or a postgresql:// URL")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--latent-steps", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    load_before = os.getloadavg()[0]
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
    try:
        db = args.db or str(folder / "bench.db")
        head, rows = (served if args.part == "served" else latent)(args, db, folder)
    finally:
        ray.shutdown()
    head += f" Database: {'PostgreSQL' if db.startswith('postgresql') else 'SQLite'}."
    load = f"Load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
    text = "\n".join([head, "", *table(rows), "", load]) + "\n"
    suffix = "_postgres" if db.startswith("postgresql") else ""
    output = Path(__file__).parent / "results" / f"ray_scaling_{args.part}{suffix}.md"
    command = "    OMP_NUM_THREADS=1 python " + " ".join(sys.argv)
    output.write_text(f"# Ray scaling benchmark\n\nCommand:\n\n{command}\n\n{text}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
