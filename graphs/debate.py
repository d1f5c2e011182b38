"""MAD — Multi-Agent Debate (EMNLP 2024) as a LangGraph state graph (SPEC §3).

    base_answer -> affirmative -> negative -> moderator --(no answer, rounds left)--> affirmative
                                                  |--(answer)--> conclude -> END
                                                  '--(no answer after the last round)--> judge_candidates
                                                                                          -> judge_decide -> conclude

Every player keeps its own chat memory (system prompt, the events it was told, its own replies) in
the `memories` channel; the final state's `record` is the SPEC output record (times, model,
temperature, success, task fields, base answer, debate answer, Reason, Supported Side, the filled
prompts, every player's messages, rounds, who decided, tokens, failures).

Two configurations: question answering (a debate topic, e.g. CIAR) and translation (source text,
languages, optional reference and base translation). The moderator can be a human: the moderator
node then interrupts with both sides' latest arguments and resumes with the human's JSON verdict.

Fixed defects of the original: the moderator's JSON is parsed, never eval'd; the judge sees the
last round's arguments (`judge_sees`); model and temperature are honoured per role; a failed model
call is recorded and the debate carries on; resuming is LangGraph's checkpointing.
"""

from __future__ import annotations

import json
import operator
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy, interrupt

from nodes.agent_call import TraceEntry, ask, is_transient
from nodes.chat_models import ChatModelConfig
from nodes.debate import (
    JudgeVerdict,
    ModeratorVerdict,
    answer_key,
    fill,
    judge_json_format,
    language_name,
    moderator_json_format,
    parse_judge,
    parse_moderator,
    prompt_templates,
    round_name,
)
from runners.methods import Outcome
from tasks.base import TaskItem

ROLES = ("base", "affirmative", "negative", "moderator", "judge")
PLAYER_NAMES = {
    "base": "Baseline",
    "affirmative": "Affirmative side",
    "negative": "Negative side",
    "moderator": "Moderator",
    "judge": "Judge",
}
HUMAN_ATTEMPTS = 3  # invalid human verdicts are asked again this many times in all, then the round fails

ModelChoice = str | ChatModelConfig | None


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class DebateContext:
    """Run configuration (never checkpointed): mode, rounds, stop rule, models, prompts, human role."""

    mode: Literal["qa", "translation"] = field(
        default="qa",
        metadata={
            "description": "'qa': debate a question (debate_topic); 'translation': debate a translation "
            "(source text, languages); the answer key is debate_answer / debate_translation."
        },
    )
    max_rounds: int = field(
        default=3,
        metadata={
            "description": "Maximum debate rounds (the paper's max_round); the judge decides if none gave an answer."
        },
    )
    early_stop: Literal["answer", "preference"] = field(
        default="answer",
        metadata={
            "description": "When a moderator verdict ends the debate: 'answer' (the original's rule) when its "
            "debate answer is non-empty; 'preference' when it says there is a preference."
        },
    )
    temperature: float = field(
        default=0.0, metadata={"description": "Sampling temperature for every role given by model name."}
    )
    model: str | ChatModelConfig = field(
        default="local",
        metadata={
            "description": "Default model for all roles: a name ('local', 'local:<ref>', a served model, a "
            "registered test model) or a ChatModelConfig (used as given)."
        },
    )
    base_url: str | None = field(
        default=None,
        metadata={
            "description": "OpenAI-compatible endpoint for models given by name (None = local backend)."
        },
    )
    max_tokens: int = field(
        default=512, metadata={"description": "Generation limit per turn for models given by name."}
    )
    base_model: ModelChoice = field(
        default=None, metadata={"description": "Model of the baseline agent (None = `model`)."}
    )
    affirmative_model: ModelChoice = field(
        default=None, metadata={"description": "Model of the affirmative debater (None = `model`)."}
    )
    negative_model: ModelChoice = field(
        default=None, metadata={"description": "Model of the negative debater (None = `model`)."}
    )
    moderator_model: ModelChoice = field(
        default=None, metadata={"description": "Model of the moderator (None = `model`)."}
    )
    judge_model: ModelChoice = field(
        default=None, metadata={"description": "Model of the fallback judge (None = `model`)."}
    )
    prompts: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "description": "Prompt template overrides by name (base_prompt, player_meta_prompt, "
            "moderator_meta_prompt, affirmative_prompt, negative_prompt, debate_prompt, "
            "moderator_prompt, judge_prompt_last1, judge_prompt_last2, format_reminder); "
            "##placeholders## as in the original MAD prompt files."
        },
    )
    judge_sees: Literal["last_round", "first_round"] = field(
        default="last_round",
        metadata={
            "description": "Which arguments the judge is shown: the last round's (fixes the original) or "
            "the first round's (the original's behaviour)."
        },
    )
    human_role: Literal["moderator"] | None = field(
        default=None,
        metadata={
            "description": "'moderator': a human moderates through interrupt()/Command(resume=verdict)."
        },
    )
    source_lang: str = field(
        default="zh",
        metadata={"description": "Translation source language (code or name) when the input gives none."},
    )
    target_lang: str = field(
        default="en",
        metadata={"description": "Translation target language (code or name) when the input gives none."},
    )

    def model_config_for(self, role: str) -> ChatModelConfig:
        choice = getattr(self, f"{role}_model", None) or self.model
        if isinstance(choice, ChatModelConfig):
            return choice
        return ChatModelConfig(
            model=choice, base_url=self.base_url, temperature=self.temperature, max_tokens=self.max_tokens
        )


def _context(runtime: Runtime[DebateContext]) -> DebateContext:
    ctx = runtime.context
    if ctx is None:
        return DebateContext()
    if isinstance(ctx, dict):
        return DebateContext(**ctx)
    return ctx


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


def merge_memories(
    left: dict[str, list[Message]] | None, right: dict[str, list[Message]] | None
) -> dict[str, list[Message]]:
    """Append each player's new messages to its memory (nodes return only what they add)."""
    merged = {name: list(messages) for name, messages in (left or {}).items()}
    for name, messages in (right or {}).items():
        merged[name] = merged.get(name, []) + list(messages)
    return merged


class DebateState(TypedDict, total=False):
    # task fields (input)
    debate_topic: str
    source: str
    src_lng: str
    tgt_lng: str
    reference: str | None
    base_answer: str  # given (skip the baseline agent) or generated
    # debate
    start_time: str
    prompts: dict[str, str]  # the templates actually used, task fields filled in ("config")
    round: int
    memories: Annotated[dict[str, list[Message]], merge_memories]
    verdicts: Annotated[list[dict[str, Any]], operator.add]  # one per moderator round, then the judge's
    halted: str | None  # why the debate stopped early (a player's call failed)
    failures: Annotated[list[dict[str, Any]], operator.add]
    trace: Annotated[list[TraceEntry], operator.add]
    # output
    record: dict[str, Any]


def debate_input(
    topic: str | None = None,
    *,
    source_text: str | None = None,
    source_lang: str | None = None,
    target_lang: str | None = None,
    reference: str | None = None,
    base_answer: str | None = None,
) -> DebateState:
    """The input state: a debate topic (qa mode) or a source text to translate (translation mode).

    `base_answer` (the base translation, in translation mode) skips the baseline agent.
    Languages are codes ('zh') or names ('Chinese'); unset ones come from the context.
    """
    if (topic is None) == (source_text is None):
        raise ValueError("give either a debate topic or a source_text to translate")
    state: DebateState = {}
    if topic is not None:
        state["debate_topic"] = topic
    else:
        state["source"] = source_text or ""
        if source_lang:
            state["src_lng"] = language_name(source_lang)
        if target_lang:
            state["tgt_lng"] = language_name(target_lang)
        if reference is not None:
            state["reference"] = reference
    if base_answer:
        state["base_answer"] = base_answer
    return state


# ---------------------------------------------------------------------------------------------
# Helpers shared by the nodes
# ---------------------------------------------------------------------------------------------


def _msg(role: str, content: str) -> Message:
    return {"role": role, "content": content}


def _chat(memory: list[Message]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](m["content"]) for m in memory]


def _arguments(state: DebateState, player: str) -> list[str]:
    """A player's replies, one per round it spoke in."""
    return [m["content"] for m in (state.get("memories") or {}).get(player, []) if m["role"] == "assistant"]


def _failure(node: str, round_: int, kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"node": node, "round": round_, "kind": kind, "detail": detail[:2000], **extra}


def _failed_call(agent: str, role: str, exc: Exception, seconds: float) -> TraceEntry:
    return TraceEntry(
        agent=agent,
        role=role,
        prompt_tokens=0,
        generated_tokens=0,
        seconds=round(seconds, 4),
        failure=f"{type(exc).__name__}: {exc}",
    )


_TRACE_ROLES = {
    "base": "baseline",
    "affirmative": "debater",
    "negative": "debater",
    "moderator": "moderator",
    "judge": "judge",
}


def _turn(
    ctx: DebateContext, role: str, memory: list[Message], new: list[Message], round_: int
) -> tuple[str | None, TraceEntry, str | None]:
    """One model call for `role` on its memory plus the new events: (reply, trace, error).

    Transient errors propagate (the node's RetryPolicy retries them); others become an error
    string, so the caller can record a failed turn and the debate goes on.
    """
    started = time.perf_counter()
    try:
        reply = ask(
            ctx.model_config_for(role), _chat(memory + new), agent=role, role=_TRACE_ROLES[role], round=round_
        )
    except Exception as exc:
        if is_transient(exc):
            raise
        return (
            None,
            _failed_call(role, _TRACE_ROLES[role], exc, time.perf_counter() - started),
            f"{type(exc).__name__}: {exc}",
        )
    return reply.text, reply.trace, None


def _fill_task(templates: dict[str, str], state: DebateState, base: str | None) -> dict[str, str]:
    values = {
        "debate_topic": state.get("debate_topic", ""),
        "source": state.get("source", ""),
        "src_lng": state.get("src_lng", ""),
        "tgt_lng": state.get("tgt_lng", ""),
    }
    if base is not None:
        values.update(base_answer=base, base_translation=base)
    return {key: fill(template, **values) for key, template in templates.items()}


def _format_reminder(prompts: dict[str, str], error: str, json_format: str) -> str:
    return fill(prompts["format_reminder"], error=error, json_format=json_format)


# ---------------------------------------------------------------------------------------------
# Nodes, in the order of the debate
# ---------------------------------------------------------------------------------------------


def base_answer(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Step 1: the baseline agent answers (translates) the task, unless a base answer was given."""
    ctx = _context(runtime)
    task: DebateState = {}
    if ctx.mode == "translation":
        if not state.get("source"):
            raise ValueError("translation mode needs a source text: debate_input(source_text=...)")
        task = {
            "src_lng": language_name(state.get("src_lng") or ctx.source_lang),
            "tgt_lng": language_name(state.get("tgt_lng") or ctx.target_lang),
        }
    elif not state.get("debate_topic"):
        raise ValueError("qa mode needs a debate topic: debate_input(topic) (or set mode='translation')")
    templates = prompt_templates(ctx.mode, ctx.prompts)
    update: dict[str, Any] = {
        "start_time": datetime.now().isoformat(timespec="seconds"),
        "round": 0,
        "halted": None,
        **task,
    }
    base = state.get("base_answer") or None
    if base is None:
        prompt = _fill_task(templates, {**state, **task}, None)["base_prompt"]
        new = [_msg("user", prompt)]
        text, trace, error = _turn(ctx, "base", [], new, 0)
        update["trace"] = [trace]
        if error is not None:
            update.update(
                halted="base",
                failures=[_failure("base_answer", 0, "model_error", error)],
                prompts=_fill_task(templates, {**state, **task}, None),
            )
            return update
        base = text.strip()
        update["memories"] = {"base": new + [_msg("assistant", text)]}
    update["base_answer"] = base
    update["prompts"] = _fill_task(templates, {**state, **task}, base)
    return update


def affirmative(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Opens each round: round 1 restates the base answer; later rounds answer the negative side."""
    ctx = _context(runtime)
    prompts = state["prompts"]
    round_ = state.get("round", 0) + 1
    memory = (state.get("memories") or {}).get("affirmative", [])
    if round_ == 1:
        new = [_msg("system", prompts["player_meta_prompt"]), _msg("user", prompts["affirmative_prompt"])]
    else:
        new = [_msg("user", fill(prompts["debate_prompt"], oppo_ans=_arguments(state, "negative")[-1]))]
    return _debater_update("affirmative", ctx, memory, new, round_)


def negative(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Round 1: told it disagrees with the affirmative; later rounds: answers the affirmative."""
    ctx = _context(runtime)
    prompts = state["prompts"]
    round_ = state["round"]
    memory = (state.get("memories") or {}).get("negative", [])
    aff_ans = _arguments(state, "affirmative")[-1]
    if round_ == 1:
        new = [
            _msg("system", prompts["player_meta_prompt"]),
            _msg("user", fill(prompts["negative_prompt"], aff_ans=aff_ans)),
        ]
    else:
        new = [_msg("user", fill(prompts["debate_prompt"], oppo_ans=aff_ans))]
    return _debater_update("negative", ctx, memory, new, round_)


def _debater_update(
    player: str, ctx: DebateContext, memory: list[Message], new: list[Message], round_: int
) -> dict[str, Any]:
    text, trace, error = _turn(ctx, player, memory, new, round_)
    update: dict[str, Any] = {"round": round_, "trace": [trace]}
    if error is not None:
        # The memory keeps only finished exchanges; the failure is on record and the judge takes over.
        update.update(halted=player, failures=[_failure(player, round_, "model_error", error)])
    else:
        update["memories"] = {player: new + [_msg("assistant", text)]}
    return update


def moderator(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Ends each round: judges both sides' latest arguments and replies in JSON (or a human does)."""
    ctx = _context(runtime)
    prompts = state["prompts"]
    round_ = state["round"]
    aff_ans, neg_ans = _arguments(state, "affirmative")[-1], _arguments(state, "negative")[-1]
    prompt = fill(prompts["moderator_prompt"], aff_ans=aff_ans, neg_ans=neg_ans, round=round_name(round_))
    memory = (state.get("memories") or {}).get("moderator", [])
    new = [] if memory else [_msg("system", prompts["moderator_meta_prompt"])]
    new.append(_msg("user", prompt))
    if ctx.human_role == "moderator":
        return _human_moderator(ctx, state, round_, aff_ans, neg_ans, new)

    verdict, raws, traces, error = _ask_json(
        ctx, "moderator", memory, new, round_, parse_moderator, prompts, moderator_json_format(ctx.mode)
    )
    update: dict[str, Any] = {"trace": traces, "memories": {"moderator": new}}
    update["verdicts"] = [_verdict_entry("moderator", round_, verdict, ctx.mode, raws[-1] if raws else None)]
    if verdict is None:
        update["failures"] = [
            _failure(
                "moderator",
                round_,
                "unparseable" if raws else "model_error",
                error or "",
                raw=raws[-1] if raws else None,
            )
        ]
    return update


def _ask_json(
    ctx: DebateContext,
    role: str,
    memory: list[Message],
    new: list[Message],
    round_: int,
    parse: Any,
    prompts: dict[str, str],
    json_format: str,
) -> tuple[ModeratorVerdict | JudgeVerdict | None, list[str], list[TraceEntry], str | None]:
    """Ask for a JSON verdict; an unreadable reply is retried once with a reminder of the format.

    Appends the exchange (both tries) to `new`, so the memory shows exactly what was said.
    """
    raws: list[str] = []
    traces: list[TraceEntry] = []
    error: str | None = None
    for attempt in range(2):
        text, trace, call_error = _turn(ctx, role, memory, list(new), round_)
        if call_error is not None:
            traces.append(trace)
            new.pop()  # the memory keeps finished exchanges only: drop the unanswered request
            return None, raws, traces, call_error
        raws.append(text)
        new.append(_msg("assistant", text))
        verdict, error = parse(text)
        if verdict is not None:
            traces.append(trace)
            return verdict, raws, traces, None
        traces.append({**trace, "failure": f"unparseable: {error}"})
        if attempt == 0:
            new.append(_msg("user", _format_reminder(prompts, error or "", json_format)))
    return None, raws, traces, error


def _verdict_entry(
    by: str, round_: int, verdict: ModeratorVerdict | JudgeVerdict | None, mode: str, raw: str | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"by": by, "round": round_, "ok": verdict is not None, "raw": raw}
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
        "expected_keys": ["Whether there is a preference", "Supported Side", "Reason", key],
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
    new.append(
        _msg(
            "assistant",
            json.dumps(verdict.to_json(ctx.mode), ensure_ascii=False) if verdict is not None else raw,
        )
    )
    trace = TraceEntry(
        agent="moderator", role="human", prompt_tokens=0, generated_tokens=0, seconds=0.0, output=raw
    )
    update: dict[str, Any] = {
        "memories": {"moderator": new},
        "trace": [trace],
        "verdicts": [_verdict_entry("human", round_, verdict, ctx.mode, raw)],
    }
    if verdict is None:
        trace["failure"] = f"invalid human verdict: {error}"
        update["failures"] = [_failure("moderator", round_, "invalid_human_verdict", error or "", raw=raw)]
    return update


def judge_candidates(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Fallback, part 1: a judge (the moderator's system prompt) lists both sides' candidate answers."""
    ctx = _context(runtime)
    prompts = state["prompts"]
    # The original showed the judge round 1's arguments; by default we show the last round's.
    pick = 0 if ctx.judge_sees == "first_round" else -1
    aff_ans, neg_ans = _arguments(state, "affirmative")[pick], _arguments(state, "negative")[pick]
    new = [
        _msg("system", prompts["moderator_meta_prompt"]),
        _msg("user", fill(prompts["judge_prompt_last1"], aff_ans=aff_ans, neg_ans=neg_ans)),
    ]
    text, trace, error = _turn(ctx, "judge", [], new, state.get("round", 0))
    if error is not None:
        return {
            "trace": [trace],
            "halted": "judge",
            "failures": [_failure("judge_candidates", state.get("round", 0), "model_error", error)],
        }
    return {"trace": [trace], "memories": {"judge": new + [_msg("assistant", text)]}}


def judge_decide(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Fallback, part 2: the judge picks the final answer, as JSON {"Reason", "debate_answer"}."""
    ctx = _context(runtime)
    prompts = state["prompts"]
    round_ = state.get("round", 0)
    memory = (state.get("memories") or {}).get("judge", [])
    new = [_msg("user", prompts["judge_prompt_last2"])]
    verdict, raws, traces, error = _ask_json(
        ctx, "judge", memory, new, round_, parse_judge, prompts, judge_json_format(ctx.mode)
    )
    update: dict[str, Any] = {
        "trace": traces,
        "memories": {"judge": new},
        "verdicts": [_verdict_entry("judge", round_, verdict, ctx.mode, raws[-1] if raws else None)],
    }
    if verdict is None:
        update["failures"] = [
            _failure(
                "judge_decide",
                round_,
                "unparseable" if raws else "model_error",
                error or "",
                raw=raws[-1] if raws else None,
            )
        ]
    return update


def conclude(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    """Writes the output record (SPEC §3 fields plus rounds, decided_by, tokens, failures)."""
    ctx = _context(runtime)
    key = answer_key(ctx.mode)
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
            key: answer,
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
    return config.model if config.base_url is None else f"{config.model}@{config.base_url}"


def _stops(verdict: dict[str, Any], ctx: DebateContext) -> bool:
    """The early-stop rule applied to one moderator (or human) verdict."""
    if not verdict.get("ok"):
        return False
    if ctx.early_stop == "preference":
        return verdict.get("preference") == "Yes"
    return bool(verdict.get("answer"))


def _decision(state: DebateState, ctx: DebateContext) -> dict[str, Any] | None:
    """The verdict that decided the debate: the judge's, or a moderator's that ended it with an answer."""
    verdicts = state.get("verdicts") or []
    if not verdicts:
        return None
    last = verdicts[-1]
    if last["by"] == "judge":
        return last if last.get("ok") and last.get("answer") else None
    return last if _stops(last, ctx) and last.get("answer") else None


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------


def _both_sides_spoke(state: DebateState) -> bool:
    return bool(_arguments(state, "affirmative")) and bool(_arguments(state, "negative"))


def route_after_base(state: DebateState) -> str:
    return "conclude" if state.get("halted") else "affirmative"


def _after_debater(state: DebateState, next_node: str) -> str:
    """A debater whose call failed ends the rounds: the judge decides from what was said, if anything."""
    if not state.get("halted"):
        return next_node
    return "judge_candidates" if _both_sides_spoke(state) else "conclude"


def route_after_affirmative(state: DebateState) -> str:
    return _after_debater(state, "negative")


def route_after_negative(state: DebateState) -> str:
    return _after_debater(state, "moderator")


def route_after_moderator(state: DebateState, runtime: Runtime[DebateContext]) -> str:
    """Stop with the moderator's answer, go to the next round, or fall back to the judge."""
    ctx = _context(runtime)
    verdict = (state.get("verdicts") or [{}])[-1]
    if _stops(verdict, ctx):
        # 'preference' without an answer still needs someone to name the answer: the judge.
        return "conclude" if verdict.get("answer") else "judge_candidates"
    if state.get("round", 0) < ctx.max_rounds:
        return "affirmative"
    return "judge_candidates"


def route_after_judge_candidates(state: DebateState) -> str:
    return "conclude" if state.get("halted") == "judge" else "judge_decide"


# ---------------------------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------------------------


def build_graph() -> StateGraph:
    """The uncompiled MAD graph (compile with a checkpointer for resumable runs)."""
    # Transient transport errors are retried by LangGraph; other model errors are recorded in-node.
    retry = RetryPolicy(max_attempts=3, retry_on=is_transient)
    builder = StateGraph(DebateState, context_schema=DebateContext)
    builder.add_node("base_answer", base_answer, retry_policy=retry)
    builder.add_node("affirmative", affirmative, retry_policy=retry)
    builder.add_node("negative", negative, retry_policy=retry)
    builder.add_node("moderator", moderator, retry_policy=retry)
    builder.add_node("judge_candidates", judge_candidates, retry_policy=retry)
    builder.add_node("judge_decide", judge_decide, retry_policy=retry)
    builder.add_node("conclude", conclude)

    builder.add_edge(START, "base_answer")
    builder.add_conditional_edges("base_answer", route_after_base, ["affirmative", "conclude"])
    builder.add_conditional_edges(
        "affirmative", route_after_affirmative, ["negative", "judge_candidates", "conclude"]
    )
    builder.add_conditional_edges(
        "negative", route_after_negative, ["moderator", "judge_candidates", "conclude"]
    )
    builder.add_conditional_edges(
        "moderator", route_after_moderator, ["affirmative", "judge_candidates", "conclude"]
    )
    builder.add_conditional_edges(
        "judge_candidates", route_after_judge_candidates, ["judge_decide", "conclude"]
    )
    builder.add_edge("judge_decide", "conclude")
    builder.add_edge("conclude", END)
    return builder


graph = build_graph().compile()  # checkpointer-free, for `langgraph dev` / Studio


# ---------------------------------------------------------------------------------------------
# Evaluation method (runners.methods.EvalMethod)
# ---------------------------------------------------------------------------------------------

_TRANSLATION_TASKS = ("commonmt", "mt", "translation", "wmt")


def _mode_of(options: dict[str, Any]) -> str:
    if options.get("mode"):
        return str(options["mode"])
    task = str(options.get("task") or "").lower()
    return "translation" if task.startswith(_TRANSLATION_TASKS) else "qa"


_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?\s*%?")


def _number(text: str) -> float | None:
    """A number written as '1.5', '3/2', '48%', '1,000' (None if `text` is not one)."""
    text = text.strip().replace(",", "")
    percent = text.endswith("%")
    text = text.rstrip("%").strip()
    try:
        if "/" in text:
            numerator, denominator = text.split("/", 1)
            value = float(numerator) / float(denominator)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def _fallback_grade(answer: str, accepted: list[str]) -> bool:
    """Exact match (normalized) or numeric equivalence against any accepted answer."""

    def norm(text: str) -> str:
        return re.sub(r"\s+", " ", text.strip().strip(".").lower())

    if any(norm(answer) == norm(str(gold)) for gold in accepted):
        return True
    whole = _number(answer)
    found = [whole] if whole is not None else [_number(m) for m in _NUMBER.findall(answer)[-1:]]
    for value in (v for v in found if v is not None):
        for gold in accepted:
            target = _number(str(gold))
            if target is None:
                continue
            candidates = [target, target * 100] if str(gold).strip().endswith("%") else [target]
            if any(abs(value - c) <= 1e-6 + 1e-4 * abs(c) for c in candidates):
                return True
    return False


def _grade(item: TaskItem, answer: str, options: dict[str, Any]) -> bool:
    task_name = str(options.get("task") or "ciar")
    try:
        from tasks import get_task  # provided by the tasks package; absent in early checkouts

        return bool(get_task(task_name).grade(item, answer).correct)
    except (ImportError, AttributeError, KeyError, ValueError):
        accepted = item.gold if isinstance(item.gold, list) else [item.gold]
        return _fallback_grade(answer, [str(g) for g in accepted if g is not None])


@dataclass(frozen=True)
class DebateEvalMethod:
    """MAD for the evaluation runner: CIAR-style questions (qa) or CommonMT-style translation."""

    name: str = "debate"

    def build_graph(self) -> StateGraph:
        return build_graph()

    def context(self, options: dict[str, Any]) -> DebateContext:
        ctx = DebateContext(mode=_mode_of(options))  # type: ignore[arg-type]
        simple = {
            "max_rounds": int,
            "temperature": float,
            "model": str,
            "base_url": str,
            "source": None,
            "target": None,
            "human": None,
            "max_new_tokens": None,
            "judge_sees": None,
            "prompts_file": None,
        }
        for key in simple:
            if options.get(key) is None:
                continue
            value = options[key]
            if key == "max_new_tokens":
                ctx.max_tokens = int(value)
            elif key == "judge_sees":
                ctx.judge_sees = value
            elif key == "prompts_file":
                from nodes.mas_prompts import load_prompt_overrides

                ctx.prompts = {**ctx.prompts, **load_prompt_overrides(value)}
            elif key == "source":
                ctx.source_lang = str(value)
            elif key == "target":
                ctx.target_lang = str(value)
            elif key == "human":
                ctx.human_role = "moderator" if value in (True, "moderator") else None
            else:
                setattr(ctx, key, simple[key](value))
        return ctx

    def make_input(self, item: TaskItem, options: dict[str, Any]) -> dict[str, Any]:
        if _mode_of(options) == "translation":
            gold = item.gold[0] if isinstance(item.gold, list) and item.gold else item.gold
            meta = item.meta or {}
            return dict(
                debate_input(
                    source_text=item.question,
                    source_lang=options.get("source") or meta.get("src_lng") or meta.get("source_lang"),
                    target_lang=options.get("target") or meta.get("tgt_lng") or meta.get("target_lang"),
                    reference=None if gold is None else str(gold),
                )
            )
        return dict(debate_input(item.question))

    def outcome(self, item: TaskItem, state: dict[str, Any], options: dict[str, Any]) -> Outcome:
        record = dict(state.get("record") or {})
        mode = record.get("mode") or _mode_of(options)
        answer = record.get(answer_key(mode)) or ""
        if not answer:
            reasons = "; ".join(f"{f['node']}: {f['kind']}" for f in record.get("failures") or [])
            return Outcome(
                prediction=None,
                correct=False if mode == "qa" else None,
                record=record,
                error="the debate produced no answer" + (f" ({reasons})" if reasons else ""),
            )
        correct = None if mode == "translation" else _grade(item, answer, options)
        return Outcome(prediction=answer, correct=correct, record=record)


EVAL_METHOD = DebateEvalMethod()
