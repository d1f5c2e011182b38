"""Single-agent baseline: one model call answers in the task's format."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from graphs.state import MASState
from nodes.mas import MASContext, text_agent
from runners.mas_method import MASMethod


def build_graph() -> StateGraph:
    builder = StateGraph(MASState, context_schema=MASContext)
    builder.add_node("baseline", text_agent("baseline", final=True))
    builder.add_edge(START, "baseline")
    builder.add_edge("baseline", END)
    return builder


graph = build_graph().compile()  # checkpointer-free, for LangGraph Studio
EVAL_METHOD = MASMethod("baseline", build_graph)
