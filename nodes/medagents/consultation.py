"""MedAgents stage 6, consultation: every expert votes on the report, each who does not agree gives
advice, and one call revises the report from all advice; repeated while someone disagrees and
attempts remain (the routing is in `graphs.medagents`).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from nodes.fields import context_of
from nodes.medagents import reference as ref
from nodes.medagents.agents import call_agent, failure, joined
from nodes.medagents.context import MedAgentsContext
from nodes.medagents.parse import clean_advice, parse_report, parse_vote, vote_shape
from nodes.medagents.prompts import build_report, render
from nodes.medagents.report import reference_report
from nodes.medagents.state import AdvicePart, Ballot, ExpertTask, MedAgentsState


def experts(state: MedAgentsState) -> list[tuple[str, str]]:
    """(expert id, domain) for every consultation member, question experts first."""
    return [(f"question_expert_{i + 1}", d) for i, d in enumerate(state["question_domains"])] + [
        (f"option_expert_{i + 1}", d) for i, d in enumerate(state["option_domains"])
    ]


def dissenters(state: MedAgentsState) -> list[Ballot]:
    """This round's ballots that are not a yes, in expert order.

    An unreadable vote counts as not agreeing (the original counted it as yes): that expert is
    asked for advice too, since nothing says the report matches their view.
    """
    attempt = state["attempt"]
    return sorted(
        (b for b in state["ballots"] if b["attempt"] == attempt and b["vote"] != "yes"),
        key=lambda b: b["index"],
    )


def vote(task: ExpertTask, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 6, one branch: one expert says whether the report agrees with their opinion."""
    ctx = context_of(runtime, MedAgentsContext)
    prompts = ctx.templates()
    reply = call_agent(
        ctx,
        stage="vote",
        role="voter",
        agent=task["expert"],
        system=render(prompts, "vote.system", domain=task["domain"]),
        user=render(prompts, "vote.user", domain=task["domain"], report=task["report"]),
        max_tokens=ctx.vote_max_tokens,
        shape=vote_shape(),
        attempt=task["attempt"],
        domain=task["domain"],
    )
    said = reply.value if isinstance(reply.value, str) else reply.text
    decision = ref.parse_vote(said) if ctx.reference else parse_vote(said)
    failures = (
        []
        if decision is not None
        else [failure(reply, "vote", task["expert"], "no clear YES or NO in the vote")]
    )
    ballot = Ballot(
        attempt=task["attempt"],
        index=task["index"],
        expert=task["expert"],
        domain=task["domain"],
        vote=decision,
        raw=reply.text,
    )
    return {"ballots": [ballot], "failures": failures, "trace": [reply.trace]}


def tally_votes(state: MedAgentsState) -> dict[str, Any]:
    """Stage 6: this round's votes, in expert order, and whether everyone said yes."""
    attempt = state.get("attempt", 0) + 1
    ballots = sorted((b for b in state["ballots"] if b["attempt"] == attempt), key=lambda b: b["index"])
    votes = [{"expert": b["expert"], "domain": b["domain"], "vote": b["vote"]} for b in ballots]
    consensus = all(b["vote"] == "yes" for b in ballots)
    return {
        "attempt": attempt,
        "vote_history": [{"attempt": attempt, "votes": votes, "consensus": consensus}],
    }


def advice(task: ExpertTask, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 6, one branch: an expert who did not say yes proposes revisions."""
    ctx = context_of(runtime, MedAgentsContext)
    prompts = ctx.templates()
    reply = call_agent(
        ctx,
        stage="advice",
        role="voter",
        agent=task["expert"],
        system=render(prompts, "advice.system", domain=task["domain"]),
        user=render(prompts, "advice.user", domain=task["domain"], report=task["report"]),
        max_tokens=ctx.advice_max_tokens,
        attempt=task["attempt"],
        domain=task["domain"],
    )
    text = reply.text if ctx.reference else clean_advice(reply.text)
    failures = []
    if not text and not ctx.reference:
        failures.append(failure(reply, "advice", task["expert"], "empty revision advice"))
        text = "(no advice given)"
    part = AdvicePart(
        attempt=task["attempt"],
        index=task["index"],
        expert=task["expert"],
        domain=task["domain"],
        advice=text,
    )
    return {"advice_parts": [part], "failures": failures, "trace": [reply.trace]}


def revision(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 6: one call rewrites the report from all advice of this round."""
    ctx = context_of(runtime, MedAgentsContext)
    prompts = ctx.templates()
    attempt = state["attempt"]
    parts = sorted((p for p in state["advice_parts"] if p["attempt"] == attempt), key=lambda p: p["index"])
    if ctx.reference:  # advice by domain, as the original keeps it: a repeated domain's later advice wins
        by_domain = {p["domain"]: p["advice"] for p in parts}
        items = [{"domain": d, "advice": a} for d, a in by_domain.items()]
    else:
        items = [{"domain": p["domain"], "advice": p["advice"]} for p in parts]
    advice_text = joined(ctx, prompts, "revision.item", items)
    reply = call_agent(
        ctx,
        stage="revision",
        role="reviser",
        agent="reviser",
        system=render(prompts, "revision.system"),
        user=render(prompts, "revision.user", report=state["syn_report"], advice=advice_text),
        max_tokens=ctx.revision_max_tokens,
        attempt=attempt,
    )
    advice_record = [{"expert": p["expert"], "domain": p["domain"], "advice": p["advice"]} for p in parts]
    if ctx.reference:
        report = reference_report(ctx, prompts, state, reply.text, "reviser")
        return {
            "syn_report": report,
            "syn_repo_history": [report],
            "revision_history": [{"attempt": attempt, "advice": advice_record}],
            "trace": [reply.trace],
        }
    parsed = parse_report(reply.text)
    failures = []
    # The reviser rewrites the analysis; key knowledge carries over unless it rewrote that too.
    key_knowledge = parsed.key_knowledge or state.get("key_knowledge", "")
    total_analysis = parsed.total_analysis
    if not total_analysis:
        fallback = reply.text.strip() if parsed.key_knowledge is None else ""
        total_analysis = fallback or state.get("total_analysis", "")
        kept = "the reply is used" if fallback else "the report is kept"
        failures.append(failure(reply, "revision", "reviser", f"no 'Total Analysis:' section; {kept}"))
    report = build_report(prompts, state["question"], state.get("options"), key_knowledge, total_analysis)
    return {
        "key_knowledge": key_knowledge,
        "total_analysis": total_analysis,
        "syn_report": report,
        "syn_repo_history": [report],
        "revision_history": [{"attempt": attempt, "advice": advice_record}],
        "failures": failures,
        "trace": [reply.trace],
    }
