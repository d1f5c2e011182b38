"""Imports point down only: runners -> graphs -> nodes -> latent_backend / tasks / storage.

Every `import` statement counts, including the ones inside functions: a lazy import is still a
dependency. The rules are the architecture; a failure names the module, the line and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("runners", "graphs", "nodes", "latent_backend", "storage", "tasks")

# What each layer may import from the project (prefixes of module names).
ALLOWED: dict[str, tuple[str, ...]] = {
    "runners": PACKAGES,
    "graphs": ("nodes",),
    "nodes": ("nodes", "latent_backend", "tasks", "storage.paths"),
    "latent_backend": ("latent_backend", "storage.paths"),
    "storage": ("storage",),
    "tasks": ("tasks",),
}


def project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a project module in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] in PACKAGES]
    return found


def violations(package: str) -> list[str]:
    allowed = ALLOWED[package]
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in project_imports(path):
            if not any(module == prefix or module.startswith(prefix + ".") for prefix in allowed):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_down_only(package: str) -> None:
    assert violations(package) == []


def test_the_rules_see_a_forbidden_import(tmp_path, monkeypatch) -> None:
    # The checker itself must catch an upward import, also inside a function.
    module = tmp_path / "nodes" / "sneaky.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from runners.cli import main\n    return main\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert violations("nodes") == ["nodes/sneaky.py:2 imports runners.cli"]
