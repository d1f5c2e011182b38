"""Every registered method: its graph is in langgraph.json and the CLI, is named, and has the input,
output and context schemas Studio renders as forms, with every option described."""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import pytest

from runners.methods import METHODS, get_method

ROOT = Path(__file__).resolve().parent.parent


def test_langgraph_json_lists_exactly_the_registered_graphs() -> None:
    """Studio serves each graph through its checking factory in graphs/studio.py."""
    from langgraph_sdk.runtime import _ReadRuntime

    from graphs import studio

    graphs = json.loads((ROOT / "langgraph.json").read_text())["graphs"]
    assert graphs == {name: f"./graphs/studio.py:{name}" for name in METHODS}
    for name, (_, module) in METHODS.items():
        factory = getattr(studio, name)
        read = _ReadRuntime(access_context="assistants.read", store=None)
        assert factory(read) is importlib.import_module(module).graph


def test_cli_offers_exactly_the_registered_methods() -> None:
    from runners.cli import build_parser

    parser = build_parser(["runs", "list"])
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for command in ("run", "eval"):
        methods = next(a for a in commands[command]._actions if a.dest == "method_name").choices
        assert list(methods) == list(METHODS)


@pytest.mark.parametrize("name", list(METHODS))
def test_graph_schemas_and_described_options(name: str) -> None:
    method = get_method(name)
    graph = importlib.import_module(METHODS[name][1]).graph
    assert graph.name == name
    assert graph.checkpointer is None  # Studio refuses graphs compiled with a checkpointer
    for schema in (graph.get_input_jsonschema(), graph.get_output_jsonschema()):
        assert schema.get("properties"), schema
    context = graph.get_context_jsonschema()
    fields = dataclasses.fields(method.context_class)
    assert set(context["properties"]) == {f.name for f in fields}
    undescribed = [f.name for f in fields if not f.metadata.get("description")]
    assert undescribed == []
    assert all(context["properties"][f.name].get("description") for f in fields)


def test_no_typing_typeddict_anywhere() -> None:
    """Studio builds its forms with pydantic, which refuses `typing.TypedDict` on Python 3.11."""
    import ast

    offenders = []
    for package in ("graphs", "nodes", "latent_backend", "storage", "tasks", "runners"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "typing":
                    if any(alias.name == "TypedDict" for alias in node.names):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                elif (
                    isinstance(node, ast.Attribute)
                    and node.attr == "TypedDict"
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "typing"
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
