"""Fixtures for tests that run code in the sandbox."""

from __future__ import annotations

import pytest

from tasks.sandbox import strict_unavailable


@pytest.fixture
def strict_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default, namespaced sandbox, or a skip saying why it cannot run here (`make install`
    installs bubblewrap, which it needs)."""
    monkeypatch.delenv("MASGRAPH_SANDBOX", raising=False)
    if reason := strict_unavailable():
        pytest.skip(f"the namespaced sandbox is unavailable here: {reason}")
