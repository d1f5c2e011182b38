"""`masgraph runs ...`: list, show, export and delete evaluation runs, and the summary table."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def print_summary(summaries: list[Any]) -> None:
    from rich.table import Table

    table = Table(title="masgraph evaluation")
    columns = (
        "method",
        "task",
        "n",
        "accuracy",
        "failed",
        "prompt tok",
        "generated tok",
        "seconds",
        "run id",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("method", "task", "run id") else "right")
    for s in summaries:
        groups = "  ".join(f"{g}={v['accuracy']:.2f}" for g, v in s.groups.items() if g != "all")
        accuracy = f"{s.accuracy:.3f}" + (f" ({groups})" if groups else "")
        table.add_row(s.method, s.task, str(s.n), accuracy, str(s.failed), str(s.prompt_tokens),
                      str(s.generated_tokens), f"{s.seconds:.1f}", s.run_id)  # fmt: skip
    console().print(table)


def console() -> Any:
    from rich.console import Console

    # Without a terminal rich assumes 80 columns and folds every cell; logs deserve the full table.
    return Console(width=None if sys.stdout.isatty() else 200)


def cmd_runs(args: argparse.Namespace) -> int:
    from storage.run_store import RunStore

    store = RunStore(args.db)
    if args.runs_command == "list":
        runs = store.list_runs()
        rows = [
            {"run_id": r.id, "method": r.method, "task": r.task, "status": r.status,
             "items": len(store.finished_item_ids(r.id)), "total": r.total_items,
             "accuracy": store.results(r.id).get(("accuracy", "all")), "created_at": r.created_at.isoformat()}
            for r in runs
        ]  # fmt: skip
        if args.json:
            print(json.dumps(rows))
            return 0
        from rich.table import Table

        table = Table(title=f"runs in {store.db}")
        for column in ("run id", "method", "task", "status", "done/total", "accuracy", "created"):
            table.add_column(column)
        for row in rows:
            accuracy = "" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
            table.add_row(row["run_id"], row["method"], row["task"], row["status"],
                          f"{row['items']}/{row['total']}", accuracy, row["created_at"][:16].replace("T", " "))  # fmt: skip
        console().print(table)
    elif args.runs_command == "show":
        from runners.evaluate import summarize

        run = store.get_run(args.run_id)
        summary = summarize(store, run.id, run.method, run.task, seconds=0.0, skipped=0)
        info = {**summary.to_dict(), "status": run.status, "data": run.data, "options": run.options,
                "total_items": run.total_items}  # fmt: skip
        info.pop("seconds")
        info.pop("skipped")
        if args.json:
            print(json.dumps(info, default=str))
        else:
            for key, value in info.items():
                print(f"{key:>18}: {value}")
    elif args.runs_command == "export":
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
        try:
            count = store.export_jsonl(args.run_id, out)
        finally:
            if args.output:
                out.close()
        print(f"exported {count} items", file=sys.stderr)
    elif args.runs_command == "delete":
        from runners.threads import delete_run

        delete_run(args.run_id, store.db)
        print(f"deleted run {args.run_id}", file=sys.stderr)
    return 0
