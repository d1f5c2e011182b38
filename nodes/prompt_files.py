"""The one reader of prompt-override files: JSON objects mapping template names to templates.

A file may hold the templates of one method at its top level, or of several methods in sections
named after them (`{"medagents": {...}, "debate": {...}}`); `read_prompt_file(path, section)`
returns the section when there is one, else the top level. Agents ask for their templates on every
call, so each file version (mtime and size) is read once.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path


def read_prompt_file(path: str | None, section: str | None = None) -> dict[str, str]:
    """Template overrides from `path` (empty without a path); errors name the file."""
    if not path:
        return {}
    file = Path(path).expanduser()
    try:
        stat = file.stat()
    except OSError as exc:
        raise ValueError(f"prompts file {file}: {exc.strerror or exc}") from exc
    data = _read(str(file), stat.st_mtime_ns, stat.st_size)
    if section is not None and isinstance(data.get(section), dict):
        data = data[section]
    templates = {key: value for key, value in data.items() if not isinstance(value, dict)}
    bad = [key for key, value in templates.items() if not isinstance(value, str)]
    if bad:
        raise ValueError(f"prompts file {file}: template {bad[0]!r} must be a string")
    return templates


@lru_cache(maxsize=32)
def _read(path: str, _mtime_ns: int, _size: int) -> dict[str, object]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"prompts file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"prompts file {path}: expected a JSON object of template names to templates")
    return data
