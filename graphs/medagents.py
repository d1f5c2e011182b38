"""MedAgents (ACL 2024 Findings): medical experts in collaboration, as a LangGraph state graph.

The method stage by stage, as wired in `build_graph()`:

    START -> question_domains -> option_domains             (1-2 expert gathering)
          -> question_analysis x5 (Send) -> merge_question_analyses   (3, parallel)
          -> option_analysis x2 (Send)   -> merge_option_analyses     (4, parallel)
          -> synthesis                                      (5 report summarization)
          -> vote x7 (Send) -> tally_votes                  (6 consultation, repeated while
             -> advice x(non-yes) (Send) -> revision -> vote   someone disagrees and attempts remain)
          -> decision -> END
    base_direct / base_cot: START -> direct_answer | cot_answer -> END
    anal_only: after stage 4 straight to decision; syn_only: after stage 5.

Calls for syn_verif when everyone agrees at once: 2 + 5 + 2 + 1 + 7 + 1 = 18. Each consultation
round that has k dissenters adds k advice calls and one revision call; the next vote is 7 more.
Options are the `MedAgentsContext` (context_schema); the nodes live in `nodes.medagents`.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy, Send

from nodes.agent_call import RETRY_POLICY
from nodes.fields import context_of
from nodes.medagents.agents import (
    cot_answer,
    decision,
    direct_answer,
    merge_option_analyses,
    merge_question_analyses,
    option_analysis,
    option_domains,
    question_analysis,
    question_domains,
)
from nodes.medagents.consultation import advice, dissenters, experts, revision, tally_votes, vote
from nodes.medagents.context import MedAgentsContext
from nodes.medagents.report import synthesis
from nodes.medagents.state import DomainTask, ExpertTask, MedAgentsInput, MedAgentsOutput, MedAgentsState


# -- routing ------------------------------------------------------------------------------------------
def route_start(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> str:
    method = context_of(runtime, MedAgentsContext).method
    if method == "base_direct":
        return "direct_answer"
    if method == "base_cot":
        return "cot_answer"
    return "question_domains"


def _analysis_sends(
    state: MedAgentsState, node: str, domains: list[str], analyses: dict[str, str]
) -> list[Send]:
    options = state.get("options") or {}
    return [
        Send(
            node,
            DomainTask(
                index=i, domain=d, question=state["question"], options=options, question_analyses=analyses
            ),
        )
        for i, d in enumerate(domains)
    ]


def send_question_analyses(state: MedAgentsState) -> list[Send]:
    return _analysis_sends(state, "question_analysis", state["question_domains"], {})


def send_option_analyses(state: MedAgentsState) -> list[Send]:
    return _analysis_sends(state, "option_analysis", state["option_domains"], state["question_analyses"])


def _send_votes(state: MedAgentsState) -> list[Send]:
    attempt = state.get("attempt", 0) + 1
    return [
        Send(
            "vote",
            ExpertTask(attempt=attempt, index=i, expert=expert, domain=domain, report=state["syn_report"]),
        )
        for i, (expert, domain) in enumerate(experts(state))
    ]


def route_after_option_analyses(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> str:
    return "decision" if context_of(runtime, MedAgentsContext).method == "anal_only" else "synthesis"


def route_after_synthesis(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> str | list[Send]:
    ctx = context_of(runtime, MedAgentsContext)
    if ctx.method == "syn_only" or ctx.max_attempts < 1:
        return "decision"
    return _send_votes(state)


def route_after_tally(state: MedAgentsState) -> str | list[Send]:
    """Everyone agrees -> decide; otherwise each expert who did not say yes gives advice."""
    dissent = dissenters(state)
    if not dissent:
        return "decision"
    return [
        Send(
            "advice",
            ExpertTask(
                attempt=b["attempt"],
                index=b["index"],
                expert=b["expert"],
                domain=b["domain"],
                report=state["syn_report"],
            ),
        )
        for b in dissent
    ]


def route_after_revision(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> str | list[Send]:
    if state["attempt"] >= context_of(runtime, MedAgentsContext).max_attempts:
        return "decision"
    return _send_votes(state)


# -- the graph ----------------------------------------------------------------------------------------
def build_graph(retry_policy: RetryPolicy | None = None) -> StateGraph:
    """The uncompiled MedAgents graph; every node that calls a model gets `retry_policy`
    (default: the project's `RETRY_POLICY`, transport errors only)."""
    retry = retry_policy or RETRY_POLICY
    builder = StateGraph(
        MedAgentsState,
        context_schema=MedAgentsContext,
        input_schema=MedAgentsInput,
        output_schema=MedAgentsOutput,
    )
    builder.add_node("direct_answer", direct_answer, retry_policy=retry)
    builder.add_node("cot_answer", cot_answer, retry_policy=retry)
    builder.add_node("question_domains", question_domains, retry_policy=retry)
    builder.add_node("option_domains", option_domains, retry_policy=retry)
    builder.add_node("question_analysis", question_analysis, retry_policy=retry)
    builder.add_node("merge_question_analyses", merge_question_analyses)
    builder.add_node("option_analysis", option_analysis, retry_policy=retry)
    builder.add_node("merge_option_analyses", merge_option_analyses)
    builder.add_node("synthesis", synthesis, retry_policy=retry)
    builder.add_node("vote", vote, retry_policy=retry)
    builder.add_node("tally_votes", tally_votes)
    builder.add_node("advice", advice, retry_policy=retry)
    builder.add_node("revision", revision, retry_policy=retry)
    builder.add_node("decision", decision, retry_policy=retry)

    builder.add_conditional_edges(START, route_start, ["direct_answer", "cot_answer", "question_domains"])
    builder.add_edge("direct_answer", END)
    builder.add_edge("cot_answer", END)
    builder.add_edge("question_domains", "option_domains")
    builder.add_conditional_edges("option_domains", send_question_analyses, ["question_analysis"])
    builder.add_edge("question_analysis", "merge_question_analyses")
    builder.add_conditional_edges("merge_question_analyses", send_option_analyses, ["option_analysis"])
    builder.add_edge("option_analysis", "merge_option_analyses")
    builder.add_conditional_edges(
        "merge_option_analyses", route_after_option_analyses, ["synthesis", "decision"]
    )
    builder.add_conditional_edges("synthesis", route_after_synthesis, ["vote", "decision"])
    builder.add_edge("vote", "tally_votes")
    builder.add_conditional_edges("tally_votes", route_after_tally, ["advice", "decision"])
    builder.add_edge("advice", "revision")
    builder.add_conditional_edges("revision", route_after_revision, ["vote", "decision"])
    builder.add_edge("decision", END)
    return builder


graph = build_graph().compile(name="medagents")  # checkpointer-free, for LangGraph Studio
