"""Benchmark: start-up cost of the code sandbox per program, previous sandbox vs this one.

    .venv/bin/python bench/sandbox_startup.py --runs 20 --old-rev 86c604d

Runs the program `pass` N times through `run_untrusted` of each sandbox and reports the median
(and min/max) wall time per run: the cost a graded code item pays before its own work. The
previous sandbox is loaded from git (`--old-rev`, the commit before the namespaced sandbox);
"weak" is this sandbox's opt-in mode without namespaces. Writes bench/results/sandbox_startup.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks import sandbox, sandbox_cgroup

ROOT = Path(__file__).resolve().parent.parent


def load_old(rev: str) -> Callable[..., Any]:
    """`run_untrusted` of tasks/sandbox.py at git revision `rev` (a self-contained module)."""
    source = subprocess.run(
        ["git", "show", f"{rev}:tasks/sandbox.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-sandbox-")) / "old_sandbox.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_sandbox", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_sandbox"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.run_untrusted


def measure(contenders: dict[str, Callable[[], Any]], runs: int) -> dict[str, list[float]]:
    """Wall times per contender; rounds interleave them, so load changes hit all alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(runs + 1):  # round 0 is a warm-up: page cache, first-use probes
        for name, run in contenders.items():
            started = time.perf_counter()
            result = run()
            if round_:
                times[name].append(time.perf_counter() - started)
            if not result.ok:
                raise SystemExit(f"`pass` failed in the {name} sandbox: {result.reason}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--old-rev", default="86c604d", help="a commit with the previous sandbox")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "sandbox_startup.md"))
    args = parser.parse_args()
    load = os.getloadavg()[0]  # other work on the machine shows in these figures

    contenders: dict[str, Callable[[], Any]] = {}
    old = load_old(args.old_rev)
    contenders[f"previous ({args.old_rev})"] = lambda: old("pass")
    unavailable = sandbox.strict_unavailable()
    if unavailable is None:
        contenders["strict (namespaces)"] = lambda: sandbox.run_untrusted("pass", mode="strict")
    contenders["weak (opt-in)"] = lambda: sandbox.run_untrusted("pass", mode="weak")

    rows = []
    for name, times in measure(contenders, args.runs).items():
        median, low, high = (statistics.median(times) * 1000, min(times) * 1000, max(times) * 1000)
        rows.append(f"| {name} | {median:.0f} | {low:.0f} | {high:.0f} |")
        print(rows[-1], flush=True)
    lines = [
        f"# Sandbox start-up: `pass`, {args.runs} interleaved runs each (after one warm-up round)",
        "",
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{'root' if os.geteuid() == 0 else 'non-root'}; memory cgroup: "
        f"{sandbox_cgroup.unavailable_reason() or 'yes'}; strict mode: {unavailable or 'available'}; "
        f"load average before: {load:.1f}.",
        "",
        "| sandbox | median (ms) | min (ms) | max (ms) |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    Path(args.output).write_text("\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
