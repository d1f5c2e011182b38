"""The sandbox for model-written code: results, limits, modes, and that nothing outlives a run.

The fork-bomb test is bounded by itself (at most 200 forks, children sleep rather than fork), so
even a broken sandbox could not take the machine down. Hostile code is in test_sandbox_hostile.py.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tasks import get_task, run_untrusted, sandbox_policy
from tasks.base import TaskItem

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="the sandbox needs a POSIX system"),
]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects /proc")


@pytest.fixture(autouse=True)
def default_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their mode explicitly, or test the default."""
    monkeypatch.delenv("MASGRAPH_SANDBOX", raising=False)


@pytest.fixture(params=["strict", "weak"])
def mode(request: pytest.FixtureRequest) -> str:
    if request.param == "strict":
        request.getfixturevalue("strict_sandbox")
    return request.param


def processes_with(marker: str) -> list[int]:
    """Live processes (zombies included: they would be leaks too) with `marker` in their argv."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def sleeper(marker: str) -> str:
    """Python that replaces the current process by a 60 s sleep with `marker` in its argv."""
    return f'os.execv("/bin/sleep", ["sleep", "60", "{marker}"])'


def test_passing_snippet(mode: str) -> None:
    result = run_untrusted("print(sum(range(10)))", mode=mode)
    assert (result.ok, result.returncode, result.stdout, result.timed_out, result.reason) == (
        True,
        0,
        "45\n",
        False,
        "passed",
    )


def test_failing_assert(mode: str) -> None:
    result = run_untrusted("assert 1 + 1 == 3, 'bad math'", mode=mode)
    assert not result.ok
    assert result.returncode == 1
    assert "AssertionError: bad math" in result.stderr
    assert result.reason == "exit code 1: AssertionError: bad math"


def test_infinite_loop_times_out(mode: str) -> None:
    result = run_untrusted("while True:\n    pass", timeout_s=1, cpu_s=30, mode=mode)
    assert not result.ok
    assert result.timed_out
    assert result.reason == "timed out after 1 s"
    assert result.duration_s < 5


def test_sleeping_process_times_out(mode: str) -> None:
    result = run_untrusted("import time\ntime.sleep(60)", timeout_s=0.5, mode=mode)
    assert result.timed_out and not result.ok


def test_cpu_limit(mode: str) -> None:
    result = run_untrusted("while True:\n    pass", timeout_s=20, cpu_s=1, mode=mode)
    assert not result.ok and not result.timed_out
    assert "CPU time limit" in result.reason


def test_huge_allocation_fails_with_memory_error(mode: str) -> None:
    result = run_untrusted("data = bytearray(10 * 1024**3)\nprint('allocated')", memory_mb=512, mode=mode)
    assert not result.ok
    assert "MemoryError" in result.reason
    assert "allocated" not in result.stdout


def test_environment_is_not_inherited(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    code = textwrap.dedent("""
        import os
        print(sorted(os.environ))
        print(os.environ.get("OPENAI_API_KEY"))
        print(os.environ["HOME"] == os.getcwd())
        print(os.listdir("."))
    """)
    result = run_untrusted(code, mode=mode)
    assert result.ok, result.stderr
    names, secret, home_is_cwd, listing = result.stdout.splitlines()
    assert "OPENAI_API_KEY" not in names
    assert secret == "None"
    assert home_is_cwd == "True"
    assert listing == "['main.py']"
    assert "sk-test-secret" not in result.stdout + result.stderr


def test_working_directory_is_removed_and_stdin_is_closed(mode: str) -> None:
    result = run_untrusted("import os\nprint(os.getcwd(), flush=True)\ninput()", mode=mode)
    assert "EOFError" in result.reason
    workdir = Path(result.stdout.strip())
    if mode == "strict":  # a tmpfs of the sandbox's own, gone with its mount namespace
        assert workdir == Path(sandbox_policy.WORKDIR)
    else:
        assert workdir.name.startswith("masgraph-sandbox-")
        assert not workdir.exists()


def test_output_is_truncated(mode: str) -> None:
    result = run_untrusted("print('x' * 100_000)\nprint('end')", max_output_chars=1000, mode=mode)
    assert result.ok
    assert len(result.stdout) < 1100
    assert "characters cut" in result.stdout
    assert result.stdout.rstrip().endswith("end")


def test_endless_output_is_capped_by_the_file_size_limit(mode: str) -> None:
    result = run_untrusted("while True:\n    print('y' * 1000)", max_file_mb=1, timeout_s=10, mode=mode)
    assert not result.ok and not result.timed_out
    assert "File too large" in result.reason or "file size" in result.reason


@linux_only
def test_fork_bomb_is_contained_and_cleaned_up(mode: str) -> None:
    marker = f"0.{random.randrange(10**8, 10**9)}"  # a unique, harmless extra argument to sleep
    code = textwrap.dedent(f"""
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
                    os.setsid()  # leave the process group
                {sleeper(marker)}
            made += 1
        print(made, error, flush=True)
    """)
    result = run_untrusted(code, max_processes=16, timeout_s=10, mode=mode)
    assert result.ok, result.stderr
    made, error = result.stdout.split()
    assert int(made) < 16  # stopped by the process limit, long before the loop's own bound
    assert error == "BlockingIOError"
    assert result.duration_s < 5  # the run ends when the code does: leftovers are killed, not awaited
    assert processes_with(marker) == []


@linux_only
def test_processes_left_by_a_timed_out_run_are_killed(mode: str) -> None:
    marker = f"0.{random.randrange(10**8, 10**9)}"
    code = f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    {sleeper(marker)}\ntime.sleep(60)"
    result = run_untrusted(code, timeout_s=1, mode=mode)
    assert result.timed_out
    assert processes_with(marker) == []


@linux_only
@pytest.mark.skipif(os.geteuid() != 0, reason="root-only confinement")
def test_root_runs_without_capabilities(mode: str) -> None:
    result = run_untrusted(
        "print(next(l for l in open('/proc/self/status') if l.startswith('CapEff')).split()[1])", mode=mode
    )
    assert result.stdout.strip() == "0000000000000000"


def test_concurrent_runs_from_threads(mode: str) -> None:
    # The evaluation runner grades from a thread pool.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: run_untrusted(f"print({n} * 2)", mode=mode), range(4)))
    assert [r.stdout for r in results] == ["0\n", "2\n", "4\n", "6\n"]


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        run_untrusted("pass", timeout_s=0)


def test_invalid_mode() -> None:
    with pytest.raises(ValueError, match="sandbox mode"):
        run_untrusted("pass", mode="none")


HUMANEVAL = TaskItem(
    id="HumanEval/x",
    question='def inc(x):\n    """Return x plus one."""\n',
    gold="def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n",
    meta={"entry_point": "inc"},
)
GOOD = "```python\ndef inc(x):\n    return x + 1\n```"


def test_without_namespaces_code_is_refused_unless_weak_is_chosen(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sandbox_policy, "find_tools", lambda: "bubblewrap (bwrap) is not installed")
    with caplog.at_level(logging.WARNING, logger="tasks.sandbox"):
        refused = get_task("humanevalplus").grade(HUMANEVAL, GOOD)
    assert not refused.correct
    assert refused.detail == (
        "sandbox unavailable: bubblewrap (bwrap) is not installed; "
        "set MASGRAPH_SANDBOX=weak to accept process limits only"
    )
    assert len(caplog.records) <= 1  # one line, once per process
    monkeypatch.setenv("MASGRAPH_SANDBOX", "weak")
    assert get_task("humanevalplus").grade(HUMANEVAL, GOOD).correct


def test_an_unknown_mode_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASGRAPH_SANDBOX", "off")
    result = run_untrusted("print(1)")
    assert not result.ok and result.stdout == ""
    assert result.reason == "sandbox refused: MASGRAPH_SANDBOX='off' is not 'strict' or 'weak'"


@linux_only
def test_strict_mode_sees_only_the_interpreter_and_a_private_tmp(strict_sandbox: None) -> None:
    code = textwrap.dedent("""
        import os, sys
        print(sorted(os.listdir("/")))
        print(os.getuid(), os.getpid())
        open("/tmp/scratch", "w").write("fine")  # the one writable place
        print(sorted(os.listdir("/proc/self/fd")))  # 3 is the listing's own
        for path in ("/x", "/usr/x", "/dev/x", sys.prefix + "/x"):
            try:
                open(path, "w")
            except OSError as exc:
                print(type(exc).__name__)
        try:  # the supervisor, process 1, is not dumpable: its open files are out of reach
            os.listdir("/proc/1/fd")
        except PermissionError:
            print("PermissionError")
    """)
    result = run_untrusted(code, mode="strict")
    assert result.ok, result.stderr
    top, ids, fds, *errors = result.stdout.splitlines()
    system = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr"}
    interpreter = {Path(sys.prefix).parts[1], Path(sys.base_prefix).parts[1]}
    assert set(top.strip("[]").replace("'", "").split(", ")) <= system | interpreter
    assert ids == "1000 2"  # the code is process 2: process 1 is its supervisor
    assert fds == "['0', '1', '2', '3']"
    assert errors == ["OSError"] * 4 + ["PermissionError"]


def test_interpreter_roots_are_the_installation_and_the_virtual_environment(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /opt/python/3.11/bin\n")
    (venv / "bin" / "python").symlink_to("/opt/python/3.11/bin/python3.11")
    assert sandbox_policy.interpreter_roots(str(venv / "bin" / "python")) == [Path("/opt/python/3.11"), venv]
    assert sandbox_policy.interpreter_roots("/usr/bin/python3") == []  # /usr is mounted anyway
    assert sandbox_policy.interpreter_roots("/bin/python3") == []  # never the whole root
