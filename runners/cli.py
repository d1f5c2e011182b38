"""The `masgraph` command: run one question, resume a thread, evaluate, inspect runs, demo.

Method options are not listed here: `run METHOD` and `eval METHOD` get one flag per field of the
method's context dataclass (`runners.flags`), so an option exists in exactly one place. Commands
that only read the run store never import torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any

from runners.methods import METHODS
from runners.runs import cmd_runs, print_summary
from runners.single_run import CLIError, ThreadRun, new_thread_id, print_result
from storage.paths import default_db

EXIT_BAD_INPUT = 2
MODEL_COMMANDS = ("run", "resume", "eval", "demo")


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
        thread_id=args.thread or new_thread_id(),
        db=args.db or default_db(),
    )
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
    print_result(run.resume(answer), as_json=args.json)
    return 0


def _method_options(args: argparse.Namespace) -> dict[str, Any]:
    """The method options the user gave (context field -> value); defaults stay the context's."""
    return {name: getattr(args, name) for name in args.option_names if hasattr(args, name)}


# -- eval ----------------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from runners.evaluate import evaluate

    summary = evaluate(
        args.method_name,
        task=args.task,
        data=args.data,
        limit=args.limit,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        run_id=args.run_id,
        db=args.db,
        options=_method_options(args),
        reference=args.reference,
        progress=not args.no_progress and sys.stderr.isatty() or args.progress,
        keep_kv=args.keep_kv,
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
    if args.json:
        print(json.dumps([s.to_dict() for s in summaries]))
    return 0


# -- parser --------------------------------------------------------------------------------------------
def _method_parsers(
    command: argparse.ArgumentParser, common: argparse.ArgumentParser, *, with_flags: bool
) -> None:
    """One sub-command per method; its flags come from the method's context dataclass."""
    from runners.flags import add_context_flags

    methods = command.add_subparsers(dest="method_name", required=True, metavar="METHOD")
    for name in METHODS:
        sub = methods.add_parser(name, parents=[common], help=f"the {name} graph", allow_abbrev=False)
        names: list[str] = []
        if with_flags:
            from runners.methods import get_method

            names = add_context_flags(sub, get_method(name).context_class, title=f"{name} options")
        sub.set_defaults(option_names=names)


def _run_common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--question", help="the question (with --options for multiple choice)")
    common.add_argument("--options", help='answer options as JSON: {"A": "...", ...} or ["...", ...]')
    common.add_argument("--topic", help="debate topic (question answering debate)")
    common.add_argument("--translate", help="source text for a translation debate")
    common.add_argument("--reference", help="reference answer/translation kept in the record")
    common.add_argument("--task", help="answer format/grader (gsm8k, medqa, arc_easy, custom, ...)")
    common.add_argument(
        "--thread", help="thread id (default: a new UUID); an existing thread shows its result"
    )
    common.add_argument("--db", help=f"SQLite path or postgresql:// URL (default {default_db()})")
    common.add_argument("--json", action="store_true", help="print one JSON object")
    return common


def _eval_common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--task", required=True)
    common.add_argument(
        "--data", required=True, help="json/jsonl file, or a Hugging Face data set name when online"
    )
    common.add_argument("--reference", help="reference file (CommonMT translations, line-aligned)")
    common.add_argument("--limit", type=int)
    common.add_argument("--batch-size", type=int, default=1, help="items that go through the model together")
    common.add_argument(
        "--concurrency", type=int, help="items in flight (remote endpoints); default: batch size"
    )
    common.add_argument("--run-id", help="resume this run (finished items are not re-run)")
    common.add_argument("--db")
    common.add_argument("--json", action="store_true")
    common.add_argument(
        "--progress", action="store_true", help="show the progress bar even without a terminal"
    )
    common.add_argument("--no-progress", action="store_true")
    common.add_argument(
        "--keep-kv", action="store_true", help="keep finished items' KV caches (default: freed when done)"
    )
    return common


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; method flags are only built when the command runs a method (they import nodes)."""
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")]
    with_flags = bool(words) and words[0] in ("run", "eval")
    parser = argparse.ArgumentParser(prog="masgraph", description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="answer one question with a graph (checkpointed thread)")
    _method_parsers(run, _run_common(), with_flags=with_flags)
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
    _method_parsers(ev, _eval_common(), with_flags=with_flags)
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


def _quiet_model_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not args.verbose and args.command in MODEL_COMMANDS:
        _quiet_model_libraries()
    from latent_backend.errors import KVStoreError, ModelLoadError, PromptError
    from nodes.fields import OptionError
    from storage.run_store import RunStoreError
    from tasks import TaskError

    try:
        return args.handler(args)
    except OptionError as exc:
        flag = f"--{exc.option.replace('_', '-')}"
        print(f"masgraph: error: {flag}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
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
