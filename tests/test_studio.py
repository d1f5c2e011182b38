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
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from runners.methods import METHODS

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
        # A mistyped option is an error naming the closest one, not silently dropped by the server.
        body = {"assistant_id": "baseline", "input": {"question": "2+2?"}, "context": {"temprature": 0.5}}
        try:
            result = json.dumps(post(f"http://127.0.0.1:{port}/runs/wait", body))
        except urllib.error.HTTPError as error:
            result = error.read().decode(errors="replace")
        assert "did you mean 'temperature'" in result, result
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
