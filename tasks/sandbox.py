"""Running untrusted (model-written) Python in a separate, limited process.

The threat model is a model's buggy code - infinite loops, fork bombs, huge allocations, endless
output, stray background processes - not a determined attacker; see "Limits" below.

How one run is contained:
- a fresh interpreter in its own session and process group, in an empty temporary directory
  that is removed afterwards; stdin is /dev/null; the environment is built from scratch (PATH,
  LANG, HOME=the temp dir, PYTHONHASHSEED), so no API key or other secret of the parent leaks;
- resource limits: CPU seconds, address space (a 10 GB allocation is a MemoryError), file size
  (which also caps stdout/stderr: they go to files, not pipes, so the parent never buffers an
  endless print), open files, no core dumps, and a process limit;
- a wall-clock timeout, after which - and after every normal exit too - every process of the
  run's process group is killed with SIGKILL, and so is every process of the run's own user id
  (below), which also catches children that left the group with setsid().

The limits are set by a small trusted supervisor interpreter (see `_SUPERVISOR`) in the child it
forks just before exec()ing the code, instead of by a `preexec_fn`: preexec_fn is unsafe in a
threaded parent (the evaluation runner grades from a thread pool), while rlimits survive exec().
The supervisor also reaps whatever the code leaves behind, so no zombie outlives a run.

Root: Linux does not enforce RLIMIT_NPROC for uid 0 (nor for CAP_SYS_RESOURCE/CAP_SYS_ADMIN), so
as root a fork bomb would be stopped only by the timeout, after exhausting the machine's pids.
The supervisor's child therefore drops every capability from the bounding set and switches the
*real* uid to a fresh, unused uid before exec: the code runs with no capabilities, and the process
limit counts against that uid alone. The effective uid stays 0 so that the interpreter, which may
live in a root-only directory such as /root/.pyenv, stays readable. If any of this fails the run
fails closed ("sandbox setup failed"), never running the code unconfined.

Limits: this is not a security boundary against malicious code. Code running with effective uid
0 can write root-owned files, and can restore its real uid to 0 (after which forks are no longer
limited); a non-root parent shares its user id with the code. Use a container or VM for hostile
input.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxResult", "run_untrusted"]

_SETUP_FAILED = 125  # the exit code of a child that could not apply the limits
_UID_LOCK = threading.Lock()
_UIDS_IN_USE: set[int] = set()


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one run. `ok` is True only for a clean exit 0 within the time limit."""

    ok: bool
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    reason: str
    duration_s: float = 0.0


# The supervisor: a small trusted interpreter between the caller and the untrusted code. It makes
# itself the "child subreaper" of the run, so processes orphaned by the code are re-parented to it
# rather than to pid 1 (which, in a container, often never reaps them: they would stay zombies).
# It forks the child that applies the limits and exec()s the code; when that child ends it kills
# every other process of the run, reaps them all, writes the child's wait status and exits.
_SUPERVISOR = r"""
import ctypes, json, os, resource, sys, time

cfg = json.loads(sys.argv[1])
uid = cfg["uid"]
linux = sys.platform.startswith("linux")
libc = ctypes.CDLL(None, use_errno=True)

def prctl(option, arg):
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {arg}) failed")

def confine():
    for name, soft, hard in cfg["limits"]:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if uid >= 0:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last_cap = int(f.read())
        for cap in range(last_cap + 1):
            prctl(24, cap)  # PR_CAPBSET_DROP: exec() as euid 0 then grants no capability
        os.setresuid(uid, 0, 0)
    if linux:
        prctl(38, 1)  # PR_SET_NO_NEW_PRIVS: no setuid binaries either
    os.execv(cfg["argv"][0], cfg["argv"])

def others():
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/status") as f:
                ruid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration, IndexError, ValueError):
            continue
        if fields[0] != "Z" and (int(fields[2]) == os.getpgrp() or (uid >= 0 and ruid == uid)):
            found.append(int(name))
    return found

try:
    if linux:
        prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    child = os.fork()
except BaseException as exc:
    sys.stderr.write(f"sandbox setup failed: {exc!r}\n")
    os._exit(125)
if child == 0:
    try:
        confine()
    except BaseException as exc:
        sys.stderr.write(f"sandbox setup failed: {exc!r}\n")
        sys.stderr.flush()
    os._exit(125)

status = None
while True:
    try:
        pid, wait_status = os.waitpid(-1, 0 if status is None else os.WNOHANG)
    except ChildProcessError:
        break
    if pid == child:
        status = wait_status
    if status is not None and pid == 0:  # the code is done; whatever it left running goes
        for other in (others() if linux else []):
            try:
                os.kill(other, 9)
            except OSError:
                pass
        time.sleep(0.005)
with open(cfg["status_path"], "w") as f:
    f.write(str(status))
"""


def run_untrusted(
    code: str,
    *,
    timeout_s: float = 10,
    cpu_s: int = 10,
    memory_mb: int = 1024,
    max_processes: int = 64,
    max_file_mb: int = 16,
    max_output_chars: int = 8000,
    python: str | None = None,
) -> SandboxResult:
    """Run `code` as a Python script in a contained child process and report how it ended.

    `max_processes` counts processes and threads of the run (as root: of the run's own uid; as a
    non-root user: on top of what that user already runs). `stdout`/`stderr` are cut to
    `max_output_chars` each (keeping both ends, since a traceback ends the stream).
    """
    if min(timeout_s, cpu_s, memory_mb, max_processes, max_file_mb, max_output_chars) <= 0:
        raise ValueError("sandbox limits must be positive")
    if os.name != "posix":
        return SandboxResult(False, None, "", "", False, "sandbox setup failed: needs a POSIX system")
    as_root = os.geteuid() == 0
    if as_root and not sys.platform.startswith("linux"):
        return SandboxResult(
            False, None, "", "", False, "sandbox setup failed: running as root is only contained on Linux"
        )
    interpreter = python or sys.executable
    workdir = Path(tempfile.mkdtemp(prefix="masgraph-sandbox-"))
    logdir = Path(tempfile.mkdtemp(prefix="masgraph-sandbox-log-"))  # not in the code's directory
    uid = _reserve_uid() if as_root else -1
    try:
        (workdir / "main.py").write_text(code, encoding="utf-8")
        nproc = max_processes if as_root else _task_count(os.getuid()) + max_processes
        memory, fsize = memory_mb * 2**20, max_file_mb * 2**20
        config = {
            "uid": uid,
            "status_path": str(logdir / "status"),
            # SIGXCPU at the soft CPU limit, SIGKILL a second later.
            "limits": [
                ("RLIMIT_CPU", int(cpu_s), int(cpu_s) + 1),
                ("RLIMIT_AS", memory, memory),
                ("RLIMIT_FSIZE", fsize, fsize),
                ("RLIMIT_NOFILE", 256, 256),
                ("RLIMIT_CORE", 0, 0),
                ("RLIMIT_NPROC", nproc, nproc),
            ],
            # -s: no user site-packages; -P: no script dir ahead of the stdlib; -B: write no .pyc.
            # Not -I/-E: the environment is ours, and PYTHONHASHSEED should take effect.
            "argv": [interpreter, "-s", "-P", "-B", "main.py"],
        }
        started = time.monotonic()
        with open(logdir / "stdout", "wb") as out, open(logdir / "stderr", "wb") as err:
            supervisor = subprocess.Popen(
                [interpreter, "-I", "-c", _SUPERVISOR, json.dumps(config)],
                cwd=workdir,
                env=_child_env(workdir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
            timed_out = False
            try:
                supervisor.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _stop(supervisor, uid)
        duration = time.monotonic() - started
        status_file = logdir / "status"
        status = status_file.read_text().strip() if status_file.exists() else ""
        if status.isdigit():
            returncode: int | None = os.waitstatus_to_exitcode(int(status))
        else:  # the supervisor itself failed or was killed
            returncode = supervisor.returncode if supervisor.returncode != 0 else None
        stdout = _read(logdir / "stdout", max_output_chars)
        stderr = _read(logdir / "stderr", max_output_chars)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(logdir, ignore_errors=True)
        _release_uid(uid)
    ok = not timed_out and returncode == 0
    return SandboxResult(
        ok=ok,
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        reason=_reason(returncode, stderr, timed_out, timeout_s),
        duration_s=duration,
    )


def _stop(supervisor: subprocess.Popen[bytes], uid: int) -> None:
    """End the run: kill the code's processes (the supervisor then reaps them and exits), then
    make sure the supervisor is gone too."""
    if supervisor.poll() is None:
        _kill_run(supervisor.pid, uid, spare=supervisor.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            supervisor.wait(timeout=5)
    if supervisor.poll() is None:  # last resort: everything, the supervisor included
        _kill_run(supervisor.pid, uid, spare=None)
        supervisor.wait()


def _child_env(workdir: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),  # temp files land in the directory that is removed afterwards
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        # Thread pools would count against the process limit and reserve address space per thread.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _reason(returncode: int | None, stderr: str, timed_out: bool, timeout_s: float) -> str:
    if timed_out:
        return f"timed out after {timeout_s:g} s"
    if returncode == 0:
        return "passed"
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        what = {"SIGXCPU": "CPU time limit exceeded", "SIGXFSZ": "file size limit exceeded"}.get(
            name, "killed"
        )
        return f"{what} ({name})"
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if returncode == _SETUP_FAILED and lines and lines[-1].startswith("sandbox setup failed"):
        return lines[-1]
    return f"exit code {returncode}: {lines[-1][:300]}" if lines else f"exit code {returncode}"


def _read(path: Path, limit: int) -> str:
    text = path.read_bytes().decode("utf-8", errors="replace")
    if len(text) <= limit:
        return text
    head, tail = limit // 4, limit - limit // 4
    return f"{text[:head]}\n...[{len(text) - head - tail} characters cut]...\n{text[-tail:]}"


# -- processes ----------------------------------------------------------------------------------
def _proc_entries() -> list[tuple[int, int, int, bool, int]]:
    """(pid, process group, real uid, is zombie, threads) of every process visible in /proc."""
    entries = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "(comm)", which may contain spaces
        uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "Uid:\t-1")
        threads_line = next(
            (line for line in status.splitlines() if line.startswith("Threads:")), "Threads:\t1"
        )
        entries.append(
            (
                int(name),
                int(fields[2]),
                int(uid_line.split()[1]),
                fields[0] == "Z",
                int(threads_line.split()[1]),
            )
        )
    return entries


def _task_count(uid: int) -> int:
    """Processes + threads of `uid` now: what RLIMIT_NPROC compares against."""
    return sum(threads for _, _, ruid, zombie, threads in _proc_entries() if ruid == uid and not zombie)


def _kill_run(pgid: int, uid: int, *, spare: int | None) -> None:
    """SIGKILL every process of the run's group and (as root) of its uid, except `spare`, until none
    is left alive."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [
            pid
            for pid, group, ruid, zombie, _ in _proc_entries()
            if pid != spare and not zombie and (group == pgid or (uid >= 0 and ruid == uid))
        ]
        if spare is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _reserve_uid() -> int:
    """A uid no process uses now, within this user namespace's mapping, reserved for one run."""
    low, high = _uid_window()
    with _UID_LOCK:
        used = {ruid for _, _, ruid, _, _ in _proc_entries()} | _UIDS_IN_USE
        for _ in range(1000):
            uid = random.randrange(low, high)
            if uid not in used:
                _UIDS_IN_USE.add(uid)
                return uid
    raise RuntimeError("no free uid for the sandbox")


def _release_uid(uid: int) -> None:
    with _UID_LOCK:
        _UIDS_IN_USE.discard(uid)


def _uid_window() -> tuple[int, int]:
    """High uids, away from real accounts; inside the mapped range in a user namespace."""
    ranges = []
    try:
        for line in Path("/proc/self/uid_map").read_text().splitlines():
            inside, _, count = (int(x) for x in line.split())
            ranges.append((inside, inside + count))
    except (OSError, ValueError):
        ranges = [(0, 65536)]
    best = max(ranges, key=lambda r: r[1] - r[0])
    low = max(best[0], 1_000_000 if best[1] - best[0] > 2_000_000 else best[0] + (best[1] - best[0]) // 2)
    high = min(best[1], 2**31 - 1)
    return low, high
