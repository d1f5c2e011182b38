"""The masgraph CLI: bad input gets one clear line and exit code 2; runs are listed and exported."""

import json

import pytest

from runners.cli import main
from storage.run_store import RunStore
from tests.db_kinds import DB_KINDS, checkpoints_per_thread, database


def test_unknown_task_is_a_clear_error_and_stores_nothing(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "q", "answer": "1"}\n')
    db = str(tmp_path / "x.db")
    code = main(["eval", "baseline", "--task", "no_such_task", "--data", str(data), "--db", db])
    assert code == 2
    assert "no_such_task" in capsys.readouterr().err
    assert RunStore(db).list_runs() == []


def test_malformed_data_line_names_file_and_line(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"question": "q", "answer": "1"}\n{"question": "oops",\n')
    code = main(["eval", "baseline", "--task", "gsm8k", "--data", str(data), "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err
    assert code == 2 and "bad.jsonl" in err and "line 2" in err


@pytest.mark.parametrize("kind", DB_KINDS)
def test_runs_list_show_export_and_delete_a_fake_run(tmp_path, capsys, request, kind):
    from nodes.chat_models import register_chat_model
    from tests.fakes import ScriptedChatModel

    register_chat_model("fake-cli", ScriptedChatModel(lambda messages: "\\boxed{4}"))
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"id": "a", "question": "2+2?", "answer": "4"}\n{"id": "b", "question": "1+1?", "answer": "2"}\n'
    )
    db = database(kind, tmp_path, request, "runs.db")
    assert (
        main(
            [
                "eval",
                "baseline",
                "--task",
                "gsm8k",
                "--data",
                str(data),
                "--db",
                db,
                "--model",
                "fake-cli",
                "--run-id",
                "r1",
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary | {"seconds": 0, "item_seconds": 0} == summary | {
        "run_id": "r1",
        "method": "baseline",
        "task": "gsm8k",
        "n": 2,
        "correct": 1,
        "accuracy": 0.5,
        "seconds": 0,
        "item_seconds": 0,
    }
    assert main(["runs", "--db", db, "list", "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == ["r1"]
    out = tmp_path / "r1.jsonl"
    assert main(["runs", "--db", db, "export", "r1", "--format", "jsonl", "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["item_id"], r["prediction"], r["correct"]) for r in rows] == [
        ("a", "4", True),
        ("b", "4", False),
    ]
    assert rows[0]["steps"][0]["agent"] == "baseline"
    assert main(["runs", "--db", db, "show", "r1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["n"], shown["correct"], shown["total_items"]) == ("completed", 2, 1, 2)
    assert main(["runs", "--db", db, "show", "no-such-run"]) == 2
    threads = RunStore(db).item_threads("r1")
    assert len(threads) == 2 and set(threads) <= set(checkpoints_per_thread(db))
    assert main(["runs", "--db", db, "delete", "r1"]) == 0
    assert main(["runs", "--db", db, "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert not set(threads) & set(checkpoints_per_thread(db))  # its checkpoints went with it
    assert main(["runs", "--db", db, "show", "r1"]) == 2


@pytest.mark.model
def test_run_baseline_json_on_the_embedded_model(capsys, tmp_path):
    code = main(
        [
            "run",
            "baseline",
            "--question",
            "What is 2 + 2?",
            "--task",
            "gsm8k",
            "--max-new-tokens",
            "24",
            "--db",
            str(tmp_path / "r.db"),
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert {"answer", "text", "prompt_tokens", "generated_tokens", "seconds"} <= set(result)
    assert result["generated_tokens"] > 0 and result["prompt_tokens"] > 0 and result["text"]


def test_empty_question_is_refused(capsys, tmp_path):
    assert main(["run", "baseline", "--question", "  ", "--db", str(tmp_path / "r.db")]) == 2
    assert "question" in capsys.readouterr().err


@pytest.mark.model
def test_a_question_longer_than_the_context_fails_alone_and_the_run_keeps_the_rest(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    huge = "word " * 9000
    data.write_text(
        json.dumps({"id": "ok", "question": "What is 1 + 1?", "answer": "2"})
        + "\n"
        + json.dumps({"id": "huge", "question": huge, "answer": "2"})
        + "\n"
    )
    db = str(tmp_path / "long.db")
    assert (
        main(
            [
                "eval",
                "baseline",
                "--task",
                "gsm8k",
                "--data",
                str(data),
                "--db",
                db,
                "--run-id",
                "long",
                "--max-new-tokens",
                "8",
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert (summary["n"], summary["failed"]) == (2, 1)
    items = {item.item_id: item for item in RunStore(db).items("long")}
    assert items["ok"].status == "done"
    assert items["huge"].status == "failed" and "context length" in items["huge"].error


def test_runs_list_stays_light(tmp_path):
    """Commands that only read the run store never import torch or transformers."""
    import subprocess
    import sys

    db = str(tmp_path / "light.db")
    code = (
        "import sys\nfrom runners.cli import main\n"
        f"assert main(['runs', '--db', {db!r}, 'list', '--json']) == 0\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
