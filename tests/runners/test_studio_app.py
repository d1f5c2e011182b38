"""Thread registration with the LangGraph server: every UUID thread of the database, once, under its
graph; threads whose checkpoints are deleted leave the server (a recording fake client)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from runners.studio_app import register_threads


class FakeThreads:
    def __init__(self) -> None:
        self.created: list[tuple[str, str, dict[str, Any]]] = []
        self.deleted: list[str] = []

    async def create(self, *, thread_id: str, if_exists: str, metadata: dict[str, Any]) -> None:
        self.created.append((thread_id, if_exists, metadata))

    async def delete(self, thread_id: str) -> None:
        self.deleted.append(thread_id)


class FakeClient:
    def __init__(self) -> None:
        self.threads = FakeThreads()


class FakeSaver:
    def __init__(self, heads: dict[str, dict[str, Any]]) -> None:
        self.heads = heads

    def thread_heads(self) -> dict[str, dict[str, Any]]:
        return dict(self.heads)


def test_threads_are_registered_once_under_their_graph_and_removed_when_deleted() -> None:
    cli, studio, legacy = str(uuid.uuid4()), str(uuid.uuid4()), "debate-1f2e"
    saver = FakeSaver(
        {
            cli: {
                "graph_id": "debate",
                "masgraph_options": '{"human_role": "moderator"}',
                "masgraph_task": "custom",
            },
            studio: {"graph_id": "baseline", "model": "local", "run_id": "r"},
            legacy: {"graph_id": "debate"},
        }
    )
    client, known = FakeClient(), set()
    assert asyncio.run(register_threads(client, saver, known)) == ([cli, studio], [])
    assert client.threads.created == [
        (cli, "do_nothing", {"graph_id": "debate", "masgraph_context": {"human_role": "moderator"},
                             "masgraph_task": "custom"}),
        (studio, "do_nothing", {"graph_id": "baseline"}),
    ]  # fmt: skip
    assert asyncio.run(register_threads(client, saver, known)) == ([], [])  # nothing new: no calls
    del saver.heads[cli]
    assert asyncio.run(register_threads(client, saver, known)) == ([], [cli])
    assert client.threads.deleted == [cli] and known == {studio}
