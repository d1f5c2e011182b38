"""The `masgraph` commands that run things: one question, resume a thread, evaluate, the demo, the
report, Studio. `runners.cli` parses the command line and calls them (`args.handler`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from runners.runs import print_summary
from runners.single_run import CLIError, ThreadRun, new_thread_id, print_result
from runners.thread_space import check_thread_id
from storage.paths import default_db


# -- run / resume --------------------------------------------------------------------------------------
def _options_dict(text: str | None) -> dict[str, str] | None:
    """--options as {"A": "...", ...} or ["...", ...] (lettered A, B, ...)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"--options is not valid JSON: {exc}") from exc
    if isinstance(value, list):
        return {chr(ord("A") + i): str(v) for i, v in enumerate(value)}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    raise CLIError('--options must be a JSON object {"A": "..."} or a JSON list of option texts')


def _default_task(args: argparse.Namespace) -> str:
    if args.method_name == "medagents":
        return "medqa"
    if args.method_name == "debate":
        return "commonmt" if args.translate else "custom"
    return "custom" if args.options is None else "arc_easy"


def cmd_run(args: argparse.Namespace) -> int:
    from runners.methods import get_method
    from tasks import TaskItem, stable_id

    question = args.question or args.topic or args.translate
    if not question or not question.strip():
        raise CLIError(
            "give the question to answer: --question TEXT (debate: --topic TEXT or --translate TEXT)"
        )
    options = _method_options(args)
    if args.translate:
        options.setdefault("mode", "translation")
    choices = _options_dict(args.options)
    item = TaskItem(id=stable_id(question, choices), question=question, gold=args.reference, options=choices)
    run = ThreadRun(
        method=get_method(args.method_name),
        task=args.task or _default_task(args),
        options=options,
        item=item,
        thread_id=check_thread_id(args.thread) if args.thread else new_thread_id(),
        db=args.db or default_db(),
        stream=args.stream,
    )
    args.thread_id_used = run.thread_id  # named in an endpoint error: the thread stays resumable
    print_result(run.start(), as_json=args.json)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    answer = None
    if args.answer is not None:
        try:
            answer = json.loads(args.answer)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--answer is not valid JSON: {exc}") from exc
    run = ThreadRun.load(args.thread, args.db or default_db())
    run.stream = args.stream
    print_result(run.resume(answer), as_json=args.json)
    return 0


def _method_options(args: argparse.Namespace) -> dict[str, Any]:
    """The method options the user gave (context field -> value); defaults stay the context's."""
    return {name: getattr(args, name) for name in args.option_names if hasattr(args, name)}


# -- eval ----------------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from runners.evaluate import evaluate

    options = _method_options(args)
    servers = args.base_url or []
    if len(servers) == 1:
        options["base_url"] = servers[0]
    summary = evaluate(
        args.method_name,
        task=args.task,
        data=args.data,
        limit=args.limit,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        run_id=args.run_id,
        db=args.db,
        options=options,
        reference=args.reference,
        progress=not args.no_progress and sys.stderr.isatty() or args.progress,
        keep_kv=args.keep_kv,
        base_urls=servers if len(servers) > 1 else (),
        executor=args.executor,
        workers=args.workers,
        address=args.address,
    )
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print_summary([summary])
    return 0


# -- demo ----------------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: baseline vs text MAS vs LatentMAS on the shipped sample questions."""
    from runners.evaluate import evaluate
    from tasks import sample_path

    data = args.data or sample_path("demo.jsonl")
    options = {"max_new_tokens": args.max_new_tokens, "latent_steps": args.latent_steps, "temperature": 0.0}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    summaries = []
    for method_name in ("baseline", "text_mas", "latent_mas"):
        summaries.append(
            evaluate(
                method_name,
                task=args.task,
                data=data,
                limit=args.limit,
                batch_size=args.batch_size,
                run_id=f"demo-{method_name}-{stamp}",
                db=args.db,
                options=options,
                progress=sys.stderr.isatty(),
            )  # fmt: skip
        )
    print_summary(summaries)
    from runners.report import EMBEDDED_MODEL_NOTE, write_report
    from storage.paths import data_dir

    embedded = not os.environ.get("MASGRAPH_MODEL")
    report = write_report(
        [s.run_id for s in summaries],
        db=args.db,
        out=data_dir() / "reports" / f"demo-{stamp}.html",
        note=EMBEDDED_MODEL_NOTE if embedded else None,
    )
    if args.json:
        print(json.dumps([s.to_dict() for s in summaries]))
    print(f"report: {report}", file=sys.stderr)
    if embedded:
        print(f"note: {EMBEDDED_MODEL_NOTE}", file=sys.stderr)
    return 0


# -- report, studio ------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from runners.report import write_report

    out = args.out or ("report.md" if args.format == "md" else "report.html")
    print(write_report(args.run_ids, db=args.db, out=out, fmt=args.format))
    return 0


def cmd_studio(args: argparse.Namespace) -> int:
    from runners.studio import run_studio

    return run_studio(args)


# -- parser --------------------------------------------------------------------------------------------
