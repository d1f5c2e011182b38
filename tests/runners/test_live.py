"""`--stream`: agents' text under their names and latent progress on one line, on stderr only."""

from __future__ import annotations

import io
import json

from langchain_core.messages import AIMessageChunk

from nodes.chat_models import register_chat_model
from runners.cli import main
from runners.live import LivePrinter
from tests.fakes import ScriptedChatModel


def test_printer_writes_each_agents_text_under_its_name_and_steps_on_one_line() -> None:
    out = io.StringIO()
    printer = LivePrinter(out)
    events = [
        ("custom", {"agent": "planner", "latent_step": 0, "latent_steps": 2, "kv_positions": 90}),
        ("custom", {"agent": "planner", "latent_step": 1, "latent_steps": 2, "kv_positions": 91}),
        ("custom", {"agent": "planner", "latent_step": 2, "latent_steps": 2, "kv_positions": 92}),
        ("updates", {"planner": {}}),
        ("custom", {"agent": "judger", "text": "The answer"}),
        ("custom", {"agent": "judger", "text": " is 7."}),
        ("updates", {"judger": {}}),
        ("messages", (AIMessageChunk(content="Plan"), {"langgraph_node": "critic"})),
        ("messages", (AIMessageChunk(content=": add."), {"langgraph_node": "critic"})),
    ]
    for mode, chunk in events:
        printer.show(mode, chunk)
    printer.close()
    assert out.getvalue() == (
        "\r[planner] latent step 0/2 · 90 cached positions"
        "\r[planner] latent step 1/2 · 91 cached positions"
        "\r[planner] latent step 2/2 · 92 cached positions\n"
        "[judger] The answer is 7.\n"
        "[critic] Plan: add.\n"
    )


def test_run_stream_shows_the_text_on_stderr_and_keeps_stdout_for_the_result(tmp_path, capsys) -> None:
    register_chat_model("fake-live", ScriptedChatModel(lambda m: "So it is \\boxed{7}."))
    args = ["run", "baseline", "--question", "3 + 4?", "--task", "gsm8k", "--model", "fake-live"]
    assert main([*args, "--stream", "--json", "--db", str(tmp_path / "l.db")]) == 0
    captured = capsys.readouterr()
    assert "[baseline] So it is \\boxed{7}.\n" in captured.err
    assert json.loads(captured.out)["answer"] == "7"
