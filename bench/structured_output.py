"""Structured output on and off: how many structured replies parse, and what that does to a method.

Runs one evaluation per mode (`structured_output` "auto" and "off") of the MAD debate or MedAgents
on the same items, then counts from the run store:
- debate: moderator and judge JSON replies parsed (every call, retries included), verdicts readable,
  debates ending with an answer, accuracy (qa);
- medagents: votes parsed, final letters parsed, domain lists exactly as asked, revision rounds,
  accuracy.
Each mode's run has a fixed id in `--db` (which may name a file per mode with `{mode}`, so that the
modes can run as separate processes), so an interrupted benchmark resumes where it stopped, and
`--report-only` writes the table from whatever is recorded. Correctness counts do not depend on the
machine's load; the wall-clock does, so the load average is reported beside it.

    python bench/structured_output.py --method debate --task ciar --data ../shared/data/ciar.json \\
        --limit 20 --batch-size 20 --max-new-tokens 96
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runners.evaluate import evaluate  # noqa: E402
from storage.run_store import RunStore  # noqa: E402

MODES = ("auto", "off")


def share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "0/0"


def debate_counts(store: RunStore, run_id: str) -> dict[str, Any]:
    json_calls = parsed_calls = 0
    verdicts = {"moderator": [0, 0], "judge": [0, 0]}
    answered = correct = rounds = 0
    items = store.items(run_id)
    for item in items:
        record = item.record or {}
        answered += bool(record.get("success"))
        correct += bool(item.correct)
        rounds += int(record.get("rounds") or 0)
        judge_calls = 0
        for step in store.steps(run_id, item.item_id):
            if step.role == "judge":
                judge_calls += 1
                if judge_calls == 1:
                    continue  # the judge's first call lists candidates in free text
            elif step.role != "moderator":
                continue
            json_calls += 1
            parsed_calls += not (step.failure or "").startswith(("unparseable", "invalid"))
        for failure in record.get("failures") or []:
            if failure.get("node") in ("moderator", "judge_decide"):
                verdicts["moderator" if failure["node"] == "moderator" else "judge"][1] += 1
        verdicts["moderator"][0] += record.get("decided_by") == "moderator"
        verdicts["judge"][0] += record.get("decided_by") == "judge"
    return {
        "items": len(items),
        "JSON replies parsed (moderator + judge calls)": share(parsed_calls, json_calls),
        "debates ending with an answer": share(answered, len(items)),
        "decided by moderator / judge": f"{verdicts['moderator'][0]} / {verdicts['judge'][0]}",
        "unreadable verdicts (moderator / judge)": f"{verdicts['moderator'][1]} / {verdicts['judge'][1]}",
        "rounds (mean)": f"{rounds / len(items):.2f}" if items else "-",
        "accuracy": share(correct, len(items)),
    }


def medagents_counts(store: RunStore, run_id: str) -> dict[str, Any]:
    votes = votes_read = letters = correct = revisions = 0
    domain_lists = exact_lists = 0
    items = store.items(run_id)
    for item in items:
        record = item.record or {}
        for round_ in record.get("vote_history") or []:
            for vote in round_["votes"]:
                votes += 1
                votes_read += vote["vote"] is not None
        letters += record.get("pred_answer") is not None
        correct += bool(item.correct)
        revisions += len(record.get("revision_history") or [])
        stages = [f.get("stage") for f in record.get("failures") or []]
        for stage in ("question_domains", "option_domains"):
            domain_lists += 1
            exact_lists += stage not in stages
    return {
        "items": len(items),
        "votes parsed": share(votes_read, votes),
        "final letters parsed": share(letters, len(items)),
        "domain lists exactly as asked": share(exact_lists, domain_lists),
        "revision rounds (mean)": f"{revisions / len(items):.2f}" if items else "-",
        "accuracy": share(correct, len(items)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=("debate", "medagents"), required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--reference", help="reference translations (CommonMT)")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--db", default="bench/results/structured_output.db")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument(
        "--backend", default="transformers", choices=("transformers", "llamacpp"), help="local backend"
    )
    parser.add_argument("--base-url", help="an OpenAI-compatible server instead of the local backend")
    parser.add_argument("--model", help="the model name to ask the server for")
    parser.add_argument("--report-only", action="store_true", help="only write the table from the store")
    parser.add_argument("--output", help="default: bench/results/structured_<method>_<task>.md")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    output = Path(args.output or f"bench/results/structured_{args.method}_{args.task}.md")
    counts = debate_counts if args.method == "debate" else medagents_counts
    columns: dict[str, dict[str, Any]] = {}
    for mode in args.modes.split(","):
        db = args.db.format(mode=mode)
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        store = RunStore(db)
        where = "server" if args.base_url else args.backend
        run_id = f"structured-{args.method}-{args.task}-{mode}-n{args.limit}-t{args.max_new_tokens}-{where}"
        load_before = os.getloadavg()
        started = time.perf_counter()
        if not args.report_only and _status(store, run_id) != "completed":
            evaluate(
                args.method,
                task=args.task,
                data=args.data,
                reference=args.reference,
                limit=args.limit,
                batch_size=args.batch_size,
                run_id=run_id,
                db=db,
                options={
                    "structured_output": mode,
                    "max_new_tokens": args.max_new_tokens,
                    **(
                        {"base_url": args.base_url, "model": args.model}
                        if args.base_url
                        else {"backend": args.backend}
                    ),
                },
                progress=False,
            )
            seconds = f"{time.perf_counter() - started:.0f}"
            load = " / ".join(f"{a:.1f}" for a in (*load_before, *os.getloadavg())[::3])
        else:
            seconds, load = "(earlier run)", "-"
        columns[mode] = {
            **counts(store, run_id),
            "wall-clock (s)": seconds,
            "load average (start / end)": load,
        }
        _write(output, args, columns)
    print(output.read_text())
    return 0


def _status(store: RunStore, run_id: str) -> str | None:
    try:
        return store.get_run(run_id).status
    except Exception:  # no such run yet
        return None


def _write(output: Path, args: argparse.Namespace, columns: dict[str, dict[str, Any]]) -> None:
    modes = list(columns)
    rows = list(next(iter(columns.values())))
    lines = [
        f"# Structured output: {args.method} on {args.task}",
        "",
        "Command:",
        "",
        "    python " + " ".join(sys.argv),
        "",
        f"{args.limit} items of `{Path(args.data).name}`, greedy, max_new_tokens {args.max_new_tokens}, "
        f"batch size {args.batch_size}, embedded SmolLM2-135M on the CPU "
        + (f"(its GGUF served by {args.base_url})." if args.base_url else f"({args.backend} backend)."),
        "",
        "| | " + " | ".join(f"structured_output={m}" for m in modes) + " |",
        "|---|" + "---|" * len(modes),
    ]
    lines += [f"| {row} | " + " | ".join(str(columns[m].get(row, "")) for m in modes) + " |" for row in rows]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
