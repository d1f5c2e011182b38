"""Every graph compiled by `compile_with_saver` runs with `ainvoke` and `astream` on the SQLite saver,
giving what `invoke` gives and leaving the same checkpoints (text agents scripted; latent_mas on
the embedded model)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from nodes.chat_models import register_chat_model
from runners.methods import METHODS, get_method
from storage.checkpoints import compile_with_saver, thread_config
from tasks import TaskItem, get_task
from tests.fakes import ScriptedChatModel
from tests.graphs.test_medagents import Script

VERDICT = {
    "Whether there is a preference": "Yes",
    "Supported Side": "Affirmative",
    "Reason": "r",
    "debate_answer": "2",
}


def debate_reply(messages: list[BaseMessage]) -> str:
    return json.dumps(VERDICT) if "JSON" in messages[-1].text else "The answer is 2."


CASES: dict[str, tuple[str, TaskItem, Any]] = {
    "baseline": ("gsm8k", TaskItem(id="q", question="1 + 1?", gold="2"), lambda m: "So \\boxed{2}."),
    "text_mas": ("gsm8k", TaskItem(id="q", question="1 + 1?", gold="2"), lambda m: "So \\boxed{2}."),
    "latent_mas": ("gsm8k", TaskItem(id="q", question="1 + 1?", gold="2"), None),
    "medagents": (
        "medqa",
        TaskItem(id="q", question="Chest pain. Next step?", gold="A", options={"A": "Aspirin", "B": "Rest"}),
        Script(),
    ),
    "debate": ("custom", TaskItem(id="q", question="What is 1 + 1?", gold="2"), debate_reply),
}


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """A final state without what differs between two runs of one graph (timings, KV handles, clocks)."""
    drop = {"kv", "start_time", "end_time"}
    out = {k: v for k, v in state.items() if k not in drop}
    out["trace"] = [{k: v for k, v in e.items() if k != "seconds"} for e in state.get("trace") or []]
    out.pop("record", None)
    return json.loads(json.dumps(out, default=str))


@pytest.mark.parametrize(
    "method_name",
    [pytest.param(m, marks=pytest.mark.model) if m == "latent_mas" else m for m in METHODS],
)
def test_ainvoke_and_astream_match_invoke_and_checkpoint(method_name: str, tmp_path) -> None:
    task_name, item, reply = CASES[method_name]
    options: dict[str, Any] = {"max_new_tokens": 8} if method_name == "latent_mas" else {}
    if reply is not None:
        options["model"] = f"fake-async-{method_name}"
        register_chat_model(options["model"], ScriptedChatModel(reply))
    if method_name == "latent_mas":
        options["latent_steps"] = 2
    db = str(tmp_path / "async.db")
    method, task = get_method(method_name), get_task(task_name)
    context = method.context(options, task=task_name, db=db)
    payload = method.make_input(item, task)
    graph = compile_with_saver(method.build_graph(), db)
    sync_id, sync_stream_id, invoke_id, stream_id = (str(uuid.uuid4()) for _ in range(4))

    expected = graph.invoke(payload, thread_config(sync_id), context=context)
    sync_updates = list(graph.stream(payload, thread_config(sync_stream_id), context=context))
    checkpoints = len(list(graph.get_state_history(thread_config(sync_id))))
    final = graph.get_state(thread_config(sync_id)).values

    async def run_async() -> tuple[dict[str, Any], list[dict[str, Any]], Any, list[Any]]:
        state = await graph.ainvoke(payload, thread_config(invoke_id), context=context)
        updates = [
            chunk
            async for chunk in graph.astream(
                payload, thread_config(stream_id), context=context, stream_mode="updates"
            )
        ]
        snapshot = await graph.aget_state(thread_config(stream_id))
        history = [s async for s in graph.aget_state_history(thread_config(invoke_id))]
        return state, updates, snapshot, history

    state, updates, snapshot, history = asyncio.run(run_async())
    assert comparable(state) == comparable(expected)
    assert comparable(snapshot.values) == comparable(final) and not snapshot.next
    # The stream shows every node's update, as the sync stream does (parallel branches in any order).
    streamed = sorted(node for chunk in updates for node in chunk)
    assert streamed == sorted(node for chunk in sync_updates for node in chunk) and streamed
    # ainvoke's thread has as many checkpoints as the sync run's, readable by the sync API too.
    assert len(history) == checkpoints == len(list(graph.get_state_history(thread_config(invoke_id))))
    if method_name != "latent_mas":
        assert method.outcome(item, state, task).correct is True
