"""``formtool mail fetch --from``: the mailbox, as exported files, back into formtool.

Reads an mbox file (Thunderbird's local folders), a Maildir or a folder of .eml files
with the standard library's ``mailbox``/``email`` and does with each message what the
coordinator would: a returned form is saved under ``ruecklaeufe/`` and imported; an
"Abmelden" becomes an opt-out; a delivery report marks the send undeliverable; an
auto-reply is noted; a reply and anything unclear is listed to be read. Each message
is handled once (``inbound`` in state.db); a message whose forms were saved but not yet
imported is handled again (the import's dedupe keeps the rows single).
"""

from __future__ import annotations

import hashlib
import itertools
import mailbox
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from formtool.addresses import is_valid_email, normalise
from formtool.data.filenames import safe_filename
from formtool.errors import FormtoolError
from formtool.mail.inbound import MAX_MESSAGE, Big, Inbound, Kind, classify, head_of
from formtool.state.runlock import RunLock
from formtool.state.store import BOUNCED, Journal, Send, Store
from formtool.usecases import importing
from formtool.workspace import Workspace

RETURNS_DIR = "ruecklaeufe"
TO_READ_SHOWN = 50  # messages to read listed at the end of a run (all: status --antworten)


class FetchError(FormtoolError):
    """The source cannot be read."""


@dataclass
class Handled:
    """One message and what became of it, in German."""

    where: str  # "posteingang.mbox, Nachricht 12" or a file name
    kind: Kind
    sender: str
    subject: str
    note: str = ""
    look: bool = False  # the coordinator should read it


@dataclass
class Fetched:
    counts: Counter[Kind] = field(default_factory=Counter)
    earlier: int = 0  # handled by an earlier run
    saved: list[Path] = field(default_factory=list)
    mail: dict[Path, tuple[str, str, str]] = field(default_factory=dict)  # From, Date, ID
    imported: importing.Imported | None = None
    not_imported: list[importing.FileReport] = field(default_factory=list)  # scans, Word …
    to_read: list[Handled] = field(default_factory=list)  # the first TO_READ_SHOWN of them
    to_read_total: int = 0


def messages(source: Path) -> Iterator[tuple[str, bytes | Big]]:
    """(where, bytes) of every message in an mbox file, a Maildir, a folder of .eml
    files or one .eml file, in a stable order; of a file too big to read, its head."""
    if source.is_file() and source.suffix.lower() == ".eml":
        yield source.name, _read(source)
        return
    if source.is_file():
        box = mailbox.mbox(source, create=False)
        try:
            for number, key in enumerate(box.iterkeys(), 1):
                with box.get_file(key) as fh:  # never more than MAX_MESSAGE in memory
                    data = fh.read(MAX_MESSAGE + 1)
                    if len(data) > MAX_MESSAGE:
                        fh.seek(0, 2)
                        yield (f"{source.name}, Nachricht {number}",
                               Big(head_of(data[:256 * 1024]), fh.tell()))
                        continue
                yield f"{source.name}, Nachricht {number}", data
        finally:
            box.close()
        return
    if (source / "cur").is_dir() and (source / "new").is_dir():
        # a Maildir is one file per message (the key is its name before ":2,flags")
        files = [p for sub in ("new", "cur") for p in (source / sub).iterdir()
                 if p.is_file() and not p.name.startswith(".")]
        for path in sorted(files, key=lambda p: re.split("[:!]", p.name, maxsplit=1)[0]):
            yield f"{source.name}/{path.name}", _read(path)
        return
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*.eml") if p.is_file()):
            yield str(path.relative_to(source)), _read(path)
        return
    raise FetchError(f"{source}: nicht gefunden (erwartet: eine mbox-Datei, ein Maildir-Ordner "
                     "oder ein Ordner mit .eml-Dateien).")


def _read(path: Path) -> bytes | Big:
    size = path.stat().st_size
    if size <= MAX_MESSAGE:
        return path.read_bytes()
    with path.open("rb") as fh:
        return Big(head_of(fh.read(256 * 1024)), size)


def _saved(folder: Path, name: str, data: bytes) -> Path:
    """The attachment under ``folder`` with a safe, readable, unique name; the same
    bytes saved before keep their file (a second run saves nothing twice)."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) > 5:
        stem, suffix = name, "bin"
    base = safe_filename(stem or "Anhang", max_length=80) or "Anhang"
    suffix = safe_filename(suffix.lower(), max_length=5) or "bin"
    digest = hashlib.sha256(data).digest()
    for number in range(1, 10_000):
        path = folder / (f"{base}.{suffix}" if number == 1 else f"{base} ({number}).{suffix}")
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return path
        if path.stat().st_size == len(data) and hashlib.sha256(path.read_bytes()).digest() \
                == digest:
            return path
    raise FetchError(f"{folder}: zu viele Dateien namens {base}.{suffix}.")


class _Run:
    """One pass over messages: each handled once, forms imported at the end."""

    def __init__(self, ws: Workspace, journal: Journal, dry_run: bool,
                 on_message: Callable[[Handled], None]) -> None:
        self.ws, self.journal, self.dry_run, self.on_message = ws, journal, dry_run, on_message
        self.result = Fetched()
        self.forms: list[tuple[Inbound, list[Path]]] = []  # recorded after the import

    def one(self, where: str, data: bytes | Big) -> bool:
        """Handle one message; whether it is done with (handled now or before), so that
        a mailbox may file it away. Something else stays where it is."""
        found = classify(data)
        result = self.result
        if self.journal.handled(found.key):
            result.earlier += 1
            return True
        if found.kind is Kind.OTHER and found.sender and self.journal.sends_to(found.sender):
            found.kind = Kind.REPLY  # no In-Reply-To, but from somebody formtool mailed
        saved_before = len(result.saved)
        handled = _handle(self.ws, self.journal, found, where, self.dry_run, result)
        found.attachments, found.snippet = [], ""  # saved, shown: not kept (flat memory)
        result.counts[found.kind] += 1
        if handled.look:
            result.to_read_total += 1
            if len(result.to_read) < TO_READ_SHOWN:  # the rest: status --antworten
                result.to_read.append(handled)
        self.on_message(handled)
        if self.dry_run or found.kind is Kind.OTHER:
            return False  # left where it is: a later run looks again
        if found.kind is Kind.TOO_BIG:  # reported once, left in the inbox to be looked at
            self.journal.record_handled(found.key, found.kind.value)
            return False
        if found.kind is Kind.FORM:
            self.forms.append((found, result.saved[saved_before:]))
        else:
            self.journal.record_handled(found.key, found.kind.value)
        return True

    def finish(self) -> Fetched:
        """Import the saved forms, then record their messages as handled."""
        result = self.result
        if self.dry_run:
            return result
        if result.saved:
            reports: dict[Path, importing.FileReport] = {}

            def answer(report: importing.FileReport) -> None:
                reports[report.path] = report
                if not report.status.ok:
                    result.not_imported.append(report)

            result.imported = importing.run_import(
                self.ws, sorted(set(result.saved)),
                importing.ImportOptions(output_dir=self.ws.root / "antworten", mail=result.mail),
                on_file=answer)
            for found, paths in self.forms:
                _answered_by_sender(self.journal, found,
                                    [reports[p] for p in paths if p in reports])
        for found, _ in self.forms:
            self.journal.record_handled(found.key, found.kind.value)
        return result


T = TypeVar("T")
COMMIT_EVERY = 50  # messages per transaction: one commit each, not one per message


def _committed(store: Store, items: Iterable[T]) -> Iterator[T]:
    """``items``, handled in transactions of COMMIT_EVERY (a kill loses at most the
    current one, which the next run handles again)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, COMMIT_EVERY)):
        with store.transaction():
            yield from chunk


def fetch_from(ws: Workspace, source: Path, *, dry_run: bool = False,
               on_message: Callable[[Handled], None] = lambda h: None) -> Fetched:
    """Handle every message of ``source`` once; ``dry_run`` only says what would happen."""
    lock = RunLock(ws.state_dir, "mail fetch")
    if not dry_run:
        lock.acquire()
    try:
        with Store(ws.state_db) as store:
            run = _Run(ws, Journal(store), dry_run, on_message)
            for where, data in _committed(store, messages(source)):
                run.one(where, data)
            result = run.finish()
            if not dry_run:
                store.checkpoint()
    finally:
        if not dry_run:
            lock.release()
    return result


def fetch_imap(ws: Workspace, password: str, *, dry_run: bool = False,
               on_message: Callable[[Handled], None] = lambda h: None) -> Fetched:
    """Handle the new messages of the [imap] folder once each, then move those handled
    to the done folder (created if missing). Where the last run stopped is kept per
    account and folder (UIDVALIDITY, last UID); a changed UIDVALIDITY reads the folder
    again, and the ``inbound`` record keeps every message single."""
    from formtool.mail import imap

    settings = ws.imap_settings()
    lock = RunLock(ws.state_dir, "mail fetch")
    if not dry_run:
        lock.acquire()
    try:
        with Store(ws.state_db) as store, imap.Connection(settings, password) as box:
            journal = Journal(store)
            account = f"{settings.user}@{settings.host}"
            validity = box.select(settings.folder)
            known, last = journal.imap_position(account, settings.folder)
            if known != validity:
                last = 0
            run = _Run(ws, journal, dry_run, on_message)
            uids = box.uids_after(last)
            done: list[int] = []
            for uid, data in _committed(store, box.fetch(uids)):
                if run.one(f"{settings.folder}, UID {uid}", data):
                    done.append(uid)
            result = run.finish()
            if not dry_run:
                if done:
                    box.move(done, settings.done_folder)
                if uids:
                    journal.set_imap_position(account, settings.folder, validity, max(uids))
                store.checkpoint()
    finally:
        if not dry_run:
            lock.release()
    return result


def _handle(ws: Workspace, journal: Journal, found: Inbound, where: str, dry_run: bool,
            result: Fetched) -> Handled:
    handled = Handled(where, found.kind, found.sender, found.subject)
    if found.kind is Kind.FORM:
        names = []
        for name, data in found.attachments:
            if dry_run:
                names.append(name)
                continue
            path = _saved(ws.root / RETURNS_DIR, name, data)
            result.saved.append(path)
            result.mail[path] = (found.sender, found.date,
                                 found.key if found.key.startswith("<") else "")
            names.append(path.name)
        handled.note = f"gespeichert in {RETURNS_DIR}/: " + ", ".join(names)
        if found.oversized:
            handled.note += ("; zu groß, nicht gespeichert: " + ", ".join(found.oversized)
                             + " – bitte im Postfach ansehen")
            handled.look = True
    elif found.kind is Kind.OPTOUT:
        if is_valid_email(found.sender):
            if not dry_run:
                journal.add_optout(found.sender, "postfach")
            handled.note = f"{found.sender} abgemeldet: bekommt keine E-Mail mehr"
        else:
            handled.note, handled.look = "Abmeldung ohne gültige Absenderadresse", True
    elif found.kind is Kind.BOUNCE:
        marked = _bounce(journal, found, dry_run)
        handled.note = ("unzustellbar: " + ", ".join(marked) if marked else
                        "Rückmeldung über eine Zustellung, keiner Sendung zuzuordnen")
        handled.look = not marked
    elif found.kind is Kind.AUTOREPLY:
        handled.note = "automatische Antwort (Abwesenheit o. Ä.), zählt nicht als Antwort"
    elif found.kind is Kind.REPLY:
        send = _sent_to(journal, found)
        if send is not None:
            if not dry_run:
                journal.record_answer(email=send.email, campaign=send.campaign,
                                      message_id=found.key, subject=found.subject,
                                      snippet=found.snippet)
            handled.note = (f"Antwort auf „{send.campaign}“ ohne Formular: als beantwortet "
                            "vermerkt (keine Erinnerung) – bitte lesen")
        else:
            handled.note = "Antwort ohne Formular, keiner Sendung zuzuordnen – bitte lesen"
        handled.look = True
    elif found.kind is Kind.TOO_BIG:
        what = ", ".join(found.oversized) or "die E-Mail"
        handled.note = (f"zu groß zum Einlesen ({what}) – bleibt im Posteingang, bitte dort "
                        "ansehen")
        handled.look = True
    else:
        handled.note = "nicht angefasst"
    if found.snippet and handled.look:
        handled.note += f" („{found.snippet.splitlines()[0][:80]}“)"
    return handled


def _sent_to(journal: Journal, found: Inbound) -> Send | None:
    """The send a message answers: by its In-Reply-To/References (its own or a forwarded
    original's), else the latest send to its sender's address, else to the sender of
    the original it forwards."""
    send = next((s for s in map(journal.by_message_id, found.refs) if s), None)
    for address in (found.sender, *found.forwarded):
        if send is None and is_valid_email(address):
            send = next(iter(journal.sends_to(address)), None)
    return send


def _answered_by_sender(journal: Journal, found: Inbound,
                        reports: list[importing.FileReport]) -> None:
    """A form imported without a response id (a blank form, filled and sent back) is
    still an answer: the sender's, to the send the message replies to."""
    if not any(r.status.ok and not r.response_id for r in reports):
        return
    send = _sent_to(journal, found)
    if send is not None:
        journal.record_answer(email=send.email, campaign=send.campaign, message_id=found.key,
                              subject=found.subject, kind="form")


def _bounce(journal: Journal, found: Inbound, dry_run: bool) -> list[str]:
    """Mark the sends a delivery report names as undeliverable; who they were."""
    marked: list[str] = []
    for bounce in found.bounces:
        reply = f"{BOUNCED}: " + " ".join(
            p for p in (bounce.status, bounce.diagnostic) if p)
        send = journal.by_message_id(bounce.original_id)
        if send is not None and bounce.recipient and normalise(bounce.recipient) != send.email:
            send = None  # a report about another recipient of the same message
        if send is None:
            for address in ([bounce.recipient] if bounce.recipient else found.candidates):
                sends = journal.sends_to(address) if address else []
                if sends:
                    send = sends[0]
                    break
        if send is None:
            continue
        if not dry_run:
            journal.mark_undeliverable(send.campaign, send.email, reply[:300])
        marked.append(send.email)
    return marked
