"""MedAgents stage 5: the analyses summarized into one report (and, for the reference preset, the
original's report read from a synthesis or revision reply)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from nodes.fields import context_of
from nodes.medagents import reference as ref
from nodes.medagents.agents import call_agent, failure, joined, options_text
from nodes.medagents.context import MedAgentsContext
from nodes.medagents.parse import parse_report
from nodes.medagents.prompts import build_report, render
from nodes.medagents.state import MedAgentsState


def synthesis(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 5: all analyses -> "Key Knowledge / Total Analysis"; the report keeps both."""
    ctx = context_of(runtime, MedAgentsContext)
    prompts = ctx.templates()
    shown = options_text(ctx, state.get("options"))

    def reports(key: str, analyses: dict[str, str]) -> str:
        items = [
            {"domain": d, "analysis": a, "question": state["question"], "options": shown}
            for d, a in analyses.items()
        ]
        return joined(ctx, prompts, key, items, separator="\n\n")

    user = render(
        prompts,
        "synthesis.user",
        question=state["question"],
        options=shown,
        question_reports=reports("synthesis.question_item", state["question_analyses"]),
        option_reports=reports("synthesis.option_item", state["option_analyses"]),
    )
    reply = call_agent(
        ctx,
        stage="synthesis",
        role="synthesizer",
        agent="synthesizer",
        system=render(prompts, "synthesis.system"),
        user=user,
        max_tokens=ctx.synthesis_max_tokens,
    )
    if ctx.reference:
        report = reference_report(ctx, prompts, state, reply.text, "synthesizer")
        return {"syn_report": report, "syn_repo_history": [report], "attempt": 0, "trace": [reply.trace]}
    parsed = parse_report(reply.text)
    problems = []
    key_knowledge = parsed.key_knowledge
    total_analysis = parsed.total_analysis
    if key_knowledge is None:
        problems.append("no 'Key Knowledge:' section")
        key_knowledge = ""
    if total_analysis is None:
        # The original crashed here; fall back to the reply itself (minus a Key Knowledge part).
        problems.append("no 'Total Analysis:' section; the reply is used as the analysis")
        total_analysis = "" if parsed.key_knowledge is not None else reply.text.strip()
    failures = [failure(reply, "synthesis", "synthesizer", "; ".join(problems))] if problems else []
    report = build_report(prompts, state["question"], state.get("options"), key_knowledge, total_analysis)
    return {
        "key_knowledge": key_knowledge,
        "total_analysis": total_analysis,
        "syn_report": report,
        "syn_repo_history": [report],
        "attempt": 0,
        "failures": failures,
        "trace": [reply.trace],
    }


def reference_report(
    ctx: MedAgentsContext, prompts: dict[str, str], state: MedAgentsState, reply: str, agent: str
) -> str:
    """The original's report from a synthesis or revision reply: question, options and the text after
    "Total Analysis:" (its Key Knowledge never survives). Without the label the item fails (the
    original crashed); it is never guessed."""
    total = ref.total_analysis(reply)
    if total is None:
        raise ValueError(f"the {agent}'s reply has no 'Total Analysis:' (the original code fails here too)")
    return render(
        prompts,
        "report",
        question=state["question"],
        options=options_text(ctx, state.get("options")),
        key_knowledge="",
        total_analysis=total,
    )
