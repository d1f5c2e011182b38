"""Benchmark: tokens and wall-clock of baseline, text MAS and LatentMAS; and graph overhead.

Same model, same settings, greedy, the same max_new_tokens for every agent. Part 2 runs the
latent_mas *graph* (LangGraph + SQLite checkpoints + KV handles) against a plain Python loop
that calls the latent backend directly on the same items with the same batching.

    .venv/bin/python bench/latent_vs_text.py --data ../shared/data/medqa_latentmas_300.json \
        --task medqa --limit 20 --batch-size 10 --max-new-tokens 256 --latent-steps 10

Writes a markdown table to bench/results/latent_vs_text.md (and prints it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

# Before torch loads its OpenMP library, which llama.cpp then shares (see latent_backend/__init__).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from latent_backend import GenerationRequest, KVStore, RolloutRequest, configure_batching, get_backend  # noqa: E402
from nodes.latentmas.context import MASContext  # noqa: E402
from runners.evaluate import evaluate  # noqa: E402
from tasks import get_task, load_items  # noqa: E402

SEQUENTIAL_LATENT = ("planner", "critic", "refiner")


def plain_loop(items, context: MASContext, batch_size: int) -> tuple[float, int, list[str | None]]:
    """LatentMAS sequential without the graph: the backend called directly, batch by batch."""
    backend = get_backend(context.model, context.backend)
    task = get_task(context.task)
    store = KVStore(tempfile.mkdtemp(prefix="bench-kv-"))
    generated = 0
    predictions: list[str | None] = []
    started = time.perf_counter()
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        questions = [task.prompt(item) for item in batch]
        handles = [None] * len(batch)
        for agent in SEQUENTIAL_LATENT:
            requests = [
                RolloutRequest(
                    messages=context.messages(agent, latent=True, question=q),
                    namespace=f"loop-{start + i}",
                    kv=h,
                    latent_steps=context.latent_steps,
                )
                for i, (q, h) in enumerate(zip(questions, handles, strict=True))
            ]
            handles = [r.handle for r in backend.rollout(requests, store)]
        requests = [
            GenerationRequest(
                messages=context.messages("judger", latent=True, question=q),
                max_new_tokens=context.max_new_tokens,
                temperature=0.0,
                kv=h,
            )
            for q, h in zip(questions, handles, strict=True)
        ]
        for item, result in zip(batch, backend.generate(requests, store), strict=True):
            generated += result.generated_tokens
            predictions.append(task.grade(item, result.text).prediction)
        for index in range(len(batch)):  # free the batch's caches, as the evaluation runner does per item
            store.delete_namespace(f"loop-{start + index}")
    return time.perf_counter() - started, generated, predictions


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--latent-steps", type=int, default=10)
    parser.add_argument("--methods", default="baseline,text_mas,latent_mas")
    parser.add_argument("--backend", default="transformers", choices=("transformers", "llamacpp", "auto"))
    parser.add_argument("--no-loop", action="store_true", help="skip the plain-loop (overhead) part")
    parser.add_argument(
        "--loop-first",
        action="store_true",
        help="run the plain loop before the graphs (order effects then favour the loop)",
    )
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "latent_vs_text.md"))
    args = parser.parse_args()

    db = str(Path(tempfile.mkdtemp(prefix="bench-")) / "bench.db")
    options = {
        "max_new_tokens": args.max_new_tokens,
        "latent_steps": args.latent_steps,
        "temperature": 0.0,
        "backend": args.backend,
    }
    items = load_items(args.data, task=args.task, limit=args.limit)
    backend = get_backend(None, args.backend)  # load the model before any clock starts
    configure_batching(args.batch_size, backend=args.backend)

    context = MASContext(
        task=args.task,
        latent_steps=args.latent_steps,
        max_new_tokens=args.max_new_tokens,
        backend=args.backend,
    )
    loop_seconds, loop_tokens, loop_predictions = 0.0, 0, []
    if args.loop_first and not args.no_loop:
        loop_seconds, loop_tokens, loop_predictions = plain_loop(items, context, args.batch_size)
    rows = {}
    for method in args.methods.split(","):
        summary = evaluate(
            method,
            task=args.task,
            data=args.data,
            limit=args.limit,
            batch_size=args.batch_size,
            db=db,
            options=options,
            progress=False,
        )
        rows[method] = summary
        print(
            f"{method}: {summary.generated_tokens} generated tokens, {summary.seconds:.1f} s, "
            f"accuracy {summary.accuracy:.3f}",
            file=sys.stderr,
        )

    if not args.loop_first and not args.no_loop:
        loop_seconds, loop_tokens, loop_predictions = plain_loop(items, context, args.batch_size)
    graph_run = None if args.no_loop else rows.get("latent_mas")

    lines = [
        f"Model: embedded SmolLM2-135M-Instruct on {backend.model_id} (CPU, {torch.get_num_threads()} threads, "
        f"{platform.machine()}); "
        f"{len(items)} items of `{Path(args.data).name}` (task {args.task}); greedy; max_new_tokens {args.max_new_tokens} "
        f"for every agent; latent_steps {args.latent_steps}; batch size {args.batch_size}; sequential topology.",
        "",
        "| method | accuracy | generated tokens | tokens vs text_mas | wall-clock (s) | s per item "
        "| speed-up vs text_mas |",
        "|---|---|---|---|---|---|---|",
    ]
    text = rows.get("text_mas")
    for method, s in rows.items():
        token_share = f"{100 * s.generated_tokens / text.generated_tokens:.1f}%" if text else "-"
        speedup = f"{text.seconds / s.seconds:.2f}x" if text else "-"
        lines.append(
            f"| {method} | {s.accuracy:.3f} | {s.generated_tokens} | {token_share} | {s.seconds:.1f} "
            f"| {s.seconds / max(1, s.n):.1f} | {speedup} |"
        )
    if graph_run:
        overhead = 100 * (graph_run.seconds - loop_seconds) / loop_seconds
        graph_predictions = {row["item_id"]: row["prediction"] for row in _export(db, graph_run.run_id)}
        same = sum(
            graph_predictions.get(item.id) == p for item, p in zip(items, loop_predictions, strict=True)
        )
        lines += [
            "",
            "Framework overhead (latent_mas graph with SQLite checkpoints and KV handles vs a plain loop over the "
            f"backend; the loop ran {'first' if args.loop_first else 'last'}):",
            "",
            "| runner | wall-clock (s) | generated tokens | same predictions |",
            "|---|---|---|---|",
            f"| latent_mas graph | {graph_run.seconds:.1f} | {graph_run.generated_tokens} | {same}/{len(items)} |",
            f"| plain loop | {loop_seconds:.1f} | {loop_tokens} | - |",
            f"| overhead | {overhead:+.1f}% | | |",
        ]
    table = "\n".join(lines) + "\n"
    command = "    " + " ".join(["python", *sys.argv])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(f"# LatentMAS vs text MAS benchmark\n\nCommand:\n\n{command}\n\n{table}")
    predictions = {
        m: {row["item_id"]: row["prediction"] for row in _export(db, s.run_id)} for m, s in rows.items()
    }
    Path(args.output).with_suffix(".predictions.json").write_text(json.dumps(predictions, indent=1))
    print(table)
    print(
        json.dumps({m: s.to_dict() for m, s in rows.items()} | {"plain_loop_seconds": loop_seconds}),
        file=sys.stderr,
    )
    return 0


def _export(db: str, run_id: str):
    from storage.run_store import RunStore

    return list(RunStore(db).iter_export(run_id))


if __name__ == "__main__":
    sys.exit(main())
