"""Loading evaluation items: local .json/.jsonl files in the common benchmark shapes, or a
Hugging Face data set by name.

Every record becomes a `TaskItem` whatever its source format (see `item_from_record`). Errors name
the file and the 1-based line, because the person fixing a 1,000-line data file needs both.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from tasks.base import TaskError, TaskItem, stable_id
from tasks.formats import ID_FIELDS, PUBMEDQA_OPTIONS, convert_record, item_from_record
from tasks.graders import TranslationTask
from tasks.registry import get_task

__all__ = ["PUBMEDQA_OPTIONS", "item_from_record", "load_items", "load_parallel_text", "sample_path"]

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
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
            item, id_field = convert_record(record)
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
                has_id = any(field.lower() in ID_FIELDS for field in record)
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
    # With a limit the split is streamed and only its first rows are read, not downloaded whole.
    try:
        data = datasets.load_dataset(repo, config or None, split=split or "test", streaming=limit is not None)
        rows = data if limit is None else itertools.islice(data, limit)
        for position, record in enumerate(rows, start=1):  # streaming reads the network here
            yield f"row {position}", dict(record)
    except Exception as exc:  # network, auth, unknown name, bad split: the library raises many kinds
        raise TaskError(
            f"could not load Hugging Face data set {name!r} (offline, or unknown name/config/split?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
