"""The web page under test: the real `formtool web` in its own process, Debian's
Chromium driven by Playwright (no browser download), axe-core from npm."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run"]


@dataclass
class Web:
    """A running `formtool web`: its address (with and without the token), its workspace."""

    process: subprocess.Popen[str]
    url: str  # with ?token=
    base: str  # http://127.0.0.1:PORT
    root: Path
    port: int


@contextmanager
def running(root: Path, *, env: dict[str, str] | None = None) -> Iterator[Web]:
    """Start `formtool --workspace ROOT web --no-browser --port 0`, read its line, and
    stop it with Ctrl+C (SIGINT) at the end, as a user would."""
    environment = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                   **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "formtool", "--workspace", str(root), "web", "--no-browser",
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=environment)
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"formtool läuft: (http://127\.0\.0\.1:(\d+))/\?token=(\S+)", line)
    assert found, line + process.stdout.read()
    web = Web(process, f"{found.group(1)}/?token={found.group(3)}", found.group(1), root,
              int(found.group(2)))
    try:
        yield web
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def snapshot(root: Path) -> dict[str, str]:
    """Every file of the workspace by content, and state.db by its rows (its WAL and
    the page's log are bookkeeping)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name in ("web.log",) or path.name.endswith(
                ("-wal", "-shm", ".lock")):
            continue
        if path.name == "state.db":
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                out[str(path.relative_to(root))] = hashlib.sha256(
                    "\n".join(db.iterdump()).encode()).hexdigest()
            continue
        out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (WCAG 2.x A and AA rules)."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag', values:
               ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}}))
           .violations.map(v => ({id: v.id, help: v.help,
                                  nodes: v.nodes.map(n => n.html).slice(0, 3)}))""")
    return result


def wait_done(page: Any, timeout: float = 60.0) -> None:
    """On a job's page: until it says „Fertig“ (the script reloads it when done)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if "Fertig." in (page.text_content("#stand") or ""):
            return
        page.wait_for_timeout(300)
    raise AssertionError("job not done: " + (page.text_content("main") or ""))
