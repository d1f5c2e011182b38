"""Shared fixtures. Tests never touch the user's database: MASGRAPH_DATA_DIR points at a temp dir.
The converted embedded model is shared (MASGRAPH_CACHE_DIR is left alone) so it is converted once."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ["MASGRAPH_DATA_DIR"] = tempfile.mkdtemp(prefix="masgraph-test-data-")
os.environ.pop("MASGRAPH_DB", None)
os.environ.pop("MASGRAPH_MODEL", None)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch's OpenMP loads (llama.cpp shares it)


@pytest.fixture(scope="session")
def backend():
    """The embedded SmolLM2 backend (loaded once per test session)."""
    from latent_backend import get_backend

    return get_backend()


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "masgraph.db")


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on 127.0.0.1 (Debian's postgresql package); skipped without it."""
    import shutil
    import socket
    import subprocess
    from pathlib import Path

    bin_dir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
    initdb = shutil.which("initdb") or (bin_dir and str(bin_dir / "initdb"))
    if not initdb or not Path(initdb).exists():
        pytest.skip("PostgreSQL server programs are not installed (apt-get install postgresql)")
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    folder = Path(tempfile.mkdtemp(prefix="masgraph-pg-"))  # beside /tmp: the server's user can reach it
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("runuser is needed to start PostgreSQL as root")
        shutil.chown(folder, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = folder / "data"
    subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True)  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server) -> str:
    """A fresh, empty database on the throwaway server."""
    import uuid

    psycopg = pytest.importorskip("psycopg")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"
