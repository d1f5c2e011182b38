"""The savers' upkeep methods the LangGraph server calls (delete_for_runs, prune, copy_thread) and
`thread_heads`, sync and async, on SQLite and (marker `postgres`) on a throwaway PostgreSQL."""

from __future__ import annotations

import asyncio
import operator
import uuid
from typing import Annotated, Any

import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from storage.checkpoints import checkpointer, compile_with_saver, thread_config


class Counter(TypedDict):
    steps: Annotated[list[str], operator.add]


def builder() -> StateGraph:
    graph = StateGraph(Counter)
    graph.add_node("one", lambda s: {"steps": ["one"]})
    graph.add_node("two", lambda s: {"steps": ["two"]})
    graph.add_edge(START, "one")
    graph.add_edge("one", "two")
    graph.add_edge("two", END)
    return graph


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "savers.db")
    return request.getfixturevalue("postgres_db")


def run(db: str, run_id: str | None = None, **metadata: Any) -> str:
    """One thread through the two-node graph (4 checkpoints); returns its id."""
    thread_id = str(uuid.uuid4())
    config = {**thread_config(thread_id), "metadata": {"run_id": run_id or str(uuid.uuid4()), **metadata}}
    compile_with_saver(builder(), db).invoke({"steps": []}, config)
    return thread_id


def history(db: str, thread_id: str) -> list[Any]:
    return list(compile_with_saver(builder(), db).get_state_history(thread_config(thread_id)))


def writes_of(db: str, thread_id: str) -> int:
    return sum(len(t.pending_writes or []) for t in checkpointer(db).list(thread_config(thread_id)))


@pytest.mark.parametrize("use_async", [False, True])
def test_delete_for_runs_deletes_exactly_those_runs_checkpoints(db: str, use_async: bool) -> None:
    doomed, kept = f"run-{uuid.uuid4()}", f"run-{uuid.uuid4()}"
    first, second, other = run(db, doomed), run(db, doomed), run(db, kept)
    saver = checkpointer(db)
    if use_async:
        asyncio.run(saver.adelete_for_runs([doomed]))
    else:
        saver.delete_for_runs([doomed])
    assert history(db, first) == [] and history(db, second) == []
    assert writes_of(db, first) == 0
    assert len(history(db, other)) == 4


@pytest.mark.parametrize("use_async", [False, True])
def test_prune_keep_latest_keeps_the_state_and_only_the_newest_checkpoint(db: str, use_async: bool) -> None:
    thread_id, bystander = run(db), run(db)
    before = compile_with_saver(builder(), db).get_state(thread_config(thread_id))
    saver = checkpointer(db)
    if use_async:
        asyncio.run(saver.aprune([thread_id]))
    else:
        saver.prune([thread_id])
    after = history(db, thread_id)
    assert len(after) == 1
    assert after[0].values == before.values == {"steps": ["one", "two"]}
    assert after[0].config["configurable"]["checkpoint_id"] == before.config["configurable"]["checkpoint_id"]
    assert len(history(db, bystander)) == 4
    saver.prune([bystander], strategy="delete")
    assert history(db, bystander) == []
    with pytest.raises(ValueError, match="unknown prune strategy"):
        saver.prune([thread_id], strategy="keep_some")


@pytest.mark.parametrize("use_async", [False, True])
def test_copy_thread_copies_the_whole_history(db: str, use_async: bool) -> None:
    source, target = run(db), str(uuid.uuid4())
    saver = checkpointer(db)
    if use_async:
        asyncio.run(saver.acopy_thread(source, target))
    else:
        saver.copy_thread(source, target)
    copied, original = history(db, target), history(db, source)
    assert [s.values for s in copied] == [s.values for s in original]
    assert [s.config["configurable"]["checkpoint_id"] for s in copied] == [
        s.config["configurable"]["checkpoint_id"] for s in original
    ]
    assert {s.config["configurable"]["thread_id"] for s in copied} == {target}
    # The copy continues on its own: a new run on it leaves the source alone.
    compile_with_saver(builder(), db).invoke({"steps": []}, thread_config(target))
    assert len(history(db, target)) == 8 and len(history(db, source)) == 4


def test_thread_heads_lists_every_thread_with_its_newest_metadata(db: str) -> None:
    first = run(db, graph_id="baseline")
    second = run(db, graph_id="debate")
    heads = checkpointer(db).thread_heads()
    assert heads[first]["graph_id"] == "baseline" and heads[second]["graph_id"] == "debate"
    assert heads[first]["step"] == 2  # the newest checkpoint's metadata


def test_studio_checkpointer_is_the_shared_saver_of_masgraph_db(db: str, monkeypatch) -> None:
    from storage.checkpoints import studio_checkpointer

    monkeypatch.setenv("MASGRAPH_DB", db)

    async def enter() -> Any:
        async with studio_checkpointer() as saver:
            return saver

    assert asyncio.run(enter()) is checkpointer(db)


def test_the_server_finds_every_upkeep_method_implemented(tmp_path) -> None:
    """langgraph-api checks these by override; a missing one is a warning at `langgraph dev` start-up."""
    from langgraph.checkpoint.base import BaseCheckpointSaver

    saver_type = type(checkpointer(str(tmp_path / "x.db")))
    for name in (
        "adelete_thread",
        "adelete_for_runs",
        "acopy_thread",
        "aprune",
        "aget_tuple",
        "alist",
        "aput",
    ):
        assert getattr(saver_type, name) is not getattr(BaseCheckpointSaver, name), name


def test_a_graph_runs_with_ainvoke_and_astream_on_the_saver(db: str) -> None:
    graph = compile_with_saver(builder(), db)
    first, second = thread_config(str(uuid.uuid4())), thread_config(str(uuid.uuid4()))

    async def run() -> tuple[dict[str, Any], list[Any], Any]:
        state = await graph.ainvoke({"steps": []}, first)
        chunks = [chunk async for chunk in graph.astream({"steps": []}, second, stream_mode="updates")]
        return state, chunks, await graph.aget_state(second)

    state, chunks, snapshot = asyncio.run(run())
    assert state == snapshot.values == {"steps": ["one", "two"]}
    assert chunks == [{"one": {"steps": ["one"]}}, {"two": {"steps": ["two"]}}]
    assert len(history(db, first["configurable"]["thread_id"])) == 4  # the sync API reads what async wrote
