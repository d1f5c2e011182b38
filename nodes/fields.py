"""Options of a graph: described dataclass fields, checked where they enter.

Every graph's `context_schema` is a dataclass whose fields are declared with `option()`: the
description is what Studio shows beside the field, and the declared bounds are checked in
`__post_init__` by `check_options()`, so a context built from Python, from the CLI or from a
Studio/SDK form rejects a bad value before anything runs. An unknown key is an error naming the
closest valid one (`temprature` -> `temperature`), never dropped: `context_from()` checks a
mapping, and a context class based on `CheckedOptions` checks the keywords it is built with (as
LangGraph builds a dict context: `cls(**context)`).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

ContextT = TypeVar("ContextT")


class OptionError(ValueError):
    """A bad option value or name; `option` is the field it concerns (the CLI names its flag)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: it crosses processes (e.g. from a Ray worker)
        return (type(self), (self.option, str(self)))


def option(
    default: Any = dataclasses.MISSING,
    description: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    cli: tuple[str, ...] = (),
) -> Any:
    """A described context field; `minimum`/`maximum` are checked, `cli` adds flag aliases."""
    metadata: dict[str, Any] = {"description": description}
    if minimum is not None:
        metadata["minimum"] = minimum
    if maximum is not None:
        metadata["maximum"] = maximum
    if cli:
        metadata["cli"] = cli
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def check_options(instance: Any) -> None:
    """Check every field of a context dataclass against its type and declared bounds."""
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        hint = hints.get(field.name, Any)
        if not _matches(value, hint):
            raise OptionError(field.name, f"option {field.name!r} must be {_describe(hint)}, got {value!r}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            low, high = field.metadata.get("minimum"), field.metadata.get("maximum")
            if low is not None and value < low:
                raise OptionError(field.name, f"option {field.name!r} must be >= {low}, got {value!r}")
            if high is not None and value > high:
                raise OptionError(field.name, f"option {field.name!r} must be <= {high}, got {value!r}")


def unknown_option(cls: type, key: Any) -> OptionError:
    """The error for an option `cls` does not have, naming the closest one it has."""
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; options: {', '.join(names)}"
    return OptionError(str(key), f"unknown option {key!r} for {cls.__name__}{hint}")


class CheckedOptions:
    """Base of a context dataclass: building it with an unknown keyword names the closest option."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for key in kwargs:
            if key not in names:
                raise unknown_option(cls, key)
        return super().__new__(cls)


def context_from(cls: type[ContextT], value: Any) -> ContextT:
    """A context of type `cls` from None (the defaults), an instance, or a mapping of field values."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise OptionError("context", f"a {cls.__name__} or a mapping of its fields is needed, got {value!r}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in value:
        if key not in names:
            raise unknown_option(cls, key)
    return cls(**value)


def context_of(runtime: Any, cls: type[ContextT]) -> ContextT:
    """The run's context inside a node: the defaults when the graph was invoked without one."""
    return context_from(cls, getattr(runtime, "context", None))


# -- type checks ------------------------------------------------------------------------------------
def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin in (dict, Mapping):
        key_hint, value_hint = typing.get_args(hint) or (Any, Any)
        return isinstance(value, Mapping) and all(
            _matches(k, key_hint) and _matches(v, value_hint) for k, v in value.items()
        )
    if origin in (list, tuple):
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        return isinstance(value, list | tuple) and all(_matches(v, item_hint) for v in value)
    return isinstance(value, origin or hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if origin is not None:
        return f"a {origin.__name__}"
    return f"a {getattr(hint, '__name__', hint)}"
