"""Use case: DSGVO – one person out of everything (``formtool forget``).

Exactly one person: the address is compared exactly (normalised: case, IDNA), never
as a substring, and files are matched by what they hold – the address or one of the
person's response ids as a whole token, in a CSV row, a PDF form field, an .eml or a
temporary or backup file – never by their name. The order is safe: everything is
found first, then state.db is cleaned, then the files; a failure half-way says what
is left.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from formtool.addresses import ascii_email, normalise
from formtool.data import csvtext
from formtool.errors import FormtoolError
from formtool.mail import sentcopy
from formtool.state.store import Forgotten as Removed
from formtool.state.store import Store
from formtool.workspace import Workspace

SCANNED = {".csv", ".eml", ".pdf", ".tmp", ".bak", ".txt"}
# characters that may stand beside an address inside a longer one (local part, domain)
_ADDRESS_CHARS = r"A-Za-z0-9.!#$%&'*+/=?^_`{|}~-"


class PrivacyError(FormtoolError):
    """The address cannot be forgotten as given."""


@dataclass(frozen=True)
class Finding:
    path: Path
    rows: int  # CSV rows holding the data; 0 means the whole file

    @property
    def whole_file(self) -> bool:
        return self.rows == 0


class _Needles:
    """The person's address spellings and response ids, as whole tokens."""

    def __init__(self, addresses: list[str], response_ids: list[str]) -> None:
        self.addresses = {normalise(a) for a in addresses}
        self.response_ids = set(response_ids)
        parts = [rf"(?<![{_ADDRESS_CHARS}]){re.escape(a)}(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
                 for a in sorted({a.strip() for a in addresses} | self.addresses)]
        parts += [rf"(?<![A-Za-z0-9]){re.escape(r)}(?![A-Za-z0-9])"
                  for r in sorted(self.response_ids)]
        self.pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def in_text(self, text: str) -> bool:
        return self.pattern is not None and self.pattern.search(text) is not None

    def in_value(self, value: str) -> bool:
        value = value.strip()
        return value in self.response_ids or normalise(value) in self.addresses or (
            self.in_text(value))


def _csv_rows(text: str) -> list[list[str]]:
    delimiter = csvtext.delimiter(text.split("\n", 1)[0])
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _pdf_holds(path: Path, needles: _Needles) -> bool:
    from formtool.pdf.extract import Outcome, extract  # pikepdf: only when PDFs are searched

    found = extract(path)
    if found.outcome is not Outcome.READ:
        return needles.in_text(path.read_bytes().decode("latin-1"))
    return any(isinstance(raw.value, str) and needles.in_value(raw.value)
               for raw in found.fields.values())


def find(root: Path, needles: _Needles) -> Iterator[Finding]:
    """Every file below ``root`` (but .formtool/) that holds the person's data."""
    for path in sorted(root.rglob("*")):
        if not path.is_file() or ".formtool" in path.relative_to(root).parts:
            continue
        suffix = path.suffix.lower()
        if suffix not in SCANNED:
            continue
        if suffix == ".pdf":
            if _pdf_holds(path, needles):
                yield Finding(path, 0)
            continue
        data = path.read_bytes()
        if suffix == ".csv":
            try:
                text, _ = csvtext.decode(data, str(path))
                rows = sum(1 for i, row in enumerate(_csv_rows(text))
                           if i > 0 and any(needles.in_value(cell) for cell in row))
            except (csvtext.NotCsvError, csv.Error):
                rows = 0 if not needles.in_text(data.decode("latin-1")) else -1
            if rows > 0:
                yield Finding(path, rows)
            elif rows < 0:
                yield Finding(path, 0)
        elif needles.in_text(data.decode("utf-8", "replace")) or needles.in_text(
                data.decode("latin-1")):
            yield Finding(path, 0)  # .eml, temporary and backup files: the whole file


def delete(finding: Finding, needles: _Needles) -> None:
    """Delete the file, or (CSV) rewrite it without the person's rows."""
    if finding.whole_file:
        finding.path.unlink()
        return
    text, encoding = csvtext.decode(finding.path.read_bytes(), str(finding.path))
    delimiter = csvtext.delimiter(text.split("\n", 1)[0])
    rows = _csv_rows(text)
    if not rows:
        return
    from formtool.data.tables import Dialect, write_csv  # the one CSV writer

    write_csv(finding.path, rows[0], (row for row in rows[1:]
                                      if not any(needles.in_value(cell) for cell in row)),
              Dialect(delimiter, encoding))


@dataclass
class Forgotten:
    """What ``forget`` removed from state.db and found (or deleted) in the files."""

    removed: Removed
    findings: list[Finding]
    deleted: bool
    left: list[str] = field(default_factory=list)  # files that could not be deleted, why
    copies: int = 0  # messages to them still waiting for the Sent folder, removed

    @property
    def nobody(self) -> bool:
        """The address matched nothing at all."""
        r = self.removed
        return not (r.contacts or r.sends or r.responses or r.forms or self.findings
                    or self.copies)


def forget(ws: Workspace, address: str, *, delete_files: bool = False) -> Forgotten:
    """DSGVO: one person out of state.db (their opt-out stays as a hash), and the files
    that still hold their data: listed, or with ``delete_files`` deleted (CSV rows
    removed). No older copy of state.db keeps them (the backups are renewed)."""
    sendable = ascii_email(address)
    if sendable is None:
        raise PrivacyError(f"„{address}“ ist keine gültige E-Mail-Adresse.")
    with Store(ws.state_db) as db:
        planned = db.forget(sendable, dry_run=True)  # find first ...
        needles = _Needles([address, sendable], planned.response_ids)
        findings = list(find(ws.root, needles))
        removed = db.forget(sendable)  # ... then delete
        db.checkpoint(keep=1)
    result = Forgotten(removed, findings, delete_files,
                       copies=sentcopy.drop_for(ws.state_dir, sendable))
    if delete_files:
        for finding in findings:
            try:
                delete(finding, needles)
            except (OSError, FormtoolError) as exc:
                result.left.append(f"{finding.path}: {exc}")
    return result
