"""What a sandbox run may see and how it is started: the bubblewrap command and its launch chain.

The namespaced ("strict") sandbox is bubblewrap with every namespace unshared (user, mount, PID,
network, IPC, UTS, cgroup) and further user namespaces disabled. Its filesystem is built from
nothing: a read-only /usr (and the top-level /bin, /lib... links or directories that point into
it), the dynamic linker's configuration, read-only the directories of the Python interpreter
(its installation and, for a virtual environment, the environment: the code may import its
packages), a fresh /proc, five harmless devices, and a size-limited tmpfs at /tmp that is the
only writable place (also behind /dev/shm). Nothing else of the host exists inside: no /etc
beyond the linker files, no /home, /root, /var, /run, no project tree, no caller files.

As root the chain that starts bubblewrap makes the network namespace itself (`unshare --net`:
owned by the initial user namespace, its loopback stays down for good; bwrap's own would be up),
moves itself into the run's memory cgroup, then switches to the run's own unprivileged uid
(`setpriv`), so bubblewrap and the code hold no privilege and their process limit counts the run
alone. Interpreter directories that uid cannot
reach (e.g. /root/.pyenv, under the root-only /root) are first bind-mounted onto world-reachable
empty directories in a private mount namespace of the chain (`unshare --mount`), never on the
host; bubblewrap then mounts those, read-only, at their original paths - and nothing else of
/root.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "MODES",
    "WORKDIR",
    "Launch",
    "Tools",
    "find_tools",
    "interpreter_roots",
    "strict_command",
]

ENV_VAR = "MASGRAPH_SANDBOX"
MODES = ("strict", "weak")
WORKDIR = "/tmp"  # the code's working directory, HOME and TMPDIR inside the sandbox
SANDBOX_UID = 1000  # the code's uid inside its user namespace (no other uid is mapped there)
_DEVICES = ("null", "zero", "full", "random", "urandom")
_TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_LINKER_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")

# Run by /bin/sh as root, after `unshare` and before `setpriv`: join the run's cgroup (so every
# later process is in it), then the bind mounts that make root-only interpreter directories
# reachable (in the chain's private mount namespace). Arguments: cgroup.procs path ("" for none), mount binary, SOURCE TARGET pairs, "--",
# the rest of the command.
_CHAIN_SCRIPT = r"""
procs=$1 mount=$2
shift 2
if [ -n "$procs" ] && ! echo 0 > "$procs"; then
    echo "sandbox setup failed: cannot join the memory cgroup" >&2; exit 125
fi
while [ "$1" != "--" ]; do
    "$mount" --bind "$1" "$2" || { echo "sandbox setup failed: cannot stage $1" >&2; exit 125; }
    shift 2
done
shift
exec "$@"
"""


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the programs the strict sandbox needs (the last three only as root)."""

    bwrap: str
    sh: str = "/bin/sh"
    unshare: str | None = None
    setpriv: str | None = None
    mount: str | None = None


@dataclass(frozen=True)
class Launch:
    """One strict run's command line and the fds it must inherit."""

    argv: list[str]
    pass_fds: tuple[int, ...]


@functools.cache
def find_tools() -> Tools | str:
    """The programs the strict sandbox runs, or why it cannot run here (one line)."""
    if not sys.platform.startswith("linux"):
        return f"namespaces need Linux (this is {sys.platform})"
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    found = {name: shutil.which(name, path=path) for name in ("bwrap", "unshare", "setpriv", "mount")}
    if found["bwrap"] is None:
        return "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)"
    if os.geteuid() != 0:
        return Tools(bwrap=found["bwrap"])
    missing = [name for name in ("unshare", "setpriv", "mount") if found[name] is None]
    if missing:
        return f"util-linux tools missing: {', '.join(missing)}"
    return Tools(found["bwrap"], unshare=found["unshare"], setpriv=found["setpriv"], mount=found["mount"])


def interpreter_roots(python: str) -> list[Path]:
    """The directories the interpreter needs besides /usr: its installation (for a virtual
    environment also the environment), outermost first, without ones inside /usr or each other."""
    exe = Path(python)
    prefix = Path(os.path.realpath(exe.parent)).parent  # .../bin/.. (a /bin link leads to /usr)
    candidates = [prefix, exe.resolve().parent.parent]
    config = prefix / "pyvenv.cfg"
    if config.is_file():
        for line in config.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                candidates.append(Path(value.strip()).parent)
    roots: list[Path] = []
    for path in sorted({Path(os.path.abspath(p)) for p in candidates}, key=lambda p: (len(p.parts), p)):
        if len(path.parts) < 2 or path.is_relative_to("/usr") or any(path.is_relative_to(r) for r in roots):
            continue
        roots.append(path)
    return roots


def strict_command(
    tools: Tools,
    *,
    python: str,
    supervisor: list[str],
    disk_bytes: int,
    source_fd: int,
    info_fd: int,
    keep_fds: tuple[int, ...],
    stage_dir: Path | None,
    uid: int,
    cgroup_procs: Path | None,
) -> Launch:
    """The command that starts one strict run. `stage_dir` (root only) is an empty directory
    that `uid` can traverse, for staging interpreter directories it could not reach."""
    staged: list[tuple[Path, Path]] = []  # (host source, world-reachable stage point)
    binds: list[tuple[Path, Path]] = []  # (path bubblewrap binds, path inside)
    for root in interpreter_roots(python):
        if stage_dir is None or _world_reachable(root):
            binds.append((root, root))
        else:
            point = stage_dir / str(len(staged))
            point.mkdir(mode=0o755)
            point.chmod(0o755)  # not narrowed by the umask
            staged.append((root, point))
            binds.append((point, root))
    as_root = os.geteuid() == 0
    options = _bwrap_options(binds, disk_bytes, source_fd, info_fd, own_network=not as_root)
    bwrap = [tools.bwrap, *options, "--", *supervisor]
    fds = (source_fd, info_fd, *keep_fds)
    if not as_root:
        return Launch(bwrap, fds)
    assert tools.setpriv and tools.mount and tools.unshare  # find_tools() checked them for root
    drop = [tools.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    pairs = [str(p) for pair in staged for p in pair]
    chain = [tools.sh, "-c", _CHAIN_SCRIPT, "sh", str(cgroup_procs or ""), tools.mount, *pairs, "--"]
    # A network namespace made by root belongs to the initial user namespace, so nothing in the
    # sandbox can bring its loopback up (bwrap's own --unshare-net would configure one).
    private_mounts = ["--mount", "--propagation", "private"] if staged else []
    return Launch([tools.unshare, "--net", *private_mounts, "--", *chain, *drop, *bwrap], fds)


def _bwrap_options(
    binds: list[tuple[Path, Path]], disk_bytes: int, source_fd: int, info_fd: int, *, own_network: bool
) -> list[str]:
    options = [
        *("--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"),
        *(["--unshare-net"] if own_network else []),  # else the chain made one, with no loopback
        "--disable-userns",
        *("--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox"),
        # Process 1 is our supervisor; bwrap dies if its parent (the grader) does, and so then do
        # the namespace and everything in it. A new session stops TIOCSTI on a terminal.
        *("--as-pid-1", "--die-with-parent", "--new-session"),
        *("--ro-bind", "/usr", "/usr"),
    ]
    for name in _TOP_LEVEL:
        host = Path("/", name)
        if host.is_symlink():
            options += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir() and not host.resolve().is_relative_to("/usr"):
            options += ["--ro-bind", str(host), str(host)]
    for path in _LINKER_FILES:
        options += ["--ro-bind-try", path, path]
    options += ["--proc", "/proc"]
    for device in _DEVICES:
        options += ["--dev-bind-try", f"/dev/{device}", f"/dev/{device}"]
    options += ["--symlink", "/proc/self/fd", "/dev/fd"]
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        options += ["--symlink", f"/proc/self/fd/{number}", f"/dev/{name}"]
    options += ["--size", str(disk_bytes), "--tmpfs", WORKDIR, "--symlink", WORKDIR, "/dev/shm"]
    for source, target in binds:  # after the tmpfs, which would hide an interpreter kept in /tmp
        options += ["--ro-bind", str(source), str(target)]
    options += ["--file", str(source_fd), f"{WORKDIR}/main.py"]
    # The root (and /dev in it) is bwrap's own tmpfs: read-only, so /tmp is the one writable place.
    options += ["--remount-ro", "/", "--chdir", WORKDIR, "--info-fd", str(info_fd)]
    return options


def _world_reachable(path: Path) -> bool:
    """Whether any user may traverse to `path` and list it (checked on the resolved path)."""
    resolved = path.resolve()
    for part in [*reversed(resolved.parents), resolved]:
        try:
            mode = part.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH or (part == resolved and not mode & stat.S_IROTH):
            return False
    return True
