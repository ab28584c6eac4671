"""DSGVO: find (and on request delete) a person's data in the workspace's files.

``state.db`` is cleaned by ``Store.forget``; this module looks in
the files: CSV rows (contact lists, response tables), .eml files and PDFs that
hold the address, a response id of theirs, or that were issued to them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from formtool import atomic
from formtool.addresses import ascii_email
from formtool.data import csvtext
from formtool.errors import FormtoolError
from formtool.state import store
from formtool.state.store import Store
from formtool.workspace import Workspace

SCANNED = {".csv", ".eml", ".pdf"}


class PrivacyError(FormtoolError):
    """The address cannot be forgotten as given."""


@dataclass(frozen=True)
class Finding:
    path: Path
    rows: int  # CSV rows holding the data; 0 means the whole file

    @property
    def whole_file(self) -> bool:
        return self.rows == 0


def _dialect(text: str) -> str:
    return csvtext.delimiter(text.split("\n", 1)[0])


def _matches(text: str, needles: list[str]) -> bool:
    lowered = text.lower()
    return any(n in lowered for n in needles)


def find(root: Path, addresses: list[str], response_ids: list[str], files: list[str]
         ) -> Iterator[Finding]:
    """Every file below ``root`` (but .formtool/) that still holds the person's data."""
    needles = [a.lower() for a in (*addresses, *response_ids)]
    named = {Path(f).name for f in files}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or ".formtool" in path.relative_to(root).parts:
            continue
        if path.suffix.lower() not in SCANNED:
            continue
        if path.name in named or str(path) in files:
            yield Finding(path, 0)
            continue
        data = path.read_bytes()
        if path.suffix.lower() == ".csv":
            text, _ = csvtext.decode(data)
            rows = sum(1 for line in csv.reader(io.StringIO(text), delimiter=_dialect(text))
                       if _matches(";".join(line), needles))
            if rows:
                yield Finding(path, rows)
        elif _matches(data.decode("latin-1"), needles):
            yield Finding(path, 0)


def delete(finding: Finding, addresses: list[str], response_ids: list[str]) -> None:
    """Delete the file, or (CSV) rewrite it without the person's rows."""
    if finding.whole_file:
        finding.path.unlink()
        return
    needles = [a.lower() for a in (*addresses, *response_ids)]
    text, encoding = csvtext.decode(finding.path.read_bytes())
    delimiter = _dialect(text)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    with atomic.replacing(finding.path, mode="w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerows(row for i, row in enumerate(rows)
                         if i == 0 or not _matches(";".join(row), needles))


@dataclass
class Forgotten:
    """What ``forget`` removed from state.db and found (or deleted) in the files."""

    removed: store.Forgotten
    findings: list[Finding]
    deleted: bool


def forget(ws: Workspace, address: str, *, delete_files: bool = False) -> Forgotten:
    """DSGVO: one person out of state.db (their opt-out stays as a hash), and the files
    that still hold their data: listed, or with ``delete_files`` deleted (CSV rows
    removed). No older copy of state.db keeps them (the backups are renewed)."""
    sendable = ascii_email(address)
    if sendable is None:
        raise PrivacyError(f"„{address}“ ist keine gültige E-Mail-Adresse.")
    with Store(ws.state_db) as db:
        removed = db.forget(sendable)
        db.checkpoint(keep=1)
    spellings = sorted({address.strip(), sendable})  # as typed, and as sent
    findings = list(find(ws.root, spellings, removed.response_ids, removed.files))
    if delete_files:
        for finding in findings:
            delete(finding, spellings, removed.response_ids)
    return Forgotten(removed, findings, delete_files)
