"""LatentMAS: agents that collaborate in latent space (arXiv 2511.20639).

Each non-judger agent reads its prompt on top of the incoming KV cache and adds `latent_steps`
latent thoughts; the cache travels to the next agent as a handle in state. The judger (or the
summarizer) decodes the answer in text on top of everything before it.

    sequential:    START -> planner -> critic -> refiner -> judger -> END
    hierarchical:  START -> math -> science -> code -> summarizer -> END
(As in the reference, the hierarchical solvers run one after another on one growing cache.)
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from nodes.agent_call import RETRY_POLICY
from nodes.fields import context_of
from nodes.latentmas.agents import latent_agent, latent_judger
from nodes.latentmas.context import MASContext
from nodes.latentmas.state import MASInput, MASOutput, MASState


def route_topology(state: MASState, runtime: Runtime[MASContext]) -> str:
    return "planner" if context_of(runtime, MASContext).topology == "sequential" else "math"


def build_graph() -> StateGraph:
    builder = StateGraph(MASState, context_schema=MASContext, input_schema=MASInput, output_schema=MASOutput)
    for agent in ("planner", "critic", "refiner", "math", "science", "code"):
        builder.add_node(agent, latent_agent(agent), retry_policy=RETRY_POLICY)
    builder.add_node("judger", latent_judger("judger"), retry_policy=RETRY_POLICY)
    builder.add_node("summarizer", latent_judger("summarizer"), retry_policy=RETRY_POLICY)

    builder.add_conditional_edges(START, route_topology, ["planner", "math"])
    builder.add_edge("planner", "critic")
    builder.add_edge("critic", "refiner")
    builder.add_edge("refiner", "judger")
    builder.add_edge("judger", END)

    builder.add_edge("math", "science")
    builder.add_edge("science", "code")
    builder.add_edge("code", "summarizer")
    builder.add_edge("summarizer", END)
    return builder


graph = build_graph().compile(name="latent_mas")  # checkpointer-free, for LangGraph Studio
