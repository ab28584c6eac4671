"""The workspace's state: ``.formtool/state.db`` (SQLite, WAL).

This module owns the schema and the connection. Migrations are numbered SQL
scripts applied in order; ``PRAGMA user_version`` records how far a database has
come. Every statement goes through ``Store.execute``: one lock for all threads
(the sender threads write the journal and personal forms), and every SQLite or OS
error becomes a German ``StoreError`` naming the file, never a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from formtool.addresses import normalise
from formtool.errors import FormtoolError

MIGRATIONS: tuple[str, ...] = (
    # 1: imported responses
    """
    CREATE TABLE responses (
        key          TEXT NOT NULL,      -- response_id, else "sha256:<hex>" of the file
        form_id      TEXT NOT NULL,
        form_version TEXT NOT NULL,
        response_id  TEXT NOT NULL,
        sha256       TEXT NOT NULL,
        file_name    TEXT NOT NULL,
        csv_path     TEXT NOT NULL,
        problems     TEXT NOT NULL,
        imported_at  TEXT NOT NULL,
        PRIMARY KEY (form_id, key)
    );
    CREATE INDEX responses_response_id ON responses (response_id);
    """,
    # 2: the mail journal and opt-outs
    """
    CREATE TABLE campaigns (
        name        TEXT PRIMARY KEY,
        template    TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE sends (
        campaign     TEXT NOT NULL REFERENCES campaigns (name),
        contact_key  TEXT NOT NULL,
        email        TEXT NOT NULL,
        state        TEXT NOT NULL,      -- sending, sent, failed, pending, unknown
        message_id   TEXT NOT NULL DEFAULT '',
        reply        TEXT NOT NULL DEFAULT '',
        attempts     INTEGER NOT NULL DEFAULT 0,
        updated_at   TEXT NOT NULL,
        sent_at      REAL,               -- unix time of the 250, for the rate limits
        PRIMARY KEY (campaign, contact_key)
    );
    CREATE INDEX sends_sent_at ON sends (sent_at);
    CREATE TABLE optouts (
        email_hash  TEXT PRIMARY KEY,    -- sha256 of the lower-case address: no address kept
        source      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    """,
    # 3: contacts as last seen, personal forms, responses matched to them
    """
    CREATE TABLE contacts (
        key          TEXT PRIMARY KEY,
        email        TEXT NOT NULL,
        name         TEXT NOT NULL,
        organisation TEXT NOT NULL,
        address      TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE INDEX contacts_email ON contacts (email COLLATE NOCASE);
    CREATE TABLE forms_issued (
        response_id  TEXT PRIMARY KEY,
        form_id      TEXT NOT NULL,
        contact_key  TEXT NOT NULL,
        campaign     TEXT NOT NULL,
        file         TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        UNIQUE (form_id, contact_key, campaign)
    );
    CREATE INDEX forms_issued_contact ON forms_issued (contact_key);
    ALTER TABLE responses ADD COLUMN contact_key TEXT NOT NULL DEFAULT '';
    ALTER TABLE responses ADD COLUMN campaign TEXT NOT NULL DEFAULT '';
    """,
    # 4: a recipient is an address: the journal keyed by (campaign, normalised address),
    # whatever the contact list's key column says; the journal's identity (see guard.py)
    """
    CREATE TABLE sends_by_address (
        campaign     TEXT NOT NULL REFERENCES campaigns (name),
        email        TEXT NOT NULL,      -- normalise_address(): IDNA domain, lower case
        contact_key  TEXT NOT NULL,      -- the key the contact had when last sent
        state        TEXT NOT NULL,      -- a SendState
        message_id   TEXT NOT NULL DEFAULT '',
        reply        TEXT NOT NULL DEFAULT '',
        attempts     INTEGER NOT NULL DEFAULT 0,
        updated_at   TEXT NOT NULL,
        sent_at      REAL,
        PRIMARY KEY (campaign, email)
    );
    INSERT OR IGNORE INTO sends_by_address
        (campaign, email, contact_key, state, message_id, reply, attempts, updated_at, sent_at)
        SELECT campaign, lower(email), contact_key, state, message_id, reply, attempts,
               updated_at, sent_at FROM sends
        ORDER BY CASE state WHEN 'sent' THEN 0 WHEN 'sending' THEN 1 WHEN 'unknown' THEN 1
                 WHEN 'pending' THEN 2 ELSE 3 END, rowid;
    DROP TABLE sends;
    ALTER TABLE sends_by_address RENAME TO sends;
    CREATE INDEX sends_sent_at ON sends (sent_at);
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 5: messages read from the mailbox (mail fetch): each handled once
    """
    CREATE TABLE inbound (
        key         TEXT PRIMARY KEY,    -- Message-ID, else sha256 of the message
        kind        TEXT NOT NULL,       -- what it was (inbound.Kind's value)
        handled_at  TEXT NOT NULL
    );
    CREATE INDEX sends_message_id ON sends (message_id);
    """,
    # 6: replies without a form (mail fetch): the address answered, by mail
    """
    CREATE TABLE answers (
        email        TEXT NOT NULL,      -- normalise_address()
        campaign     TEXT NOT NULL,      -- the campaign the reply answered
        message_id   TEXT NOT NULL DEFAULT '',
        subject      TEXT NOT NULL DEFAULT '',
        received_at  TEXT NOT NULL,
        kind         TEXT NOT NULL DEFAULT 'reply',  -- 'reply', or 'form' (no response id)
        PRIMARY KEY (campaign, email)
    );
    """,
    # 7: where mail fetch stopped in an IMAP folder
    """
    CREATE TABLE imap_position (
        account      TEXT NOT NULL,      -- user@host
        folder       TEXT NOT NULL,
        uidvalidity  INTEGER NOT NULL,
        last_uid     INTEGER NOT NULL,
        PRIMARY KEY (account, folder)
    );
    """,
    # 8: the first lines of a reply, for `status --antworten`
    """
    ALTER TABLE answers ADD COLUMN snippet TEXT NOT NULL DEFAULT '';
    """,
    # 9: returns the coordinator let onto the public list although nothing tied them to
    # a contact (`website --freigeben`); keyed like responses
    """
    CREATE TABLE website_approved (
        key          TEXT PRIMARY KEY,   -- responses.key: response id, else sha256:<hex>
        approved_at  TEXT NOT NULL
    );
    """,
    # 10: when a response came back (the mail's date, else the file's time): the newest
    # return of a response id wins by this date, never by its file's name
    """
    ALTER TABLE responses ADD COLUMN returned_at TEXT NOT NULL DEFAULT '';
    """,
    # 11: files the import could not read, by their bytes: said once, then "schon bekannt"
    """
    CREATE TABLE unreadable (
        sha256       TEXT PRIMARY KEY,
        reason       TEXT NOT NULL,
        reported_at  TEXT NOT NULL
    );
    """,
    # (no ";" inside a script but between statements: they are split there)
    # 12: what the mailbox brought that a person must decide ("bitte prüfen"): an opt-out
    # in unclear words, a bounce nothing confirms; one row per message and kind
    """
    CREATE TABLE questions (
        id           INTEGER PRIMARY KEY,
        kind         TEXT NOT NULL,      -- 'abmeldung' | 'unzustellbar'
        email        TEXT NOT NULL,      -- normalised, whom the decision is about
        campaign     TEXT NOT NULL DEFAULT '',
        subject      TEXT NOT NULL DEFAULT '',
        note         TEXT NOT NULL DEFAULT '',
        message_key  TEXT NOT NULL,
        asked_at     TEXT NOT NULL,
        UNIQUE (kind, message_key)
    );
    """,
)


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


class StoreError(FormtoolError):
    """state.db cannot be opened or written."""


class _DryRun(Exception):
    """Raised inside a transaction to roll it back on purpose."""


class JournalLostError(StoreError):
    """state.db is missing, empty, foreign or older than the last run: refuse to go on."""


# The journal never vanishes silently: after every command that changed it, the
# journal's identity and generation go into a marker beside state.db, and a copy
# of state.db into .formtool/sicherung/ (the newest KEEP_BACKUPS are kept). A
# state.db that is missing, empty, of another journal or older than the marker
# stops every command with the way to restore it.
MARKER_NAME = "journal.marker"


def present(path: Path) -> bool:
    """Whether there is a journal to open at ``path``: the file, or the marker that says
    there was one (then opening it names the loss). A fresh workspace has neither, and
    only looking at it creates nothing."""
    return path.exists() or (path.parent / MARKER_NAME).exists()
BACKUP_DIR = "sicherung"
KEEP_BACKUPS = 3


class SendState(enum.StrEnum):
    """Where one (campaign, address) stands in the journal."""

    SENDING = "sending"  # journaled before DATA; left behind only by a run that died
    SENT = "sent"  # the server's 250 after DATA
    FAILED = "failed"  # a 5xx for this recipient or message
    PENDING = "pending"  # 4xx, or the run stopped at a wall: the next run tries again
    UNKNOWN = "unknown"  # DATA went out, no reply: maybe delivered; resent only when asked


UNDELIVERED_STATES = (SendState.FAILED, SendState.PENDING, SendState.UNKNOWN, SendState.SENDING)


def _explain(path: Path, exc: BaseException) -> str:
    """A German sentence for what SQLite or the OS said about state.db."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return (f"{path}: wird gerade von einem anderen formtool-Aufruf benutzt; bitte warten, "
                "bis er fertig ist, und dann erneut versuchen.")
    if ("readonly" in text or "read-only" in text or isinstance(exc, PermissionError)
            or getattr(exc, "errno", None) == 30
            or ("unable to open" in text and not os.access(path.parent, os.W_OK))):
        return (f"{path}: ist schreibgeschützt (keine Schreibrechte); bitte die Rechte des "
                "Ordners .formtool prüfen.")
    if "full" in text or getattr(exc, "errno", None) == 28:
        return f"{path}: der Datenträger ist voll; bitte Platz schaffen und erneut versuchen."
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (f"{path}: die Zustandsdatenbank ist beschädigt. Bitte die neueste Sicherung "
                "aus .formtool/sicherung/ nach .formtool/state.db kopieren.")
    if isinstance(exc, OSError):
        return f"{path}: kann nicht angelegt oder gelesen werden ({exc.strerror or exc})."
    return f"{path}: Zustandsdatenbank nicht nutzbar ({exc})."


class Response(NamedTuple):
    key: str
    form_id: str
    form_version: str
    response_id: str
    sha256: str
    file_name: str
    csv_path: str
    problems: str
    imported_at: str
    contact_key: str = ""
    campaign: str = ""
    returned_at: str = ""  # ISO 8601: the mail's date, else the file's time


RESPONSE_COLUMNS = ("key", "form_id", "form_version", "response_id", "sha256", "file_name",
                    "csv_path", "problems", "imported_at", "contact_key", "campaign",
                    "returned_at")


class Issued(NamedTuple):
    """A personal form: its response id, for whom, in which campaign, where the file is."""

    response_id: str
    form_id: str
    contact_key: str
    campaign: str
    file: str
    created_at: str


ISSUED_COLUMNS = ("response_id", "form_id", "contact_key", "campaign", "file", "created_at")


def _columns(names: Sequence[str]) -> str:
    return ", ".join(names)


class Store:
    """An open state database, the one owner of its connection. Use as a context manager.

    Every statement runs under one re-entrant lock, so sender threads and the main
    thread never interleave inside a transaction.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.marker_path = path.parent / MARKER_NAME
        self.backup_dir = path.parent / BACKUP_DIR
        marker = self._marker()
        if marker is not None:
            self._check_present(marker)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                      check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(_explain(path, exc)) from None
        try:
            self._wal()
            self.execute("PRAGMA synchronous=NORMAL")
            # DSGVO: deleted rows are overwritten, whatever this SQLite build's default
            self.execute("PRAGMA secure_delete=ON")
            self._migrate()
            if marker is not None:
                self._check_identity(marker)
        except BaseException:
            self.db.close()
            raise

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.lock:
            try:
                return self.db.execute(sql, args)
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(_explain(self.path, exc)) from None

    def _wal(self) -> None:
        """Write-ahead logging (kept in the file once set). Switching a new file to it
        needs the file alone, and SQLite answers "locked" at once instead of waiting when
        several commands open a fresh workspace together: so wait here, a while."""
        deadline = time.monotonic() + 30
        while True:
            try:
                with self.lock:
                    mode = self.db.execute("PRAGMA journal_mode").fetchone()[0]
                    if str(mode).lower() != "wal":
                        self.db.execute("PRAGMA journal_mode=WAL")
                return
            except (sqlite3.Error, OSError) as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StoreError(_explain(self.path, exc)) from None
                time.sleep(0.05)

    def _migrate(self) -> None:
        version = self.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path} stammt von einer neueren formtool-Version "
                             f"(Schema {version}); bitte formtool aktualisieren.")
        if version == len(MIGRATIONS):
            return
        with self.transaction():
            # Two commands opening a fresh workspace at once: the second waits for the
            # write lock here and then finds the work done.
            version = self.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], version + 1):
                for statement in filter(str.strip, script.split(";")):
                    self.execute(statement)
                self.execute(f"PRAGMA user_version = {number}")
            import uuid  # slow to import (platform): only for a new database

            self.execute("INSERT OR IGNORE INTO meta VALUES ('journal_id', ?)",
                         (uuid.uuid4().hex,))
            self.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                # SQLite may have rolled back by itself (e.g. disk full)
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
                raise
            self.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the journal's identity, marker and backups ------------------------------

    def _marker(self) -> tuple[str, int] | None:
        try:
            data = json.loads(self.marker_path.read_text(encoding="utf-8"))
            return str(data["journal_id"]), int(data["generation"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none yet, or unreadable: the backups still exist

    def newest_backup(self) -> Path | None:
        found = sorted(self.backup_dir.glob("state-*.db"))
        return found[-1] if found else None

    def _restore_hint(self) -> str:
        backup = self.newest_backup()
        how = (f"Bitte die neueste Sicherung wiederherstellen: {backup} nach {self.path} "
               "kopieren (formtool dabei nicht laufen lassen)." if backup else
               "Bitte state.db aus einer Datensicherung dieses Ordners wiederherstellen.")
        return (f" Ohne das Journal wüsste formtool nicht, wer schon eine E-Mail bekam und wer "
                f"sich abgemeldet hat, und würde alle noch einmal anschreiben. {how} Nur wer "
                f"sicher ist, dass neu begonnen werden soll, löscht {self.marker_path}.")

    def _check_present(self, marker: tuple[str, int]) -> None:
        try:
            empty = self.path.stat().st_size == 0
        except FileNotFoundError:
            raise JournalLostError(f"{self.path} fehlt, obwohl aus diesem Arbeitsordner schon "
                                   "gesendet wurde." + self._restore_hint()) from None
        except OSError as exc:
            raise StoreError(_explain(self.path, exc)) from None
        if empty:
            raise JournalLostError(f"{self.path} ist leer, obwohl aus diesem Arbeitsordner "
                                   "schon gesendet wurde." + self._restore_hint())

    def _check_identity(self, marker: tuple[str, int]) -> None:
        journal_id, generation = marker
        if self.meta("journal_id") != journal_id:
            raise JournalLostError(f"{self.path} gehört nicht zu diesem Arbeitsordner (ein "
                                   "anderes Journal)." + self._restore_hint())
        own = int(self.meta("generation") or 0)
        if own < generation:
            raise JournalLostError(f"{self.path} ist älter als der letzte Lauf (Stand {own} "
                                   f"statt {generation}), etwa aus einer alten Sicherung."
                                   + self._restore_hint())

    def checkpoint(self, *, keep: int = KEEP_BACKUPS) -> None:
        """After a command changed the journal: a new generation, the marker, a backup.

        ``keep=1`` leaves only the new backup (after `forget`: no copy keeps the person).
        """
        if not self.has_history():
            return
        with self.transaction():
            generation = int(self.meta("generation") or 0) + 1
            self.set_meta("generation", str(generation))
        journal_id = self.meta("journal_id") or ""
        target = self.backup_dir / f"state-{generation:06d}.db"
        partial = target.with_suffix(".tmp")
        try:
            self.backup_dir.mkdir(parents=True, exist_ok=True)
            copy = sqlite3.connect(partial)
            try:
                with self.lock:
                    self.db.backup(copy)
            finally:
                copy.close()
            os.replace(partial, target)
            for old in sorted(self.backup_dir.glob("state-*.db"))[:-keep]:
                old.unlink()
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise StoreError(f"{target}: Sicherung des Journals nicht möglich "
                             f"({_explain(target, exc)})") from None
        from formtool import atomic

        atomic.write_bytes(self.marker_path, json.dumps(
            {"journal_id": journal_id, "generation": generation,
             "hinweis": "Schützt das Journal in state.db; siehe formtool README."},
            ensure_ascii=False).encode("utf-8"))

    def meta(self, key: str) -> str | None:
        row = self.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def has_history(self) -> bool:
        """Whether anything here must never be lost silently: a send or an opt-out."""
        row = self.execute("SELECT EXISTS (SELECT 1 FROM sends) "
                           "OR EXISTS (SELECT 1 FROM optouts)").fetchone()
        return bool(row[0])

    # responses ------------------------------------------------------------

    def record_response(self, response: Response, *, replace: bool = True) -> None:
        """Record an imported response; ``replace=False`` keeps an existing record."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        marks = ", ".join("?" * len(RESPONSE_COLUMNS))
        self.execute(
            f"{verb} INTO responses ({_columns(RESPONSE_COLUMNS)}) VALUES ({marks})",
            tuple(getattr(response, c) for c in RESPONSE_COLUMNS))

    def known_unreadable(self, sha256: str) -> str | None:
        """When a file with these bytes was first reported unreadable (ISO), if ever."""
        row = self.execute("SELECT reported_at FROM unreadable WHERE sha256 = ?",
                           (sha256,)).fetchone()
        return str(row[0]) if row else None

    def remember_unreadable(self, sha256: str, reason: str) -> None:
        self.execute("INSERT OR IGNORE INTO unreadable (sha256, reason, reported_at) "
                     "VALUES (?, ?, ?)", (sha256, reason[:300], _now()))

    def response(self, form_id: str, key: str) -> Response | None:
        row = self.execute(f"SELECT {_columns(RESPONSE_COLUMNS)} FROM responses "
                           "WHERE form_id = ? AND key = ?", (form_id, key)).fetchone()
        return Response(*row) if row else None

    def responses(self, form_id: str | None = None) -> Iterator[Response]:
        sql = f"SELECT {_columns(RESPONSE_COLUMNS)} FROM responses"
        args: tuple[str, ...] = ()
        if form_id is not None:
            sql += " WHERE form_id = ?"
            args = (form_id,)
        for row in self.execute(sql + " ORDER BY imported_at, key", args).fetchall():
            yield Response(*row)

    # contacts and personal forms ---------------------------------------------

    def remember_contact(self, *, key: str, email: str, name: str, organisation: str,
                         address: str) -> None:
        """Name, organisation and address as last seen, for `status --offen`."""
        self.execute("INSERT OR REPLACE INTO contacts (key, email, name, organisation, "
                     "address, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                     (key, email, name, organisation, address, _now()))

    def remember_contacts(self, rows: Sequence[tuple[str, str, str, str, str]]) -> None:
        """Many (key, email, name, organisation, address) at once, in one transaction."""
        if not rows:
            return
        now = _now()
        with self.transaction(), self.lock:
            try:
                self.db.executemany(
                    "INSERT OR REPLACE INTO contacts (key, email, name, organisation, "
                    "address, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(*row, now) for row in rows])
            except sqlite3.Error as exc:
                raise StoreError(_explain(self.path, exc)) from None

    def issued(self, form_id: str, contact_key: str, campaign: str | None = None
               ) -> Issued | None:
        """The personal form for this contact: of ``campaign``, else the newest of any."""
        sql = (f"SELECT {_columns(ISSUED_COLUMNS)} FROM forms_issued "
               "WHERE form_id = ? AND contact_key = ?")
        args: tuple[str, ...] = (form_id, contact_key)
        if campaign is not None:
            row = self.execute(sql + " AND campaign = ?", (*args, campaign)).fetchone()
            if row is not None:
                return Issued(*row)
        row = self.execute(sql + " ORDER BY created_at DESC, rowid DESC LIMIT 1",
                           args).fetchone()
        return Issued(*row) if row else None

    def issue(self, *, response_id: str, form_id: str, contact_key: str, campaign: str,
              file: str) -> None:
        """Record a personal form (now); its response id is the key."""
        self.execute(f"INSERT OR REPLACE INTO forms_issued ({_columns(ISSUED_COLUMNS)}) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     (response_id, form_id, contact_key, campaign, file, _now()))

    def issued_by_response_id(self, response_id: str) -> Issued | None:
        row = self.execute(f"SELECT {_columns(ISSUED_COLUMNS)} FROM forms_issued "
                           "WHERE response_id = ?", (response_id,)).fetchone()
        return Issued(*row) if row else None

    def approve_for_website(self, key: str) -> None:
        self.execute("INSERT OR IGNORE INTO website_approved (key, approved_at) VALUES (?, ?)",
                     (key, _now()))

    def approved_for_website(self) -> set[str]:
        return {r[0] for r in self.execute("SELECT key FROM website_approved")}

    def contact_email(self, key: str) -> str | None:
        row = self.execute("SELECT email FROM contacts WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def forget(self, address: str, *, dry_run: bool = False) -> Forgotten:
        """Remove a person from state.db; keep (or add) their opt-out as a hash only.

        ``dry_run``: count (and find the response ids and files) without deleting.
        """
        out = Forgotten()
        email = normalise(address)
        with contextlib.suppress(_DryRun):  # the dry run's rollback
            self._forget(email, address, out, dry_run)
        if not dry_run:
            # secure_delete overwrote the freed pages; the WAL still holds copies
            self.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return out

    def _forget(self, email: str, address: str, out: Forgotten, dry_run: bool) -> None:
        with self.transaction():
            # the keys this address had in contact lists; a key alone may belong to
            # somebody else today (renumbered lists), so rows are found by address
            keys = {r[0] for r in self.execute(
                "SELECT key FROM contacts WHERE email = ? COLLATE NOCASE", (email,)).fetchall()}
            marks = ",".join("?" * len(keys))
            if keys:
                out.response_ids = [r[0] for r in self.execute(
                    f"SELECT response_id FROM forms_issued WHERE contact_key IN ({marks})",
                    tuple(keys)).fetchall()]
                out.responses = self.execute(
                    f"DELETE FROM responses WHERE contact_key IN ({marks})", tuple(keys)).rowcount
                out.forms = self.execute(
                    f"DELETE FROM forms_issued WHERE contact_key IN ({marks})",
                    tuple(keys)).rowcount
                out.contacts = self.execute(
                    "DELETE FROM contacts WHERE email = ? COLLATE NOCASE", (email,)).rowcount
            out.sends = self.execute("DELETE FROM sends WHERE email = ?", (email,)).rowcount
            self.execute("DELETE FROM answers WHERE email = ?", (email,))
            self.execute("DELETE FROM questions WHERE email = ?", (email,))
            self.execute("DELETE FROM website_approved WHERE key NOT IN "
                         "(SELECT key FROM responses)")
            self.execute("INSERT OR IGNORE INTO optouts (email_hash, source, created_at) "
                          "VALUES (?, ?, ?)", (email_hash(address), "vergessen", _now()))
            if dry_run:
                raise _DryRun  # rolls the transaction back


def email_hash(address: str) -> str:
    """The opt-out key: an umlaut domain counts in either spelling (see addresses)."""
    import hashlib

    return hashlib.sha256(normalise(address).encode("utf-8")).hexdigest()


class Send(NamedTuple):
    campaign: str
    email: str
    contact_key: str
    state: SendState
    message_id: str
    reply: str
    attempts: int
    updated_at: str
    sent_at: float | None


SEND_COLUMNS = ("campaign", "email", "contact_key", "state", "message_id", "reply", "attempts",
                "updated_at", "sent_at")


def _send(row: Sequence[Any]) -> Send:
    values = list(row)
    values[3] = SendState(values[3])
    return Send(*values)


BOUNCED = "unzustellbar (Rückmeldung)"  # how a bounce's failure reply starts
FILED = "datei"  # answers.kind of a return whose files are no readable form (a photo)


@dataclass
class CampaignStatus:
    campaign: str
    sent: int = 0
    failed: int = 0
    pending: int = 0
    unknown: int = 0
    answered: int = 0
    unanswered: int = 0
    opted_out: int = 0
    by_mail: int = 0  # of the answered: by a reply without a form
    undeliverable: int = 0  # failed by a delivery report (mail fetch), not at sending


class Recipient(NamedTuple):
    """One address of a campaign as the status shows it."""

    key: str
    email: str
    state: SendState
    sent_at: str
    answered: bool
    name: str
    organisation: str
    address: str
    reply: str  # the server's last reply (why it failed, for example)
    by_mail: bool = False  # answered by a reply without a form (mail fetch)


class Reply(NamedTuple):
    """A reply without a form (``mail fetch``), as ``status --antworten`` lists it."""

    key: str
    name: str
    organisation: str
    email: str
    received_at: str
    subject: str
    snippet: str


class Journal:
    """The mail journal inside a Store: one row per (campaign, address)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def campaign(self, name: str, template: str) -> None:
        self.store.execute("INSERT OR IGNORE INTO campaigns (name, template, created_at) "
                           "VALUES (?, ?, ?)", (name, template, _now()))

    def drop_if_empty(self, name: str) -> None:
        """A campaign that never sent anything (declined, refused) leaves no trace."""
        self.store.execute("DELETE FROM campaigns WHERE name = ? AND NOT EXISTS "
                           "(SELECT 1 FROM sends WHERE campaign = ?)", (name, name))

    def get(self, campaign: str, email: str) -> Send | None:
        row = self.store.execute(f"SELECT {_columns(SEND_COLUMNS)} FROM sends "
                                 "WHERE campaign = ? AND email = ?",
                                 (campaign, normalise(email))).fetchone()
        return _send(row) if row else None

    def sends(self, campaign: str) -> Iterator[Send]:
        rows = self.store.execute(f"SELECT {_columns(SEND_COLUMNS)} FROM sends "
                                  "WHERE campaign = ? ORDER BY rowid", (campaign,)).fetchall()
        for row in rows:
            yield _send(row)

    def mark(self, campaign: str, *, email: str, key: str, state: SendState,
             message_id: str = "", reply: str = "", sent_at: float | None = None,
             attempt: bool = False) -> None:
        """Record a state; each call is its own committed transaction (autocommit)."""
        self.store.execute(
            f"""INSERT INTO sends ({_columns(SEND_COLUMNS)})
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (campaign, email) DO UPDATE SET
                 contact_key = excluded.contact_key, state = excluded.state,
                 message_id = excluded.message_id, reply = excluded.reply,
                 attempts = sends.attempts + ?, updated_at = excluded.updated_at,
                 sent_at = excluded.sent_at""",
            (campaign, normalise(email), key, str(state), message_id, reply, int(attempt),
             _now(), sent_at, int(attempt)))

    def crashed_to_unknown(self, campaign: str) -> list[Send]:
        """Sends left in 'sending' by a run that died: the server may have them. -> unknown.

        Only the holder of the send lock may call this (a live run has 'sending' rows)."""
        with self.store.transaction():
            rows = [_send(r) for r in self.store.execute(
                f"SELECT {_columns(SEND_COLUMNS)} FROM sends "
                "WHERE campaign = ? AND state = 'sending'", (campaign,)).fetchall()]
            self.store.execute("UPDATE sends SET state = 'unknown', updated_at = ? "
                               "WHERE campaign = ? AND state = 'sending'", (_now(), campaign))
        return rows

    def release_wall(self, campaign: str, emails: Sequence[str], reply: str) -> None:
        """Failures that were the server's wall, not the recipients': back to pending."""
        with self.store.transaction():
            for email in emails:
                self.store.execute("UPDATE sends SET state = 'pending', reply = ?, "
                                   "updated_at = ? WHERE campaign = ? AND email = ? "
                                   "AND state = 'failed'",
                                   (reply, _now(), campaign, normalise(email)))

    def sent_since(self, since: float) -> list[float]:
        """Times of every message accepted since ``since`` (all campaigns), oldest first."""
        rows = self.store.execute("SELECT sent_at FROM sends WHERE sent_at >= ? "
                                  "ORDER BY sent_at", (since,)).fetchall()
        return [r[0] for r in rows]

    def by_message_id(self, message_id: str) -> Send | None:
        """The send that carried ``message_id`` (a reply's In-Reply-To, a bounce's)."""
        if not message_id:
            return None
        row = self.store.execute(f"SELECT {_columns(SEND_COLUMNS)} FROM sends "
                                 "WHERE message_id = ? LIMIT 1", (message_id,)).fetchone()
        return _send(row) if row else None

    def sends_to(self, email: str) -> list[Send]:
        """Every send to ``email``, newest first."""
        rows = self.store.execute(f"SELECT {_columns(SEND_COLUMNS)} FROM sends WHERE email = ? "
                                  "ORDER BY COALESCE(sent_at, 0) DESC, rowid DESC",
                                  (normalise(email),)).fetchall()
        return [_send(r) for r in rows]

    def unsettled(self, campaign: str | None = None) -> list[Send]:
        """Sends whose outcome nobody knows (a run died between handing the message over
        and the server's 250 being recorded), with the Message-ID they went out with.
        Only the holder of the run lock may call this: then 'sending' rows are a dead
        run's too."""
        sql = (f"SELECT {_columns(SEND_COLUMNS)} FROM sends WHERE state IN "
               "('unknown', 'sending') AND message_id != ''")
        args: tuple[str, ...] = ()
        if campaign is not None:
            sql += " AND campaign = ?"
            args = (campaign,)
        return [_send(r) for r in self.store.execute(sql + " ORDER BY rowid", args).fetchall()]

    def settle_sent(self, send: Send, how: str) -> bool:
        """An unknown send went out after all (``how``: the proof, in German)."""
        cursor = self.store.execute(
            "UPDATE sends SET state = 'sent', reply = ?, updated_at = ?, "
            "sent_at = COALESCE(sent_at, ?) WHERE campaign = ? AND email = ? AND "
            "message_id = ? AND state IN ('unknown', 'sending')",
            (how, _now(), time.time(), send.campaign, send.email, send.message_id))
        return cursor.rowcount == 1

    def mark_undeliverable(self, campaign: str, email: str, reply: str) -> bool:
        """A delivery report says the message never arrived: failed, with its words
        (``status --fehler`` lists it, reminders skip it, ``--retry-failed`` tries again)."""
        cursor = self.store.execute("UPDATE sends SET state = 'failed', reply = ?, "
                                    "updated_at = ? WHERE campaign = ? AND email = ? "
                                    "AND state IN ('sent', 'unknown', 'sending')",
                                    (reply, _now(), campaign, normalise(email)))
        return cursor.rowcount == 1

    def ask(self, kind: str, *, email: str, campaign: str, subject: str, note: str,
            message_key: str) -> None:
        """Keep a decision for the coordinator ("bitte prüfen"), once per message."""
        self.store.execute("INSERT OR IGNORE INTO questions (kind, email, campaign, subject, "
                           "note, message_key, asked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (kind, normalise(email), campaign, subject[:200], note[:500],
                            message_key, _now()))

    def questions(self) -> list[Question]:
        """The open decisions, oldest first."""
        rows = self.store.execute("SELECT id, kind, email, campaign, subject, note, asked_at "
                                  "FROM questions ORDER BY id").fetchall()
        return [Question(*row) for row in rows]

    def question(self, number: int) -> Question | None:
        """One open decision (None: already decided)."""
        row = self.store.execute("SELECT id, kind, email, campaign, subject, note, asked_at "
                                 "FROM questions WHERE id = ?", (number,)).fetchone()
        return Question(*row) if row is not None else None

    def settle_question(self, number: int) -> None:
        """Take a decided question off the list."""
        self.store.execute("DELETE FROM questions WHERE id = ?", (number,))

    def restore_delivered(self, campaign: str, email: str) -> bool:
        """A bounce was wrong (the coordinator knows the mail arrived): sent again."""
        cursor = self.store.execute(
            "UPDATE sends SET state = 'sent', reply = '', updated_at = ? WHERE campaign = ? "
            "AND email = ? AND state = 'failed' AND reply LIKE ?",
            (_now(), campaign, normalise(email), BOUNCED + "%"))
        return cursor.rowcount == 1

    def record_answer(self, *, email: str, campaign: str, message_id: str,
                      subject: str, kind: str = "reply", snippet: str = "") -> None:
        """The address answered ``campaign``: by a reply without a form (``reply``), or
        with a form that has no response id, known by the sender (``form``)."""
        self.store.execute("INSERT OR REPLACE INTO answers (email, campaign, message_id, "
                           "subject, received_at, kind, snippet) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (normalise(email), campaign, message_id, subject[:200], _now(),
                            kind, snippet[:500]))

    def answered_addresses(self) -> set[str]:
        """Every address that answered any campaign: a form (by its response id's
        contact, or its sender), a reply, or marked by hand."""
        rows = self.store.execute(
            "SELECT email FROM answers UNION SELECT c.email FROM responses r "
            "JOIN contacts c ON c.key = r.contact_key WHERE r.contact_key != ''").fetchall()
        return {normalise(r[0]) for r in rows}

    def last_sent(self, campaign: str) -> float | None:
        """When the campaign's last message was accepted (unix time), if ever."""
        row = self.store.execute("SELECT MAX(sent_at) FROM sends WHERE campaign = ? AND "
                                 "state = 'sent'", (campaign,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def unmark_answer(self, *, email: str, campaign: str, kind: str) -> bool:
        cursor = self.store.execute("DELETE FROM answers WHERE email = ? AND campaign = ? "
                                    "AND kind = ?", (normalise(email), campaign, kind))
        return cursor.rowcount > 0

    def replies(self, campaign: str) -> Iterator[Reply]:
        """The replies without a form to ``campaign`` (mails, and files that are no form),
        oldest first, with who sent them."""
        rows = self.store.execute(
            """SELECT COALESCE(c.key, ''), COALESCE(c.name, ''), COALESCE(c.organisation, ''),
                      a.email, a.received_at, a.subject, a.snippet
               FROM answers a LEFT JOIN contacts c ON c.rowid = (
                   SELECT rowid FROM contacts WHERE email = a.email COLLATE NOCASE
                   ORDER BY updated_at DESC, rowid DESC LIMIT 1)
               WHERE a.campaign = ? AND a.kind IN ('reply', ?)
               ORDER BY a.received_at, a.rowid""", (campaign, FILED)).fetchall()
        return (Reply(*row) for row in rows)

    def imap_position(self, account: str, folder: str) -> tuple[int, int]:
        """(UIDVALIDITY, last UID handled) of a folder; (0, 0) before the first run."""
        row = self.store.execute("SELECT uidvalidity, last_uid FROM imap_position "
                                 "WHERE account = ? AND folder = ?", (account, folder)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def set_imap_position(self, account: str, folder: str, uidvalidity: int,
                          last_uid: int) -> None:
        self.store.execute("INSERT OR REPLACE INTO imap_position (account, folder, "
                           "uidvalidity, last_uid) VALUES (?, ?, ?, ?)",
                           (account, folder, uidvalidity, last_uid))

    def handled(self, key: str) -> bool:
        """Whether a mailbox message was handled before."""
        return self.store.execute("SELECT 1 FROM inbound WHERE key = ?",
                                  (key,)).fetchone() is not None

    def mailbox_counts(self) -> tuple[dict[str, int], str]:
        """What ``mail fetch`` handled, by kind (inbound.Kind's value), and when last."""
        counts = {str(kind): int(n) for kind, n in self.store.execute(
            "SELECT kind, COUNT(*) FROM inbound GROUP BY kind")}
        last = self.store.execute("SELECT MAX(handled_at) FROM inbound").fetchone()[0]
        return counts, str(last or "")

    def record_handled(self, key: str, kind: str) -> None:
        self.store.execute("INSERT OR IGNORE INTO inbound (key, kind, handled_at) "
                           "VALUES (?, ?, ?)", (key, kind, _now()))

    def add_optout(self, address: str, source: str) -> bool:
        cursor = self.store.execute("INSERT OR IGNORE INTO optouts (email_hash, source, "
                                    "created_at) VALUES (?, ?, ?)",
                                    (email_hash(address), source, _now()))
        return cursor.rowcount == 1

    def is_opted_out(self, address: str) -> bool:
        row = self.store.execute("SELECT 1 FROM optouts WHERE email_hash = ?",
                                 (email_hash(address),)).fetchone()
        return row is not None

    def templates(self) -> dict[str, str]:
        """Each campaign's template name."""
        return {r[0]: r[1] for r in self.store.execute("SELECT name, template FROM campaigns")}

    def campaigns(self) -> list[str]:
        return [r[0] for r in self.store.execute(
            "SELECT name FROM campaigns ORDER BY created_at, rowid").fetchall()]

    def recipients(self, campaign: str, *, live: bool = False) -> Iterator[Recipient]:
        """Every address the campaign was sent (or tried) to, with whether they answered.

        A response counts for the address whatever key the contact had when it was
        issued its form. Rows left in *sending* are *unknown* unless ``live`` (a run
        holds the send lock and is sending them now).
        """
        rows = self.store.execute(
            """SELECT s.contact_key, s.email, s.state, s.updated_at,
                      EXISTS (SELECT 1 FROM responses r WHERE r.contact_key != '' AND
                              (r.contact_key = s.contact_key OR r.contact_key IN
                               (SELECT key FROM contacts WHERE email = s.email
                                COLLATE NOCASE))),
                      COALESCE(c.name, ''), COALESCE(c.organisation, ''),
                      COALESCE(c.address, ''), s.reply,
                      EXISTS (SELECT 1 FROM answers a WHERE a.email = s.email),
                      EXISTS (SELECT 1 FROM answers a WHERE a.email = s.email
                              AND a.kind = 'reply')
               FROM sends s LEFT JOIN contacts c ON c.rowid = (
                   SELECT rowid FROM contacts WHERE email = s.email COLLATE NOCASE
                   ORDER BY updated_at DESC, rowid DESC LIMIT 1)
               WHERE s.campaign = ? ORDER BY s.rowid""", (campaign,)).fetchall()
        for row in rows:
            state = SendState(row[2])
            if state is SendState.SENDING and not live:
                state = SendState.UNKNOWN
            form = bool(row[4]) or (bool(row[9]) and not row[10])  # a form, by id or sender
            by_mail = bool(row[10]) and not form
            yield Recipient(row[0], row[1], state, row[3], form or by_mail, row[5], row[6],
                            row[7], row[8], by_mail=by_mail)

    def status(self, campaign: str, *, live: bool = False) -> CampaignStatus:
        """The counts of one campaign."""
        status = CampaignStatus(campaign)
        for r in self.recipients(campaign, live=live):
            if r.state is SendState.FAILED and r.reply.startswith(BOUNCED):
                status.undeliverable += 1
                continue
            if r.state in (SendState.FAILED, SendState.PENDING, SendState.UNKNOWN):
                setattr(status, r.state.value, getattr(status, r.state.value) + 1)
                continue
            if r.state is not SendState.SENT:
                continue
            status.sent += 1
            if r.answered:
                status.answered += 1
                status.by_mail += r.by_mail
            elif self.is_opted_out(r.email):
                status.opted_out += 1
            else:
                status.unanswered += 1
        return status

    def undelivered(self, campaign: str, *, live: bool = False) -> Iterator[Recipient]:
        """Did not get the campaign (yet): failed, pending, or unknown after a crash."""
        return (r for r in self.recipients(campaign, live=live)
                if r.state in UNDELIVERED_STATES)

    def unanswered(self, campaign: str) -> Iterator[Recipient]:
        """Got the campaign, have not answered, have not opted out."""
        for r in self.recipients(campaign):
            if r.state is SendState.SENT and not r.answered and not self.is_opted_out(r.email):
                yield r


@dataclass(frozen=True)
class Question:
    """A decision the mailbox left to the coordinator."""

    id: int
    kind: str  # 'abmeldung' | 'unzustellbar'
    email: str
    campaign: str
    subject: str
    note: str
    asked_at: str


@dataclass
class Forgotten:
    """What `forget` removed from state.db, and what it learned to look for in files."""

    contacts: int = 0
    sends: int = 0
    responses: int = 0
    forms: int = 0
    response_ids: list[str] = field(default_factory=list)  # to find their files by content
