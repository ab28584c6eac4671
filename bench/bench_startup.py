"""Benchmark: how long a command takes before it answers, side by side with mailmerge.

    .venv/bin/pip install mailmerge        # the reference tool (PyPI)
    .venv/bin/python bench/bench_startup.py [ROUNDS]     (default 15)

Whole processes, as a user starts them: ``python -c pass`` (the floor),
``mailmerge --help``, and ``formtool --help``, ``formtool status`` (in a workspace
that has sent 40 messages), ``formtool forms list``. Rounds are interleaved and the
median is reported (this machine is shared: compare the ratios).

formtool is installed as users get it (a regular install, not the developers'
editable one, whose import hook alone costs ~20 ms) into a scratch environment
that borrows the dependencies from this one; both tools run as ``python -m``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def installed(root: Path) -> Path:
    """A scratch environment with formtool installed regularly; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")],
                   check=True)
    # what a regular install puts in site-packages: the package folder, compiled (pip
    # compiles at install time; PYTHONDONTWRITEBYTECODE would else recompile every start)
    shutil.copytree(REPO / "formtool", root / "site" / "formtool",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "site")], check=True)
    borrowed = sysconfig.get_paths()["purelib"]
    [site] = (root / "venv" / "lib").glob("python*/site-packages")
    (site / "formtool-bench.pth").write_text(f"{root / 'site'}\n{borrowed}\n",
                                             encoding="utf-8")
    return root / "venv" / "bin" / "python"


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run([str(BIN / "formtool"), "demo", "--dir", str(root / "ws")], check=True,
                       stdout=subprocess.DEVNULL)
        ws = root / "ws"
        python = str(installed(root))
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "mailmerge --help": [python, "-m", "mailmerge", "--help"],
            "formtool --help": [python, "-m", "formtool", "--help"],
            "formtool status": [python, "-m", "formtool", "status"],
            "formtool forms list": [python, "-m", "formtool", "forms", "list"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        env_note = "regular install"
        for _ in range(2):  # compile the .pyc files first
            for argv in commands.values():
                timed(argv, ws)
        for _ in range(rounds):
            for name, argv in commands.items():
                times[name].append(timed(argv, ws))
        reference = statistics.median(times["mailmerge --help"])
        print(f"start-up, median of {rounds} interleaved rounds (formtool: {env_note}, "
              f"{os.cpu_count()} cores)")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:22s} {median * 1000:6.0f} ms  = {median / reference:4.2f}x "
                  "mailmerge --help")


if __name__ == "__main__":
    main()
