"""Process and uid bookkeeping for the sandbox: a fresh uid per run, and /proc sweeps.

As root each run gets a uid no process uses (`reserve_uid`): in the namespaced sandbox the code's
processes run as that uid outside their user namespace, and in weak mode as their real uid. Either
way the process limit counts the run alone, and the run cannot signal anything else.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import NamedTuple

__all__ = ["kill_run", "release_uid", "reserve_uid", "task_count"]

_UID_LOCK = threading.Lock()
_UIDS_IN_USE: set[int] = set()


class ProcEntry(NamedTuple):
    pid: int
    pgid: int
    ruid: int
    zombie: bool
    threads: int


def proc_entries() -> list[ProcEntry]:
    """Every process visible in /proc (none where there is no /proc)."""
    entries = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            status = Path(f"/proc/{name}/status").read_text().splitlines()
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "(comm)", which may contain spaces
        uid_line = next((line for line in status if line.startswith("Uid:")), "Uid:\t-1")
        threads_line = next((line for line in status if line.startswith("Threads:")), "Threads:\t1")
        entries.append(
            ProcEntry(
                int(name),
                int(fields[2]),
                int(uid_line.split()[1]),
                fields[0] == "Z",
                int(threads_line.split()[1]),
            )
        )
    return entries


def task_count(uid: int) -> int:
    """Processes + threads of `uid` now: what RLIMIT_NPROC compares against."""
    return sum(e.threads for e in proc_entries() if e.ruid == uid and not e.zombie)


def kill_run(pgid: int, uid: int, *, spare: int | None) -> None:
    """SIGKILL every process of the run's group and (if uid >= 0) of its uid, except `spare`,
    until none is left alive."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [
            e.pid
            for e in proc_entries()
            if e.pid != spare and not e.zombie and (e.pgid == pgid or (uid >= 0 and e.ruid == uid))
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


def reserve_uid() -> int:
    """A uid no process uses now, within this user namespace's mapping, reserved for one run."""
    low, high = _uid_window()
    with _UID_LOCK:
        used = {e.ruid for e in proc_entries()} | _UIDS_IN_USE
        for _ in range(1000):
            uid = random.randrange(low, high)
            if uid not in used:
                _UIDS_IN_USE.add(uid)
                return uid
    raise RuntimeError("no free uid for the sandbox")


def release_uid(uid: int) -> None:
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
