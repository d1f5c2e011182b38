"""MAD, multi-agent debate (EMNLP 2024), as a LangGraph state graph.

    base_answer -> affirmative -> negative -> moderator --(no answer, rounds left)--> affirmative
                                                  |--(answer)--> conclude -> END
                                                  '--(no answer after the last round)--> judge_candidates
                                                                                          -> judge_decide -> conclude

Two configurations: question answering (a debate topic, e.g. CIAR) and translation (source text,
languages, optional reference and base translation). The moderator can be a person: the moderator
node then pauses with an interrupt and resumes with the person's verdict. A debater whose call
fails ends the rounds and the judge decides from what was said; a failed baseline ends the debate.

Fixed defects of the original: the moderator's JSON is parsed, never evaluated; the judge sees the
last round's arguments (`judge_sees`); model and temperature are honoured per role; a failed model
call is recorded and the debate carries on; resuming is LangGraph's checkpointing.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from nodes.agent_call import RETRY_POLICY
from nodes.debate.agents import affirmative, base_answer, conclude, judge_candidates, judge_decide, negative
from nodes.debate.context import DebateContext
from nodes.debate.moderation import moderator, stops
from nodes.debate.state import DebateInput, DebateOutput, DebateState, arguments
from nodes.fields import context_of


def route_after_base(state: DebateState) -> str:
    return "conclude" if state.get("halted") else "affirmative"


def _after_debater(state: DebateState, next_node: str) -> str:
    """A debater whose call failed ends the rounds: the judge decides from what was said, if anything."""
    if not state.get("halted"):
        return next_node
    both_spoke = bool(arguments(state, "affirmative")) and bool(arguments(state, "negative"))
    return "judge_candidates" if both_spoke else "conclude"


def route_after_affirmative(state: DebateState) -> str:
    return _after_debater(state, "negative")


def route_after_negative(state: DebateState) -> str:
    return _after_debater(state, "moderator")


def route_after_moderator(state: DebateState, runtime: Runtime[DebateContext]) -> str:
    """Stop with the moderator's answer, go to the next round, or fall back to the judge."""
    ctx = context_of(runtime, DebateContext)
    verdict = (state.get("verdicts") or [{}])[-1]
    if stops(verdict, ctx):
        # 'preference' without an answer still needs someone to name the answer: the judge.
        return "conclude" if verdict.get("answer") else "judge_candidates"
    if state.get("round", 0) < ctx.max_rounds:
        return "affirmative"
    return "judge_candidates"


def route_after_judge_candidates(state: DebateState) -> str:
    return "conclude" if state.get("halted") == "judge" else "judge_decide"


def build_graph() -> StateGraph:
    """The uncompiled MAD graph (compile it with a checkpointer for resumable runs)."""
    builder = StateGraph(
        DebateState, context_schema=DebateContext, input_schema=DebateInput, output_schema=DebateOutput
    )
    # Transport errors are retried by LangGraph; other model errors are recorded in the node.
    for name, node in (
        ("base_answer", base_answer),
        ("affirmative", affirmative),
        ("negative", negative),
        ("moderator", moderator),
        ("judge_candidates", judge_candidates),
        ("judge_decide", judge_decide),
    ):
        builder.add_node(name, node, retry_policy=RETRY_POLICY)
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


graph = build_graph().compile(name="debate")  # checkpointer-free, for LangGraph Studio
