"""What shape a reply must have, as plain data: no torch, no grammar library at import time.

A `GrammarSpec` is a JSON schema, a regular expression or a choice among fixed strings. Every
backend translates the same spec: the local backend compiles it with llguidance
(`latent_backend.grammar`), llama.cpp reads `to_gbnf()`, OpenAI-compatible servers take
`to_openai_response_format()`.

Invariants:
- Frozen and hashable (compiled grammars are cached by it) and JSON round-trippable (`to_json`).
- A json_schema value is compact JSON text in the schema's own key order, which is the order the
  reply writes its properties in.
- A regex has no `(?...)` syntax and matches the whole reply (see `portable_regex`), so llguidance,
  xgrammar, GBNF and JSON-schema `pattern` converters all read it alike.
- `tail` and `reserve`: when only `reserve` tokens of the budget remain and the reply is not complete,
  the local decoder goes on under `tail`. The caller makes sure that any reply prefix followed by
  a tail match is still in the language (e.g. `[\\s\\S]*\\\\boxed\\{[A-E]\\}` with tail
  `\\s*\\\\boxed\\{[A-E]\\}`). Servers only see the main grammar.
- Servers get choices and regexes as a JSON object `{"answer": ...}` with an `enum` or `pattern`,
  the one structured form that OpenAI, vLLM, SGLang and llama.cpp all accept; `server_value`
  unwraps it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["json_schema", "regex", "choice"]
SERVER_KEY = "answer"  # the one property of the object a server writes a choice or regex into


def portable_regex(pattern: str) -> str:
    """`pattern` without `(?...)` syntax, which some engines lack (xgrammar, GBNF, llama-cpp-python's
    pattern converter): a leading `(?s)` turns every unescaped `.` into `[\\s\\S]`, a non-capturing
    group `(?:x)` becomes `(x)` (the same language), and any other `(?...)` is refused."""
    dotall = pattern.startswith("(?s)")
    body = pattern[4:] if dotall else pattern
    out: list[str] = []
    index, in_class = 0, False
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            out.append(body[index : index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if body[index + 1 : index + 2] == "]":  # a literal ']' opening the class
                out.append("[]")
                index += 2
                continue
        elif char == "(" and body.startswith("(?", index):
            if not body.startswith("(?:", index):
                raise ValueError(f"inline regex flags and lookarounds are not portable: {pattern!r}")
            index += 2  # keep "(", drop "?:"
        elif char == "." and dotall:
            char = r"[\s\S]"
        out.append(char)
        index += 1
    portable = "".join(out)
    try:
        re.compile(portable)
    except re.error as exc:
        raise ValueError(f"malformed regex {pattern!r}: {exc}") from None
    return portable


@dataclass(frozen=True)
class GrammarSpec:
    kind: Kind
    value: str | tuple[str, ...]
    tail: GrammarSpec | None = None
    reserve: int = 0

    # -- constructors ---------------------------------------------------------------------------
    @staticmethod
    def json_schema(schema: Mapping[str, Any] | str) -> GrammarSpec:
        obj = json.loads(schema) if isinstance(schema, str) else dict(schema)
        if not isinstance(obj, dict):
            raise ValueError("a JSON schema must be an object")
        return GrammarSpec("json_schema", json.dumps(obj, ensure_ascii=False, separators=(",", ":")))

    @staticmethod
    def regex(pattern: str) -> GrammarSpec:
        return GrammarSpec("regex", portable_regex(pattern))

    @staticmethod
    def choice(options: Iterable[str]) -> GrammarSpec:
        values = tuple(options)
        if not values or not all(isinstance(v, str) and v for v in values):
            raise ValueError("a choice needs one or more non-empty strings")
        return GrammarSpec("choice", values)

    def with_tail(self, tail: GrammarSpec, reserve: int) -> GrammarSpec:
        """This grammar, switching to `tail` when `reserve` tokens of the budget are left."""
        if reserve < 1 or tail.tail is not None:
            raise ValueError("a tail needs reserve >= 1 and no tail of its own")
        return GrammarSpec(self.kind, self.value, tail, int(reserve))

    def __post_init__(self) -> None:
        if self.kind not in ("json_schema", "regex", "choice"):
            raise ValueError(f"unknown grammar kind {self.kind!r}")
        if isinstance(self.value, list):  # from JSON: a choice's options
            object.__setattr__(self, "value", tuple(self.value))

    @property
    def schema(self) -> dict[str, Any]:
        if self.kind != "json_schema":
            raise ValueError(f"a {self.kind} grammar has no JSON schema")
        return json.loads(str(self.value))

    # -- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "value": list(self.value) if isinstance(self.value, tuple) else self.value,
        }
        if self.tail is not None:
            data.update(tail=self.tail.to_json(), reserve=self.reserve)
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> GrammarSpec:
        tail = data.get("tail")
        return GrammarSpec(
            data["kind"],
            data["value"],
            GrammarSpec.from_json(tail) if tail else None,
            int(data.get("reserve") or 0),
        )

    # -- OpenAI-compatible servers ----------------------------------------------------------------
    def server_schema(self) -> dict[str, Any]:
        """The JSON schema a server is asked for: the schema itself, or `{"answer": ...}`."""
        if self.kind == "json_schema":
            return self.schema
        if self.kind == "choice":
            answer: dict[str, Any] = {"type": "string", "enum": list(self.value)}
        else:
            answer = {"type": "string", "pattern": f"^({self.value})$"}
        return {
            "type": "object",
            "properties": {SERVER_KEY: answer},
            "required": [SERVER_KEY],
            "additionalProperties": False,
        }

    def to_openai_response_format(self, name: str = "reply") -> dict[str, Any]:
        """`response_format` of the OpenAI API (vLLM, SGLang, llama.cpp's llama-server, OpenAI)."""
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": self.server_schema(), "strict": True},
        }

    def to_json_object_response_format(self) -> dict[str, Any]:
        """The older `{"type": "json_object", "schema": ...}` form (llama-cpp-python's server)."""
        return {"type": "json_object", "schema": self.server_schema()}

    def server_value(self, parsed: Any) -> Any:
        """What a server's parsed JSON reply means: the object itself, or the unwrapped answer."""
        if self.kind == "json_schema":
            return parsed
        if isinstance(parsed, Mapping) and isinstance(parsed.get(SERVER_KEY), str):
            return parsed[SERVER_KEY]
        raise ValueError(f"expected a JSON object with a string {SERVER_KEY!r}")

    # -- llama.cpp ------------------------------------------------------------------------------
    def to_gbnf(self) -> str:
        """GBNF text for llama.cpp, made with llama-cpp-python's own converters (imported here)."""
        if self.kind == "choice":
            return "root ::= " + " | ".join(json.dumps(v, ensure_ascii=False) for v in self.value)
        from llama_cpp import llama_grammar

        if self.kind == "json_schema":
            gbnf = llama_grammar.json_schema_to_gbnf(str(self.value))
            # Its strings let raw control characters in (invalid JSON); llama.cpp's C++ converter does not.
            return _compact_optionals(gbnf).replace(r'char ::= [^"\\]', r'char ::= [^"\\\x7F\x00-\x1F]')
        converter = llama_grammar.SchemaConverter(
            prop_order={}, allow_fetch=False, dotall=False, raw_pattern=True
        )
        converter.visit({"type": "string", "pattern": f"^{self.value}$"}, "")
        # GBNF has no \s \S class escapes; "[^\x00]" is "any character" and every GBNF reader parses it.
        return _compact_optionals(converter.format_grammar().replace(r"[\s\S]", r"[^\x00]"))


_OPTIONAL_CHAIN = re.compile(r"\(((?:[\w-]+ \()*)([\w-]+)((?:\)\?)+)")


def _compact_optionals(gbnf: str) -> str:
    """Rewrite `(x (x (x)?)?)?` (how llama-cpp-python writes "at most N") as `x{0,N}`: the same
    language, and readers that refuse deep nesting (llguidance) accept it."""

    def compact(match: re.Match[str]) -> str:
        names = [*re.findall(r"[\w-]+", match.group(1)), match.group(2)]
        if len(set(names)) == 1 and match.group(3).count(")?") == len(names):
            return f"{names[0]}{{0,{len(names)}}}"
        return match.group(0)

    return _OPTIONAL_CHAIN.sub(compact, gbnf)
