"""`langgraph dev` serves every graph of langgraph.json with the input, output and context schemas
Studio renders as forms (started, queried over HTTP, stopped by PID)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from latent_backend.kv_store import Entry, KVStore
from runners.methods import METHODS
from storage.paths import kv_dir_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: dict) -> object:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_langgraph_dev_serves_every_graph_with_its_schemas(tmp_path):
    cli = shutil.which("langgraph", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.fail("langgraph-cli is not installed: pip install -e '.[dev]'")
    port = free_port()
    env = {**os.environ, "MASGRAPH_DB": str(tmp_path / "studio.db"), "LANGGRAPH_NO_VERSION_CHECK": "1"}
    process = subprocess.Popen(
        [cli, "dev", "--host", "127.0.0.1", "--port", str(port), "--no-browser", "--no-reload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read().decode(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ok", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "langgraph dev did not answer /ok within 120 s"
                time.sleep(0.5)
        assistants = post(f"http://127.0.0.1:{port}/assistants/search", {"limit": 50})
        graph_ids = {a["graph_id"] for a in assistants}
        expected = set(json.loads((ROOT / "langgraph.json").read_text())["graphs"])
        assert expected == set(METHODS)
        assert expected <= graph_ids
        for assistant in assistants:
            if assistant["graph_id"] not in expected:
                continue
            schemas = get(f"http://127.0.0.1:{port}/assistants/{assistant['assistant_id']}/schemas")
            for kind in ("input_schema", "output_schema", "context_schema"):
                assert schemas.get(kind) and schemas[kind].get("properties"), (assistant["graph_id"], kind)

        # Deleting a thread in Studio frees its KV entries (the checkpointer's delete hook).
        thread_id = post(f"http://127.0.0.1:{port}/threads", {})["thread_id"]
        kv = KVStore(kv_dir_for(env["MASGRAPH_DB"]))
        for namespace in (thread_id, "another-thread"):
            kv.put("entry", namespace, Entry({"k.0": torch.ones(1, 2, 2), "v.0": torch.ones(1, 2, 2)}))
        kv.flush()
        delete = urllib.request.Request(f"http://127.0.0.1:{port}/threads/{thread_id}", method="DELETE")
        with urllib.request.urlopen(delete, timeout=30) as response:
            assert response.status in (200, 202, 204)
        assert (
            not (kv.root / thread_id).exists() and (kv.root / "another-thread" / "entry.safetensors").exists()
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
