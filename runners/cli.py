"""The `masgraph` command: run one question, resume a thread, evaluate, inspect runs, demo."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from typing import Any

from storage.paths import default_db

EXIT_BAD_INPUT = 2


class CLIError(Exception):
    """Bad input from the user: printed as one clear line, exit code 2."""


def _json_arg(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"{what} is not valid JSON: {exc}") from exc


def _options_dict(value: Any) -> dict[str, str] | None:
    """--options as {"A": "...", ...} or ["...", ...] (lettered A, B, ...)."""
    if value is None:
        return None
    if isinstance(value, list):
        return {chr(ord("A") + i): str(v) for i, v in enumerate(value)}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    raise CLIError('--options must be a JSON object {"A": "..."} or a JSON list of option texts')


# -- shared option flags ------------------------------------------------------------------------------
def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model and generation")
    group.add_argument("--model", help="local HF id, folder or .gguf; with --base-url, the served model name")
    group.add_argument("--base-url", help="OpenAI-compatible endpoint (API key from $OPENAI_API_KEY)")
    group.add_argument("--max-new-tokens", type=int, help="tokens each text-generating agent may write")
    group.add_argument("--temperature", type=float, help="sampling temperature (0: greedy)")
    group.add_argument("--top-p", type=float)
    group.add_argument("--seed", type=int)
    group.add_argument("--system-prompt", help="system message for every agent")
    group.add_argument("--prompts-file", help="JSON file of per-role prompt template overrides")
    mas = parser.add_argument_group("LatentMAS / text MAS")
    mas.add_argument("--prompt", choices=["sequential", "hierarchical"], help="agent topology")
    mas.add_argument("--latent-steps", type=int)
    mas.add_argument("--no-realign", dest="latent_space_realign", action="store_const", const=False)
    mas.add_argument("--think", action="store_const", const=True)
    mas.add_argument("--sequential-info-only", action="store_const", const=True)
    mas.add_argument("--latent-only", action="store_const", const=True)
    mas.add_argument("--zero-step-handoff", choices=["prompts", "none"])
    med = parser.add_argument_group("MedAgents")
    med.add_argument(
        "--method",
        dest="med_method",
        choices=["base_direct", "base_cot", "anal_only", "syn_only", "syn_verif"],
    )
    med.add_argument("--preset", choices=["original", "paper"])
    med.add_argument("--max-attempts", type=int)
    deb = parser.add_argument_group("debate")
    deb.add_argument("--max-rounds", type=int)
    deb.add_argument("--source", help="source language (code or name) for translation debates")
    deb.add_argument("--target", help="target language (code or name) for translation debates")
    deb.add_argument("--human", choices=["moderator"], help="a person takes this seat (interrupts)")
    deb.add_argument("--judge-sees", choices=["last_round", "first_round"])


OPTION_FLAGS = (
    "model",
    "base_url",
    "max_new_tokens",
    "temperature",
    "top_p",
    "seed",
    "system_prompt",
    "prompts_file",
    "prompt",
    "latent_steps",
    "latent_space_realign",
    "think",
    "sequential_info_only",
    "latent_only",
    "zero_step_handoff",
    "preset",
    "max_attempts",
    "max_rounds",
    "source",
    "target",
    "human",
    "judge_sees",
)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options = {name: getattr(args, name, None) for name in OPTION_FLAGS}
    if getattr(args, "med_method", None):
        options["method"] = args.med_method
    return {k: v for k, v in options.items() if v is not None}


# -- run / resume --------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from runners.methods import get_method
    from storage.checkpoints import compile_with_saver, thread_config
    from storage.run_store import RunStore
    from tasks import TaskItem

    method = get_method(args.method_name)
    options = _options(args)
    options.setdefault("task", args.task or _default_task(args.method_name, args))
    question = args.question or args.topic or args.translate
    if not question or not question.strip():
        raise CLIError(
            "give the question to answer: --question TEXT (debate: --topic TEXT or --translate TEXT)"
        )
    if args.translate:
        options["mode"] = "translation"
    item = TaskItem(
        id=uuid.uuid4().hex[:12],
        question=question,
        gold=args.reference,
        options=_options_dict(_json_arg(args.options, "--options")),
    )
    db = args.db or default_db()
    from storage.paths import kv_dir_for

    options["kv_dir"] = str(kv_dir_for(db))
    thread_id = args.thread or f"{args.method_name}-{item.id}"
    store = RunStore(db)
    store.save_thread(thread_id, method=args.method_name, options=options, item=item.to_dict())
    graph = compile_with_saver(method.build_graph(), db)
    config = thread_config(thread_id)
    context = method.context(options)
    started = time.perf_counter()
    snapshot = graph.get_state(config)
    payload = None if snapshot.next else method.make_input(item, options)
    if snapshot.values and not snapshot.next:
        state = snapshot.values  # the thread already finished: show its result
    else:
        state = _drive(graph, payload, config, context, answer=None)
    return _report(
        args, graph, config, method, item, options, state, thread_id, time.perf_counter() - started
    )


def cmd_resume(args: argparse.Namespace) -> int:
    from runners.methods import get_method
    from storage.checkpoints import compile_with_saver, thread_config
    from storage.run_store import RunStore
    from tasks import TaskItem

    db = args.db or default_db()
    thread = RunStore(db).get_thread(args.thread)
    method = get_method(thread.method)
    options = dict(thread.options)
    item = TaskItem.from_dict(thread.item)
    graph = compile_with_saver(method.build_graph(), db)
    config = thread_config(args.thread)
    snapshot = graph.get_state(config)
    if not snapshot.values:
        raise CLIError(f"thread {args.thread!r} has no checkpoint in {db}")
    answer = _json_arg(args.answer, "--answer")
    started = time.perf_counter()
    state = (
        snapshot.values if not snapshot.next else _drive(graph, None, config, method.context(options), answer)
    )
    return _report(
        args, graph, config, method, item, options, state, args.thread, time.perf_counter() - started
    )


def _drive(graph: Any, payload: Any, config: dict[str, Any], context: Any, answer: Any) -> dict[str, Any]:
    """Invoke until the graph ends, answering interrupts from --answer or the terminal."""
    from langgraph.types import Command

    from storage.checkpoints import RUN_DURABILITY

    while True:
        snapshot = graph.get_state(config)
        pending = [i for task in snapshot.tasks for i in task.interrupts]
        if pending:
            if answer is None:
                answer = _ask_person(pending[0].value)
                if answer is None:
                    return snapshot.values
            payload, answer = Command(resume=answer), None
        state = graph.invoke(payload, config, context=context, durability=RUN_DURABILITY)
        if not graph.get_state(config).next:
            return state
        payload = None


def _ask_person(request: Any) -> Any:
    """Show an interrupt to the person at the terminal; None when nobody is there."""
    print("\n=== the graph waits for you ===", file=sys.stderr)
    print(json.dumps(request, indent=2, ensure_ascii=False, default=str), file=sys.stderr)
    if not sys.stdin.isatty():
        return None
    while True:
        text = input("Your decision as JSON (empty line: stop here and resume later): ").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            print(f"not valid JSON ({exc}); try again", file=sys.stderr)


def _report(
    args: argparse.Namespace,
    graph: Any,
    config: dict[str, Any],
    method: Any,
    item: Any,
    options: dict[str, Any],
    state: dict[str, Any],
    thread_id: str,
    seconds: float,
) -> int:
    if graph.get_state(config).next:
        message = {
            "thread_id": thread_id,
            "status": "interrupted",
            "resume": f"masgraph resume --thread {thread_id} --answer JSON",
        }
        print(
            json.dumps(message)
            if args.json
            else f"paused: resume with `masgraph resume --thread {thread_id} --answer JSON`"
        )
        return 0
    outcome = method.outcome(item, state, options)
    trace = state.get("trace") or []
    result = {
        "thread_id": thread_id,
        "method": method.name,
        "answer": outcome.prediction if outcome.prediction is not None else state.get("answer"),
        "text": state.get("text") or "",
        "prompt_tokens": sum(int(t.get("prompt_tokens") or 0) for t in trace),
        "generated_tokens": sum(int(t.get("generated_tokens") or 0) for t in trace),
        "seconds": round(seconds, 3),
        "error": outcome.error,
        "record": outcome.record,
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    else:
        print(result["text"] or "")
        print(
            f"\nanswer: {result['answer']}   ({result['prompt_tokens']} prompt + {result['generated_tokens']} "
            f"generated tokens, {result['seconds']} s, thread {thread_id})",
            file=sys.stderr,
        )
    return 0


def _default_task(method_name: str, args: argparse.Namespace) -> str:
    if method_name == "medagents":
        return "medqa"
    if method_name == "debate":
        return "commonmt" if args.translate else "custom"
    return "custom" if args.options is None else "arc_easy"


# -- eval ----------------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from runners.evaluate import evaluate

    options = _options(args)
    if args.reference:
        options["reference"] = args.reference
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
        progress=not args.no_progress and sys.stderr.isatty() or args.progress,
    )
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        _print_summary([summary])
    return 0


def _print_summary(summaries: list[Any]) -> None:
    from rich.table import Table

    table = Table(title="masgraph evaluation")
    for column in (
        "method",
        "task",
        "n",
        "accuracy",
        "failed",
        "prompt tok",
        "generated tok",
        "seconds",
        "run id",
    ):
        table.add_column(column, justify="right" if column not in ("method", "task", "run id") else "left")
    for s in summaries:
        groups = "  ".join(f"{g}={v['accuracy']:.2f}" for g, v in s.groups.items() if g != "all")
        table.add_row(
            s.method,
            s.task,
            str(s.n),
            f"{s.accuracy:.3f}" + (f" ({groups})" if groups else ""),
            str(s.failed),
            str(s.prompt_tokens),
            str(s.generated_tokens),
            f"{s.seconds:.1f}",
            s.run_id,
        )
    _console().print(table)


def _console():
    from rich.console import Console

    # Without a terminal rich assumes 80 columns and folds every cell; logs deserve the full table.
    return Console(width=None if sys.stdout.isatty() else 200)


# -- runs ----------------------------------------------------------------------------------------------
def cmd_runs(args: argparse.Namespace) -> int:
    from storage.run_store import RunStore

    store = RunStore(args.db)
    if args.runs_command == "list":
        runs = store.list_runs()
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "run_id": r.id,
                            "method": r.method,
                            "task": r.task,
                            "status": r.status,
                            "items": len(store.finished_item_ids(r.id)),
                            "total": r.total_items,
                            "created_at": r.created_at.isoformat(),
                        }
                        for r in runs
                    ]
                )
            )
            return 0
        from rich.table import Table

        table = Table(title=f"runs in {store.db}")
        for column in ("run id", "method", "task", "status", "done/total", "accuracy", "created"):
            table.add_column(column)
        for run in runs:
            results = store.results(run.id)
            accuracy = results.get(("accuracy", "all"))
            table.add_row(
                run.id,
                run.method,
                run.task,
                run.status,
                f"{len(store.finished_item_ids(run.id))}/{run.total_items}",
                "" if accuracy is None else f"{accuracy:.3f}",
                run.created_at.strftime("%Y-%m-%d %H:%M"),
            )
        _console().print(table)
    elif args.runs_command == "show":
        run = store.get_run(args.run_id)
        from runners.evaluate import summarize

        summary = summarize(store, run.id, run.method, run.task, seconds=0.0, skipped=0)
        info = {
            **summary.to_dict(),
            "status": run.status,
            "data": run.data,
            "options": run.options,
            "total_items": run.total_items,
        }
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
        from latent_backend.kv_store import kv_store_for_db
        from storage.checkpoints import checkpointer

        store.get_run(args.run_id)
        saver = checkpointer(store.db)
        kv = kv_store_for_db(store.db)
        for item in store.items(args.run_id):
            saver.delete_thread(f"{args.run_id}:{item.item_id}")
        kv.delete_prefix(f"{args.run_id}:")
        store.delete_run(args.run_id)
        print(f"deleted run {args.run_id}", file=sys.stderr)
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
            )
        )
    _print_summary(summaries)
    if args.json:
        print(json.dumps([s.to_dict() for s in summaries]))
    return 0


# -- parser --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="masgraph", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)
    methods = ["baseline", "text_mas", "latent_mas", "medagents", "debate"]

    run = commands.add_parser("run", help="answer one question with a graph (checkpointed thread)")
    run.add_argument("method_name", choices=methods)
    run.add_argument("--question", help="the question (with --options for multiple choice)")
    run.add_argument("--options", help='answer options as JSON: {"A": "...", ...} or ["...", ...]')
    run.add_argument("--topic", help="debate topic (question answering debate)")
    run.add_argument("--translate", help="source text for a translation debate")
    run.add_argument("--reference", help="reference answer/translation kept in the record")
    run.add_argument("--task", help="answer format/grader (gsm8k, medqa, arc_easy, custom, ...)")
    run.add_argument("--thread", help="thread id (default: a new one); an existing thread shows its result")
    run.add_argument("--db", help=f"SQLite path or postgresql:// URL (default {default_db()})")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    _add_model_flags(run)
    run.set_defaults(handler=cmd_run)

    resume = commands.add_parser("resume", help="continue an interrupted thread")
    resume.add_argument("--thread", required=True)
    resume.add_argument(
        "--answer", help="JSON value for a waiting interrupt (e.g. the human moderator's decision)"
    )
    resume.add_argument("--db")
    resume.add_argument("--json", action="store_true")
    resume.set_defaults(handler=cmd_resume)

    ev = commands.add_parser("eval", help="evaluate a method on a data set (resumable with --run-id)")
    ev.add_argument("method_name", choices=methods)
    ev.add_argument("--task", required=True)
    ev.add_argument(
        "--data", required=True, help="json/jsonl file, or a Hugging Face data set name when online"
    )
    ev.add_argument("--reference", help="reference file (CommonMT translations, line-aligned)")
    ev.add_argument("--limit", type=int)
    ev.add_argument("--batch-size", type=int, default=1, help="items that go through the model together")
    ev.add_argument("--concurrency", type=int, help="items in flight (remote endpoints); default: batch size")
    ev.add_argument("--run-id", help="resume this run (finished items are not re-run)")
    ev.add_argument("--db")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--progress", action="store_true", help="show the progress bar even without a terminal")
    ev.add_argument("--no-progress", action="store_true")
    _add_model_flags(ev)
    ev.set_defaults(handler=cmd_eval)

    runs = commands.add_parser("runs", help="list, show, export or delete evaluation runs")
    runs.add_argument("--db")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True)
    listing = runs_commands.add_parser("list")
    listing.add_argument("--json", action="store_true")
    show = runs_commands.add_parser("show")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    export = runs_commands.add_parser("export")
    export.add_argument("run_id")
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    export.add_argument("--output", "-o")
    delete = runs_commands.add_parser("delete")
    delete.add_argument("run_id")
    for sub in (listing, show, export, delete):
        sub.add_argument("--db", default=argparse.SUPPRESS)
    runs.set_defaults(handler=cmd_runs)

    demo = commands.add_parser("demo", help="baseline vs text MAS vs LatentMAS on the shipped samples")
    demo.add_argument("--data", help="data file (default: the shipped demo set)")
    demo.add_argument("--task", default="mixed")
    demo.add_argument("--limit", type=int)
    demo.add_argument("--batch-size", type=int, default=4)
    demo.add_argument("--max-new-tokens", type=int, default=192)
    demo.add_argument("--latent-steps", type=int, default=10)
    demo.add_argument("--db")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not args.verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    from latent_backend import KVStoreError, ModelLoadError, PromptError
    from storage.run_store import RunStoreError
    from tasks import TaskError

    try:
        return args.handler(args)
    except (CLIError, TaskError, ModelLoadError, PromptError, KVStoreError, RunStoreError, ValueError) as exc:
        print(f"masgraph: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            "masgraph: interrupted; resume with the same command (eval: --run-id, run: masgraph resume)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
