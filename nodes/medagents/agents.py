"""MedAgents stage nodes: expert gathering, analyses, synthesis, decision, and the two baselines.

Every node reads its options from the runtime context (`MedAgentsContext`; the defaults when the
graph was invoked without one) and returns the state update of its stage, its trace entries, and
a `Failure` for anything it could not read from a reply (the run continues on a recorded fallback).
With `structured_output="auto"`, domain lists, votes and option letters are asked for in their shape
(`call_agent(shape=...)`); the parsed value goes through the same strict parsers as free text.
The report (stage 5) is in `nodes.medagents.report`; the consultation nodes (vote, advice,
revision) in `nodes.medagents.consultation`.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from latent_backend.grammar_spec import GrammarSpec
from nodes.agent_call import AgentReply, ask
from nodes.fields import context_of
from nodes.medagents import reference as ref
from nodes.medagents.context import MedAgentsContext
from nodes.medagents.parse import (
    domains_shape,
    letter_shape,
    parse_answer_letter,
    parse_domains,
)
from nodes.medagents.prompts import domain_format, format_options, render
from nodes.medagents.state import AnalysisPart, DomainTask, Failure, MedAgentsState
from nodes.structured import ask_structured


# -- shared by every stage ---------------------------------------------------------------------------
def call_agent(
    ctx: MedAgentsContext,
    *,
    stage: str,
    role: str,
    agent: str,
    system: str,
    user: str,
    max_tokens: int,
    shape: GrammarSpec | None = None,
    **extra: Any,
) -> AgentReply:
    """One call through the shared `ask`; the trace entry is tagged with its stage. With a `shape`
    and structured output on, the reply is asked for in it and `value` holds the parsed shape."""
    config = ctx.chat_config(role, max_tokens)
    if shape is None or ctx.structured_output == "off":
        return ask(config, (system, user), agent=agent, role=role, stage=stage, **extra)
    reply = ask_structured(config, (system, user), shape, agent=agent, role=role, stage=stage, **extra)
    return AgentReply(text=reply.text, trace=reply.trace, value=reply.value)


def failure(reply: AgentReply, stage: str, agent: str, error: str) -> Failure:
    """A recorded failure; the call's trace entry is marked with it too."""
    reply.trace["failure"] = error
    return Failure(stage=stage, agent=agent, error=error, raw=reply.text)


def _letters(options: dict[str, str]) -> str:
    return ", ".join(options)


def _answer_format(prompts: dict[str, str], options: dict[str, str]) -> str:
    if options:
        return render(prompts, "answer_format.choice", letters=_letters(options))
    return render(prompts, "answer_format.free")


def options_text(ctx: MedAgentsContext, options: dict[str, str] | None) -> str:
    """The options as prompts show them: "A. text" lines, or the original's Python dict."""
    return ref.options_repr(options) if ctx.reference else format_options(options)


def joined(
    ctx: MedAgentsContext,
    prompts: dict[str, str],
    key: str,
    items: list[dict[str, Any]],
    separator: str = ref.DEFAULT_JOIN,
) -> str:
    """Template `key` filled once per item and joined (the original concatenates, numbering from 0)."""
    first = ref.REFERENCE_FIRST_NUMBER if ctx.reference else ref.DEFAULT_FIRST_NUMBER
    join = ref.REFERENCE_JOIN if ctx.reference else separator
    return join.join(render(prompts, key, number=i + first, **fields) for i, fields in enumerate(items))


def _analysis_block(
    ctx: MedAgentsContext,
    prompts: dict[str, str],
    key: str,
    analyses: dict[str, str],
    options: dict[str, str] | None = None,
) -> str:
    shown = options_text(ctx, options)
    items = [{"domain": d, "analysis": a, "options": shown} for d, a in analyses.items()]
    return joined(ctx, prompts, key, items)


# Record fields a method's stages never wrote still appear in the final state, empty.
_RECORD_DEFAULTS: dict[str, Any] = {
    "question_domains": list,
    "option_domains": list,
    "question_analyses": dict,
    "option_analyses": dict,
    "syn_report": str,
}


def _decide(
    ctx: MedAgentsContext, state: MedAgentsState, *, stage: str, system: str, user: str, max_tokens: int
) -> dict[str, Any]:
    """The final answer call and its strict parse (shared by the decision and baseline nodes)."""
    options = state.get("options") or {}
    reply = call_agent(
        ctx,
        stage=stage,
        role="decider",
        agent="decider",
        system=system,
        user=user,
        max_tokens=max_tokens,
        shape=letter_shape(list(options), reasoning=stage == "cot") if options else None,
    )
    failures: list[Failure] = []
    if options:
        letter_text = reply.value if isinstance(reply.value, str) else reply.text
        pred = (
            ref.parse_letter(letter_text)
            if ctx.reference
            else parse_answer_letter(letter_text, list(options))
        )
        if pred is None:
            failures.append(failure(reply, stage, "decider", "no clear option letter in the answer"))
    else:  # free-form questions (e.g. MedicationQA): the answer is the text itself
        pred = reply.text.split("Answer:", 1)[-1].strip() or None
        if pred is None:
            failures.append(failure(reply, stage, "decider", "empty answer"))
    defaults = {key: make() for key, make in _RECORD_DEFAULTS.items() if key not in state}
    return {
        "pred_answer": pred,
        "raw_output": reply.text,
        "failures": failures,
        "trace": [reply.trace],
        **defaults,
    }


# -- baselines ---------------------------------------------------------------------------------------
def _baseline(state: MedAgentsState, ctx: MedAgentsContext, *, stage: str, max_tokens: int) -> dict[str, Any]:
    prompts = ctx.templates()
    options = state.get("options") or {}
    user = render(
        prompts,
        f"{stage}.user",
        question=state["question"],
        options=options_text(ctx, options),
        letters=_letters(options),
        answer_format=_answer_format(prompts, options),
    )
    system = render(prompts, f"{stage}.system")
    return _decide(ctx, state, stage=stage, system=system, user=user, max_tokens=max_tokens)


def direct_answer(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """base_direct: the letter only."""
    ctx = context_of(runtime, MedAgentsContext)
    return _baseline(state, ctx, stage="direct", max_tokens=ctx.direct_max_tokens)


def cot_answer(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """base_cot: step-by-step thoughts, then the letter."""
    ctx = context_of(runtime, MedAgentsContext)
    return _baseline(state, ctx, stage="cot", max_tokens=ctx.cot_max_tokens)


# -- stages 1-2: expert gathering --------------------------------------------------------------------
def _gather_domains(
    ctx: MedAgentsContext, state: MedAgentsState, *, stage: str, count: int
) -> dict[str, Any]:
    prompts = ctx.templates()
    user = render(
        prompts,
        f"{stage}.user",
        question=state["question"],
        options=options_text(ctx, state.get("options")),
        num_domains=count,
        domain_format=ref.domain_format(count) if ctx.reference else domain_format(count),
    )
    agent = f"{stage}_classifier"
    reply = call_agent(
        ctx,
        stage=stage,
        role="classifier",
        agent=agent,
        system=render(prompts, f"{stage}.system"),
        user=user,
        max_tokens=ctx.domains_max_tokens,
        shape=domains_shape(count, ctx.chat_config("classifier", ctx.domains_max_tokens).max_tokens),
    )
    if ctx.reference:  # any count, duplicates kept: each entry is an expert, as in the original
        return {stage: ref.parse_domains(reply.text), "failures": [], "trace": [reply.trace]}
    parsed = parse_domains(reply.value if isinstance(reply.value, list) else reply.text, count)
    failures = [failure(reply, stage, agent, "; ".join(parsed.problems))] if parsed.problems else []
    return {stage: parsed.domains, "failures": failures, "trace": [reply.trace]}


def question_domains(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 1: which specialties should examine the question."""
    ctx = context_of(runtime, MedAgentsContext)
    return _gather_domains(ctx, state, stage="question_domains", count=ctx.num_question_domains)


def option_domains(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 2: which specialties should judge the options."""
    ctx = context_of(runtime, MedAgentsContext)
    return _gather_domains(ctx, state, stage="option_domains", count=ctx.num_option_domains)


# -- stages 3-4: analyses (one parallel branch per domain) -------------------------------------------
def _analyse(
    ctx: MedAgentsContext, prompts: dict[str, str], task: DomainTask, *, stage: str, role: str, user: str
) -> dict[str, Any]:
    agent = f"{role}_{task['index'] + 1}"
    reply = call_agent(
        ctx,
        stage=stage,
        role=role,
        agent=agent,
        system=render(prompts, f"{stage}.system", domain=task["domain"]),
        user=user,
        max_tokens=ctx.analysis_max_tokens,
        domain=task["domain"],
    )
    if ctx.reference:
        part = AnalysisPart(
            index=task["index"], domain=task["domain"], analysis=ref.clean_analysis(reply.text)
        )
        return {f"{stage}_parts": [part], "failures": [], "trace": [reply.trace]}
    text = reply.text.strip()
    failures = []
    if not text:
        failures.append(failure(reply, stage, agent, "empty analysis"))
        text = f"(The {task['domain']} expert gave no analysis.)"
    part = AnalysisPart(index=task["index"], domain=task["domain"], analysis=text)
    return {f"{stage}_parts": [part], "failures": failures, "trace": [reply.trace]}


def question_analysis(task: DomainTask, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 3, one branch: one question expert's independent analysis."""
    ctx = context_of(runtime, MedAgentsContext)
    prompts = ctx.templates()
    user = render(prompts, "question_analysis.user", question=task["question"], domain=task["domain"])
    return _analyse(ctx, prompts, task, stage="question_analysis", role="question_expert", user=user)


def option_analysis(task: DomainTask, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 4, one branch: one option expert judges every option, given all question analyses."""
    ctx = context_of(runtime, MedAgentsContext)
    prompts = ctx.templates()
    user = render(
        prompts,
        "option_analysis.user",
        question=task["question"],
        options=options_text(ctx, task["options"]),
        domain=task["domain"],
        question_analyses=_analysis_block(
            ctx, prompts, "option_analysis.item", task["question_analyses"], task["options"]
        ),
    )
    return _analyse(ctx, prompts, task, stage="option_analysis", role="option_expert", user=user)


def _merged(parts: list[AnalysisPart]) -> dict[str, str]:
    # Domains are distinct by default; the reference preset keeps duplicates, and as in the
    # original the later analysis of a repeated domain wins (at the first one's place).
    return {p["domain"]: p["analysis"] for p in sorted(parts, key=lambda p: p["index"])}


def merge_question_analyses(state: MedAgentsState) -> dict[str, Any]:
    return {"question_analyses": _merged(state["question_analysis_parts"])}


def merge_option_analyses(state: MedAgentsState) -> dict[str, Any]:
    return {"option_analyses": _merged(state["option_analysis_parts"])}


# -- decision making ---------------------------------------------------------------------------------
def decision(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Decision making: the answer from the (last) report, or from the analyses for anal_only."""
    ctx = context_of(runtime, MedAgentsContext)
    prompts = ctx.templates()
    options = state.get("options") or {}
    common = dict(letters=_letters(options), answer_format=_answer_format(prompts, options))
    if ctx.method == "anal_only":
        user = render(
            prompts,
            "answer_analyses.user",
            question=state["question"],
            options=options_text(ctx, options),
            question_analyses=_analysis_block(
                ctx, prompts, "answer_analyses.item", state["question_analyses"]
            ),
            option_analyses=_analysis_block(
                ctx, prompts, "answer_analyses.option_item", state["option_analyses"]
            ),
            **common,
        )
        system = render(prompts, "answer_analyses.system")
    else:
        user = render(prompts, "answer_report.user", report=state["syn_report"], **common)
        system = render(prompts, "answer_report.system")
    return _decide(ctx, state, stage="decision", system=system, user=user, max_tokens=ctx.answer_max_tokens)
