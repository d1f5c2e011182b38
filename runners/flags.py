"""Command-line flags made from a method's context dataclass, so every option has exactly one definition.

Each field of the context (`nodes.fields.option`) becomes `--field-name` (plus its declared aliases),
typed from its annotation: Literal fields get choices, booleans get `--x/--no-x`, mappings and lists
take JSON. Only flags the user gave become options, so the context's own defaults apply otherwise;
values are validated by the context itself, and a bad one is reported under the flag's name.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, NoReturn


def add_context_flags(parser: argparse.ArgumentParser, context_class: type, *, title: str) -> list[str]:
    """Add one flag per context field; returns the field names (the `dest` of each flag).

    A field whose flag the command already has (e.g. `--task`) is set by the command itself.
    """
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(context_class)
    taken = set(parser._option_string_actions)
    names = []
    for field in dataclasses.fields(context_class):
        flags = [f"--{field.name.replace('_', '-')}", *field.metadata.get("cli", ())]
        if taken & set(flags):
            continue
        kwargs = _argument(hints[field.name])
        help_text = field.metadata.get("description", "")
        group.add_argument(*flags, dest=field.name, default=argparse.SUPPRESS, help=help_text, **kwargs)
        names.append(field.name)
    return names


def _argument(hint: Any) -> dict[str, Any]:
    """argparse keywords for a field annotation."""
    choices = _literal_choices(hint)
    if choices is not None:
        return {"choices": choices, "type": _choice_type(choices)}
    base = _without_none(hint)
    if base is bool:
        return {"action": argparse.BooleanOptionalAction}
    if base in (int, float):
        return {"type": base, "metavar": base.__name__.upper()}
    origin = typing.get_origin(base)
    if origin in (dict, list, tuple, Mapping):
        return {"type": _json_value(origin.__name__), "metavar": "JSON"}
    return {"type": str}


def _literal_choices(hint: Any) -> list[Any] | None:
    base = _without_none(hint)
    if typing.get_origin(base) is Literal:
        return list(typing.get_args(base))
    return None


def _choice_type(choices: list[Any]) -> Callable[[str], Any]:
    kinds = {type(choice) for choice in choices}
    return kinds.pop() if len(kinds) == 1 else str


def _without_none(hint: Any) -> Any:
    """`X | None` -> X; a union of several types -> the first that is not a class (e.g. str)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
        return str if str in args else args[0]
    return hint


def _json_value(kind: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}); give a JSON {kind}") from None

    parse.__name__ = f"JSON {kind}"
    return parse


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage of a method's many flags is long)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"masgraph: error: {message} (`{self.prog} --help` lists the options)\n")


def at_least(minimum: int) -> Callable[[str], int]:
    """An int flag type that refuses values below `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def identifier(max_length: int) -> Callable[[str], str]:
    """A run or thread id flag type: non-empty, printable, no spaces, at most `max_length` characters."""

    def parse(text: str) -> str:
        if not text or not text.isprintable() or any(c.isspace() for c in text):
            raise argparse.ArgumentTypeError(f"must be a non-empty id without spaces, got {text!r}")
        if len(text) > max_length:
            raise argparse.ArgumentTypeError(f"must be at most {max_length} characters, got {len(text)}")
        return text

    parse.__name__ = "id"
    return parse
