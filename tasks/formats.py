"""Data records -> `TaskItem`: every supported benchmark shape, recognised by its fields.

Shapes: generic {question, answer|gold, options?, context?, id?}; MedQA {question, options {A..E},
answer, answer_idx, meta_info}; LatentMAS medqa {idx, question, options ["A. ..."], answer (option
text)}; GSM8K (answer ending "#### 42"); ARC/GPQA {question, choices|options, answerKey}; MMLU
{question, choices, answer (0-based index)}; MedMCQA {question, opa..opd, cop}; Winogrande
{sentence, option1, option2, answer}; MBPP/HumanEval {prompt|text, test|test_list, entry_point?};
PubMedQA {context(s), question, final_decision}; CIAR {question, answer [accepted]}. Errors are
`TaskError`s naming the field; the loader adds the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tasks.base import TaskError, TaskItem, stable_id

__all__ = ["ID_FIELDS", "PUBMEDQA_OPTIONS", "convert_record", "item_from_record"]

PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}
ID_FIELDS = ("id", "idx", "task_id", "pubid")
_GROUP_FIELDS = ("group", "meta_info", "subject", "subject_name")


class _Fields:
    """Case-insensitive access to a record ("Question" == "question"), remembering what was used
    so everything else can go to `meta`."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record
        self.keys = {str(key).strip().lower(): key for key in record}
        self.used: set[Any] = set()

    def has(self, name: str) -> bool:
        return name in self.keys and self.record[self.keys[name]] is not None

    def get(self, name: str) -> Any:
        if name not in self.keys:
            return None
        self.used.add(self.keys[name])
        return self.record[self.keys[name]]

    def first(self, *names: str) -> tuple[str | None, Any]:
        for name in names:
            if self.has(name):
                return name, self.get(name)
        return None, None

    def rest(self) -> dict[str, Any]:
        return {str(k): v for k, v in self.record.items() if k not in self.used and v is not None}


def item_from_record(record: Any) -> TaskItem:
    """One data record, in any of the supported shapes, as a TaskItem.

    Shapes: generic {question, answer|gold, options?, context?, id?}; MedQA {question, options
    {A..E}, answer, answer_idx, meta_info}; LatentMAS medqa {idx, question, options ["A. ..."],
    answer (option text)}; GSM8K (answer ending "#### 42"); ARC/GPQA {question, choices|options,
    answerKey}; MMLU {question, choices, answer (0-based index)}; MedMCQA {question, opa..opd, cop};
    Winogrande {sentence, option1, option2, answer}; MBPP/HumanEval {prompt|text, test|test_list,
    entry_point?}; PubMedQA {context(s), question, final_decision}; CIAR {question, answer [accepted]}.
    A "task" field is kept as meta["task"]; fields not used go to meta.
    """
    return convert_record(record)[0]


def convert_record(record: Any) -> tuple[TaskItem, str | None]:
    """The item, and the name of the field its id came from (None: a content hash)."""
    if not isinstance(record, Mapping):
        raise TaskError(f"expected a JSON object, got {type(record).__name__}")
    fields = _Fields(record)
    task = fields.get("task")
    if task is not None and not (isinstance(task, str) and task.strip()):
        raise TaskError(f"field 'task' must be a task name, got {task!r}")
    if fields.has("test") or fields.has("test_list"):
        item = _code_item(fields)
    elif fields.has("sentence") and fields.has("option1") and fields.has("option2"):
        item = _winogrande_item(fields)
    elif fields.has("final_decision"):
        item = _pubmedqa_item(fields)
    else:
        item = _qa_item(fields)
    id_field, item_id = _item_id(fields, item.question, item.options)
    _, raw_group = fields.first(*_GROUP_FIELDS)
    group = (
        str(raw_group).strip()
        if isinstance(raw_group, str | int) and not isinstance(raw_group, bool)
        else None
    )
    meta = {**fields.rest(), **item.meta}
    if task is not None:
        meta["task"] = task.strip()
    return TaskItem(
        id=item_id,
        question=item.question,
        gold=item.gold,
        options=item.options,
        context=item.context,
        group=group or None,
        meta=meta,
    ), id_field


def _draft(
    question: str,
    gold: Any,
    *,
    options: dict[str, str] | None = None,
    context: str | None = None,
    meta: dict[str, Any] | None = None,
) -> TaskItem:
    # The id is filled in last (it may hash the final question and options).
    return TaskItem(id="", question=question, gold=gold, options=options, context=context, meta=meta or {})


def _text(fields: _Fields, *names: str) -> str:
    name, value = fields.first(*names)
    if name is None:
        raise TaskError(
            f"missing field {names[0]!r}"
            if len(names) == 1
            else f"missing field {names[0]!r} (or {', '.join(map(repr, names[1:]))})"
        )
    if not isinstance(value, str) or not value.strip():
        raise TaskError(f"field {name!r} must be non-empty text, got {value!r}")
    return value.strip()


def _item_id(fields: _Fields, question: str, options: dict[str, str] | None) -> tuple[str | None, str]:
    name, value = fields.first(*ID_FIELDS)
    if name is None:
        return None, stable_id(question, options)
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise TaskError(f"field {name!r} must be a non-empty string or integer, got {value!r}")
    return name, str(value).strip()


def _code_item(fields: _Fields) -> TaskItem:
    question = _text(fields, "prompt", "text", "question")
    test, test_list = fields.get("test"), fields.get("test_list")
    if isinstance(test, str) and test.strip():
        gold = test
    elif isinstance(test_list, list) and test_list and all(isinstance(t, str) for t in test_list):
        gold = "\n".join(test_list)
    else:
        raise TaskError("field 'test' must be test code (or 'test_list' a list of assertions)")
    setup = fields.get("test_imports") or []
    setup_code = fields.get("test_setup_code") or ""
    if not (isinstance(setup, list) and all(isinstance(s, str) for s in setup)) or not isinstance(
        setup_code, str
    ):
        raise TaskError("fields 'test_imports'/'test_setup_code' must be code")
    gold = "\n".join(part for part in [*setup, setup_code, gold] if part.strip())
    meta: dict[str, Any] = {}
    entry_point = fields.get("entry_point")
    if entry_point is not None:
        if not (isinstance(entry_point, str) and entry_point.isidentifier()):
            raise TaskError(f"field 'entry_point' must be a function name, got {entry_point!r}")
        meta["entry_point"] = entry_point
    if isinstance(test_list, list):
        meta["test_list"] = test_list
    return _draft(question, gold, meta=meta)


def _winogrande_item(fields: _Fields) -> TaskItem:
    question = _text(fields, "sentence")
    options = {"1": str(fields.get("option1")).strip(), "2": str(fields.get("option2")).strip()}
    answer = str(fields.get("answer") if fields.has("answer") else "").strip()
    if answer not in options:
        raise TaskError(f"field 'answer' must be 1 or 2, got {answer!r}")
    return _draft(question, answer, options=options)


def _pubmedqa_item(fields: _Fields) -> TaskItem:
    question = _text(fields, "question")
    decision = fields.get("final_decision")
    by_text = {text: letter for letter, text in PUBMEDQA_OPTIONS.items()}
    if not isinstance(decision, str) or decision.strip().lower() not in by_text:
        raise TaskError(f"field 'final_decision' must be yes, no or maybe, got {decision!r}")
    _, raw = fields.first("context", "contexts")
    if isinstance(raw, Mapping):  # the Hugging Face shape: {"contexts": [...], "labels": [...], ...}
        raw = raw.get("contexts")
    if isinstance(raw, list) and all(isinstance(part, str) for part in raw):
        context = "\n".join(part.strip() for part in raw)
    elif isinstance(raw, str):
        context = raw.strip()
    else:
        raise TaskError("field 'context' must be text or a list of text")
    return _draft(
        question, by_text[decision.strip().lower()], options=dict(PUBMEDQA_OPTIONS), context=context or None
    )


def _qa_item(fields: _Fields) -> TaskItem:
    _, raw_question = fields.first("question", "problem")  # AIME's sets call it "problem"
    nested_choices = None
    if isinstance(raw_question, Mapping):  # ARC's original jsonl: {"stem": ..., "choices": [...]}
        nested_choices = raw_question.get("choices")
        raw_question = raw_question.get("stem")
    if raw_question is None:
        raise TaskError("missing field 'question'")
    if not isinstance(raw_question, str) or not raw_question.strip():
        raise TaskError(f"field 'question' must be non-empty text, got {raw_question!r}")
    question = raw_question.strip()
    context = _context(fields)

    if fields.has("opa"):  # MedMCQA: opa..ope, cop = 0-based index of the correct one
        raw_options: Any = [fields.get(f"op{c}") for c in "abcde" if fields.has(f"op{c}")]
    else:
        _, raw_options = fields.first("options", "choices")
        raw_options = raw_options if raw_options is not None else nested_choices
    if raw_options is None:
        gold, meta = _free_gold(fields)
        return _draft(question, gold, context=context, meta=meta)

    options, relabel = _parse_options(raw_options)
    meta = {}
    name, answer = fields.first("answer_idx", "answerkey", "cop", "answer", "gold", "label")
    if name is None:
        raise TaskError("missing field 'answer'")
    if name == "answer_idx" and fields.has("answer"):
        meta["answer_text"] = fields.get("answer")  # MedQA keeps the text too; the letter is the gold
    gold = _choice_gold(answer, options, relabel)
    question = _strip_listed_options(question, options)
    return _draft(question, gold, options=options, context=context, meta=meta)


def _context(fields: _Fields) -> str | None:
    name, raw = fields.first("context", "contexts")
    if name is None:
        return None
    if isinstance(raw, list) and all(isinstance(part, str) for part in raw):
        return "\n".join(part.strip() for part in raw) or None
    if isinstance(raw, str):
        return raw.strip() or None
    raise TaskError(f"field {name!r} must be text or a list of text")


def _free_gold(fields: _Fields) -> tuple[Any, dict[str, Any]]:
    """The gold of an item without options, and what to keep of it in meta."""
    name, answer = fields.first("answer", "gold", "answerkey")
    if name is None:
        raise TaskError("missing field 'answer'")
    if isinstance(answer, list):  # CIAR: every accepted spelling
        if not answer or not all(
            isinstance(a, str | int | float) and not isinstance(a, bool) for a in answer
        ):
            raise TaskError(f"field {name!r} must list accepted answers as text, got {answer!r}")
        return [str(a).strip() for a in answer], {}
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        raise TaskError(
            f"field {name!r} must be text, a number or a list of accepted answers, got {answer!r}"
        )
    if isinstance(answer, str) and "####" in answer:  # GSM8K: worked solution, then "#### 42"
        solution, final = (part.strip() for part in answer.rsplit("####", 1))
        if not final:
            raise TaskError(f"field {name!r} has nothing after '####'")
        return final.replace(",", ""), {"solution": solution}
    text = str(answer).strip()
    if not text:
        raise TaskError(f"field {name!r} is empty")
    return text, {}


_LABELLED = re.compile(r"^\s*\(?([A-Za-z])\s*[.):]\s*(.*)$", re.DOTALL)


def _parse_options(raw: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Options as {letter: text}, and how original labels were renamed (ARC's "1".."4" -> A..D)."""
    if isinstance(raw, Mapping) and isinstance(raw.get("text"), list) and isinstance(raw.get("label"), list):
        pairs = list(zip(raw["label"], raw["text"], strict=False))  # ARC on the Hub
    elif isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif (
        isinstance(raw, list)
        and raw
        and all(isinstance(o, Mapping) and "text" in o and "label" in o for o in raw)
    ):
        pairs = [(o["label"], o["text"]) for o in raw]
    elif isinstance(raw, list) and raw and all(isinstance(o, str | int | float) for o in raw):
        labelled = [_LABELLED.match(o) if isinstance(o, str) else None for o in raw]
        letters = [m.group(1).upper() for m in labelled if m]
        if all(labelled) and len(set(letters)) == len(raw):  # LatentMAS: ["A. text", "B. text", ...]
            pairs = [(m.group(1), m.group(2)) for m in labelled if m]
        else:
            pairs = list(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", raw, strict=False))
            if len(raw) > 26:
                raise TaskError(f"too many options ({len(raw)})")
    else:
        raise TaskError(f"options must be an object or a non-empty list, got {raw!r}")
    labels = [str(label).strip() for label, _ in pairs]
    relabel: dict[str, str] = {}
    if all(label.isdigit() for label in labels):  # numeric labels become letters, in order
        relabel = dict(zip(labels, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", strict=False))
    keys = [relabel.get(label, label.upper() if len(label) == 1 else label) for label in labels]
    if len(set(keys)) != len(keys) or not all(keys):
        raise TaskError(f"option labels must be distinct and non-empty, got {labels}")
    return {key: str(text).strip() for key, (_, text) in zip(keys, pairs, strict=True)}, relabel


def _choice_gold(answer: Any, options: dict[str, str], relabel: dict[str, str]) -> str:
    """The option key an answer names: a label ("C", "(c)"), a 0-based index, or an option's text."""
    keys = list(options)
    if isinstance(answer, int) and not isinstance(answer, bool):
        if 0 <= answer < len(keys):
            return keys[answer]
        raise TaskError(f"answer index {answer} is out of range for {len(keys)} options")
    if not isinstance(answer, str) or not answer.strip():
        raise TaskError(f"answer must be an option label or text, got {answer!r}")
    text = answer.strip()
    label = text.strip("()[]. ")
    if label in relabel:
        return relabel[label]
    if label.upper() in options and len(label) <= 2:
        return label.upper()
    wanted = _plain(text)
    matches = [key for key, value in options.items() if _plain(value) == wanted]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise TaskError(f"answer {answer!r} matches several options: {matches}")
    raise TaskError(f"answer {answer!r} matches no option label or text (options: {', '.join(keys)})")


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _strip_listed_options(question: str, options: dict[str, str]) -> str:
    """The question without listings of its options appended to it (LatentMAS medqa lists them,
    twice): the prompt renders the options itself.

    A listing is "A. text" for every option, in order, with any whitespace between the words, so
    an option text that runs over lines (some LatentMAS items end the last one in a stray `\n"`)
    is recognised too. Only complete listings at the very end are cut, and never the whole question.
    """
    listing = r"\s+".join(
        r"\s+".join(re.escape(word) for word in f"{key}. {text}".split()) for key, text in options.items()
    )
    match = re.search(rf"(?:\s*{listing})+\s*$", question)
    if not match or not question[: match.start()].strip():
        return question
    return question[: match.start()].rstrip()
