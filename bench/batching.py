"""Benchmark: evaluation batch size B > 1 against B = 1 (latent_mas, greedy, same items).

    .venv/bin/python bench/batching.py --data ../shared/data/medqa_latentmas_300.json --task medqa \
        --limit 8 --batch-size 8

Items of one batch run as concurrent graph threads whose node calls the backend's micro-batcher
gathers into one forward pass. Prints seconds per item for both and whether the predictions match;
writes bench/results/batching.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from latent_backend import configure_batching, get_backend
from runners.evaluate import evaluate
from storage.run_store import RunStore


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", default="latent_mas")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--latent-steps", type=int, default=10)
    parser.add_argument("--output", help="default: bench/results/batching_<method>.md")
    args = parser.parse_args()
    output = Path(args.output or Path(__file__).parent / "results" / f"batching_{args.method}.md")

    db = str(Path(tempfile.mkdtemp(prefix="bench-batching-")) / "bench.db")
    options = {"max_new_tokens": args.max_new_tokens, "latent_steps": args.latent_steps, "temperature": 0.0}
    get_backend()
    rows = []
    predictions = []
    for batch_size in (1, args.batch_size):
        configure_batching(batch_size)
        summary = evaluate(
            args.method,
            task=args.task,
            data=args.data,
            limit=args.limit,
            batch_size=batch_size,
            db=db,
            options=options,
            progress=False,
        )
        predictions.append({row.item_id: row.prediction for row in RunStore(db).items(summary.run_id)})
        rows.append((batch_size, summary))
    same = sum(predictions[0][k] == predictions[1].get(k) for k in predictions[0])
    lines = [
        f"{args.method} on {args.limit} items of `{Path(args.data).name}` ({args.task}); greedy; max_new_tokens "
        f"{args.max_new_tokens}; latent_steps {args.latent_steps}; embedded SmolLM2-135M on the CPU.",
        "",
        "| batch size | wall-clock (s) | s per item | generated tokens |",
        "|---|---|---|---|",
    ]
    lines += [f"| {b} | {s.seconds:.1f} | {s.seconds / s.n:.2f} | {s.generated_tokens} |" for b, s in rows]
    speedup = rows[0][1].seconds / rows[1][1].seconds
    lines += [
        "",
        f"Speed-up per item: {speedup:.2f}x; identical greedy predictions: {same}/{len(predictions[0])}.",
    ]
    text = "\n".join(lines) + "\n"
    command = "    python " + " ".join(sys.argv)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(f"# Batching benchmark\n\nCommand:\n\n{command}\n\n{text}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
