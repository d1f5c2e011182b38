"""A memory cap for a sandbox run's whole process tree: one memory cgroup per run.

The run's cgroup is created under the caller's own memory cgroup (cgroup v2 when the memory
controller is delegated there, else the cgroup v1 memory hierarchy), limited, and removed after
the run. The launcher moves itself into it before anything of the run is started, so every
process of the run (and the pages of its tmpfs temp dir) is charged to it. Swap is capped too, so
the limit cannot be side-stepped by swapping.

Creating cgroups needs write access to the caller's cgroup (normally root). Where that is not
possible `create()` returns None and the caller falls back to per-process limits.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MemoryCgroup", "create", "unavailable_reason"]


@dataclass(frozen=True)
class MemoryCgroup:
    path: Path
    version: int  # 1 or 2

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in this cgroup."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        with contextlib.suppress(OSError, ValueError):
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(pid) for pid in self.procs_file.read_text().split()]
        return []

    def destroy(self, timeout_s: float = 5) -> None:
        """Kill whatever is still in the cgroup, then remove it."""
        deadline = time.monotonic() + timeout_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            if self.version == 2 and (self.path / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (self.path / "cgroup.kill").write_text("1")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        with contextlib.suppress(OSError):  # busy only if a process outlived SIGKILL: left behind, empty
            self.path.rmdir()


def create(limit_bytes: int) -> MemoryCgroup | None:
    """A fresh cgroup capped at `limit_bytes` of memory (and no more swap), or None."""
    found = _parent()
    if found is None:
        return None
    version, parent = found
    group = MemoryCgroup(parent / f"masgraph-sandbox-{uuid.uuid4().hex[:12]}", version)
    try:
        group.path.mkdir()
    except OSError:
        return None
    try:
        if version == 2:
            _write(group.path / "memory.max", limit_bytes)
            _write(group.path / "memory.swap.max", 0, optional=True)
            _write(group.path / "memory.oom.group", 1, optional=True)  # an OOM ends the whole run
        else:
            _write(group.path / "memory.limit_in_bytes", limit_bytes)
            _write(group.path / "memory.memsw.limit_in_bytes", limit_bytes, optional=True)
    except OSError:
        group.destroy()
        return None
    return group


def unavailable_reason() -> str | None:
    """None when runs get a memory cgroup; else why not (for messages and test skips)."""
    return None if _parent() is not None else "no writable memory cgroup (not root, or no memory controller)"


def _write(path: Path, value: int, *, optional: bool = False) -> None:
    try:
        path.write_text(str(value))
    except OSError:
        if not optional:
            raise


@functools.cache
def _parent() -> tuple[int, Path] | None:
    """(version, directory) of the caller's own memory cgroup, if we may create children there."""
    if not os.path.isfile("/proc/self/cgroup"):
        return None
    for version, path in _candidates():
        probe = path / f"masgraph-sandbox-probe-{uuid.uuid4().hex[:12]}"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError:
            continue
        return version, path
    return None


def _candidates() -> list[tuple[int, Path]]:
    """Memory cgroup directories of this process: v2 first (if memory is delegated), then v1."""
    own: dict[str, str] = {}  # controller ("" for v2) -> path
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            own[controller] = path
    found = []
    for fstype, root, mount_point, options in _cgroup_mounts():
        key = "" if fstype == "cgroup2" else ("memory" if "memory" in options else None)
        if key is None or key not in own or not own[key].startswith(root):
            continue
        directory = Path(mount_point) / own[key][len(root) :].lstrip("/")
        if fstype == "cgroup2":
            with contextlib.suppress(OSError):
                if "memory" in (directory / "cgroup.subtree_control").read_text().split():
                    found.insert(0, (2, directory))
        else:
            found.append((1, directory))
    return found


def _cgroup_mounts() -> list[tuple[str, str, str, list[str]]]:
    """(fstype, root within the hierarchy, mount point, super options) of each cgroup mount."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, super_options = fields[separator + 1], fields[separator + 3]
        if fstype in ("cgroup", "cgroup2"):
            mounts.append((fstype, fields[3], fields[4], super_options.split(",")))
    return mounts
