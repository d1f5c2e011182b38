"""The debate's players as graph nodes: baseline agent, affirmative and negative debaters, the
fallback judge, and `conclude`, which writes the output record. (The moderator is in `moderation`.)

Nodes read every option from the runtime context (`DebateContext`), never from checkpointed
state. A player whose model call fails (other than a transport error, which the node's
RetryPolicy retries) is recorded in `failures`, and the debate goes on without it as far as it can.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from langgraph.runtime import Runtime

from nodes.chat_models import ChatModelConfig
from nodes.debate.context import DebateContext
from nodes.debate.moderation import ask_json, stops, verdict_entry
from nodes.debate.prompts import fill, fill_task, language_name
from nodes.debate.state import DebateState, Message, arguments, failure, memory_of, message
from nodes.debate.turns import turn
from nodes.debate.verdicts import answer_key, judge_json_format, judge_schema, parse_judge, parse_reference
from nodes.fields import context_of
from storage.paths import mask_url

ROLES = ("base", "affirmative", "negative", "moderator", "judge")
PLAYER_NAMES = {
    "base": "Baseline",
    "affirmative": "Affirmative side",
    "negative": "Negative side",
    "moderator": "Moderator",
    "judge": "Judge",
}


def base_answer(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Step 1: the baseline agent answers (translates) the task, unless a base answer was given."""
    ctx = context_of(runtime, DebateContext)
    task: dict[str, Any] = {}
    if ctx.mode == "translation":
        if not state.get("source"):
            raise ValueError("translation mode needs a source text: debate_input(source_text=...)")
        task = {
            "src_lng": language_name(state.get("src_lng") or ctx.source_lang),
            "tgt_lng": language_name(state.get("tgt_lng") or ctx.target_lang),
        }
    elif not state.get("debate_topic"):
        raise ValueError("qa mode needs a debate topic: debate_input(topic) (or set mode='translation')")
    templates = ctx.templates()
    update: dict[str, Any] = {
        "start_time": datetime.now().isoformat(timespec="seconds"),
        "round": 0,
        "halted": None,
        **task,
    }
    base = state.get("base_answer") or None
    if base is None and ctx.reference and ctx.mode == "qa":
        # The original has no baseline agent here: the affirmative answers the topic itself, and
        # its first answer is recorded as the base answer.
        update["prompts"] = fill_task(templates, {**state, **task}, None)
        return update
    if base is None:
        prompt = fill_task(templates, {**state, **task}, None)["base_prompt"]
        new = [message("user", prompt)]
        text, trace, error = turn(ctx, "base", [], new, 0)
        update["trace"] = [trace]
        if error is not None:
            update.update(
                halted="base",
                failures=[failure("base_answer", 0, "model_error", error)],
                prompts=fill_task(templates, {**state, **task}, None),
            )
            return update
        base = text if ctx.reference else text.strip()
        update["memories"] = {"base": new + [message("assistant", text)]}
    update["base_answer"] = base
    update["prompts"] = fill_task(templates, {**state, **task}, base)
    return update


def affirmative(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Opens each round: round 1 restates the base answer; later rounds answer the negative side."""
    ctx = context_of(runtime, DebateContext)
    prompts = state["prompts"]
    round_ = state.get("round", 0) + 1
    if round_ == 1:
        new = [
            message("system", prompts["player_meta_prompt"]),
            message("user", prompts["affirmative_prompt"]),
        ]
    else:
        new = [message("user", fill(prompts["debate_prompt"], oppo_ans=arguments(state, "negative")[-1]))]
    update = _debater_update("affirmative", ctx, memory_of(state, "affirmative"), new, round_)
    if round_ == 1 and not state.get("base_answer") and "memories" in update:
        update["base_answer"] = update["memories"]["affirmative"][-1]["content"]
    return update


def negative(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Round 1: told it disagrees with the affirmative; later rounds: answers the affirmative."""
    ctx = context_of(runtime, DebateContext)
    prompts = state["prompts"]
    round_ = state["round"]
    aff_ans = arguments(state, "affirmative")[-1]
    if round_ == 1:
        new = [
            message("system", prompts["player_meta_prompt"]),
            message("user", fill(prompts["negative_prompt"], aff_ans=aff_ans)),
        ]
    else:
        new = [message("user", fill(prompts["debate_prompt"], oppo_ans=aff_ans))]
    return _debater_update("negative", ctx, memory_of(state, "negative"), new, round_)


def _debater_update(
    player: str, ctx: DebateContext, memory: list[Message], new: list[Message], round_: int
) -> dict[str, Any]:
    text, trace, error = turn(ctx, player, memory, new, round_)
    update: dict[str, Any] = {"round": round_, "trace": [trace]}
    if error is not None:
        # The memory keeps only finished exchanges; the failure is on record and the judge takes over.
        update.update(halted=player, failures=[failure(player, round_, "model_error", error)])
    else:
        update["memories"] = {player: new + [message("assistant", text)]}
    return update


def judge_candidates(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Fallback, part 1: a judge (the moderator's system prompt) lists both sides' candidate answers."""
    ctx = context_of(runtime, DebateContext)
    prompts = state["prompts"]
    # The original showed the judge round 1's arguments; by default we show the last round's.
    pick = 0 if ctx.judge_sees == "first_round" else -1
    aff_ans, neg_ans = arguments(state, "affirmative")[pick], arguments(state, "negative")[pick]
    new = [
        message("system", prompts["moderator_meta_prompt"]),
        message("user", fill(prompts["judge_prompt_last1"], aff_ans=aff_ans, neg_ans=neg_ans)),
    ]
    text, trace, error = turn(ctx, "judge", [], new, state.get("round", 0))
    if error is not None:
        return {
            "trace": [trace],
            "halted": "judge",
            "failures": [failure("judge_candidates", state.get("round", 0), "model_error", error)],
        }
    return {"trace": [trace], "memories": {"judge": new + [message("assistant", text)]}}


def judge_decide(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Fallback, part 2: the judge picks the final answer, as JSON {"Reason", "debate_answer"}."""
    ctx = context_of(runtime, DebateContext)
    prompts = state["prompts"]
    round_ = state.get("round", 0)
    new = [message("user", prompts["judge_prompt_last2"])]
    parse = (lambda text: parse_reference(text, ctx.mode, judge=True)) if ctx.reference else parse_judge
    verdict, raws, traces, error = ask_json(
        ctx,
        "judge",
        memory_of(state, "judge"),
        new,
        round_,
        parse,
        prompts,
        judge_json_format(ctx.mode),
        judge_schema,
    )
    update: dict[str, Any] = {
        "trace": traces,
        "memories": {"judge": new},
        "verdicts": [verdict_entry("judge", round_, verdict, raws[-1] if raws else None, traces)],
    }
    if verdict is None:
        update["failures"] = [
            failure(
                "judge_decide",
                round_,
                "unparseable" if raws else "model_error",
                error or "",
                raw=raws[-1] if raws else None,
            )
        ]
    return update


def conclude(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Writes the output record: the original MAD record's fields (times, model, temperature,
    success, task fields, base answer, debate answer, Reason, Supported Side, the filled prompts,
    every player's messages) plus rounds, who decided, tokens and failures."""
    ctx = context_of(runtime, DebateContext)
    decision = _decision(state, ctx)
    answer = decision["answer"] if decision else ""
    trace = state.get("trace") or []
    prompt_tokens = sum(int(e.get("prompt_tokens") or 0) for e in trace)
    generated_tokens = sum(int(e.get("generated_tokens") or 0) for e in trace)
    record: dict[str, Any] = {
        "start_time": state.get("start_time", ""),
        "end_time": datetime.now().isoformat(timespec="seconds"),
        "model_name": ctx.model if isinstance(ctx.model, str) else _model_name(ctx.model),
        "models": {role: _model_name(ctx.model_config_for(role)) for role in ROLES},
        "temperature": ctx.temperature,
        "mode": ctx.mode,
        "structured_output": ctx.structured_output,
        "success": bool(answer),
    }
    if ctx.mode == "translation":
        record.update(
            src_lng=state.get("src_lng", ""),
            tgt_lng=state.get("tgt_lng", ""),
            source=state.get("source", ""),
            reference=state.get("reference") or "",
            base_translation=state.get("base_answer", ""),
        )
    else:
        record.update(debate_topic=state.get("debate_topic", ""), base_answer=state.get("base_answer", ""))
    record.update(
        {
            answer_key(ctx.mode): answer,
            "Reason": decision["reason"] if decision else "",
            "Supported Side": decision["supported_side"] if decision else "",
            "config": dict(state.get("prompts") or {}),
            "players": {
                PLAYER_NAMES.get(name, name): list(messages)
                for name, messages in (state.get("memories") or {}).items()
            },
            "rounds": state.get("round", 0),
            "decided_by": decision["by"] if decision else None,
            "tokens": {
                "prompt": prompt_tokens,
                "generated": generated_tokens,
                "total": prompt_tokens + generated_tokens,
            },
            "failures": list(state.get("failures") or []),
        }
    )
    return {"record": record}


def _model_name(config: ChatModelConfig) -> str:
    return config.model if config.base_url is None else f"{config.model}@{mask_url(config.base_url)}"


def _decision(state: DebateState, ctx: DebateContext) -> dict[str, Any] | None:
    """The verdict that decided the debate: the judge's, or a moderator's that ended it with an answer."""
    verdicts = state.get("verdicts") or []
    if not verdicts:
        return None
    last = verdicts[-1]
    if last["by"] == "judge":
        return last if last.get("ok") and last.get("answer") else None
    return last if stops(last, ctx) and last.get("answer") else None
