"""The debate through the CLI: a human moderator pauses the thread; `resume --answer` finishes it."""

import json
import uuid

from nodes.chat_models import register_chat_model
from runners.cli import main
from tests.fakes import ScriptedChatModel


def debater(messages) -> str:
    return "I say the answer is 2, because 1 + 1 = 2."


def test_human_moderator_pauses_then_resume_with_an_answer_finishes_the_debate(tmp_path, capsys):
    model = ScriptedChatModel(debater)
    register_chat_model("fake-debate-cli", model)
    db = str(tmp_path / "debate.db")
    thread = str(uuid.uuid4())
    code = main(
        [
            "run",
            "debate",
            "--topic",
            "What is 1 + 1?",
            "--human",
            "moderator",
            "--model",
            "fake-debate-cli",
            "--thread",
            thread,
            "--db",
            db,
            "--json",
        ]
    )
    assert code == 0
    paused = json.loads(capsys.readouterr().out)
    assert paused["status"] == "interrupted" and f"masgraph resume --thread {thread}" in paused["resume"]
    calls_before = model.call_count  # base answer, affirmative, negative

    verdict = {
        "Whether there is a preference": "Yes",
        "Supported Side": "Affirmative",
        "Reason": "Both sides agree.",
        "debate_answer": "2",
    }
    assert main(["resume", "--thread", thread, "--db", db, "--answer", json.dumps(verdict), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["answer"] == "2"
    assert result["record"]["decided_by"] == "human"
    assert result["record"]["Supported Side"] == "Affirmative"
    assert model.call_count == calls_before  # no model call repeated or added after the human decided

    # The finished thread shows its result again without calling the model.
    assert main(["resume", "--thread", thread, "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"] == "2"
    assert model.call_count == calls_before


def test_resume_of_an_unknown_thread_is_a_clear_error(tmp_path, capsys):
    assert main(["resume", "--thread", "nope", "--db", str(tmp_path / "x.db")]) == 2
    assert "no thread 'nope'" in capsys.readouterr().err


def test_run_refuses_a_thread_id_the_langgraph_server_would_refuse(tmp_path, capsys):
    code = main(["run", "debate", "--topic", "x", "--thread", "d1", "--db", str(tmp_path / "x.db")])
    assert code == 2
    assert "thread id 'd1' is not a UUID" in capsys.readouterr().err
