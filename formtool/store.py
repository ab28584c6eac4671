"""The workspace's state: ``.formtool/state.db`` (SQLite, WAL).

This module owns the schema. Migrations are numbered SQL scripts applied in
order; ``PRAGMA user_version`` records how far a database has come.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
)


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


class Store:
    """An open state database. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
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
            f"{verb} INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (response.key, response.form_id, response.form_version, response.response_id,
             response.sha256, response.file_name, response.csv_path, response.problems,
             response.imported_at),
        )

    def responses(self, form_id: str | None = None) -> Iterator[Response]:
        sql = "SELECT * FROM responses"
        args: tuple[str, ...] = ()
        if form_id is not None:
            sql += " WHERE form_id = ?"
            args = (form_id,)
        for row in self.db.execute(sql + " ORDER BY imported_at, key", args):
            yield Response(*row)
