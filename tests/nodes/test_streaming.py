"""Streaming on the embedded model: the local chat model's tokens reach `stream_mode="messages"` while
the model is still decoding, and latent agents report their steps on the custom stream."""

from __future__ import annotations

import threading
import uuid

import pytest

from graphs.baseline import build_graph as build_baseline
from graphs.latent_mas import build_graph as build_latent_mas
from nodes.chat_models import ChatModelConfig, chat_model
from nodes.latentmas.context import MASContext
from storage.checkpoints import compile_with_saver, thread_config

pytestmark = pytest.mark.model
QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"


@pytest.fixture
def decoding_finished(backend, monkeypatch) -> threading.Event:
    """Set when the backend's decode loop returns (the model call is over)."""
    finished = threading.Event()
    generate = backend.generate

    def watched(*args, **kwargs):
        finished.clear()
        try:
            return generate(*args, **kwargs)
        finally:
            finished.set()

    monkeypatch.setattr(backend, "generate", watched)
    return finished


def test_local_chat_model_stream_joins_into_the_invoke_reply(backend) -> None:
    model = chat_model(ChatModelConfig(max_tokens=24))
    chunks = list(model.stream(QUESTION))
    whole = model.invoke(QUESTION)
    assert len(chunks) > 2
    assert "".join(c.text for c in chunks) == whole.text and whole.text
    assert chunks[-1].usage_metadata == whole.usage_metadata
    assert whole.usage_metadata["output_tokens"] == 24 or whole.response_metadata["finish_reason"] == "stop"


def test_messages_stream_delivers_tokens_before_the_model_call_ends(
    backend, decoding_finished, tmp_path
) -> None:
    graph = compile_with_saver(build_baseline(), str(tmp_path / "s.db"))
    before_end, pieces = 0, []
    config = thread_config(str(uuid.uuid4()))
    context = MASContext(task="gsm8k", max_new_tokens=24)
    for chunk, metadata in graph.stream(
        {"question": QUESTION}, config, context=context, stream_mode="messages"
    ):
        assert metadata["langgraph_node"] == "baseline"
        pieces.append(chunk.text)
        before_end += not decoding_finished.is_set()
    assert before_end > 1, f"only {before_end} of {len(pieces)} chunks arrived while the model was decoding"
    assert "".join(pieces) == graph.get_state(config).values["text"]


def test_latent_agents_report_each_step_and_the_judger_its_text(backend, tmp_path) -> None:
    graph = compile_with_saver(build_latent_mas(), str(tmp_path / "s.db"))
    config = thread_config(str(uuid.uuid4()))
    context = MASContext(task="gsm8k", latent_steps=3, max_new_tokens=12)
    events = [e for e in graph.stream({"question": QUESTION}, config, context=context, stream_mode="custom")]
    steps = [e for e in events if "latent_step" in e]
    assert [(e["agent"], e["latent_step"], e["latent_steps"]) for e in steps] == [
        (agent, step, 3) for agent in ("planner", "critic", "refiner") for step in range(4)
    ]
    positions = [e["kv_positions"] for e in steps]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    trace = graph.get_state(config).values["trace"]
    assert [e["kv_positions"] for e in steps if e["latent_step"] == 3] == [
        t["kv_positions"] for t in trace[:3]
    ]
    text = "".join(e["text"] for e in events if "text" in e)
    assert text == graph.get_state(config).values["text"] and text
