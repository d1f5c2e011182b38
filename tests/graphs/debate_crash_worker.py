"""Runs one MAD debate with deterministic scripted players on the SQLite saver (crash/resume test).

    python -m tests.graphs.debate_crash_worker --db D --log L --thread T --out O [--die-at negative:2] [--resume]

Every model call appends "<role> <round>" to the calls log (flushed and fsynced before the reply is
returned). `--die-at role:n` SIGKILLs this process inside that call, after logging it, the way a
crash would. `--resume` continues the thread with `invoke(None, config)`. The final state is
written to `--out` as JSON.

As a plugin (`MASGRAPH_PLUGINS=tests.graphs.debate_crash_worker`, with $MASGRAPH_CRASH_LOG and
optionally $MASGRAPH_CRASH_AT) it registers the same players for `masgraph run` / `masgraph resume`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from graphs.debate import DebateContext, build_graph
from nodes.chat_models import register_chat_model
from nodes.debate.state import debate_input
from storage.checkpoints import RUN_DURABILITY, compile_with_saver, thread_config
from tests.fakes import ScriptedChatModel

LOG_ENV, DIE_AT_ENV = "MASGRAPH_CRASH_LOG", "MASGRAPH_CRASH_AT"
ROLES = ("base", "affirmative", "negative", "moderator", "judge")
TOPIC = "Is 0.999... equal to 1?"


def scripted_reply(role: str, turn: int) -> str:
    """Deterministic replies: the moderator gives no answer until the third round."""
    if role == "moderator":
        answer = "1" if turn == 3 else ""
        return json.dumps(
            {
                "Whether there is a preference": "Yes" if answer else "No",
                "Supported Side": "Affirmative" if answer else "",
                "Reason": f"round {turn}",
                "debate_answer": answer,
            }
        )
    if role == "judge":
        return json.dumps({"Reason": "judge", "debate_answer": "1"}) if turn == 2 else "candidates"
    return f"{role} says {turn}"


def register_models(log: Path, die_at: str | None = None) -> DebateContext:
    """Register one scripted model per role (names crash-<role>) and return the debate context."""

    def player(role: str):
        def reply(messages: list[BaseMessage]) -> str:
            turn = sum(1 for m in messages if m.type == "human")  # = the round, for every player
            with log.open("a", encoding="utf-8") as handle:
                handle.write(f"{role} {turn}\n")
                handle.flush()
                os.fsync(handle.fileno())
            if die_at == f"{role}:{turn}":
                os.kill(os.getpid(), signal.SIGKILL)
            return scripted_reply(role, turn)

        return reply

    for role in ROLES:
        register_chat_model(f"crash-{role}", ScriptedChatModel(player(role)))
    return DebateContext(max_rounds=3, **{f"{role}_model": f"crash-{role}" for role in ROLES})


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """The parts of a final state that must not depend on a crash (no times, no durations)."""
    record = {k: v for k, v in state["record"].items() if k not in ("start_time", "end_time")}
    trace = [{k: v for k, v in entry.items() if k != "seconds"} for entry in state["trace"]]
    return {
        "memories": state["memories"],
        "verdicts": state["verdicts"],
        "failures": state["failures"],
        "base_answer": state["base_answer"],
        "round": state["round"],
        "record": record,
        "trace": trace,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--thread", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--die-at")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()

    context = register_models(args.log, args.die_at)
    graph = compile_with_saver(build_graph(), args.db)
    config = thread_config(args.thread)
    state = graph.invoke(
        None if args.resume else debate_input(TOPIC), config, context=context, durability=RUN_DURABILITY
    )
    args.out.write_text(json.dumps(state, ensure_ascii=False, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
elif os.environ.get(LOG_ENV):  # imported as a plugin by the CLI
    register_models(Path(os.environ[LOG_ENV]), os.environ.get(DIE_AT_ENV))
