"""Starting and stopping one sandbox run, in either mode; `tasks.sandbox` turns the outcome into
a result. Every function here ends with nothing of the run left alive: a deadline, or an exception
in the caller while waiting, kills the run before returning.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tasks import sandbox_cgroup, sandbox_policy, sandbox_supervisor
from tasks.sandbox_procs import kill_run, task_count

__all__ = ["Limits", "Outcome", "run_strict", "run_weak"]

_SUPERVISOR_SOURCE = Path(sandbox_supervisor.__file__).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Limits:
    timeout_s: float
    cpu_s: int
    memory_mb: int
    max_processes: int
    max_file_mb: int
    max_disk_mb: int

    def rlimits(self, nproc: int) -> list[tuple[str, int, int]]:
        memory, fsize = self.memory_mb * 2**20, self.max_file_mb * 2**20
        return [
            ("RLIMIT_CPU", self.cpu_s, self.cpu_s + 1),  # SIGXCPU at the soft limit, SIGKILL 1 s later
            ("RLIMIT_AS", memory, memory),
            ("RLIMIT_FSIZE", fsize, fsize),
            ("RLIMIT_NOFILE", 256, 256),
            ("RLIMIT_CORE", 0, 0),
            ("RLIMIT_NPROC", nproc, nproc),
        ]


@dataclass
class Outcome:
    status: int | None = None  # the code's wait status, as its supervisor saw it
    launcher_code: int | None = None  # exit code of what we started (bwrap or the supervisor)
    timed_out: bool = False
    oom_kills: int = 0


# -- strict: bubblewrap -------------------------------------------------------------------------
def run_strict(logdir: Path, interpreter: str, limits: Limits, uid: int) -> Outcome:
    tools = sandbox_policy.find_tools()
    assert isinstance(tools, sandbox_policy.Tools)  # _choose_mode() refused otherwise
    # tmpfs pages are RAM too: the cgroup holds the code's memory and its temp dir.
    cgroup = sandbox_cgroup.create((limits.memory_mb + limits.max_disk_mb) * 2**20)
    # In /tmp, which the run's uid can traverse (the caller's TMPDIR might not be).
    stage = Path(tempfile.mkdtemp(prefix="masgraph-sandbox-stage-", dir="/tmp")) if uid >= 0 else None
    outcome = Outcome()
    try:
        if stage is not None:
            stage.chmod(0o711)  # the run's uid passes through to the stage points, lists nothing
        with (
            open(logdir / "main.py", "rb") as source,
            open(logdir / "status", "wb") as status,
            open(logdir / "info", "wb") as info,
            open(logdir / "stdout", "wb") as out,
            open(logdir / "stderr", "wb") as err,
        ):
            config = {
                "mode": "pid1",
                # -s: no user site-packages; -P: no script dir ahead of the stdlib; -B: no .pyc.
                "argv": [interpreter, "-s", "-P", "-B", "main.py"],
                "limits": limits.rlimits(limits.max_processes),  # counted in the run's own user ns
                "status_fd": status.fileno(),
            }
            launch = sandbox_policy.strict_command(
                tools,
                python=interpreter,
                supervisor=[interpreter, "-I", "-S", "-c", _SUPERVISOR_SOURCE, json.dumps(config)],
                disk_bytes=limits.max_disk_mb * 2**20,
                source_fd=source.fileno(),
                info_fd=info.fileno(),
                keep_fds=(status.fileno(),),
                stage_dir=stage,
                uid=uid,
                cgroup_procs=cgroup.procs_file if cgroup else None,
            )
            proc = subprocess.Popen(
                launch.argv,
                cwd="/",  # not the caller's directory, which the run's uid may not reach
                env=_child_env(sandbox_policy.WORKDIR),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=launch.pass_fds,
                start_new_session=True,
            )
            try:
                outcome.timed_out = _wait(proc, limits.timeout_s)
            finally:
                _stop_strict(proc, logdir / "info", uid)
        outcome.launcher_code = proc.returncode
        outcome.status = _read_status(logdir / "status")
        outcome.oom_kills = cgroup.oom_kills() if cgroup else 0
    finally:
        if cgroup:
            cgroup.destroy()
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
    return outcome


def _stop_strict(proc: subprocess.Popen[bytes], info_path: Path, uid: int) -> None:
    """After a normal end bwrap has already exited, and it exits only once the sandbox's process 1
    is gone - which the kernel lets happen only after every process of the namespace is. At the
    deadline, killing process 1 ends the namespace the same way."""
    if proc.poll() is None:
        init = _sandbox_init(info_path)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if init:
                os.kill(init, signal.SIGKILL)
            else:  # not set up yet: bwrap's death takes its child along (--die-with-parent)
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if uid >= 0:  # bwrap may have died first: sweep whatever still runs as the run's uid
            kill_run(proc.pid, uid, spare=None)


def _sandbox_init(info_path: Path) -> int | None:
    """The host pid of the sandbox's process 1, from bwrap's --info-fd (None before it is out)."""
    with contextlib.suppress(OSError, ValueError, TypeError):
        pid = json.loads(info_path.read_text())["child-pid"]
        return int(pid) if int(pid) > 0 else None
    return None


# -- weak: process limits only ------------------------------------------------------------------
def run_weak(logdir: Path, interpreter: str, limits: Limits, uid: int) -> Outcome:
    workdir = Path(tempfile.mkdtemp(prefix="masgraph-sandbox-"))
    outcome = Outcome()
    try:
        shutil.copyfile(logdir / "main.py", workdir / "main.py")
        nproc = limits.max_processes if uid >= 0 else task_count(os.getuid()) + limits.max_processes
        with (
            open(logdir / "status", "wb") as status,
            open(logdir / "stdout", "wb") as out,
            open(logdir / "stderr", "wb") as err,
        ):
            config = {
                "mode": "weak",
                "uid": uid,
                "argv": [interpreter, "-s", "-P", "-B", "main.py"],
                "limits": limits.rlimits(nproc),
                "status_fd": status.fileno(),
            }
            proc = subprocess.Popen(
                [interpreter, "-I", "-c", _SUPERVISOR_SOURCE, json.dumps(config)],
                cwd=workdir,
                env=_child_env(str(workdir)),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=(status.fileno(),),
                start_new_session=True,
            )
            try:
                outcome.timed_out = _wait(proc, limits.timeout_s)
            finally:
                _stop_weak(proc, uid)
        outcome.launcher_code = proc.returncode
        outcome.status = _read_status(logdir / "status")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return outcome


def _stop_weak(proc: subprocess.Popen[bytes], uid: int) -> None:
    """Kill the code's processes (the supervisor then reaps them and exits), then make sure the
    supervisor is gone too."""
    if proc.poll() is None:
        kill_run(proc.pid, uid, spare=proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    if proc.poll() is None:  # last resort: everything, the supervisor included
        kill_run(proc.pid, uid, spare=None)
        proc.wait()


def _wait(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Whether the deadline passed first."""
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return True
    return False


def _read_status(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text.isdigit() else None


def _child_env(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": home,
        "TMPDIR": home,  # temp files land in the directory that is removed afterwards
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        # Thread pools would count against the process limit and reserve address space per thread.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
