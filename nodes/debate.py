"""MAD (Multi-Agent Debate) prompts and the tolerant reading of the moderator's and judge's JSON.

Prompts use the original MAD placeholder style (`##debate_topic##`, `##aff_ans##`, ...), so the
paper's own prompt files plug in unchanged as overrides. The wording here is ours; the structure
(which stage sees what, and the JSON keys later stages parse) follows SPEC §3.

The moderator's reply is model output: it is never evaluated. `extract_json_objects` finds the
JSON objects in a reply (code fences, prose around them, Python-style literals, single quotes,
trailing commas) with a small scanner, and pydantic validates them against the verdict schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

Mode = Literal["qa", "translation"]

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


# ---------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------

_FORMAT_REMINDER = (
    "Your last reply could not be read as the JSON object I asked for (##error##). "
    "Reply again with only one JSON object, no other text, in exactly this format: ##json_format##"
)

QA_PROMPTS: dict[str, str] = {
    "base_prompt": "##debate_topic##\nGive your answer and explain it briefly.",
    "player_meta_prompt": (
        "You are a debater. Welcome to the debate. You do not have to agree with the other side's "
        "views: the goal is to find the correct answer.\nThe debate topic is:\n##debate_topic##"
    ),
    "moderator_meta_prompt": (
        "You are the moderator of a debate. Two debaters will present their answers and argue about "
        'the following topic: "##debate_topic##"\n'
        "At the end of each round you evaluate their answers and decide which one is correct."
    ),
    "affirmative_prompt": "You think the correct answer is: ##base_answer##\nRestate your answer and give your reasons.",
    "negative_prompt": "##aff_ans##\n\nYou disagree with my answer. Give your own answer and your reasons.",
    "debate_prompt": "##oppo_ans##\n\nDo you agree with my perspective? Give your reasons and your answer.",
    "moderator_prompt": (
        "The ##round## round of the debate has ended.\n\n"
        "Affirmative side argued:\n##aff_ans##\n\n"
        "Negative side argued:\n##neg_ans##\n\n"
        "As the moderator, evaluate both sides' answers and decide whether one answer is clearly "
        "preferable. If so, summarize why you support the affirmative or the negative side and give "
        "the final answer you consider correct; the debate then ends. If not, the debate goes on to "
        "the next round. Reply with JSON only, in this format: " + moderator_json_format("qa")
    ),
    "judge_prompt_last1": (
        "Affirmative side argued:\n##aff_ans##\n\nNegative side argued:\n##neg_ans##\n\n"
        "Which candidate answers do we have? List them without reasons."
    ),
    "judge_prompt_last2": (
        "So: ##debate_topic##\nSummarize your reasons and give the final answer you consider "
        "correct. Reply with JSON only, in this format: " + judge_json_format("qa")
    ),
    "format_reminder": _FORMAT_REMINDER,
}

TRANSLATION_PROMPTS: dict[str, str] = {
    "base_prompt": "Translate the following text from ##src_lng## to ##tgt_lng##: ##source##",
    "player_meta_prompt": (
        "You are a debater. Welcome to the translation contest, held as a debate. You do not have to "
        "agree with the other side's views: the goal is to find the correct translation.\n"
        "The debate topic is:\nWhat is the correct ##tgt_lng## translation of the following "
        '##src_lng## text: "##source##"'
    ),
    "moderator_meta_prompt": (
        "You are the moderator of a translation debate. Two debaters will present their translations "
        'and argue about the correct ##tgt_lng## translation of the ##src_lng## text: "##source##". '
        "At the end of each round you evaluate the candidate translations by these criteria:\n"
        "1. Accuracy: how faithfully the translation carries the meaning of the source text.\n"
        "2. Fluency: how readable and natural the translation is in ##tgt_lng##."
    ),
    "affirmative_prompt": (
        "You think the correct translation is: ##base_translation##\n"
        "Restate the translation and give your reasons."
    ),
    "negative_prompt": "##aff_ans##\n\nYou disagree with my translation. Give your own translation and your reasons.",
    "debate_prompt": "##oppo_ans##\n\nDo you agree with my perspective? Give your reasons and your translation.",
    "moderator_prompt": (
        "The ##round## round of the debate has ended.\n\n"
        "Affirmative side argued:\n##aff_ans##\n\n"
        "Negative side argued:\n##neg_ans##\n\n"
        "As the moderator, evaluate both sides' translations and decide whether one candidate is "
        "clearly preferable. If so, summarize why you support the affirmative or the negative side "
        "and give the final translation you consider correct; the debate then ends. If not, the "
        "debate goes on to the next round. Reply with JSON only, in this format: "
        + moderator_json_format("translation")
    ),
    "judge_prompt_last1": (
        "Affirmative side argued:\n##aff_ans##\n\nNegative side argued:\n##neg_ans##\n\n"
        "Which candidate translations do we have? List them without reasons."
    ),
    "judge_prompt_last2": (
        "So, what is the correct ##tgt_lng## translation of the following ##src_lng## text: "
        '"##source##"? Summarize your reasons and give the final translation you consider correct. '
        "Reply with JSON only, in this format: " + judge_json_format("translation")
    ),
    "format_reminder": _FORMAT_REMINDER,
}

PROMPT_KEYS = frozenset(QA_PROMPTS)
# Data fields of the original MAD prompt files: accepted in an override mapping and ignored,
# so the paper's config4all.json / config4tran.json can be passed as they are.
_ORIGINAL_DATA_KEYS = frozenset(
    {
        "debate_topic",
        "base_answer",
        "debate_answer",
        "source",
        "reference",
        "base_translation",
        "debate_translation",
        "src_lng",
        "tgt_lng",
    }
)


def prompt_templates(mode: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The mode's default templates with `overrides` applied (unknown prompt names are an error)."""
    if mode not in ("qa", "translation"):
        raise ValueError(f"unknown debate mode {mode!r}: use 'qa' or 'translation'")
    templates = dict(TRANSLATION_PROMPTS if mode == "translation" else QA_PROMPTS)
    for key, value in (overrides or {}).items():
        if key in _ORIGINAL_DATA_KEYS:
            continue
        if key not in PROMPT_KEYS:
            raise ValueError(
                f"unknown debate prompt {key!r}; known prompts: {', '.join(sorted(PROMPT_KEYS))}"
            )
        templates[key] = str(value)
    return templates


_PLACEHOLDER = re.compile(r"##([A-Za-z_]+)##")


def fill(template: str, **values: str) -> str:
    """Replace `##name##` placeholders in one pass (inserted text is never re-scanned).

    Placeholders without a value stay as they are, so a template can be filled in stages.
    """
    return _PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], template)


_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]


def round_name(number: int) -> str:
    """'first', 'second', ... as the moderator prompt says it ('11th' beyond ten)."""
    if 1 <= number <= len(_ORDINALS):
        return _ORDINALS[number - 1]
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


LANGUAGE_NAMES: dict[str, str] = {
    "zh": "Chinese",
    "en": "English",
    "de": "German",
    "fr": "French",
    "ja": "Japanese",
    "ko": "Korean",
    "es": "Spanish",
    "ru": "Russian",
    "it": "Italian",
    "pt": "Portuguese",
    "ar": "Arabic",
    "cs": "Czech",
    "nl": "Dutch",
    "tr": "Turkish",
    "vi": "Vietnamese",
    "th": "Thai",
    "hi": "Hindi",
    "pl": "Polish",
    "sv": "Swedish",
    "uk": "Ukrainian",
    "id": "Indonesian",
    "he": "Hebrew",
    "fi": "Finnish",
    "ro": "Romanian",
    "hu": "Hungarian",
    "da": "Danish",
    "no": "Norwegian",
    "el": "Greek",
    "fa": "Persian",
    "bn": "Bengali",
    "ms": "Malay",
    "ta": "Tamil",
    "ur": "Urdu",
    "et": "Estonian",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "kk": "Kazakh",
    "gu": "Gujarati",
    "is": "Icelandic",
    "km": "Khmer",
    "ps": "Pashto",
    "ha": "Hausa",
    "iu": "Inuktitut",
    "bg": "Bulgarian",
    "hr": "Croatian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sr": "Serbian",
    "ca": "Catalan",
}


def language_name(language: str | None) -> str:
    """A language's English name from an ISO 639-1 code ('zh', 'zh-CN', 'en_US'); names pass through."""
    if not language:
        return ""
    text = language.strip()
    code = re.split(r"[-_]", text, maxsplit=1)[0].lower()
    return LANGUAGE_NAMES.get(code, text)


# ---------------------------------------------------------------------------------------------
# Tolerant JSON extraction (no eval, ever)
# ---------------------------------------------------------------------------------------------


class JSONExtractionError(ValueError):
    """No JSON object could be read from a reply."""


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
        """The verdict under the SPEC's JSON keys."""
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
