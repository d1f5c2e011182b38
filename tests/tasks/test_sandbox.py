"""The sandbox for model-written code: results, limits, and that nothing outlives a run.

The fork-bomb test is bounded by itself (at most 200 forks, children sleep rather than fork), so
even a broken sandbox could not take the machine down.
"""

from __future__ import annotations

import os
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tasks import run_untrusted

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="the sandbox needs a POSIX system"),
]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects /proc")


def live_processes(*, pgid: int | None = None, uid: int | None = None) -> list[int]:
    """Processes (zombies included: they would be leaks too) in a process group or of a real uid."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        group = int(stat.rsplit(")", 1)[1].split()[2])
        ruid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if group == pgid or ruid == uid:
            found.append(int(name))
    return found


def test_passing_snippet() -> None:
    result = run_untrusted("print(sum(range(10)))")
    assert (result.ok, result.returncode, result.stdout, result.timed_out, result.reason) == (
        True,
        0,
        "45\n",
        False,
        "passed",
    )


def test_failing_assert() -> None:
    result = run_untrusted("assert 1 + 1 == 3, 'bad math'")
    assert not result.ok
    assert result.returncode == 1
    assert "AssertionError: bad math" in result.stderr
    assert result.reason == "exit code 1: AssertionError: bad math"


def test_infinite_loop_times_out() -> None:
    result = run_untrusted("while True:\n    pass", timeout_s=1, cpu_s=30)
    assert not result.ok
    assert result.timed_out
    assert result.reason == "timed out after 1 s"
    assert result.duration_s < 5


def test_sleeping_process_times_out() -> None:
    result = run_untrusted("import time\ntime.sleep(60)", timeout_s=0.5)
    assert result.timed_out and not result.ok


def test_cpu_limit() -> None:
    result = run_untrusted("while True:\n    pass", timeout_s=20, cpu_s=1)
    assert not result.ok and not result.timed_out
    assert "CPU time limit" in result.reason


def test_huge_allocation_fails_with_memory_error() -> None:
    result = run_untrusted("data = bytearray(10 * 1024**3)\nprint('allocated')", memory_mb=512)
    assert not result.ok
    assert "MemoryError" in result.reason
    assert "allocated" not in result.stdout


def test_environment_is_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    code = textwrap.dedent("""
        import os
        print(sorted(os.environ))
        print(os.environ.get("OPENAI_API_KEY"))
        print(os.environ["HOME"] == os.getcwd())
        print(os.listdir("."))
    """)
    result = run_untrusted(code)
    assert result.ok, result.stderr
    names, secret, home_is_cwd, listing = result.stdout.splitlines()
    assert "OPENAI_API_KEY" not in names
    assert secret == "None"
    assert home_is_cwd == "True"
    assert listing == "['main.py']"
    assert "sk-test-secret" not in result.stdout + result.stderr


def test_working_directory_is_removed_and_stdin_is_closed() -> None:
    result = run_untrusted("import os\nprint(os.getcwd(), flush=True)\ninput()")
    assert "EOFError" in result.reason
    workdir = Path(result.stdout.strip())
    assert workdir.name.startswith("masgraph-sandbox-")
    assert not workdir.exists()


def test_output_is_truncated() -> None:
    result = run_untrusted("print('x' * 100_000)\nprint('end')", max_output_chars=1000)
    assert result.ok
    assert len(result.stdout) < 1100
    assert "characters cut" in result.stdout
    assert result.stdout.rstrip().endswith("end")


def test_endless_output_is_capped_by_the_file_size_limit() -> None:
    result = run_untrusted("while True:\n    print('y' * 1000)", max_file_mb=1, timeout_s=10)
    assert not result.ok and not result.timed_out
    assert "File too large" in result.reason or "file size" in result.reason


@linux_only
def test_fork_bomb_is_contained_and_cleaned_up() -> None:
    code = textwrap.dedent("""
        import os, time
        made, error = 0, None
        for i in range(200):
            try:
                pid = os.fork()
            except OSError as exc:
                error = type(exc).__name__
                break
            if pid == 0:
                if i == 0:
                    os.setsid()  # leave the process group: only the uid sweep can find this one
                time.sleep(60)
                os._exit(0)
            made += 1
        print(os.getuid(), os.getpgrp(), made, error, flush=True)
    """)
    result = run_untrusted(code, max_processes=16, timeout_s=10)
    assert result.ok, result.stderr
    uid, pgid, made, error = result.stdout.split()
    assert int(made) < 16  # stopped by the process limit, long before the loop's own bound
    assert error == "BlockingIOError"
    assert result.duration_s < 5  # the run ends when the code does: leftovers are killed, not awaited
    assert live_processes(pgid=int(pgid)) == []
    if os.geteuid() == 0:  # as root the run has its own uid, so the escaped child is found too
        assert int(uid) != 0
        assert live_processes(uid=int(uid)) == []


@linux_only
def test_processes_left_by_a_timed_out_run_are_killed() -> None:
    code = "import os, time\nprint(os.getpgrp(), flush=True)\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(60)"
    result = run_untrusted(code, timeout_s=1)
    assert result.timed_out
    assert live_processes(pgid=int(result.stdout.split()[0])) == []


@linux_only
@pytest.mark.skipif(os.geteuid() != 0, reason="root-only confinement")
def test_root_runs_without_capabilities() -> None:
    result = run_untrusted(
        "print(next(l for l in open('/proc/self/status') if l.startswith('CapEff')).split()[1])"
    )
    assert result.stdout.strip() == "0000000000000000"


def test_concurrent_runs_from_threads() -> None:
    # The evaluation runner grades from a thread pool.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: run_untrusted(f"print({n} * 2)"), range(4)))
    assert [r.stdout for r in results] == ["0\n", "2\n", "4\n", "6\n"]


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        run_untrusted("pass", timeout_s=0)
