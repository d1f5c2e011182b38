"""Running untrusted (model-written) Python as a contained process: a security boundary on Linux.

Threat model: the code is hostile. It may try to read secrets (/etc/shadow, /root, home
directories, the project tree, the run databases, the model cache), write anywhere, reach the
network or local services, signal or kill the grader, leave processes behind, or exhaust the
machine's memory, disk, processes or CPU. It runs with the caller's privileges at best - root,
when the grader runs as root.

Invariants of the default ("strict") mode, which needs Linux and bubblewrap (see
`tasks.sandbox_policy` for what exactly the code sees):
- own user, mount, PID, network, IPC and UTS namespaces; no further user namespaces; no
  capabilities. As root (the CI and evaluation set-up): an unprivileged uid of its own, and no
  network at all, not even loopback; for a non-root caller the network namespace has only its
  own loopback, and the code runs as the caller's uid (which can reach nothing of the caller);
- a read-only view of /usr and of the interpreter's directories, and nothing else of the host;
  the only writable place is a tmpfs of `max_disk_mb` at /tmp (working directory, HOME, TMPDIR);
- the supervisor is process 1 of the PID namespace: the code cannot signal or ptrace it, nor see
  or signal any process outside; when the code's main process ends, or at the deadline, process
  1 ends and the kernel kills every process of the namespace, so nothing outlives a run;
- the whole process tree shares one memory cgroup of `memory_mb` (plus the tmpfs, which lives in
  RAM) where the caller may create cgroups (root); elsewhere each process has an address-space
  limit of `memory_mb` and there are at most `max_processes`. CPU seconds, file size, open files
  and core dumps are limited per process; stdout/stderr go to files outside the sandbox, capped by
  the file size limit and cut to `max_output_chars`.
If a run cannot be set up the code is not run: the result says why ("sandbox setup failed: ...").

Where strict mode is impossible (no bubblewrap, no user namespaces, not Linux) runs are refused
with a one-line reason, unless the caller opts into "weak" mode (MASGRAPH_SANDBOX=weak or
mode="weak"): process limits, a fresh uid and process sweeps only, which contain buggy code but
are no boundary (the code can read and write what the caller can, and reach the network).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tasks import sandbox_policy, sandbox_supervisor
from tasks.sandbox_procs import release_uid, reserve_uid
from tasks.sandbox_run import Limits, Outcome, run_strict, run_weak

__all__ = ["SandboxResult", "run_untrusted", "strict_unavailable"]

log = logging.getLogger(__name__)
_SETUP_FAILED = sandbox_supervisor.SETUP_FAILED
_WARNED: set[str] = set()
_PROBE_LOCK = threading.Lock()
_PROBED: dict[str, str | None] = {}


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


def run_untrusted(
    code: str,
    *,
    timeout_s: float = 10,
    cpu_s: int = 10,
    memory_mb: int = 1024,
    max_processes: int = 64,
    max_file_mb: int = 16,
    max_disk_mb: int = 64,
    max_output_chars: int = 8000,
    python: str | None = None,
    mode: str | None = None,
) -> SandboxResult:
    """Run `code` as a Python script in the sandbox and report how it ended. Never raises for
    anything the code does; a refused or failed set-up is a failed result with the reason.

    `mode` is "strict" or "weak"; None reads MASGRAPH_SANDBOX (default strict). `max_processes`
    counts processes and threads of the run; `stdout`/`stderr` are cut to `max_output_chars`
    each (keeping both ends, since a traceback ends the stream).
    """
    if min(timeout_s, cpu_s, memory_mb, max_processes, max_file_mb, max_disk_mb, max_output_chars) <= 0:
        raise ValueError("sandbox limits must be positive")
    if mode is not None and mode not in sandbox_policy.MODES:
        raise ValueError(f"sandbox mode must be one of {sandbox_policy.MODES}, got {mode!r}")
    limits = Limits(timeout_s, int(cpu_s), memory_mb, max_processes, max_file_mb, max_disk_mb)
    chosen, refusal = _choose_mode(mode)
    if refusal:
        return _refused(refusal)
    interpreter = shutil.which(python) if python else sys.executable
    if not interpreter:
        return _refused(f"sandbox setup failed: no interpreter {python!r}")
    logdir = Path(tempfile.mkdtemp(prefix="masgraph-sandbox-log-"))  # never visible to the code
    uid = reserve_uid() if os.geteuid() == 0 else -1
    try:
        (logdir / "main.py").write_text(code, encoding="utf-8")
        started = time.monotonic()
        run = run_strict if chosen == "strict" else run_weak
        try:
            outcome = run(logdir, os.path.abspath(interpreter), limits, uid)
        except OSError as exc:  # e.g. a tool vanished, or no space for the log files
            return _refused(f"sandbox setup failed: {exc}")
        duration = time.monotonic() - started
        stdout = _read(logdir / "stdout", max_output_chars)
        stderr = _read(logdir / "stderr", max_output_chars)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
        release_uid(uid)
    return _result(outcome, stdout, stderr, limits, duration)


def strict_unavailable(python: str | None = None) -> str | None:
    """None when strict runs work here, else why not (one line). Probes once per interpreter."""
    key = python or sys.executable
    with _PROBE_LOCK:
        if key not in _PROBED:
            tools = sandbox_policy.find_tools()
            if isinstance(tools, str):
                _PROBED[key] = tools
            else:
                result = run_untrusted("pass", timeout_s=30, python=python, mode="strict")
                _PROBED[key] = None if result.ok else result.reason
        return _PROBED[key]


# -- modes --------------------------------------------------------------------------------------
def _choose_mode(mode: str | None) -> tuple[str, str | None]:
    """(mode, None), or (mode, why the run is refused)."""
    if mode is None:
        mode = os.environ.get(sandbox_policy.ENV_VAR, "").strip().lower() or "strict"
        if mode not in sandbox_policy.MODES:
            return mode, f"sandbox refused: {sandbox_policy.ENV_VAR}={mode!r} is not 'strict' or 'weak'"
    if mode == "weak":
        _warn_once("sandbox: weak mode: untrusted code runs with process limits only, not isolated")
        if os.name != "posix":
            return mode, "sandbox setup failed: needs a POSIX system"
        if os.geteuid() == 0 and not sys.platform.startswith("linux"):
            return mode, "sandbox setup failed: running as root is only contained on Linux"
        return mode, None
    tools = sandbox_policy.find_tools()
    if isinstance(tools, str):
        reason = (
            f"sandbox unavailable: {tools}; set {sandbox_policy.ENV_VAR}=weak to accept process limits only"
        )
        _warn_once(reason)
        return mode, reason
    return mode, None


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


def _refused(reason: str) -> SandboxResult:
    return SandboxResult(False, None, "", "", False, reason)


# -- results ------------------------------------------------------------------------------------
def _result(outcome: Outcome, stdout: str, stderr: str, limits: Limits, duration: float) -> SandboxResult:
    if outcome.status is not None:
        returncode: int | None = os.waitstatus_to_exitcode(outcome.status)
    else:  # the supervisor never reported: set-up failed, or it was killed
        returncode = outcome.launcher_code or None
    ok = not outcome.timed_out and outcome.status is not None and returncode == 0
    if outcome.timed_out:
        reason = f"timed out after {limits.timeout_s:g} s"
    elif outcome.oom_kills and not ok:
        total = limits.memory_mb + limits.max_disk_mb
        reason = f"memory limit exceeded: the run's processes and files together hit {total} MB (killed)"
    elif outcome.status is None:
        reason = _launcher_reason(outcome.launcher_code, stderr)
    else:
        reason = _reason(returncode, stderr)
    return SandboxResult(ok, returncode, stdout, stderr, outcome.timed_out, reason, duration)


def _launcher_reason(code: int | None, stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if lines and lines[-1].startswith("sandbox setup failed"):
        return lines[-1]
    if lines and lines[-1].startswith("bwrap:"):
        return (
            f"sandbox setup failed: {lines[-1][:300]} ({sandbox_policy.ENV_VAR}=weak runs without namespaces)"
        )
    return f"sandbox supervisor died ({_describe_exit(code)}) before the code finished"


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return _signal_name(-code)
    if code is not None and code > 128:  # bwrap reports a child killed by signal N as 128 + N
        return _signal_name(code - 128)
    return f"exit code {code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _reason(returncode: int | None, stderr: str) -> str:
    if returncode == 0:
        return "passed"
    if returncode is not None and returncode < 0:
        name = _signal_name(-returncode)
        what = {"SIGXCPU": "CPU time limit exceeded", "SIGXFSZ": "file size limit exceeded"}.get(
            name, "killed"
        )
        return f"{what} ({name})"
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if returncode == _SETUP_FAILED and lines and lines[-1].startswith("sandbox setup failed"):
        return lines[-1]
    return f"exit code {returncode}: {lines[-1][:300]}" if lines else f"exit code {returncode}"


def _read(path: Path, limit: int) -> str:
    text = path.read_bytes().decode("utf-8", errors="replace") if path.exists() else ""
    if len(text) <= limit:
        return text
    head, tail = limit // 4, limit - limit // 4
    return f"{text[:head]}\n...[{len(text) - head - tail} characters cut]...\n{text[-tail:]}"
