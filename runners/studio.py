"""`masgraph studio`: LangGraph Studio on the project database, one thread space with the CLI.

Starts `langgraph dev` with the project's graphs on one database (`--db`, else $MASGRAPH_DB, else
the default), so Studio, the CLI and Python see the same threads. The server runs in a working
directory of that database's own (`storage.paths.studio_dir_for`), because it keeps its thread
list in `.langgraph_api/` there: each database gets a thread list that matches its checkpoints.
Its config is the project's langgraph.json with absolute paths. Variables from the project's
`.env` apply unless the environment already sets them (`--db` wins over both).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from runners.single_run import CLIError
from storage.paths import default_db, is_url, studio_dir_for

PROJECT = Path(__file__).resolve().parent.parent
STUDIO_URL = "https://smith.langchain.com/studio/?baseUrl={base}"


def server_config(project: Path = PROJECT) -> dict[str, Any]:
    """The project's langgraph.json with every path made absolute (the server runs elsewhere)."""
    source = project / "langgraph.json"
    if not source.is_file():
        raise CLIError(f"no langgraph.json in {project}: `masgraph studio` runs from a source checkout")
    config = json.loads(source.read_text(encoding="utf-8"))

    def absolute(spec: str) -> str:
        path, colon, attribute = spec.partition(":")
        return str((project / path).resolve()) + colon + attribute

    config["graphs"] = {name: absolute(spec) for name, spec in config["graphs"].items()}
    config["dependencies"] = [str((project / d).resolve()) for d in config.get("dependencies", ["."])]
    for section in ("checkpointer", "store"):
        if isinstance(config.get(section), dict) and "path" in config[section]:
            config[section]["path"] = absolute(config[section]["path"])
    if isinstance(config.get("http"), dict) and "app" in config["http"]:
        config["http"]["app"] = absolute(config["http"]["app"])
    config.pop("env", None)  # read here instead, so the environment and --db win over .env
    return config


def studio_command(
    args: argparse.Namespace, project: Path = PROJECT
) -> tuple[list[str], dict[str, str], Path]:
    """(argv, environment, working directory) of the `langgraph dev` process."""
    cli = shutil.which("langgraph", path=str(Path(sys.executable).parent)) or shutil.which("langgraph")
    if cli is None:
        raise CLIError("langgraph-cli is not installed: pip install 'masgraph[studio]'")
    from dotenv import dotenv_values  # python-dotenv comes with langgraph-cli

    dotenv = {k: v for k, v in dotenv_values(project / ".env").items() if v is not None}
    env = {**dotenv, **os.environ}
    db = args.db or env.get("MASGRAPH_DB") or default_db()
    if not is_url(db):  # the server runs in another directory
        db = str(Path(db).expanduser().resolve())
    env["MASGRAPH_DB"] = db
    env.setdefault("LANGGRAPH_NO_VERSION_CHECK", "1")
    workdir = studio_dir_for(db)
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "langgraph.json"
    config_path.write_text(json.dumps(server_config(project), indent=2), encoding="utf-8")
    argv = [cli, "dev", "--config", str(config_path), "--host", args.host, "--port", str(args.port)]
    argv += ["--no-reload"] + (["--no-browser"] if args.no_browser else [])
    return argv, env, workdir


def run_studio(args: argparse.Namespace) -> int:
    argv, env, workdir = studio_command(args)
    base = f"http://{args.host}:{args.port}"
    print(f"masgraph studio: database {env['MASGRAPH_DB']}", file=sys.stderr)
    print(f"masgraph studio: open {STUDIO_URL.format(base=base)}", file=sys.stderr)
    sys.stderr.flush()
    os.chdir(workdir)
    os.execve(argv[0], argv, env)  # the server takes this process's place (and its PID)
    return 0  # pragma: no cover - execve does not return
