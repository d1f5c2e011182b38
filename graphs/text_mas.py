"""Text MAS: the token-space baseline of LatentMAS. Agents exchange written text.

    sequential:    START -> planner -> critic -> refiner -> judger -> END
    hierarchical:  START -> (math | science | code, in parallel) -> summarizer -> END
Each agent's output joins a "[Agent]:\\n..." context that later agents read.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from nodes.agent_call import RETRY_POLICY
from nodes.fields import context_of
from nodes.latentmas.agents import text_agent
from nodes.latentmas.context import MASContext
from nodes.latentmas.state import MASInput, MASOutput, MASState

SOLVERS = ("math", "science", "code")


def route_topology(state: MASState, runtime: Runtime[MASContext]) -> list[str]:
    return ["planner"] if context_of(runtime, MASContext).topology == "sequential" else list(SOLVERS)


def build_graph() -> StateGraph:
    builder = StateGraph(MASState, context_schema=MASContext, input_schema=MASInput, output_schema=MASOutput)
    for agent in ("planner", "critic", "refiner", *SOLVERS):
        builder.add_node(agent, text_agent(agent), retry_policy=RETRY_POLICY)
    builder.add_node("judger", text_agent("judger", final=True), retry_policy=RETRY_POLICY)
    builder.add_node("summarizer", text_agent("summarizer", final=True), retry_policy=RETRY_POLICY)

    builder.add_conditional_edges(START, route_topology, ["planner", *SOLVERS])
    builder.add_edge("planner", "critic")
    builder.add_edge("critic", "refiner")
    builder.add_edge("refiner", "judger")
    builder.add_edge("judger", END)

    builder.add_edge(list(SOLVERS), "summarizer")  # the summarizer waits for all three solvers
    builder.add_edge("summarizer", END)
    return builder


graph = build_graph().compile(name="text_mas")  # checkpointer-free, for LangGraph Studio
