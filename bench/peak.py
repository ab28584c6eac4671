"""Peak memory of this process, for the benchmarks."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mib() -> float:
    """VmHWM where Linux has it: ru_maxrss survives exec and so would report the parent's."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Runs the command and reports its peak: from a small launcher, because a child's
# ru_maxrss starts at the high-water mark of the process it was started from (the
# memory of a vfork/fork parent is counted at exec), and a benchmark holding its test
# data is large.
_LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(process.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, status)
"""


def run_measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of ``command``: the process or its largest worker."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    if out[2] != "0":
        raise RuntimeError(f"{command[0]} ended with status {out[2]}")
    return float(out[0]), int(out[1]) / 1024
