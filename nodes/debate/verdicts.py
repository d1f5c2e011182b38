"""The moderator's and judge's verdicts: their JSON keys, and the tolerant reading of their replies.

A verdict is model output (or a person's answer): it is never evaluated as code.
`extract_json_objects` finds the JSON objects in a reply (code fences, prose around them,
Python-style literals, single quotes, trailing commas) with a small scanner, and pydantic validates
them against the verdict schema. The keys are those of the original MAD output records
("Whether there is a preference", "Supported Side", "Reason", "debate_answer" or, when translating,
"debate_translation").

`moderator_schema` / `judge_schema` are the same shapes as JSON schemas, for structured output. Their
free-text fields are bounded in characters by the call's token budget, so that ordinary text
(3 or more characters a token) always closes the JSON within it; a reply cut anyway is unreadable,
as any cut reply is.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from nodes.debate.json_scan import extract_json_objects

PREFERENCE_KEY = "Whether there is a preference"
SIDE_KEY = "Supported Side"
REASON_KEY = "Reason"


def answer_key(mode: str) -> str:
    """The JSON key that carries the debate's answer (the translation config renames it)."""
    return "debate_translation" if mode == "translation" else "debate_answer"


def moderator_json_format(mode: str) -> str:
    return json.dumps(
        {
            PREFERENCE_KEY: "Yes or No",
            SIDE_KEY: "Affirmative or Negative",
            REASON_KEY: "",
            answer_key(mode): "",
        }
    )


def judge_json_format(mode: str) -> str:
    return json.dumps({REASON_KEY: "", answer_key(mode): ""})


CHARS_PER_TOKEN = 3  # a floor for ordinary text; bounds the JSON strings by the token budget


def _text_budget(max_tokens: int, skeleton: str) -> int:
    """Characters left for the free-text fields once the keys and punctuation are written."""
    return max(32, CHARS_PER_TOKEN * max_tokens - len(skeleton))


def _string(max_length: int, min_length: int = 0) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max(max_length, min_length + 1)}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def moderator_schema(mode: str, max_tokens: int) -> dict[str, Any]:
    """The moderator verdict as a JSON schema (keys in the original order; an empty answer continues)."""
    chars = _text_budget(max_tokens, moderator_json_format(mode))
    return _object(
        {
            PREFERENCE_KEY: {"type": "string", "enum": ["Yes", "No"]},
            SIDE_KEY: {"type": "string", "enum": ["Affirmative", "Negative", ""]},
            REASON_KEY: _string(chars * 3 // 5),
            answer_key(mode): _string(chars * 2 // 5),
        }
    )


def judge_schema(mode: str, max_tokens: int) -> dict[str, Any]:
    """The judge's final verdict as a JSON schema: a reason and a non-empty answer."""
    chars = _text_budget(max_tokens, judge_json_format(mode))
    return _object({REASON_KEY: _string(chars * 3 // 5), answer_key(mode): _string(chars * 2 // 5, 1)})


# ---------------------------------------------------------------------------------------------
# Verdict schemas
# ---------------------------------------------------------------------------------------------


def _norm_key(key: Any) -> str:
    return re.sub(r"[^a-z]", "", str(key).lower())


_FIELD_OF_KEY = {
    "whetherthereisapreference": "preference",
    "preference": "preference",
    "supportedside": "supported_side",
    "reason": "reason",
    "debateanswer": "answer",
    "debatetranslation": "answer",
}


def _text_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise ValueError("expected text, got a boolean")
    if isinstance(value, int | float | str):
        return str(value).strip()
    raise ValueError(f"expected text, got {type(value).__name__}")


class ModeratorVerdict(BaseModel):
    """The moderator's JSON, validated: {"Whether there is a preference", "Supported Side", "Reason",
    "debate_answer" | "debate_translation"}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preference: Literal["Yes", "No"] = "No"
    supported_side: str = ""
    reason: str = ""
    answer: str = ""

    @field_validator("preference", mode="before")
    @classmethod
    def _preference(cls, value: Any) -> str:
        if isinstance(value, bool):
            return "Yes" if value else "No"
        word = _text_value(value).lower().rstrip(".")
        if word in ("yes", "y", "true"):
            return "Yes"
        if word in ("no", "n", "false", "", "none"):
            return "No"
        raise ValueError(f"preference must be Yes or No, got {value!r}")

    @field_validator("supported_side", mode="before")
    @classmethod
    def _side(cls, value: Any) -> str:
        word = _text_value(value)
        lowered = word.lower()
        if lowered.startswith("affirmative"):
            return "Affirmative"
        if lowered.startswith("negative"):
            return "Negative"
        return word

    @field_validator("reason", "answer", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return _text_value(value)

    def to_json(self, mode: str) -> dict[str, str]:
        """The verdict under the JSON keys of the original MAD output records."""
        return {
            PREFERENCE_KEY: self.preference,
            SIDE_KEY: self.supported_side,
            REASON_KEY: self.reason,
            answer_key(mode): self.answer,
        }


class JudgeVerdict(BaseModel):
    """The judge's final JSON, validated: {"Reason", "debate_answer" | "debate_translation"}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = ""
    answer: str

    @field_validator("reason", "answer", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return _text_value(value)

    def to_json(self, mode: str) -> dict[str, str]:
        return {REASON_KEY: self.reason, answer_key(mode): self.answer}


def _fields(raw: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    """Map a reply's keys (any case/spacing) to schema fields; other keys are ignored."""
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        field_name = _FIELD_OF_KEY.get(_norm_key(key))
        if field_name in allowed and field_name not in fields:
            fields[field_name] = value
    return fields


def _validate(raw: Any, schema: type[BaseModel], required_any: set[str]) -> BaseModel:
    if not isinstance(raw, Mapping):
        raise ValueError("not a JSON object")
    fields = _fields(raw, set(schema.model_fields))
    if not fields.keys() & required_any:
        raise ValueError("missing key(s): " + " or ".join(sorted(required_any)))
    return schema.model_validate(fields)


def _parse(reply: Any, schema: type[BaseModel], required_any: set[str]) -> tuple[Any, str | None]:
    if isinstance(reply, Mapping):
        candidates: list[Any] = [reply]
    else:
        candidates = extract_json_objects(reply)
        if not candidates:
            return None, "no JSON object found"
    error = "no JSON object found"
    # The last valid object wins: models tend to echo the format example before their answer.
    for candidate in reversed(candidates):
        try:
            return _validate(candidate, schema, required_any), None
        except (ValueError, ValidationError) as exc:
            error = _short_error(exc)
    return None, error


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)


def parse_moderator(reply: str | Mapping[str, Any]) -> tuple[ModeratorVerdict | None, str | None]:
    """(verdict, None) or (None, why it could not be read). `reply` is text or an already-parsed dict."""
    return _parse(reply, ModeratorVerdict, {"preference", "answer"})


def parse_judge(reply: str | Mapping[str, Any]) -> tuple[JudgeVerdict | None, str | None]:
    return _parse(reply, JudgeVerdict, {"answer"})


def parse_reference(reply: str | Mapping[str, Any], mode: str, *, judge: bool) -> tuple[Any, str | None]:
    """A verdict read as the original reads it, without its `eval`: the whole reply must be a
    Python dict literal (`ast.literal_eval`, which never runs code) holding the answer key; values
    are taken as they are (a non-empty answer, even " ", decides). Anything else is no verdict."""
    if isinstance(reply, Mapping):
        value: Any = dict(reply)
    else:
        try:
            value = ast.literal_eval(str(reply).strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            return None, f"not a Python dict literal ({type(exc).__name__})"
    key = answer_key(mode)
    if not isinstance(value, dict) or key not in value:
        return None, f"no {key!r} key"

    def text(name: str) -> str:
        found = value.get(name)
        return "" if found is None else str(found)

    if judge:
        return JudgeVerdict.model_construct(reason=text(REASON_KEY), answer=text(key)), None
    verdict = ModeratorVerdict.model_construct(
        preference=text(PREFERENCE_KEY),
        supported_side=text(SIDE_KEY),
        reason=text(REASON_KEY),
        answer=text(key),
    )
    return verdict, None
