"""`masgraph studio` builds the `langgraph dev` command: the project's graphs by absolute path, one
working directory per database, and the database from --db, else the environment, else .env."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from runners.studio import PROJECT, studio_command
from storage.paths import studio_dir_for


def args(db: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(db=db, host="127.0.0.1", port=2999, no_browser=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "langgraph.json").write_text((PROJECT / "langgraph.json").read_text())
    (folder / ".env").write_text(f"MASGRAPH_DB={tmp_path / 'from-dotenv.db'}\nOTHER=from-dotenv\n")
    return folder


def test_the_database_comes_from_db_then_the_environment_then_dotenv(project, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MASGRAPH_DB", raising=False)
    monkeypatch.delenv("OTHER", raising=False)
    _, env, workdir = studio_command(args(), project)
    assert env["MASGRAPH_DB"] == str(tmp_path / "from-dotenv.db") and env["OTHER"] == "from-dotenv"
    assert workdir == studio_dir_for(str(tmp_path / "from-dotenv.db")) and workdir.is_dir()
    monkeypatch.setenv("MASGRAPH_DB", str(tmp_path / "from-env.db"))
    assert studio_command(args(), project)[1]["MASGRAPH_DB"] == str(tmp_path / "from-env.db")
    monkeypatch.chdir(tmp_path)
    assert studio_command(args("given.db"), project)[1]["MASGRAPH_DB"] == str(tmp_path / "given.db")
    url = "postgresql://mg@127.0.0.1:5432/postgres"
    assert studio_command(args(url), project)[1]["MASGRAPH_DB"] == url


def test_the_server_config_names_the_project_files_by_absolute_path(project, tmp_path) -> None:
    argv, _, workdir = studio_command(args(str(tmp_path / "x.db")), project)
    assert argv[1:3] == ["dev", "--config"] and "--no-browser" in argv and "--no-reload" in argv
    config = json.loads(Path(argv[3]).read_text())
    assert Path(argv[3]).parent == workdir
    assert config["graphs"]["debate"] == f"{project.resolve()}/graphs/studio.py:debate"
    assert config["checkpointer"]["path"] == f"{project.resolve()}/runners/threads.py:studio_checkpointer"
    assert config["http"]["app"] == f"{project.resolve()}/runners/studio_app.py:app"
    assert config["dependencies"] == [str(project.resolve())] and "env" not in config


def test_langgraph_json_loads_dotenv_not_the_example() -> None:
    assert json.loads((PROJECT / "langgraph.json").read_text())["env"] == ".env"
    assert "Copy this file to .env" in (PROJECT / ".env.example").read_text()
