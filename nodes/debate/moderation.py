"""The moderator, who ends each round with a JSON verdict, and the asking for JSON verdicts.

A model moderator (or judge) whose reply cannot be read as the verdict JSON is asked once more,
with a reminder of the format; a second unreadable reply fails the round (recorded, never guessed).
With `structured_output="auto"` the verdict is asked for in its JSON schema (nodes.structured); the
parsed object is validated exactly like a free-text reply, and the verdict entry records how it was
asked for ("structured").
A human moderator is asked through `interrupt()`: the graph pauses with both sides' latest
arguments and resumes with the person's verdict (a JSON object or string), which is validated like
a model's; an invalid one is asked again, with the error, up to `HUMAN_ATTEMPTS` times in all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from latent_backend.grammar_spec import GrammarSpec
from nodes.agent_call import TraceEntry
from nodes.debate.context import DebateContext
from nodes.debate.prompts import fill, format_reminder, round_name
from nodes.debate.state import DebateState, Message, arguments, failure, memory_of, message
from nodes.debate.turns import shaped_turn
from nodes.debate.verdicts import (
    PREFERENCE_KEY,
    REASON_KEY,
    SIDE_KEY,
    JudgeVerdict,
    ModeratorVerdict,
    answer_key,
    moderator_json_format,
    moderator_schema,
    parse_moderator,
    parse_reference,
)
from nodes.fields import context_of

HUMAN_ATTEMPTS = 3  # invalid human verdicts are asked again this many times in all, then the round fails

Verdict = ModeratorVerdict | JudgeVerdict


def moderator(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Ends each round: judges both sides' latest arguments and replies in JSON (or a human does)."""
    ctx = context_of(runtime, DebateContext)
    prompts = state["prompts"]
    round_ = state["round"]
    aff_ans, neg_ans = arguments(state, "affirmative")[-1], arguments(state, "negative")[-1]
    prompt = fill(prompts["moderator_prompt"], aff_ans=aff_ans, neg_ans=neg_ans, round=round_name(round_))
    memory = memory_of(state, "moderator")
    new = [] if memory else [message("system", prompts["moderator_meta_prompt"])]
    new.append(message("user", prompt))
    if ctx.human_role == "moderator":
        return _human_moderator(ctx, state, round_, aff_ans, neg_ans, new)

    parse = (lambda text: parse_reference(text, ctx.mode, judge=False)) if ctx.reference else parse_moderator
    verdict, raws, traces, error = ask_json(
        ctx,
        "moderator",
        memory,
        new,
        round_,
        parse,
        prompts,
        moderator_json_format(ctx.mode),
        moderator_schema,
    )
    update: dict[str, Any] = {"trace": traces, "memories": {"moderator": new}}
    update["verdicts"] = [verdict_entry("moderator", round_, verdict, raws[-1] if raws else None, traces)]
    if verdict is None:
        update["failures"] = [
            failure(
                "moderator",
                round_,
                "unparseable" if raws else "model_error",
                error or "",
                raw=raws[-1] if raws else None,
            )
        ]
    return update


def ask_json(
    ctx: DebateContext,
    role: str,
    memory: list[Message],
    new: list[Message],
    round_: int,
    parse: Callable[[str], tuple[Verdict | None, str | None]],
    prompts: dict[str, str],
    json_format: str,
    schema_of: Callable[[str, int], dict[str, Any]],
) -> tuple[Verdict | None, list[str], list[TraceEntry], str | None]:
    """Ask for a JSON verdict; an unreadable reply is retried once with a reminder of the format
    (the reference preset asks once, as the original did).

    `schema_of(mode, max_tokens)` is the verdict's JSON schema, asked for when
    `ctx.structured_output` is "auto" (its text fields bounded by the call's token budget).
    Returns (verdict or None, the raw replies, their trace entries, the last error). Appends the
    exchange (both tries) to `new`, so the memory shows exactly what was said.
    """
    raws: list[str] = []
    traces: list[TraceEntry] = []
    error: str | None = None
    attempts = 1 if ctx.reference else 2
    for attempt in range(attempts):
        shape = None
        if ctx.structured_output == "auto":
            max_tokens = ctx.model_config_for(role, memory + new).max_tokens
            shape = GrammarSpec.json_schema(schema_of(ctx.mode, max_tokens))
        text, trace, call_error, value = shaped_turn(ctx, role, memory, list(new), round_, shape)
        if call_error is not None:
            traces.append(trace)
            new.pop()  # the memory keeps finished exchanges only: drop the unanswered request
            return None, raws, traces, call_error
        raws.append(text)
        new.append(message("assistant", text))
        # A parsed shape is validated like text; the reference preset reads text as the original did.
        verdict, error = parse(value if value is not None and not ctx.reference else text)
        if verdict is not None:
            traces.append(trace)
            return verdict, raws, traces, None
        traces.append({**trace, "failure": f"unparseable: {error}"})
        if attempt + 1 < attempts:
            new.append(message("user", format_reminder(prompts, error or "", json_format)))
    return None, raws, traces, error


def verdict_entry(
    by: str, round_: int, verdict: Verdict | None, raw: str | None, traces: Sequence[TraceEntry] = ()
) -> dict[str, Any]:
    """A `verdicts` entry: who decided in which round, whether the verdict was readable, what it
    says, and how the last reply was asked for ("structured": grammar, json_schema, ..., or "off")."""
    entry: dict[str, Any] = {"by": by, "round": round_, "ok": verdict is not None, "raw": raw}
    if traces:
        entry["structured"] = traces[-1].get("structured", "off")
    if isinstance(verdict, ModeratorVerdict):
        entry.update(
            preference=verdict.preference,
            supported_side=verdict.supported_side,
            reason=verdict.reason,
            answer=verdict.answer,
        )
    elif isinstance(verdict, JudgeVerdict):
        entry.update(preference=None, supported_side="", reason=verdict.reason, answer=verdict.answer)
    return entry


def stops(verdict: dict[str, Any], ctx: DebateContext) -> bool:
    """The early-stop rule applied to one moderator (or human) verdict entry."""
    if not verdict.get("ok"):
        return False
    if ctx.early_stop == "preference":
        return verdict.get("preference") == "Yes"
    return bool(verdict.get("answer"))


def _human_moderator(
    ctx: DebateContext, state: DebateState, round_: int, aff_ans: str, neg_ans: str, new: list[Message]
) -> dict[str, Any]:
    """The human moderator: interrupt() with the round's arguments, validate the resumed verdict.

    Everything before interrupt() is side-effect free: on resume this node runs again from its start.
    """
    key = answer_key(ctx.mode)
    payload: dict[str, Any] = {
        "kind": "debate_moderator",
        "round": round_,
        "round_name": round_name(round_),
        "task": {k: state[k] for k in ("debate_topic", "source", "src_lng", "tgt_lng") if state.get(k)},
        "affirmative": aff_ans,
        "negative": neg_ans,
        "expected_keys": [PREFERENCE_KEY, SIDE_KEY, REASON_KEY, key],
        "format": moderator_json_format(ctx.mode),
        "instructions": f"Resume with a JSON object (dict or string) with these keys; a non-empty "
        f"{key!r} ends the debate with that answer, an empty one continues it.",
    }
    verdict: ModeratorVerdict | None = None
    error: str | None = None
    given: Any = None
    for _ in range(HUMAN_ATTEMPTS):
        given = interrupt(payload if error is None else {**payload, "error": error})
        verdict, error = parse_moderator(given)
        if verdict is not None:
            break
    raw = given if isinstance(given, str) else json.dumps(given, ensure_ascii=False, default=str)
    reply = json.dumps(verdict.to_json(ctx.mode), ensure_ascii=False) if verdict is not None else raw
    new.append(message("assistant", reply))
    trace = TraceEntry(
        agent="moderator", role="human", prompt_tokens=0, generated_tokens=0, seconds=0.0, output=raw
    )
    update: dict[str, Any] = {
        "memories": {"moderator": new},
        "trace": [trace],
        "verdicts": [verdict_entry("human", round_, verdict, raw)],
    }
    if verdict is None:
        trace["failure"] = f"invalid human verdict: {error}"
        update["failures"] = [failure("moderator", round_, "invalid_human_verdict", error or "", raw=raw)]
    return update
