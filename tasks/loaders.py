"""Loading evaluation items: local .json/.jsonl files in the common benchmark shapes, or a
Hugging Face data set by name.

Every record becomes a `TaskItem` whatever its source format (see `item_from_record`). Errors name
the file and the 1-based line, because the person fixing a 1,000-line data file needs both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tasks.base import TaskError, TaskItem, stable_id
from tasks.graders import TranslationTask
from tasks.registry import get_task

__all__ = ["PUBMEDQA_OPTIONS", "item_from_record", "load_items", "load_parallel_text", "sample_path"]

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}
_ID_FIELDS = ("id", "idx", "task_id", "pubid")
_GROUP_FIELDS = ("group", "meta_info", "subject", "subject_name")
# Names of Hub data sets whose defaults cannot be guessed: (repository, config, split).
_HUB_ALIASES = {
    "gsm8k": ("openai/gsm8k", "main", "test"),
    "openai/gsm8k": ("openai/gsm8k", "main", "test"),
    "arc_easy": ("allenai/ai2_arc", "ARC-Easy", "test"),
    "arc_challenge": ("allenai/ai2_arc", "ARC-Challenge", "test"),
    "winogrande": ("allenai/winogrande", "winogrande_xl", "validation"),
}


def load_parallel_text(
    source_path: str, reference_path: str | None = None, *, limit: int | None = None
) -> list[TaskItem]:
    """Line-aligned plain text (CommonMT): one source sentence a line, references line by line.

    Each item's id is "<file stem>:<line>", stable across runs. A blank source line or a
    reference file with another number of lines is an error naming the file and line.
    """
    source_file = Path(source_path).expanduser()
    if not source_file.is_file():
        raise TaskError(f"data file not found: {source_path}")
    sources = _read_text(source_file, source_path).splitlines()
    while sources and not sources[-1].strip():
        sources.pop()
    references: list[str | None] = [None] * len(sources)
    if reference_path:
        reference_file = Path(reference_path).expanduser()
        if not reference_file.is_file():
            raise TaskError(f"reference file not found: {reference_path}")
        lines = _read_text(reference_file, reference_path).splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if len(lines) != len(sources):
            raise TaskError(
                f"{reference_path} has {len(lines)} lines but {source_path} has {len(sources)}: "
                "the files must be line-aligned"
            )
        references = [line.strip() for line in lines]
    items = []
    for number, (text, reference) in enumerate(zip(sources, references, strict=True), start=1):
        if not text.strip():
            raise TaskError(f"{source_path} line {number}: empty source sentence")
        items.append(
            TaskItem(
                id=f"{source_file.stem}:{number}",
                question=text.strip(),
                gold=reference,
                meta={"line": number},
            )
        )
    return items if limit is None else items[:limit]


def load_items(
    path: str, task: str | None = None, limit: int | None = None, *, reference: str | None = None
) -> list[TaskItem]:
    """The items of a data file (.json or .jsonl) or Hugging Face data set, in file order.

    `task`, when given, checks every item against that task (e.g. a multiple-choice task needs a
    gold letter), so a bad data set fails at load time rather than as wrong answers. Items that
    carry their own "task" field are always checked against it. `limit` keeps the first items.
    A Hub name is "repo[:config[:split]]" (split defaults to "test") and needs the optional
    `datasets` package.
    """
    if limit is not None and limit < 0:
        raise TaskError(f"limit must be >= 0, got {limit}")
    if reference is not None or (
        Path(str(path)).suffix.lower() not in (".json", ".jsonl")
        and task is not None
        and isinstance(get_task(task), TranslationTask)
    ):
        return load_parallel_text(str(path), reference, limit=limit)
    checker = get_task(task) if task else None
    source = str(path)
    file = Path(source).expanduser()
    if file.is_dir():
        raise TaskError(f"{source} is a directory, not a data file")
    if file.is_file():
        suffix = file.suffix.lower()
        if suffix == ".jsonl":
            records: Iterator[tuple[str, Any]] = _jsonl_records(file, source)
        elif suffix == ".json":
            records = _json_records(file, source)
        else:
            raise TaskError(f"{source}: unsupported file type {suffix or '(none)'!r}; use .json or .jsonl")
    elif _looks_like_path(source):
        raise TaskError(f"data file not found: {source}")
    else:
        records = _hub_records(source, limit)

    located: list[tuple[str, TaskItem, str | None]] = []
    for where, record in records:
        try:
            item, id_field = _convert(record)
            if "task" in item.meta:
                get_task(item.meta["task"]).check_item(item)
            if checker is not None:
                checker.check_item(item)
        except TaskError as exc:
            raise TaskError(f"{source} {where}: {exc}") from None
        located.append((where, item, id_field))
    if _duplicate(located) and all(id_field == "idx" for _, _, id_field in located):
        # "idx" is a position, not an identifier: LatentMAS's medqa.json restarts it at 0 every 100
        # items. Such a file gets content-hash ids instead (the idx stays in meta).
        located = [(where, _rehash(item), None) for where, item, _ in located]
    clash = _duplicate(located)
    if clash:
        (first, item), (second, _) = clash
        raise TaskError(f"{source}: duplicate id {item.id!r} at {first} and {second}")
    items = [item for _, item, _ in located]
    # The whole file is read and checked even with a limit: a broken line 900 should not wait
    # for the first full run to show up.
    return items if limit is None else items[:limit]


def _duplicate(
    located: list[tuple[str, TaskItem, str | None]],
) -> tuple[tuple[str, TaskItem], tuple[str, TaskItem]] | None:
    """The first two places holding the same id, if any."""
    seen: dict[str, tuple[str, TaskItem]] = {}
    for where, item, _ in located:
        if item.id in seen:
            return seen[item.id], (where, item)
        seen[item.id] = (where, item)
    return None


def _rehash(item: TaskItem) -> TaskItem:
    return replace(item, id=stable_id(item.question, item.options), meta={"idx": item.id, **item.meta})


def sample_path(name: str) -> str:
    """The path of a sample data set shipped with the package ("demo", "medqa_sample", "ciar_sample")."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise TaskError(f"invalid sample name {name!r}")
    candidates = [name] if Path(name).suffix else [f"{name}.jsonl", f"{name}.json"]
    for candidate in candidates:
        found = SAMPLES_DIR / candidate
        if found.is_file():
            return str(found)
    known = sorted(p.stem for p in SAMPLES_DIR.glob("*.json*"))
    raise TaskError(f"no sample named {name!r}; samples: {', '.join(known)}")


# -- sources ------------------------------------------------------------------------------------
def _looks_like_path(source: str) -> bool:
    # Hub names are "name" or "owner/name[:config[:split]]"; anything file-like is a missing file.
    return (
        source.startswith(("/", ".", "~"))
        or source.lower().endswith((".json", ".jsonl", ".gz", ".csv"))
        or source.count("/") > 1
        or "\\" in source
    )


def _read_text(file: Path, source: str) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TaskError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TaskError(f"{source}: cannot read: {exc.strerror or exc}") from None


def _jsonl_records(file: Path, source: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(_read_text(file, source).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{source} line {number}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        yield f"line {number}", record


def _json_records(file: Path, source: str) -> Iterator[tuple[str, Any]]:
    text = _read_text(file, source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskError(f"{source} line {exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    if isinstance(data, list):
        for position, (line, record) in enumerate(zip(_element_lines(text), data, strict=True), start=1):
            yield f"item {position} (line {line})", record
        return
    if isinstance(data, dict):
        for key in ("data", "items"):
            if isinstance(data.get(key), list):
                for position, record in enumerate(data[key], start=1):
                    yield f"item {position}", record
                return
        if data and all(isinstance(value, dict) for value in data.values()):
            # {"<id>": {...}, ...}, as in the original PubMedQA files: the key is the id.
            for key, record in data.items():
                has_id = any(field.lower() in _ID_FIELDS for field in record)
                yield f"item {key!r}", record if has_id else {"id": key, **record}
            return
    raise TaskError(f"{source}: expected a JSON list of objects, or an object with a 'data' or 'items' list")


def _element_lines(text: str) -> list[int]:
    """The line on which each element of a top-level JSON array starts (the text is valid JSON)."""
    decoder = json.JSONDecoder()
    whitespace = re.compile(r"[ \t\r\n]*")
    lines: list[int] = []
    line, counted_to = 1, 0
    index = whitespace.match(text, 0).end() + 1  # past "["
    while True:
        index = whitespace.match(text, index).end()
        if text[index] == "]":
            return lines
        line += text.count("\n", counted_to, index)
        counted_to = index
        lines.append(line)
        _, index = decoder.raw_decode(text, index)
        index = whitespace.match(text, index).end()
        if text[index] == ",":
            index += 1


def _hub_records(name: str, limit: int | None) -> Iterator[tuple[str, Any]]:
    try:
        import datasets  # optional: only this path needs it
    except ImportError:
        raise TaskError(
            f"{name!r} is not a data file, and loading it as a Hugging Face data set needs the optional "
            "'datasets' package, which is not installed (pip install datasets)"
        ) from None
    repo, config, split = _HUB_ALIASES.get(name.lower(), (None, None, None))
    if repo is None:
        repo, _, rest = name.partition(":")
        config, _, split = rest.partition(":")
    try:
        data = datasets.load_dataset(repo, config or None, split=split or "test")
        if limit is not None:
            data = data.select(range(min(limit, len(data))))
    except Exception as exc:  # network, auth, unknown name, bad split: the library raises many kinds
        raise TaskError(
            f"could not load Hugging Face data set {name!r} (offline, or unknown name/config/split?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for position, record in enumerate(data, start=1):
        yield f"row {position}", dict(record)


# -- record shapes ------------------------------------------------------------------------------
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
    return _convert(record)[0]


def _convert(record: Any) -> tuple[TaskItem, str | None]:
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
    name, value = fields.first(*_ID_FIELDS)
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
    raw_question = fields.get("question") if fields.has("question") else None
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
    """The question without option lines appended to it (LatentMAS medqa lists them, twice): the
    prompt renders the options itself."""
    rendered = {_plain(f"{key}. {text}") for key, text in options.items()}
    lines = question.splitlines()
    end = len(lines)
    while end > 0 and (not lines[end - 1].strip() or _plain(lines[end - 1]) in rendered):
        end -= 1
    stripped = "\n".join(lines[:end]).strip()
    # Keep the question as it is unless what was cut is really a listing of all options.
    cut = [_plain(line) for line in lines[end:] if line.strip()]
    return stripped if stripped and len(cut) >= len(options) and set(cut) == rendered else question
