"""The graphs as LangGraph Studio / SDK serves them (langgraph.json names these factories).

The server drops context keys its schema does not list before the graph sees them, so a mistyped
option (`temprature`) would silently run with the default. The server hands a graph factory the
run's context as sent; each factory here checks it (an unknown key is an error naming the closest
option, a bad value an error naming the field) and returns the module's compiled graph.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk.runtime import ServerRuntime

from nodes.fields import context_from

# Imported now: the server calls the factories inside its event loop, where an import would block.
GRAPHS: dict[str, CompiledStateGraph] = {
    name: importlib.import_module(f"graphs.{name}").graph
    for name in ("baseline", "text_mas", "latent_mas", "medagents", "debate")
}
# Keys the server or an older SDK client may put in a context sent as `config.configurable`.
SERVER_KEYS = frozenset({"thread_id", "checkpoint_id", "checkpoint_ns", "run_id", "assistant_id", "graph_id"})


def checked(module: str, runtime: ServerRuntime) -> CompiledStateGraph:
    """`graphs.<module>.graph`, after checking the context of the run about to execute."""
    graph = GRAPHS[module]
    execution = runtime.execution_runtime
    context: Any = execution.context if execution is not None else None
    if isinstance(context, Mapping):
        options = {k: v for k, v in context.items() if k not in SERVER_KEYS and not _internal(str(k))}
        context_from(graph.context_schema, options)  # raises OptionError naming the key
    return graph


def _internal(key: str) -> bool:
    return key.startswith(("__", "langgraph_", "x-"))


def baseline(runtime: ServerRuntime) -> CompiledStateGraph:
    return checked("baseline", runtime)


def text_mas(runtime: ServerRuntime) -> CompiledStateGraph:
    return checked("text_mas", runtime)


def latent_mas(runtime: ServerRuntime) -> CompiledStateGraph:
    return checked("latent_mas", runtime)


def medagents(runtime: ServerRuntime) -> CompiledStateGraph:
    return checked("medagents", runtime)


def debate(runtime: ServerRuntime) -> CompiledStateGraph:
    return checked("debate", runtime)
