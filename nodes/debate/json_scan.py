"""Finding the JSON objects in a model's reply, tolerantly, and never by evaluating it as code.

A reply may wrap its JSON in code fences or prose, or write it Python-style (single quotes,
True/None, trailing commas): a small bracket scanner finds each balanced span, and `json.loads`
reads it, after rewriting Python-style literals into JSON when it must.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def _balanced_spans(text: str) -> Iterator[str]:
    """Every top-level `{...}` span of `text`, in order, skipping braces inside quoted strings."""
    depth, start, quote, escaped = 0, -1, "", False
    closing = {'"': '"', "'": "'", "\u201c": "\u201d"}
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == closing[quote]:
                quote = ""
            continue
        if depth > 0 and char in closing:  # quotes only count inside an object: prose has apostrophes
            quote = char
        elif char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                yield text[start : index + 1]


_LITERALS = {
    "True": "true",
    "False": "false",
    "None": "null",
    "true": "true",
    "false": "false",
    "null": "null",
}


def _python_style_to_json(text: str) -> str:
    """Rewrite Python-dict-style text as JSON: quotes, True/False/None, trailing commas.

    A purely lexical rewrite; anything that is not a literal (a name, a call) is left as it is,
    so json.loads then rejects it.
    """
    out: list[str] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char in "\"'\u201c":
            close = "\u201d" if char == "\u201c" else char
            index += 1
            chars: list[str] = []
            while index < length and text[index] != close:
                if text[index] == "\\" and index + 1 < length:
                    nxt = text[index + 1]
                    mapped = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "/": "/"}
                    chars.append(mapped.get(nxt, "\\" + nxt))
                    index += 2
                    continue
                chars.append(text[index])
                index += 1
            index += 1  # the closing quote (or past the end: json.loads then reports it)
            out.append(json.dumps("".join(chars), ensure_ascii=False))
        elif char.isalpha() or char == "_":
            end = index
            while end < length and (text[end].isalnum() or text[end] == "_"):
                end += 1
            word = text[index:end]
            out.append(_LITERALS.get(word, word))
            index = end
        elif char == ",":
            rest = text[index + 1 :].lstrip()
            if not rest or rest[0] not in "}]":  # drop trailing commas
                out.append(char)
            index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _loads_tolerant(candidate: str) -> Any:
    try:
        return json.loads(candidate, strict=False)
    except json.JSONDecodeError:
        return json.loads(_python_style_to_json(candidate), strict=False)


def extract_json_objects(text: str) -> list[dict[str, Any]]:
    """All JSON objects readable from a model reply, in order of appearance (maybe none)."""
    if not isinstance(text, str):
        return []
    found = []
    for span in _balanced_spans(text):
        try:
            value = _loads_tolerant(span)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            found.append(value)
    return found
