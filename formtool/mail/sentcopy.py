"""Copies of sent mail in the mailbox's Sent folder (``[imap] sent_copy``), each once.

Before a message's DATA its bytes are kept in ``.formtool/gesendet/`` (the spool);
after the server's 250 a thread appends them over IMAP to the Sent folder, byte for
byte, and removes the file. A run killed between the send and the append leaves the
file, and the next ``mail send`` appends it – after searching the folder for its
Message-ID, so a run killed between the append and the removal never appends twice.
A message whose send did not certainly succeed (failed, deferred, unknown) is dropped
from the spool: a copy in Sent would claim that it went out.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from formtool import atomic
from formtool.addresses import normalise
from formtool.errors import FormtoolError
from formtool.mail.imap import Connection, ImapError
from formtool.mail.oauth import Secret
from formtool.mail.smtp import Built, dropped
from formtool.state.store import Journal, SendState
from formtool.workspace import ImapSettings

SPOOL = "gesendet"  # under the workspace's state folder


@dataclass
class CopyReport:
    """What became of the copies: appended now, found already there (after a crash),
    still waiting in the spool (and why)."""

    folder: str = ""
    appended: int = 0
    present: int = 0
    waiting: int = 0
    problem: str = ""


def spool_name(message_id: str) -> str:
    return hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()[:40] + ".eml"


def _headers(path: Path) -> tuple[str, datetime | None, str]:
    """Message-ID, date and recipients of a spooled message (its head only)."""
    with path.open("rb") as fh:
        head = BytesHeaderParser().parse(fh)
    when = None
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = parsedate_to_datetime(str(head.get("Date", "")))
    return (str(head.get("Message-ID", "")).strip(), when,
            " ".join(str(head.get(h, "")) for h in ("To", "Cc")))


def waiting(state_dir: Path) -> list[Path]:
    folder = state_dir / SPOOL
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


def drop_for(state_dir: Path, address: str) -> int:
    """Remove spooled copies addressed to ``address`` (``formtool forget``): the very
    address, never one that merely contains it."""
    count = 0
    wanted = normalise(address)
    for path in waiting(state_dir):
        with contextlib.suppress(OSError):
            recipients = {normalise(a) for _, a in getaddresses([_headers(path)[2]]) if a}
            if wanted in recipients:
                path.unlink()
                count += 1
    return count


@contextlib.contextmanager
def _for_copies() -> Iterator[None]:
    """A mailbox problem before sending, said as what it is for and how to do without."""
    try:
        yield
    except ImapError as exc:
        raise ImapError(f"Kopie in „Gesendet“ ([imap] sent_copy): {exc} Ohne Kopie senden: "
                        "[imap] sent_copy = false.", detail=exc.detail) from None


class SentCopies:
    """``check()`` before asking, ``start()`` before the first send, ``keep``/``sent`` per
    message from the sending threads, ``finish()`` after the last."""

    def __init__(self, settings: ImapSettings, journal: Journal, state_dir: Path) -> None:
        self.settings = settings
        self.journal = journal
        self.spool = state_dir / SPOOL
        self.report = CopyReport()
        self._queue: queue.Queue[tuple[Path, bool] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._box: Connection | None = None

    def check(self, password: Secret) -> str:
        """Log in and find the Sent folder; ImapError names what is wrong."""
        with _for_copies(), Connection(self.settings, password) as box:
            return box.sent_folder(self.settings.sent_folder)

    def pending(self) -> int:
        """Copies of earlier runs still to be appended."""
        return len(waiting(self.spool.parent))

    def start(self, password: Secret) -> None:
        """Connect (ImapError before anything is sent), queue what earlier runs left,
        and append in the background from now on."""
        with _for_copies():
            box = Connection(self.settings, password).open()
            try:
                self.report.folder = box.sent_folder(self.settings.sent_folder)
                box.select(self.report.folder)
            except BaseException:
                box.close()
                raise
        self._box = box
        self.spool.mkdir(parents=True, exist_ok=True)
        for path in self._sweep():
            self._queue.put((path, True))
        self._thread = threading.Thread(target=self._append_all, daemon=True,
                                        name="sent-copy")
        self._thread.start()

    def keep(self, built: Built) -> None:
        """Before DATA: the bytes as they will go out (no fsync: a power cut may lose a
        copy, never duplicate one)."""
        self.spool.mkdir(parents=True, exist_ok=True)  # deleted meanwhile: made again
        atomic.write_bytes(self.spool / spool_name(built.message_id), built.data, fsync=False)

    def sent(self, built: Built) -> None:
        """After the 250: append it."""
        self._queue.put((self.spool / spool_name(built.message_id), False))

    def finish(self, *, interrupted: bool = False) -> CopyReport:
        """Wait for the appends (not after Ctrl-C: what is left waits for the next run),
        drop the copies of messages that did not go out."""
        if interrupted:
            self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
        if self._box is not None:
            self._box.close()
            self._box = None
        self._sweep()
        self.report.waiting = self.pending()
        return self.report

    def _sweep(self) -> list[Path]:
        """Spooled copies whose send is recorded as sent; the others are removed, and so
        is a half-written one of a killed run (no run writes while one holds the lock)."""
        if self.spool.is_dir():
            for partial in self.spool.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    partial.unlink()
        keep = []
        for path in waiting(self.spool.parent):
            try:
                message_id = _headers(path)[0]
            except OSError:
                continue
            record = self.journal.by_message_id(message_id) if message_id else None
            if record is not None and record.state == SendState.SENT:
                keep.append(path)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        return keep

    def _append_all(self) -> None:
        box = self._box
        assert box is not None
        while True:
            item = self._queue.get()
            if item is None or self._stop.is_set():
                return
            if self.report.problem:
                continue  # the mailbox failed: the rest waits in the spool
            path, recovered = item
            try:
                self._append(box, path, recovered)
            except FormtoolError as exc:
                self.report.problem = str(exc)
            except Exception as exc:  # the connection broke or timed out: later
                self.report.problem = f"Postfach {self.settings.host}: {dropped(exc)}"

    def _append(self, box: Connection, path: Path, recovered: bool) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        message_id, when, _ = _headers(path)
        folder = self.report.folder
        # A message sent in this run is new to the folder (its Message-ID was made for
        # it); one left by a killed run may have been appended just before the kill.
        if recovered and message_id and box.has_message(message_id):
            self.report.present += 1
        else:
            box.append(folder, data, when)
            self.report.appended += 1
        path.unlink()
