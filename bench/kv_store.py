"""Benchmark: what the KV store costs per latent_mas item, and what a node waits on it.

    .venv/bin/python bench/kv_store.py --data ../shared/data/medqa_latentmas_300.json --task medqa \
        --limit 8 --old-rev df83f50

Compares this tree with the store of an earlier commit (`--old-rev`, exported with `git archive`;
each measurement runs in a fresh process with that tree first on PYTHONPATH, old and new
interleaved so load changes on the machine hit both alike):

1. latent_mas on MedQA items, embedded model: bytes of KV files written per item (every entry
   kept, so nothing is freed before the writer gets to it) against the final cache of the item;
   checkpoint bytes per item (SQLite rows of the item's thread); seconds per item at batch size
   1 and B (the evaluation runner, items freed when done, as users run it).
2. A synthetic large cache (40 layers x 8 KV heads x 128 dims x 1.5k positions, bf16, ~246 MB)
   handed from agent to agent three times (500 positions each): the time a node waits on the store
   to put its cache and the next node to get it, the time a cold read of the final cache takes
   (after a restart), and bytes written.

Writes bench/results/kv_store.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC = {"layers": 40, "kv_heads": 8, "head_dim": 128, "positions": 1500, "agents": 3}


# -- workers (run in a fresh process against one tree) ---------------------------------------------
def item_bytes(args: argparse.Namespace) -> dict:
    from graphs.latent_mas import build_graph
    from runners.evaluate import evaluate
    from storage.checkpoints import compile_with_saver, thread_config
    from storage.paths import kv_dir_for
    from storage.run_store import RunStore, item_thread_id

    db = str(Path(tempfile.mkdtemp(prefix="bench-kv-")) / "bench.db")
    options = {"max_new_tokens": args.max_new_tokens, "latent_steps": args.latent_steps, "temperature": 0.0}
    summary = evaluate(
        "latent_mas", task=args.task, data=args.data, limit=args.limit, db=db, options=options,
        progress=False, keep_kv=True,
    )  # fmt: skip
    kv_dir = kv_dir_for(db)
    _flush(kv_dir)
    graph = compile_with_saver(build_graph(), db)
    final, checkpoint_rows = [], []
    with sqlite3.connect(db) as conn:
        for item in RunStore(db).items(summary.run_id):
            thread = item_thread_id(summary.run_id, item.item_id)
            final.append(graph.get_state(thread_config(thread)).values["kv"]["nbytes"])
            rows = conn.execute(
                "SELECT length(checkpoint) + length(metadata) FROM checkpoints WHERE thread_id = ?", (thread,)
            ).fetchall()
            writes = conn.execute(
                "SELECT length(value) FROM writes WHERE thread_id = ?", (thread,)
            ).fetchall()
            checkpoint_rows.append(([r[0] for r in rows], [w[0] for w in writes]))
    written = sum(p.stat().st_size for p in kv_dir.rglob("*.safetensors"))
    return {
        "items": summary.n,
        "written_per_item": written / summary.n,
        "final_cache_per_item": sum(final) / len(final),
        "checkpoint_bytes_per_item": sum(sum(c) + sum(w) for c, w in checkpoint_rows) / len(checkpoint_rows),
        "largest_checkpoint": max(max(c) for c, _ in checkpoint_rows),
        "predictions": [row.prediction for row in RunStore(db).items(summary.run_id)],
    }


def item_seconds(args: argparse.Namespace) -> dict:
    from latent_backend import configure_batching
    from runners.evaluate import evaluate

    db = str(Path(tempfile.mkdtemp(prefix="bench-kv-")) / "bench.db")
    options = {"max_new_tokens": args.max_new_tokens, "latent_steps": args.latent_steps, "temperature": 0.0}
    configure_batching(args.batch_size)
    evaluate("latent_mas", task=args.task, data=args.data, limit=1, db=db, options=options, progress=False)
    summary = evaluate(
        "latent_mas",
        task=args.task,
        data=args.data,
        limit=args.limit,
        batch_size=args.batch_size,
        db=db,
        options=options,
        progress=False,
    )  # fmt: skip  (the first call above warms up: realignment matrix, allocator)
    return {"seconds_per_item": summary.seconds / summary.n, "generated_tokens": summary.generated_tokens}


def synthetic(args: argparse.Namespace) -> dict:
    import torch

    import latent_backend.kv_store as kv_module

    spec = SYNTHETIC
    step = spec["positions"] // spec["agents"]
    generator = torch.Generator().manual_seed(0)
    shape = (spec["kv_heads"], step, spec["head_dim"])
    deltas = [
        [(torch.randn(shape, generator=generator).bfloat16(), torch.randn(shape, generator=generator).bfloat16())
         for _ in range(spec["layers"])]
        for _ in range(spec["agents"])
    ]  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="bench-kv-synthetic-"))
    store_put, next_get = [], []
    started = time.perf_counter()
    if hasattr(kv_module, "Entry"):  # this tree: deltas, memory first, written behind
        store = kv_module.KVStore(root, memory_budget_bytes=4 << 30)
        ids = []
        for agent, delta in enumerate(deltas):
            tensors = {
                f"{kind}.{i}": t for i, pair in enumerate(delta) for kind, t in zip("kv", pair, strict=True)
            }
            ids.append(f"agent{agent}")
            clock = time.perf_counter()
            store.put(ids[-1], "thread", kv_module.Entry(tensors))
            store_put.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            for entry_id in ids:  # the next node resolves the chain
                store.get(entry_id, "thread")
            next_get.append(time.perf_counter() - clock)
        store.flush()
        persisted = time.perf_counter() - started
        clock = time.perf_counter()
        cold = kv_module.KVStore(root)
        for entry_id in ids:
            cold.get(entry_id, "thread")
        cold_read = time.perf_counter() - clock
    else:  # the earlier store: whole cumulative caches, SHA-256, written before put returns
        store = kv_module.KVStore(root, memory_budget_bytes=4 << 30)
        handle = None
        for agent in range(spec["agents"]):
            layers = [
                kv_module.LayerKV(
                    torch.cat([deltas[a][i][0] for a in range(agent + 1)], dim=1),
                    torch.cat([deltas[a][i][1] for a in range(agent + 1)], dim=1),
                )
                for i in range(spec["layers"])
            ]  # the cumulative cache the node hands on (built by the backend, not timed here)
            clock = time.perf_counter()
            handle = store.put(layers, model_id="m", namespace="thread", parent=handle)
            store_put.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            store.get(handle, copy=False)
            next_get.append(time.perf_counter() - clock)
        persisted = time.perf_counter() - started
        clock = time.perf_counter()
        kv_module.KVStore(root).get(handle, copy=False)
        cold_read = time.perf_counter() - clock
    written = sum(p.stat().st_size for p in root.rglob("*.safetensors"))
    return {
        "final_cache": sum(t.numel() * 2 for delta in deltas for pair in delta for t in pair),
        "written": written,
        "put_seconds": store_put,
        "next_get_seconds": next_get,
        "node_wait": sum(store_put) + sum(next_get),
        "persisted_after": persisted,
        "cold_read": cold_read,
    }


def _flush(kv_dir: Path) -> None:
    import latent_backend.kv_store as kv_module

    if hasattr(kv_module.KVStore, "flush"):
        kv_module.kv_store(kv_dir).flush()


WORKERS = {"item_bytes": item_bytes, "item_seconds": item_seconds, "synthetic": synthetic}


# -- driver -------------------------------------------------------------------------------------------
def export_tree(rev: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix=f"bench-kv-{rev}-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run_worker(tree: Path, worker: str, args: argparse.Namespace, **overrides) -> dict:
    argv = [sys.executable, __file__, "--worker", worker, "--data", args.data, "--task", args.task]
    settings = {"limit": args.limit, "batch_size": 1, "max_new_tokens": args.max_new_tokens,
                "latent_steps": args.latent_steps, **overrides}  # fmt: skip
    for name, value in settings.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "MASGRAPH_DATA_DIR": tempfile.mkdtemp(prefix="bench-kv-data-"),
    }
    done = subprocess.run(argv, cwd=tree, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--task", default="medqa")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--latent-steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds (old and new interleaved)")
    parser.add_argument("--old-rev", default="df83f50")
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "kv_store.md"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return 0

    args.data = str(Path(args.data).resolve())
    trees = {f"before ({args.old_rev})": export_tree(args.old_rev), "after": ROOT}
    load = os.getloadavg()[0]
    results: dict[str, dict[str, list[dict]]] = {name: {} for name in trees}
    plan = [("item_bytes", {})]
    for _ in range(args.rounds):
        plan += [
            ("synthetic", {}),
            ("item_seconds", {"batch_size": 1}),
            ("item_seconds", {"batch_size": args.batch_size}),
        ]
    for worker, overrides in plan:
        for name, tree in trees.items():
            key = f"{worker}{overrides.get('batch_size', '')}"
            result = run_worker(tree, worker, args, **overrides)
            results[name].setdefault(key, []).append(result)
            print(name, key, json.dumps(result)[:300], file=sys.stderr, flush=True)
    text = report(results, args, load)
    command = "    python " + " ".join(sys.argv)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(f"# KV store benchmark\n\nCommand:\n\n{command}\n\n{text}")
    Path(args.output).with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(text)
    return 0


def report(results: dict[str, dict[str, list[dict]]], args: argparse.Namespace, load: float) -> str:
    def median(name: str, key: str, field: str) -> float:
        return statistics.median(r[field] for r in results[name][key])

    mb = 1 << 20
    names = list(results)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average {load:.1f} at the start. "
        f"latent_mas on {args.limit} items of `{Path(args.data).name}` ({args.task}), greedy, max_new_tokens "
        f"{args.max_new_tokens}, latent_steps {args.latent_steps}, embedded SmolLM2-135M (fp32, CPU); "
        f"medians of {args.rounds} interleaved rounds.",
        "",
        "| store | KV bytes written per item | final cache per item | written / final | checkpoint bytes per item "
        f"| largest checkpoint row | s/item B=1 | s/item B={args.batch_size} | same predictions |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    reference = results[names[0]]["item_bytes"][0]["predictions"]
    for name in names:
        item = results[name]["item_bytes"][0]
        lines.append(
            f"| {name} | {item['written_per_item'] / mb:.1f} MB | {item['final_cache_per_item'] / mb:.1f} MB "
            f"| {item['written_per_item'] / item['final_cache_per_item']:.2f}x "
            f"| {item['checkpoint_bytes_per_item'] / 1024:.1f} KB | {item['largest_checkpoint'] / 1024:.1f} KB "
            f"| {median(name, 'item_seconds1', 'seconds_per_item'):.2f} "
            f"| {median(name, f'item_seconds{args.batch_size}', 'seconds_per_item'):.2f} "
            f"| {sum(a == b for a, b in zip(item['predictions'], reference, strict=True))}/{len(reference)} |"
        )
    spec = SYNTHETIC
    lines += [
        "",
        f"Synthetic cache: {spec['layers']} layers x {spec['kv_heads']} KV heads x {spec['head_dim']} dims x "
        f"{spec['positions']} positions, bf16, handed on by {spec['agents']} agents ({spec['positions'] // spec['agents']} "
        "positions each); store operations only (the backend's own copies are not timed).",
        "",
        "| store | node waits: put (s, per agent) | next node waits: get (s, per agent) | total wait per item (s) "
        "| on disk after (s) | cold read of the final cache (s) | bytes written |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        runs = results[name]["synthetic"]
        puts = [statistics.median(r["put_seconds"][i] for r in runs) for i in range(spec["agents"])]
        gets = [statistics.median(r["next_get_seconds"][i] for r in runs) for i in range(spec["agents"])]
        lines.append(
            f"| {name} | {' / '.join(f'{x:.3f}' for x in puts)} | {' / '.join(f'{x:.4f}' for x in gets)} "
            f"| {median(name, 'synthetic', 'node_wait'):.2f} | {median(name, 'synthetic', 'persisted_after'):.2f} "
            f"| {median(name, 'synthetic', 'cold_read'):.2f} | {runs[0]['written'] / mb:.0f} MB "
            f"({runs[0]['written'] / runs[0]['final_cache']:.2f}x the final cache) |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
