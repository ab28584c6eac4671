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

import contextlib
import hashlib
import itertools
import mailbox
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from formtool.addresses import is_valid_email
from formtool.data.filenames import safe_filename
from formtool.errors import FormtoolError
from formtool.mail.inbound import MAX_MESSAGE, Big, Inbound, Kind, Optout, classify, head_of
from formtool.mail.oauth import Secret
from formtool.state.runlock import RunLock
from formtool.state.store import BOUNCED, FILED, Journal, Send, Store
from formtool.usecases import evidence, importing, settling
from formtool.workspace import Workspace

RETURNS_DIR = "ruecklaeufe"
TO_READ_SHOWN = 50  # messages to read listed at the end of a run (all: status --antworten)
NOT_IMPORTED_SHOWN = 20  # attachments not imported, named at the end of a run
NAMES_SHOWN = 10  # file names in one message's note


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
    mail: dict[Path, importing.Origin] = field(default_factory=dict)  # the mail of a file
    imported: importing.Imported | None = None
    not_imported: list[importing.FileReport] = field(default_factory=list)  # scans, Word …
    not_imported_total: int = 0  # of which the first NOT_IMPORTED_SHOWN are kept
    with_problems: list[importing.FileReport] = field(default_factory=list)  # imported,
    #                                   with what is wrong (the first NOT_IMPORTED_SHOWN)
    to_read: list[Handled] = field(default_factory=list)  # the first TO_READ_SHOWN of them
    to_read_total: int = 0
    settled: settling.Settled | None = None  # sends of unknown outcome the mailbox settled
    filed: list[tuple[str, list[str]]] = field(default_factory=list)  # (contact, files):
    #   a photo or Word file from a contact, kept and recorded as the contact's answer


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


class _Folder:
    """Where attachments are saved: safe, readable, unique names found in constant time
    (the folder is listed once; a counter per name, not a search), and the same bytes
    saved before keep their file (a second run saves nothing twice)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names: set[str] | None = None  # lower case: Windows and macOS ignore case
        self.by_size: dict[int, list[Path]] = {}
        self.digests: dict[Path, bytes] = {}
        self.next: dict[str, int] = {}

    def _listed(self) -> set[str]:
        if self.names is None:
            self.names = set()
            if self.folder.is_dir():
                for path in self.folder.iterdir():
                    self.names.add(path.name.lower())
                    with contextlib.suppress(OSError):
                        if path.is_file():
                            self.by_size.setdefault(path.stat().st_size, []).append(path)
        return self.names

    def _same(self, data: bytes, digest: bytes) -> Path | None:
        for path in self.by_size.get(len(data), []):
            known = self.digests.get(path)
            if known is None:
                try:
                    known = self.digests[path] = hashlib.sha256(path.read_bytes()).digest()
                except OSError:
                    continue
            if known == digest:
                return path
        return None

    def save(self, name: str, data: bytes) -> Path:
        stem, dot, suffix = name.rpartition(".")
        if not dot or len(suffix) > 5:
            stem, suffix = name, "bin"
        base = safe_filename(stem or "Anhang", max_length=80) or "Anhang"
        suffix = safe_filename(suffix.lower(), max_length=5) or "bin"
        names = self._listed()
        digest = hashlib.sha256(data).digest()
        same = self._same(data, digest)
        if same is not None:
            return same
        family = f"{base}.{suffix}".lower()
        number = self.next.get(family, 1)
        while True:
            candidate = f"{base}.{suffix}" if number == 1 else f"{base} ({number}).{suffix}"
            if candidate.lower() not in names:
                break
            number += 1
        self.next[family] = number + 1
        path = self.folder / candidate
        self.folder.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as fh:  # never over a file that appeared meanwhile
            fh.write(data)
        names.add(candidate.lower())
        self.by_size.setdefault(len(data), []).append(path)
        self.digests[path] = digest
        return path


class _Run:
    """One pass over messages: each handled once, forms imported at the end."""

    def __init__(self, ws: Workspace, journal: Journal, dry_run: bool,
                 on_message: Callable[[Handled], None]) -> None:
        self.ws, self.journal, self.dry_run, self.on_message = ws, journal, dry_run, on_message
        self.result = Fetched()
        self.folder = _Folder(ws.root / RETURNS_DIR)
        # forms' messages, recorded after the import: (key, kind, tie, subject, saved files)
        self.forms: list[tuple[str, Kind, evidence.Tie, str, list[Path]]] = []

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
        handled, tie = _handle(self, found, where)
        found.attachments, found.snippet = [], ""  # saved, shown: not kept (flat memory)
        result.counts[found.kind] += 1
        if handled.look:
            result.to_read_total += 1
            if len(result.to_read) < TO_READ_SHOWN:  # the rest: status --antworten
                result.to_read.append(handled)
        self.on_message(handled)
        if self.dry_run or found.kind is Kind.OTHER:
            return False  # left where it is: a later run looks again
        if found.kind in (Kind.TOO_BIG, Kind.UNREADABLE):
            # reported once, left in the inbox to be looked at
            self.journal.record_handled(found.key, found.kind.value)
            return False
        if found.kind is Kind.FORM:
            self.forms.append((found.key, found.kind, tie, found.subject,
                               result.saved[saved_before:]))
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
                if report.status is importing.Status.WITH_PROBLEMS and len(
                        result.with_problems) < NOT_IMPORTED_SHOWN:
                    result.with_problems.append(report)
                if not report.status.ok:
                    result.not_imported_total += 1
                    if len(result.not_imported) < NOT_IMPORTED_SHOWN:
                        result.not_imported.append(report)

            result.imported = importing.run_import(
                self.ws, sorted(set(result.saved)),
                importing.ImportOptions(output_dir=self.ws.root / "antworten", mail=result.mail),
                on_file=answer)
            for key, _, tie, subject, paths in self.forms:
                if tie.send is None:
                    continue
                done = [reports[p] for p in paths if p in reports]
                if any(r.status is importing.Status.HELD for r in done):
                    # the sender's own state is what changes
                    self.journal.record_answer(email=tie.send.email, campaign=tie.send.campaign,
                                               message_id=key, subject=subject, kind="form")
                elif not any(r.status.ok for r in done) and done:
                    self._filed(key, tie.send, subject, [r.path.name for r in done])
        for key, kind, *_ in self.forms:
            self.journal.record_handled(key, kind.value)
        return result

    def _filed(self, key: str, send: Send, subject: str, names: list[str]) -> None:
        """A contact sent files that are no form (a photo of it, a Word file): an answer
        all the same – no reminder – listed for the contact with the files to look at."""
        shown = _names(names)
        self.journal.record_answer(email=send.email, campaign=send.campaign, message_id=key,
                                   subject=subject, kind=FILED,
                                   snippet=f"Datei(en) in {RETURNS_DIR}/: {shown}")
        self.result.filed.append((send.email, names))


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


def fetch_imap(ws: Workspace, password: Secret, *, dry_run: bool = False,
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
                result.settled = settling.guarded(
                    journal, lambda: settling.in_folder(box, settings, journal))
                store.checkpoint()
    finally:
        if not dry_run:
            lock.release()
    return result


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" … und {len(names) - NAMES_SHOWN} weitere"
                    if len(names) > NAMES_SHOWN else "")


def _handle(run: _Run, found: Inbound, where: str) -> tuple[Handled, evidence.Tie]:
    """Do with one message what it proves (``evidence``), and say so in German."""
    journal, dry_run, result = run.journal, run.dry_run, run.result
    handled = Handled(where, found.kind, found.sender, found.subject)
    tie = evidence.NOBODY
    notes: list[str] = []
    if found.kind is Kind.FORM:
        tie = evidence.answer(journal, found)
        names = []
        for name, data in found.attachments:
            if dry_run:
                names.append(name)
                continue
            path = run.folder.save(name, data)
            result.saved.append(path)
            result.mail[path] = importing.Origin(found.sender, found.date, found.message_id,
                                                 tie)
            names.append(path.name)
        notes.append(f"gespeichert in {RETURNS_DIR}/: " + _names(names))
        if found.oversized:
            notes.append("zu groß, nicht gespeichert: " + _names(found.oversized)
                         + " – bitte im Postfach ansehen")
        if tie.note:
            notes.append(tie.note)
        if tie.proof is evidence.Proof.MESSAGE_ID and not dry_run and settling.by_evidence(
                journal, tie.send):
            notes.append("die Einladung kam also an (ihr Zustand war unbekannt)")
        if found.optout is Optout.CLEAR:
            notes.append(_optout(journal, found, dry_run))
        elif found.optout is Optout.UNCLEAR:
            notes.append("bitte prüfen: Abmeldung? (nicht abgemeldet)")
            _ask_optout(journal, found, tie, dry_run)
        handled.look = bool(found.oversized) or tie.note != "" or found.optout is not Optout.NO
    elif found.kind is Kind.OPTOUT:
        notes.append(_optout(journal, found, dry_run))
        handled.look = not is_valid_email(found.sender) or bool(found.unverified)
    elif found.kind is Kind.BOUNCE:
        tied = evidence.bounce(journal, found)
        tie = tied.tie
        if tie.send is not None and tied.bounce is not None:
            words = " ".join(p for p in (tied.bounce.status, tied.bounce.diagnostic) if p)
            unconfirmed = f" ({evidence.UNCONFIRMED})" if tie.proof is evidence.Proof.ADDRESS \
                else ""
            if not dry_run:
                journal.mark_undeliverable(tie.send.campaign, tie.send.email,
                                           f"{BOUNCED}{unconfirmed}: {words}"[:300])
                if unconfirmed:  # nothing ties the report to the send: a person decides
                    journal.ask("unzustellbar", email=tie.send.email,
                                campaign=tie.send.campaign, subject=found.subject,
                                note=words, message_key=found.key)
            notes.append(f"unzustellbar: {tie.send.email}")
        if tie.note:
            notes.append(tie.note)
        handled.look = tie.look
    elif found.kind is Kind.COMPLAINT:  # never mail somebody who reported the mail as spam
        tied = evidence.bounce(journal, found, effect="abgemeldet")
        tie = tied.tie
        if tie.send is not None:
            if not dry_run:
                journal.add_optout(tie.send.email, "spam-beschwerde")
            notes.append(f"{tie.send.email} hat die E-Mail als Spam gemeldet: abgemeldet, "
                         "bekommt keine E-Mail mehr")
        if tie.note:
            notes.append(tie.note)
        handled.look = True
    elif found.kind is Kind.NOTICE:
        notes.append("Zustellhinweis (Verzögerung oder Bestätigung), nicht unzustellbar")
    elif found.kind is Kind.AUTOREPLY:
        notes.append("automatische Antwort (Abwesenheit o. Ä.), zählt nicht als Antwort")
    elif found.kind is Kind.REPLY:
        tie = evidence.answer(journal, found)
        if tie.proof is evidence.Proof.MESSAGE_ID and not dry_run and settling.by_evidence(
                journal, tie.send):
            notes.append("die Einladung kam also an (ihr Zustand war unbekannt)")
        if tie.send is not None:
            if not dry_run:
                journal.record_answer(email=tie.send.email, campaign=tie.send.campaign,
                                      message_id=found.message_id, subject=found.subject,
                                      snippet=found.snippet)
            notes.append(f"Antwort auf „{tie.send.campaign}“ ohne Formular: als beantwortet "
                         "vermerkt (keine Erinnerung) – bitte lesen")
        else:
            notes.append("Antwort ohne Formular – bitte lesen")
        if tie.note:
            notes.append(tie.note)
        if found.optout is Optout.UNCLEAR:
            notes.append("bitte prüfen: Abmeldung? (nicht abgemeldet)")
            _ask_optout(journal, found, tie, dry_run)
        handled.look = True
    elif found.kind is Kind.TOO_BIG:
        what = ", ".join(found.oversized) or "die E-Mail"
        notes.append(f"zu groß zum Einlesen ({what}) – bleibt im Posteingang, bitte dort "
                     "ansehen")
        handled.look = True
    elif found.kind is Kind.UNREADABLE:
        notes.append(f"nicht lesbar: {found.reason} – bleibt im Posteingang, nichts daraus "
                     "übernommen; bitte dort ansehen")
        handled.look = True
    else:
        notes.append("nicht angefasst")
    handled.note = "; ".join(notes)
    if found.snippet and handled.look:
        handled.note += f" („{found.snippet.splitlines()[0][:80]}“)"
    return handled, tie


def _ask_optout(journal: Journal, found: Inbound, tie: evidence.Tie, dry_run: bool) -> None:
    """An opt-out in unclear words: kept as a decision for the coordinator."""
    if dry_run or not is_valid_email(found.sender):
        return
    journal.ask("abmeldung", email=found.sender,
                campaign=tie.send.campaign if tie.send is not None else "",
                subject=found.subject,
                note=(found.snippet.splitlines() or [""])[0][:200], message_key=found.key)


def _optout(journal: Journal, found: Inbound, dry_run: bool) -> str:
    """The sender opted out – only the sender, by the address in From. A forged-looking
    one is honoured all the same (never mail somebody who may have asked not to be
    mailed), and said so."""
    if not is_valid_email(found.sender):
        return "Abmeldung ohne gültige Absenderadresse – bitte lesen"
    if not dry_run:
        journal.add_optout(found.sender, "postfach")
    note = f"{found.sender} abgemeldet: bekommt keine E-Mail mehr"
    if found.unverified:
        note += f" (Absender nicht bestätigt: {found.unverified} – gefälscht?)"
    return note


MAX_UPLOAD_FILE = 50 * 1024 * 1024  # a returned form; the scan of a thick one stays below


def import_uploaded(ws: Workspace, files: Iterable[tuple[str, bytes]], *,
                    on_file: Callable[[importing.FileReport], None] = lambda r: None
                    ) -> importing.Imported:
    """Returned forms handed in as (name, bytes) – the web page's upload: saved under
    ruecklaeufe/ by the same safe, unique names as the mailbox's (the same bytes keep
    their file), then imported like ``formtool import ruecklaeufe/…``. Names never
    become paths; a file over MAX_UPLOAD_FILE is refused before anything is saved."""
    folder = _Folder(ws.root / RETURNS_DIR)
    chosen = list(files)
    for name, data in chosen:
        if len(data) > MAX_UPLOAD_FILE:
            raise FetchError(f"„{name}“ ist {len(data) // (1024 * 1024)} MB groß; höchstens "
                             f"{MAX_UPLOAD_FILE // (1024 * 1024)} MB je Datei. Nichts "
                             "übernommen.")
    saved = [folder.save(name.replace("\\", "/").rsplit("/", 1)[-1] or "Anhang", data)
             for name, data in chosen]
    return importing.run_import(ws, sorted(set(saved)), importing.ImportOptions(
        output_dir=ws.root / "antworten"), on_file=on_file)
