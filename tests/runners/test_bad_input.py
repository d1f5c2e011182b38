"""Every bad input of the CLI is one line naming what is wrong, exit code 2, and nothing stored
(the bad-input table of the README's "bad input" paragraph, case by case)."""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest

from runners.cli import main
from storage.run_store import RunStore


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("masgraph: error: "), err
    return lines[0]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "question": "2+2?", "answer": "4"}\n')
    return str(path)


def cli(args: list[str]) -> int:
    """main(), with argparse's own refusals (SystemExit) as exit codes too."""
    try:
        return main(args)
    except SystemExit as exc:
        return int(exc.code or 0)


def stored_runs(db: str) -> list[str]:
    return [run.id for run in RunStore(db).list_runs()]


def test_empty_data_file_is_refused_and_no_run_is_stored(tmp_path, capsys):
    empty, db = tmp_path / "empty.jsonl", str(tmp_path / "x.db")
    empty.write_text("")
    assert main(["eval", "baseline", "--task", "gsm8k", "--data", str(empty), "--db", db]) == 2
    assert one_error_line(capsys) == f"masgraph: error: {empty}: no items to evaluate"
    assert stored_runs(db) == []


@pytest.mark.parametrize(
    ("method", "flags", "message"),
    [
        ("debate", ["--max-rounds", "-1"], "--max-rounds: option 'max_rounds' must be >= 1, got -1"),
        ("debate", ["--max-rounds", "0"], "--max-rounds: option 'max_rounds' must be >= 1, got 0"),
        (
            "baseline",
            ["--max-new-tokens", "-1"],
            "--max-new-tokens: option 'max_new_tokens' must be >= 1, got -1",
        ),
        ("baseline", ["--temperature", "-2"], "--temperature: option 'temperature' must be >= 0.0, got -2.0"),
        ("baseline", ["--top-p", "7"], "--top-p: option 'top_p' must be <= 1.0, got 7.0"),
        ("medagents", ["--top-p", "7"], "--top-p: option 'top_p' must be <= 1.0, got 7.0"),
        (
            "latent_mas",
            ["--latent-steps", "5000"],
            "--latent-steps: option 'latent_steps' must be <= 4096, got 5000",
        ),
        ("baseline", ["--temprature", "0.5"], "unknown option --temprature; did you mean --temperature?"),
        ("debate", ["--max-round", "2"], "unknown option --max-round; did you mean --max-rounds?"),
        ("baseline", ["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
        ("baseline", ["--limit", "0"], "argument --limit: must be >= 1, got 0"),
        ("baseline", ["--run-id", "a b"], "argument --run-id: must be a non-empty id without spaces"),
    ],
)
def test_bad_options_are_one_line_before_anything_is_stored(tmp_path, capsys, data, method, flags, message):
    db = str(tmp_path / "x.db")
    assert cli(["eval", method, "--task", "gsm8k", "--data", data, "--db", db, *flags]) == 2
    assert message in one_error_line(capsys)
    assert stored_runs(db) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: (tmp / "adir.db").mkdir() or tmp / "adir.db", "database {db} is a directory"),
        (lambda tmp: (tmp / "f").write_text("x") and tmp / "f" / "x.db", "cannot create database {db}"),
        (lambda tmp: (tmp / "t.db").write_text("text, not SQLite") and tmp / "t.db", "{db} is not a SQLite"),
    ],
    ids=["path-is-a-directory", "parent-is-a-file", "not-sqlite"],
)
def test_bad_db_paths(tmp_path, capsys, data, make, message):
    db = str(make(tmp_path))
    assert main(["eval", "baseline", "--task", "gsm8k", "--data", data, "--db", db]) == 2
    assert message.format(db=db) in one_error_line(capsys)
    assert main(["runs", "--db", db, "list"]) == 2
    assert message.format(db=db) in one_error_line(capsys)


def test_bad_db_urls_name_the_masked_url(capsys, data, monkeypatch):
    assert main(["eval", "baseline", "--task", "gsm8k", "--data", data, "--db", "mysql://u:pw@h/db"]) == 2
    assert one_error_line(capsys) == (
        "masgraph: error: unsupported database URL mysql://u:***@h/db: "
        "give a SQLite file path or a postgresql:// URL"
    )
    monkeypatch.setitem(sys.modules, "psycopg", None)  # the postgres extra is not installed
    assert main(["runs", "--db", "postgresql://u:pw@127.0.0.1:9/db", "list"]) == 2
    assert one_error_line(capsys) == (
        "masgraph: error: PostgreSQL needs the extra: pip install 'masgraph[postgres]' "
        "(database postgresql://u:***@127.0.0.1:9/db)"
    )


def test_unreachable_endpoint_from_run_is_one_line_with_the_url_masked(tmp_path, capsys):
    db = str(tmp_path / "x.db")
    url = "http://user:SECRETKEY@127.0.0.1:9/v1"
    code = main(["run", "debate", "--topic", "Is 0.999... equal to 1?", "--base-url", url, "--model", "m",
                 "--db", db])  # fmt: skip
    assert code == 2
    line = one_error_line(capsys)
    assert line.startswith("masgraph: error: model endpoint http://user:***@127.0.0.1:9/v1 (model 'm'): ")
    assert "refused" in line and "can be resumed with `masgraph resume`" in line
    with sqlite3.connect(db) as conn:
        assert "SECRETKEY" not in json.dumps(conn.execute("SELECT * FROM mg_threads").fetchall())


def test_credentials_in_base_url_are_never_stored_or_shown(tmp_path, capsys, data):
    db = str(tmp_path / "x.db")
    url = "http://user:SECRETKEY@127.0.0.1:9/v1"
    args = ["eval", "baseline", "--task", "gsm8k", "--data", data, "--db", db, "--base-url", url]
    assert main([*args, "--model", "m", "--run-id", "r", "--no-progress"]) == 0
    assert main(["runs", "--db", db, "show", "r", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shown["options"]["base_url"] == "http://user:***@127.0.0.1:9/v1"
    assert shown["failed"] == 1  # the unreachable endpoint failed the item, recorded per item
    (row,) = RunStore(db).items("r")
    assert row.error.startswith("EndpointError: model endpoint http://user:***@127.0.0.1:9/v1")
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert "SECRETKEY" not in dump


def test_offline_hub_id_is_one_line_and_no_run_is_stored(tmp_path, capsys, data, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # no hub to reach
    db = str(tmp_path / "x.db")
    args = ["eval", "baseline", "--task", "gsm8k", "--data", data, "--db", db]
    assert main([*args, "--model", "someorg/somemodel"]) == 2
    assert one_error_line(capsys) == (
        "masgraph: error: cannot load model 'someorg/somemodel': it is not a local path, not in the "
        "Hugging Face cache, and http://127.0.0.1:9 cannot be reached"
    )
    assert stored_runs(db) == []


@pytest.mark.model
def test_latent_steps_that_cannot_fit_are_refused_before_any_model_work(tmp_path, capsys, data, monkeypatch):
    from latent_backend.backend import LatentBackend

    def no_rollout(*args, **kwargs):
        raise AssertionError("a latent agent ran")

    monkeypatch.setattr(LatentBackend, "submit_rollout", no_rollout)
    db = str(tmp_path / "x.db")
    args = ["--latent-steps", "4096", "--max-new-tokens", "4", "--db", db]
    assert main(["eval", "latent_mas", "--task", "gsm8k", "--data", data, *args]) == 2
    line = one_error_line(capsys)
    assert line.startswith("masgraph: error: --latent-steps: 3 latent agents x 4096 latent steps need ")
    assert "SmolLM2-135M-Instruct's context of 8192" in line and "latent steps fit" in line
    assert stored_runs(db) == []
    assert main(["run", "latent_mas", "--question", "2+2?", *args]) == 2
    assert "latent steps fit" in one_error_line(capsys)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM mg_threads").fetchone() == (0,)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "2"], "--workers and --address are for --executor ray"),
        (["--address", "auto"], "--workers and --address are for --executor ray"),
        (["--executor", "ray", "--workers", "0"], "argument --workers: must be >= 1"),
    ],
)
def test_ray_flags_without_the_ray_executor_are_refused(tmp_path, data, capsys, flags, message):
    db = str(tmp_path / "x.db")
    assert cli(["eval", "baseline", "--task", "gsm8k", "--data", data, "--db", db, *flags]) == 2
    assert message in one_error_line(capsys)
    assert stored_runs(db) == []


def test_the_ray_executor_without_ray_names_the_extra(tmp_path, data, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when it is not installed
    db = str(tmp_path / "x.db")
    assert cli(["eval", "baseline", "--task", "gsm8k", "--data", data, "--db", db, "--executor", "ray"]) == 2
    assert (
        one_error_line(capsys)
        == "masgraph: error: the ray executor needs the extra: pip install 'masgraph[ray]'"
    )
    assert stored_runs(db) == []
