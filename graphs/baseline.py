"""Single-agent baseline: one model call answers in the task's format.

START -> baseline -> END
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from nodes.agent_call import RETRY_POLICY
from nodes.latentmas.agents import text_agent
from nodes.latentmas.context import MASContext
from nodes.latentmas.state import MASInput, MASOutput, MASState


def build_graph() -> StateGraph:
    builder = StateGraph(MASState, context_schema=MASContext, input_schema=MASInput, output_schema=MASOutput)
    builder.add_node("baseline", text_agent("baseline", final=True), retry_policy=RETRY_POLICY)
    builder.add_edge(START, "baseline")
    builder.add_edge("baseline", END)
    return builder


graph = build_graph().compile(name="baseline")  # checkpointer-free, for LangGraph Studio
