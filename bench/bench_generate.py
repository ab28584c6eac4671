"""Benchmark: blank forms per second and peak memory, per shipped definition.

    .venv/bin/python bench/bench_generate.py [N]

Lays out N forms (default 1,000) of each shipped definition in memory and
prints forms/s and the process's peak RSS.
"""

from __future__ import annotations

import resource
import sys
import time

from formtool import workspace
from formtool.pdf import formdef, layout


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for path in formdef.definitions(workspace.shipped_forms_dir()):
        form = formdef.load(path)
        start = time.perf_counter()
        size = 0
        for _ in range(count):
            size = len(layout.render(form, alliance=workspace.DEFAULT_ALLIANCE))
        elapsed = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{form.id:<16} {count} forms in {elapsed:6.2f} s = {count / elapsed:6.1f} forms/s,"
              f" {size / 1024:.0f} KiB each, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
