"""One thread space: threads started from Python or by the LangGraph server (Studio) resume from the
CLI with the graph and options their checkpoints record; thread ids are UUIDs everywhere."""

from __future__ import annotations

import json
import uuid

import pytest

from graphs.debate import build_graph
from nodes.chat_models import register_chat_model
from nodes.debate.context import DebateContext
from nodes.debate.state import debate_input
from runners.cli import main
from runners.thread_space import ThreadIdError, check_thread_id, server_metadata, thread_origin
from storage.checkpoints import checkpointer, compile_with_saver, thread_config
from tests.fakes import ScriptedChatModel

VERDICT = {
    "Whether there is a preference": "Yes",
    "Supported Side": "Negative",
    "Reason": "The negative side is right.",
    "debate_answer": "3",
}


@pytest.fixture
def debater() -> ScriptedChatModel:
    model = ScriptedChatModel(lambda messages: "I say 2.")
    register_chat_model("fake-thread-space", model)
    return model


def pause_a_debate(db: str, config: dict, *, name: str | None) -> None:
    ctx = DebateContext(model="fake-thread-space", human_role="moderator", max_rounds=2)
    graph = compile_with_saver(build_graph(), db, **({"name": name} if name else {}))
    graph.invoke(debate_input("What is 1 + 2?"), config, context=ctx)
    assert graph.get_state(config).next == ("moderator",)


def resume(db: str, thread_id: str, capsys) -> dict:
    code = main(["resume", "--thread", thread_id, "--db", db, "--answer", json.dumps(VERDICT), "--json"])
    assert code == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_a_python_thread_resumes_from_the_cli_with_its_graph_and_context(tmp_path, capsys, debater):
    db, thread_id = str(tmp_path / "t.db"), str(uuid.uuid4())
    ctx = DebateContext(model="fake-thread-space", human_role="moderator", max_rounds=2)
    pause_a_debate(db, thread_config(thread_id, context=ctx), name="debate")
    calls = debater.call_count
    result = resume(db, thread_id, capsys)
    assert result["status"] == "done" and result["answer"] == "3"
    assert result["record"]["decided_by"] == "human" and debater.call_count == calls


def test_a_server_thread_resumes_from_the_cli(tmp_path, capsys, debater):
    """What the LangGraph server writes: graph_id and the context's plain fields in the metadata."""
    db, thread_id = str(tmp_path / "t.db"), str(uuid.uuid4())
    server = {"graph_id": "debate", "assistant_id": str(uuid.uuid4()), "run_id": str(uuid.uuid4())}
    server.update(model="fake-thread-space", human_role="moderator", max_rounds=2)
    pause_a_debate(db, {**thread_config(thread_id), "metadata": server}, name=None)
    origin = thread_origin(db, thread_id)
    assert origin is not None and origin.method == "debate" and origin.item is None
    assert origin.options == {"model": "fake-thread-space", "human_role": "moderator", "max_rounds": 2}
    result = resume(db, thread_id, capsys)
    assert result["answer"] == "3" and result["record"]["decided_by"] == "human"
    # The CLI's checkpoints now record the thread as a masgraph thread, with the question it was asked.
    head = checkpointer(db).thread_heads()[thread_id]
    assert server_metadata(head)["masgraph_context"]["human_role"] == "moderator"
    assert json.loads(head["masgraph_item"])["question"] == "What is 1 + 2?"


def test_a_thread_without_a_known_graph_is_a_clear_error(tmp_path, capsys, debater):
    db, thread_id = str(tmp_path / "t.db"), str(uuid.uuid4())
    pause_a_debate(db, thread_config(thread_id), name=None)  # no graph name: nothing says what it runs
    assert main(["resume", "--thread", thread_id, "--db", db]) == 2
    assert f"no thread {thread_id!r}" in capsys.readouterr().err


def test_the_cli_records_its_threads_for_the_server(tmp_path, capsys, debater):
    db = str(tmp_path / "t.db")
    args = [
        "run",
        "debate",
        "--topic",
        "What is 1 + 2?",
        "--human",
        "moderator",
        "--model",
        "fake-thread-space",
    ]
    assert main([*args, "--db", db, "--json"]) == 0
    thread_id = json.loads(capsys.readouterr().out)["thread_id"]
    assert str(uuid.UUID(thread_id)) == thread_id
    metadata = server_metadata(checkpointer(db).thread_heads()[thread_id])
    assert metadata["graph_id"] == "debate" and metadata["masgraph_task"] == "custom"
    assert metadata["masgraph_context"] == {"human_role": "moderator", "model": "fake-thread-space"}


def test_thread_ids_are_uuids():
    value = str(uuid.uuid4())
    assert check_thread_id(value.upper()) == value
    with pytest.raises(ThreadIdError, match="not a UUID"):
        check_thread_id("debate-1f2e")
