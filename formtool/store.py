"""The workspace's state: ``.formtool/state.db`` (SQLite, WAL).

This module owns the schema. Migrations are numbered SQL scripts applied in
order; ``PRAGMA user_version`` records how far a database has come.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from formtool.contacts import ascii_email
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
)


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


class StoreError(FormtoolError):
    """state.db cannot be opened or written."""


@dataclass(frozen=True)
class Response:
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


@dataclass(frozen=True)
class Issued:
    """A personal form: its response id, for whom, in which campaign, where the file is."""

    response_id: str
    form_id: str
    contact_key: str
    campaign: str
    file: str
    created_at: str


class Store:
    """An open state database. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: Zustandsdatenbank nicht nutzbar ({exc}).") from None
        except OSError as exc:
            raise StoreError(f"{path}: kann nicht angelegt werden ({exc.strerror}).") from None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path} stammt von einer neueren formtool-Version "
                             f"(Schema {version}); bitte formtool aktualisieren.")
        for number, script in enumerate(MIGRATIONS[version:], version + 1):
            with self.transaction():
                for statement in filter(str.strip, script.split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # responses ------------------------------------------------------------

    def record_response(self, response: Response, *, replace: bool = True) -> None:
        """Record an imported response; ``replace=False`` keeps an existing record."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self.db.execute(
            f"{verb} INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (response.key, response.form_id, response.form_version, response.response_id,
             response.sha256, response.file_name, response.csv_path, response.problems,
             response.imported_at, response.contact_key, response.campaign),
        )

    # contacts and personal forms ---------------------------------------------

    def remember_contact(self, key: str, email: str, name: str, organisation: str,
                         address: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?, ?, ?)",
                        (key, email, name, organisation, address, _now()))

    def issued(self, form_id: str, contact_key: str, campaign: str | None = None
               ) -> Issued | None:
        """The personal form for this contact: of ``campaign``, else the newest of any."""
        sql = "SELECT * FROM forms_issued WHERE form_id = ? AND contact_key = ?"
        args: tuple[str, ...] = (form_id, contact_key)
        if campaign is not None:
            row = self.db.execute(sql + " AND campaign = ?", (*args, campaign)).fetchone()
            if row is not None:
                return Issued(*row)
        row = self.db.execute(sql + " ORDER BY created_at DESC, rowid DESC LIMIT 1",
                              args).fetchone()
        return Issued(*row) if row else None

    def issue(self, response_id: str, form_id: str, contact_key: str, campaign: str,
              file: str) -> None:
        """Record a personal form (now); its response id is the key."""
        self.db.execute("INSERT OR REPLACE INTO forms_issued VALUES (?, ?, ?, ?, ?, ?)",
                        (response_id, form_id, contact_key, campaign, file, _now()))

    def issued_by_response_id(self, response_id: str) -> Issued | None:
        row = self.db.execute("SELECT * FROM forms_issued WHERE response_id = ?",
                              (response_id,)).fetchone()
        return Issued(*row) if row else None

    def contact_email(self, key: str) -> str | None:
        row = self.db.execute("SELECT email FROM contacts WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def responses(self, form_id: str | None = None) -> Iterator[Response]:
        sql = "SELECT * FROM responses"
        args: tuple[str, ...] = ()
        if form_id is not None:
            sql += " WHERE form_id = ?"
            args = (form_id,)
        for row in self.db.execute(sql + " ORDER BY imported_at, key", args):
            yield Response(*row)


def email_hash(address: str) -> str:
    """The opt-out key: an umlaut domain counts in either spelling (see ascii_email)."""
    normal = ascii_email(address) or address
    return hashlib.sha256(normal.strip().lower().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Send:
    campaign: str
    contact_key: str
    email: str
    state: str
    message_id: str
    reply: str
    attempts: int
    updated_at: str
    sent_at: float | None




class Journal:
    """The mail journal inside a Store; safe to call from several sender threads."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db
        self.lock = threading.Lock()

    def remember_contact(self, key: str, email: str, name: str, organisation: str,
                         address: str) -> None:
        with self.lock:
            self.store.remember_contact(key, email, name, organisation, address)

    def campaign(self, name: str, template: str) -> None:
        with self.lock:
            self.db.execute("INSERT OR IGNORE INTO campaigns VALUES (?, ?, ?)",
                            (name, template, _now()))

    def get(self, campaign: str, key: str) -> Send | None:
        with self.lock:
            row = self.db.execute("SELECT * FROM sends WHERE campaign = ? AND contact_key = ?",
                                  (campaign, key)).fetchone()
        return Send(*row) if row else None

    def sends(self, campaign: str) -> Iterator[Send]:
        with self.lock:
            rows = self.db.execute("SELECT * FROM sends WHERE campaign = ? ORDER BY rowid",
                                   (campaign,)).fetchall()
        for row in rows:
            yield Send(*row)

    def mark(self, campaign: str, key: str, email: str, state: str, *, message_id: str = "",
             reply: str = "", sent_at: float | None = None, attempt: bool = False) -> None:
        """Record a state; each call is its own committed transaction (autocommit)."""
        with self.lock:
            self.db.execute(
                """INSERT INTO sends (campaign, contact_key, email, state, message_id, reply,
                                      attempts, updated_at, sent_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (campaign, contact_key) DO UPDATE SET
                     email = excluded.email, state = excluded.state,
                     message_id = excluded.message_id, reply = excluded.reply,
                     attempts = sends.attempts + ?, updated_at = excluded.updated_at,
                     sent_at = excluded.sent_at""",
                (campaign, key, email, state, message_id, reply, int(attempt), _now(), sent_at,
                 int(attempt)))

    def crashed_to_unknown(self, campaign: str) -> int:
        """Sends left in 'sending' by a run that died: the server may have them. -> unknown."""
        with self.lock:
            cursor = self.db.execute(
                "UPDATE sends SET state = 'unknown', updated_at = ? "
                "WHERE campaign = ? AND state = 'sending'", (_now(), campaign))
        return cursor.rowcount

    def sent_since(self, since: float) -> list[float]:
        """Times of every message accepted since ``since`` (all campaigns), oldest first."""
        with self.lock:
            rows = self.db.execute("SELECT sent_at FROM sends WHERE sent_at >= ? "
                                   "ORDER BY sent_at", (since,)).fetchall()
        return [r[0] for r in rows]

    def add_optout(self, address: str, source: str) -> bool:
        with self.lock:
            cursor = self.db.execute("INSERT OR IGNORE INTO optouts VALUES (?, ?, ?)",
                                     (email_hash(address), source, _now()))
        return cursor.rowcount == 1

    def is_opted_out(self, address: str) -> bool:
        with self.lock:
            row = self.db.execute("SELECT 1 FROM optouts WHERE email_hash = ?",
                                  (email_hash(address),)).fetchone()
        return row is not None


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


@dataclass(frozen=True)
class Recipient:
    """One contact of a campaign as the status shows it."""

    key: str
    email: str
    state: str
    sent_at: str
    answered: bool
    name: str
    organisation: str
    address: str
    reply: str  # the server's last reply (why it failed, for example)


STATES_UNDELIVERED = ("failed", "pending", "unknown", "sending")


def campaigns(store: Store) -> list[str]:
    return [r[0] for r in store.db.execute("SELECT name FROM campaigns ORDER BY created_at")]


def recipients(store: Store, campaign: str) -> Iterator[Recipient]:
    """Everyone the campaign was sent (or tried) to, with whether they answered."""
    rows = store.db.execute(
        """SELECT s.contact_key, s.email, s.state, s.updated_at,
                  EXISTS (SELECT 1 FROM responses r WHERE r.contact_key = s.contact_key
                          AND r.contact_key != ''),
                  COALESCE(c.name, ''), COALESCE(c.organisation, ''), COALESCE(c.address, ''),
                  s.reply
           FROM sends s LEFT JOIN contacts c ON c.key = s.contact_key
           WHERE s.campaign = ? ORDER BY s.rowid""", (campaign,))
    for row in rows:
        yield Recipient(row[0], row[1], row[2], row[3], bool(row[4]), *row[5:])


def campaign_status(store: Store, campaign: str) -> CampaignStatus:
    journal = Journal(store)
    status = CampaignStatus(campaign)
    for r in recipients(store, campaign):
        if r.state in ("failed", "pending", "unknown"):
            setattr(status, r.state, getattr(status, r.state) + 1)
            continue
        if r.state != "sent":
            continue
        status.sent += 1
        if r.answered:
            status.answered += 1
        elif journal.is_opted_out(r.email):
            status.opted_out += 1
        else:
            status.unanswered += 1
    return status


def undelivered(store: Store, campaign: str) -> Iterator[Recipient]:
    """Did not get the campaign (yet): failed, pending, or unknown after a crash."""
    return (r for r in recipients(store, campaign) if r.state in STATES_UNDELIVERED)


def unanswered(store: Store, campaign: str) -> Iterator[Recipient]:
    """Got the campaign, have not answered, have not opted out."""
    journal = Journal(store)
    for r in recipients(store, campaign):
        if r.state == "sent" and not r.answered and not journal.is_opted_out(r.email):
            yield r


@dataclass
class Forgotten:
    """What `forget` removed from state.db, and what it learned to look for in files."""

    contacts: int = 0
    sends: int = 0
    responses: int = 0
    forms: int = 0
    files: list[str] = field(default_factory=list)  # personal forms and returned files
    response_ids: list[str] = field(default_factory=list)


def forget(store: Store, address: str) -> Forgotten:
    """Remove a person from state.db; keep (or add) their opt-out as a hash only."""
    db = store.db
    out = Forgotten()
    with store.transaction():
        keys = {r[0] for r in db.execute(
            "SELECT key FROM contacts WHERE email = ? COLLATE NOCASE "
            "UNION SELECT contact_key FROM sends WHERE email = ? COLLATE NOCASE",
            (address, address))}
        marks = ",".join("?" * len(keys))
        if keys:
            issued = db.execute(f"SELECT response_id, file FROM forms_issued "
                                f"WHERE contact_key IN ({marks})", tuple(keys)).fetchall()
            out.response_ids = [r[0] for r in issued]
            out.files = [r[1] for r in issued]
            out.files += [r[0] for r in db.execute(
                f"SELECT file_name FROM responses WHERE contact_key IN ({marks})", tuple(keys))]
            out.responses = db.execute(f"DELETE FROM responses WHERE contact_key IN ({marks})",
                                       tuple(keys)).rowcount
            out.forms = db.execute(f"DELETE FROM forms_issued WHERE contact_key IN ({marks})",
                                   tuple(keys)).rowcount
            out.contacts = db.execute(f"DELETE FROM contacts WHERE key IN ({marks})",
                                      tuple(keys)).rowcount
        out.sends = db.execute(
            f"DELETE FROM sends WHERE email = ? COLLATE NOCASE"
            f"{f' OR contact_key IN ({marks})' if keys else ''}",
            (address, *keys)).rowcount
        db.execute("INSERT OR IGNORE INTO optouts VALUES (?, ?, ?)",
                   (email_hash(address), "vergessen", _now()))
    return out
