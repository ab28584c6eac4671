"""One sender (or mailbox reader) per workspace at a time.

The lock is an exclusive SQLite lock on ``.formtool/lauf.lock``: SQLite takes it
with the operating system's file locks on Windows, macOS and Linux alike, and the
operating system drops it when the process ends in any way (SIGKILL, a crash, a
closed window), so a dead run can never block the next one. Who holds it, and
since when, stands in ``.formtool/lauf.json`` for the message to the second run;
a ``lauf.json`` found by a run that got the lock is the trace of a run that died.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from formtool.errors import FormtoolError

LOCK_NAME = "lauf.lock"
INFO_NAME = "lauf.json"


class LockedError(FormtoolError):
    """Another run holds the workspace."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) the lock."""

    command: str
    pid: int
    host: str
    started: str  # ISO time

    def describe(self) -> str:
        try:
            when = dt.datetime.fromisoformat(self.started).strftime("%d.%m.%Y um %H:%M:%S")
        except ValueError:
            when = self.started
        where = f" auf {self.host}" if self.host and self.host != _hostname() else ""
        return f"„{self.command}“, gestartet am {when}, Prozess {self.pid}{where}"


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _read_info(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Holder(str(data["command"]), int(data["pid"]), str(data.get("host", "")),
                      str(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _unusable(path: Path, exc: BaseException) -> str:
    if not os.access(path.parent, os.W_OK):
        return (f"{path.parent}: schreibgeschützt (keine Schreibrechte); formtool muss dort "
                "seine Sperrdatei und das Journal schreiben können.")
    if "full" in str(exc) or getattr(exc, "errno", None) == 28:
        return f"{path}: der Datenträger ist voll; bitte Platz schaffen und erneut versuchen."
    return f"{path}: Sperrdatei nicht nutzbar ({exc})."


class RunLock:
    """``with RunLock(state_dir, "mail send"):`` – refuses at once when taken."""

    def __init__(self, state_dir: Path, command: str) -> None:
        self.lock_path = state_dir / LOCK_NAME
        self.info_path = state_dir / INFO_NAME
        self.command = command
        self.db: sqlite3.Connection | None = None
        self.note = ""  # set when a crashed run's lock was taken over

    def acquire(self) -> None:
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            # half a second of patience: `status` peeks at the lock for an instant
            db = sqlite3.connect(self.lock_path, timeout=0.5, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise LockedError(_unusable(self.lock_path, exc)) from None
        try:
            db.execute("BEGIN EXCLUSIVE")
        except sqlite3.Error as exc:
            db.close()
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise LockedError(_unusable(self.lock_path, exc)) from None
            holder = _read_info(self.info_path)
            who = holder.describe() if holder else "ein anderer formtool-Aufruf"
            raise LockedError(f"In diesem Arbeitsordner läuft schon ein Versand: {who}. "
                              "Es darf immer nur einer laufen, damit niemand eine E-Mail "
                              "doppelt bekommt; bitte warten, bis er fertig ist.") from None
        self.db = db
        previous = _read_info(self.info_path)
        if previous is not None:
            self.note = (f"Ein früherer Lauf ({previous.describe()}) wurde nicht ordentlich "
                         "beendet; seine Sperre ist übernommen.")
        info = {"command": self.command, "pid": os.getpid(), "host": _hostname(),
                "started": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        with contextlib.suppress(OSError):  # only for the message to a second run
            self.info_path.write_text(json.dumps(info), encoding="utf-8")

    def release(self) -> None:
        if self.db is None:
            return
        with contextlib.suppress(OSError):
            self.info_path.unlink()
        self.db.close()  # ends the transaction: the lock is free
        self.db = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def active(state_dir: Path) -> bool:
    """Whether a run holds the lock right now (without taking it)."""
    path = state_dir / LOCK_NAME
    if not path.exists():
        return False
    try:
        db = sqlite3.connect(path, timeout=0, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        db.execute("BEGIN EXCLUSIVE")
    except sqlite3.Error:
        return True
    finally:
        db.close()
    return False
