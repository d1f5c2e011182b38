"""The `masgraph` command line: parsing, dispatch to the commands (`runners.commands`, `runners.runs`)
and one-line errors.

Method options are not listed here: `run METHOD` and `eval METHOD` get one flag per field of the
method's context dataclass (`runners.flags`), so an option exists in exactly one place. Commands
that only read the run store never import torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from runners.commands import cmd_demo, cmd_eval, cmd_report, cmd_resume, cmd_run, cmd_studio
from runners.flags import OneLineParser, at_least, identifier
from runners.methods import METHODS
from runners.runs import cmd_runs
from runners.single_run import CLIError
from storage.paths import default_db

EXIT_BAD_INPUT = 2
RUN_ID_LENGTH = 64  # the run store's column widths
THREAD_ID_LENGTH = 200
MODEL_COMMANDS = ("run", "resume", "eval", "demo")


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
        sub.set_defaults(option_names=names, known_flags=sorted(sub._option_string_actions))


def _run_common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--question", help="the question (with --options for multiple choice)")
    common.add_argument("--options", help='answer options as JSON: {"A": "...", ...} or ["...", ...]')
    common.add_argument("--topic", help="debate topic (question answering debate)")
    common.add_argument("--translate", help="source text for a translation debate")
    common.add_argument("--reference", help="reference answer/translation kept in the record")
    common.add_argument("--task", help="answer format/grader (gsm8k, medqa, arc_easy, custom, ...)")
    common.add_argument(
        "--thread",
        type=identifier(THREAD_ID_LENGTH),
        help="thread id, a UUID (default: a new one); an existing thread shows its result",
    )
    common.add_argument("--stream", action="store_true", help="show the agents' text and progress live")
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
    common.add_argument("--limit", type=at_least(1))
    common.add_argument(
        "--batch-size", type=at_least(1), default=1, help="items that go through the model together"
    )
    common.add_argument(
        "--concurrency", type=at_least(1), help="items in flight (remote endpoints); default: batch size"
    )
    common.add_argument(
        "--run-id",
        type=identifier(RUN_ID_LENGTH),
        help="resume this run (finished items are not re-run), or work on it beside another process",
    )
    common.add_argument("--db")
    common.add_argument("--json", action="store_true")
    common.add_argument(
        "--progress", action="store_true", help="show the progress bar even without a terminal"
    )
    common.add_argument("--no-progress", action="store_true")
    common.add_argument(
        "--keep-kv", action="store_true", help="keep finished items' KV caches (default: freed when done)"
    )
    common.add_argument(
        "--base-url",
        action="append",
        metavar="URL",
        help="OpenAI-compatible endpoint for the text agents; give it several times for a pool of "
        "servers, spread over the items (item i -> server i mod n, recorded with the item)",
    )
    common.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: item threads in this process (default); ray: Ray actors (pip install 'masgraph[ray]')",
    )
    common.add_argument(
        "--workers", type=at_least(1), default=1, help="Ray workers, each with its own model (one per GPU)"
    )
    common.add_argument(
        "--address", help="Ray cluster to join ('auto': the one `ray start` set up here); default: start one"
    )
    return common


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; method flags are only built when the command runs a method (they import nodes)."""
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")]
    with_flags = bool(words) and words[0] in ("run", "eval")
    parser = OneLineParser(prog="masgraph", description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="answer one question with a graph (checkpointed thread)")
    _method_parsers(run, _run_common(), with_flags=with_flags)
    run.set_defaults(handler=cmd_run)

    resume = commands.add_parser("resume", help="continue an interrupted thread")
    resume.add_argument("--thread", required=True, type=identifier(THREAD_ID_LENGTH))
    resume.add_argument(
        "--answer", help="JSON value for a waiting interrupt (e.g. the human moderator's decision)"
    )
    resume.add_argument("--db")
    resume.add_argument("--json", action="store_true")
    resume.add_argument("--stream", action="store_true", help="show the agents' text and progress live")
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

    report = commands.add_parser(
        "report", help="compare evaluation runs on one page (HTML with figures, or md)"
    )
    report.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    report.add_argument("--out", "-o", help="output file (default report.html, or report.md)")
    report.add_argument("--format", choices=["html", "md"], default="html")
    report.add_argument("--db")
    report.set_defaults(handler=cmd_report)

    studio = commands.add_parser("studio", help="open LangGraph Studio on the project database")
    studio.add_argument(
        "--db", help="SQLite path or postgresql:// URL (default: $MASGRAPH_DB, .env, default)"
    )
    studio.add_argument("--host", default="127.0.0.1")
    studio.add_argument("--port", type=int, default=2024)
    studio.add_argument("--no-browser", action="store_true", help="do not open Studio in a browser")
    studio.set_defaults(handler=cmd_studio)

    demo = commands.add_parser("demo", help="baseline vs text MAS vs LatentMAS on the shipped samples")
    demo.add_argument("--data", help="data file (default: the shipped demo set)")
    demo.add_argument("--task", default="mixed")
    demo.add_argument("--limit", type=at_least(1))
    demo.add_argument("--batch-size", type=at_least(1), default=4)
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


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The arguments; an unknown flag is named with the closest flag the command has."""
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        import difflib

        word = unknown[0].split("=", 1)[0]
        close = difflib.get_close_matches(word, getattr(args, "known_flags", []), n=1)
        parser.error(f"unknown option {word}" + (f"; did you mean {close[0]}?" if close else ""))
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not args.verbose and args.command in MODEL_COMMANDS:
        _quiet_model_libraries()
    from latent_backend.errors import KVStoreError, ModelLoadError, PromptError
    from nodes.fields import OptionError
    from storage.run_store import RunStoreError
    from tasks import TaskError

    try:
        with _database_errors(args):
            return args.handler(args)
    except OptionError as exc:
        flag = f"--{exc.option.replace('_', '-')}"
        return _fail(f"{flag}: {exc}")
    except (CLIError, TaskError, ModelLoadError, PromptError, KVStoreError, RunStoreError, ValueError) as exc:
        return _fail(str(exc))
    except Exception as exc:
        if type(exc).__name__ != "EndpointError":  # nodes.chat_models, imported only by model commands
            raise
        thread = getattr(args, "thread_id_used", None)
        return _fail(
            f"{exc}" + (f"; the thread {thread} can be resumed with `masgraph resume`" if thread else "")
        )
    except KeyboardInterrupt:
        print(
            "masgraph: interrupted; resume with the same command (eval: --run-id, run: masgraph resume)",
            file=sys.stderr,
        )
        return 130


def _fail(message: str) -> int:
    print(f"masgraph: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _database_errors(args: argparse.Namespace) -> Any:
    """Database errors met while a command works, as one line naming the database."""
    from storage.database import database_errors

    return database_errors(getattr(args, "db", None) or default_db())


if __name__ == "__main__":
    sys.exit(main())
