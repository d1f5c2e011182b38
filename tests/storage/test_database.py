"""Opening a database: every bad --db is one DatabaseError naming it (password masked); two
processes creating the tables of a fresh database at the same moment both succeed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storage.checkpoints import checkpointer
from storage.database import DatabaseError
from storage.paths import mask_secrets, mask_url
from storage.run_store import RunStore

ROOT = Path(__file__).resolve().parents[2]


def test_mask_url_hides_passwords_tokens_and_secret_query_values():
    assert mask_url("http://user:KEY@host:8/v1") == "http://user:***@host:8/v1"
    assert mask_url("http://TOKEN@host/v1") == "http://***@host/v1"
    assert mask_url("https://h/v1?api_key=abc&x=1") == "https://h/v1?api_key=***&x=1"
    assert mask_url("postgresql://u:pw@db/x?sslmode=require") == "postgresql://u:***@db/x?sslmode=require"
    assert mask_url("http://host/v1") == "http://host/v1"
    assert mask_url("/a/path.db") == "/a/path.db"
    assert mask_secrets({"base_url": "http://u:K@h", "n": 1, "urls": {"r": "http://u:K@h"}}) == {
        "base_url": "http://u:***@h",
        "n": 1,
        "urls": {"r": "http://u:***@h"},
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: (tmp / "dir.db").mkdir() or tmp / "dir.db", "is a directory"),
        (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "x.db", "is a file, not a directory"),
        (
            lambda tmp: (tmp / "t.db").write_text("not a database at all") and tmp / "t.db",
            "not a SQLite database",
        ),
    ],
    ids=["directory", "parent-is-a-file", "not-sqlite"],
)
def test_bad_sqlite_paths_are_one_error_naming_the_path(tmp_path, make, message):
    path = str(make(tmp_path))
    for opener in (RunStore, checkpointer):
        with pytest.raises(DatabaseError, match=message) as caught:
            opener(path)
        assert path in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_url_scheme_and_postgres_without_the_extra(monkeypatch):
    with pytest.raises(DatabaseError, match=r"unsupported database URL mysql://u:\*\*\*@h/db") as caught:
        RunStore("mysql://u:secret@h/db")
    assert "secret" not in str(caught.value)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    for opener in (RunStore, checkpointer):
        with pytest.raises(DatabaseError, match=r"pip install 'masgraph\[postgres\]'") as caught:
            opener("postgresql://u:secret@127.0.0.1:9/db")
        assert "postgresql://u:***@127.0.0.1:9/db" in str(caught.value) and "secret" not in str(caught.value)


def test_unreachable_postgres_names_the_masked_url():
    pytest.importorskip("psycopg")
    with pytest.raises(DatabaseError) as caught:
        RunStore("postgresql://u:secret@127.0.0.1:9/db")
    message = str(caught.value)
    assert message.startswith("database postgresql://u:***@127.0.0.1:9/db: ") and "secret" not in message
    assert "\n" not in message


def read_only(path: Path) -> list[str]:
    """A command prefix under which `path`'s folder is read-only (root ignores file modes)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
        return []
    if shutil.which("bwrap") is None:
        pytest.skip("as root, a read-only folder needs bubblewrap")
    return ["bwrap", "--dev-bind", "/", "/", "--ro-bind", str(path.parent), str(path.parent)]


@pytest.mark.slow
def test_read_only_database_is_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "runs.db"
    RunStore(str(db)).list_runs()  # a real database, then made read-only
    prefix = read_only(db)
    try:
        done = subprocess.run(
            [*prefix, sys.executable, "-m", "runners.cli", "runs", "--db", str(db), "list"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )
    finally:
        folder.chmod(0o755)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"masgraph: error: database {db} is read-only"]


CREATE = """
import sys, time
from pathlib import Path
from storage.checkpoints import checkpointer
from storage.run_store import RunStore
print("ready", flush=True)
go = Path(sys.argv[2])
while not go.exists():  # every process starts at the same instant
    time.sleep(0.001)
store = RunStore(sys.argv[1])
checkpointer(sys.argv[1])
store.open_run("r-" + sys.argv[3], method="baseline", task="gsm8k", data=None, options={}, total_items=1)
print(sorted(run.id for run in store.list_runs()))
"""


@pytest.mark.slow
def test_processes_creating_a_fresh_database_at_once_all_succeed(tmp_path):
    """Three processes open one fresh database at the same instant, three times over."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for attempt in range(3):
        db, go = str(tmp_path / f"fresh-{attempt}.db"), tmp_path / f"go-{attempt}"
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", CREATE, db, str(go), str(n)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(3)
        ]
        for process in processes:
            assert process.stdout.readline().strip() == "ready", process.communicate()
        go.touch()
        outputs = [p.communicate(timeout=120) for p in processes]
        assert [p.returncode for p in processes] == [0] * 3, outputs
        assert sorted(run.id for run in RunStore(db).list_runs()) == [f"r-{n}" for n in range(3)], outputs
