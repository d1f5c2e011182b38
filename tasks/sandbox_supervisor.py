"""The trusted supervisor between the grader and untrusted code. Standard library only.

It is not imported: `tasks.sandbox` runs this file's source with `python -I -S -c SOURCE CONFIG`,
so it needs no file of the project inside the sandbox. CONFIG is one JSON object:
`mode` ("pid1" or "weak"), `argv` (the code's command), `limits` ([rlimit name, soft, hard]...),
`status_fd` (where the code's wait status is written) and, in weak mode, `uid`.

Both modes fork one child, which applies the resource limits and exec()s the code, reap every
process that becomes their child, and write the child's raw wait status to `status_fd` (which the
code does not inherit). If the limits cannot be applied the child exits 125 with a line
"sandbox setup failed: ..." on stderr and the code is never run.

- "pid1": inside the namespaced sandbox (bubblewrap --as-pid-1) this is process 1 of the PID
  namespace. The kernel drops every signal sent to process 1 from inside its namespace unless it
  has a handler (it has none), and it is made non-dumpable so the code cannot ptrace it either.
  When the code's main process ends it exits at once; the kernel then kills every other process
  of the namespace (daemons included).
- "weak": no namespaces. It becomes the child subreaper, so processes the code orphans are its
  children; as root the child drops every capability and switches its real uid to the run's own
  uid, so the process limit counts the run alone. When the code ends, every process of the run's
  process group or uid is killed before it exits.
"""

import contextlib
import ctypes
import json
import os
import resource
import sys
import time

PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 24, 36, 38
SETUP_FAILED = 125
LINUX = sys.platform.startswith("linux")

libc = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg: int) -> None:
    if not LINUX:  # weak mode elsewhere: the rlimits alone
        return
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {arg}) failed")


def confine(cfg: dict) -> None:
    """In the forked child: apply the limits, then become the code."""
    for name, soft, hard in cfg["limits"]:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    # Under memory pressure the code, not its supervisor, is what the OOM killer should pick.
    # (/proc/self is writable again once dumpable; exec() would make the code dumpable anyway.)
    if LINUX:
        prctl(PR_SET_DUMPABLE, 1)
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    if cfg["mode"] == "weak" and cfg["uid"] >= 0:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last_cap = int(f.read())
        for cap in range(last_cap + 1):
            prctl(PR_CAPBSET_DROP, cap)  # exec() as euid 0 then grants no capability
        os.setresuid(cfg["uid"], 0, 0)
    prctl(PR_SET_NO_NEW_PRIVS, 1)  # no setuid binaries
    os.execv(cfg["argv"][0], cfg["argv"])


def run_group_members(uid: int) -> list[int]:
    """Weak mode: live processes of this process group, or of the run's own uid."""
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


def supervise(cfg: dict, child: int) -> int | None:
    """Reap children until the code's main process is done; the wait status of that process."""
    status = None
    while True:
        try:
            pid, wait_status = os.waitpid(-1, 0 if status is None else os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == child:
            status = wait_status
            if cfg["mode"] == "pid1":
                return status  # exiting kills the rest of the namespace
        if status is not None and pid == 0:  # weak: whatever the code left running goes
            for other in run_group_members(cfg["uid"]) if LINUX else []:
                with contextlib.suppress(OSError):
                    os.kill(other, 9)
            time.sleep(0.005)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    status_fd = cfg["status_fd"]
    try:
        os.set_inheritable(status_fd, False)  # closed on exec: the code cannot forge its status
        if cfg["mode"] == "pid1":
            prctl(PR_SET_DUMPABLE, 0)
        else:
            prctl(PR_SET_CHILD_SUBREAPER, 1)
        child = os.fork()
    except BaseException as exc:
        sys.stderr.write(f"sandbox setup failed: {exc!r}\n")
        os._exit(SETUP_FAILED)
    if child == 0:
        try:
            confine(cfg)
        except BaseException as exc:
            sys.stderr.write(f"sandbox setup failed: {exc!r}\n")
            sys.stderr.flush()
        os._exit(SETUP_FAILED)
    status = supervise(cfg, child)
    os.write(status_fd, f"{status}\n".encode())
    os._exit(0)


if __name__ == "__main__":
    main()
