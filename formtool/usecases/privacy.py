"""Use case: DSGVO – one person out of everything (``formtool forget``).

Exactly one person: the address is compared exactly (normalised: case, IDNA), never
as a substring, and files are matched by what they hold – the address or one of the
person's response ids as a whole token – never by their name. Every file of the
workspace is looked at, whatever it is called: a CSV row by row, a PDF by its form
fields, an Excel workbook by its cells (the members of its zip), an mbox message by
message, anything else (a Maildir message, an .eml, a temporary or backup file, a
log) by its bytes. The order is safe: everything is found first, then state.db is
cleaned, then the files; a failure half-way says what is left.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from formtool.addresses import ascii_email, normalise, shown, why_invalid
from formtool.data import csvtext
from formtool.errors import FormtoolError
from formtool.mail import sentcopy
from formtool.state.store import Forgotten as Removed
from formtool.state.store import Store, present
from formtool.workspace import Workspace

CHUNK = 8 * 1024 * 1024  # a large file is searched in pieces (with an overlap)
ZIP_MEMBERS = 256 * 1024 * 1024  # bytes unpacked from one workbook at most (a zip bomb)
# characters that may stand beside an address inside a longer one (local part, domain)
_ADDRESS_CHARS = r"A-Za-z0-9.!#$%&'*+/=?^_`{|}~-"


class PrivacyError(FormtoolError):
    """The address cannot be forgotten as given."""


@dataclass(frozen=True)
class Finding:
    path: Path
    rows: int  # CSV rows (mbox messages) holding the data; 0 means the whole file
    kind: str = "file"  # "csv", "mbox", "workbook" (written anew from its table), "file"

    @property
    def whole_file(self) -> bool:
        return self.rows == 0 and self.kind == "file"

    def what(self, *, deleted: bool) -> str:
        """What holds the data, and (``deleted``) what became of it, in German."""
        if self.kind == "workbook":
            return ("Excel-Tabelle ohne diese Person neu geschrieben" if deleted else
                    "Excel-Tabelle enthält noch Daten (wird aus der CSV-Tabelle neu "
                    "geschrieben)")
        what = {"csv": f"{self.rows} Zeile(n)", "mbox": f"{self.rows} E-Mail(s)"}.get(
            self.kind, "Datei")
        return f"{what} {'gelöscht' if deleted else 'enthält noch Daten'}"


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


def _bytes_hold(path: Path, needles: _Needles) -> bool:
    """Whether a file's bytes hold the data, read in pieces (UTF-8, Latin-1 and UTF-16
    text alike)."""
    overlap = b""
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            data = overlap + chunk
            texts = (data.decode("utf-8", "replace"), data.decode("latin-1"),
                     data.decode("utf-16-le", "replace"), data[1:].decode("utf-16-le",
                                                                          "replace"))
            if any(needles.in_text(t) for t in texts):
                return True
            overlap = data[-4096:]
    return False


def _workbook_holds(path: Path, needles: _Needles) -> bool:
    """Whether an Excel workbook's cells hold the data (its XML members, unpacked up to
    ZIP_MEMBERS; a workbook that cannot be opened is searched as bytes)."""
    import html
    import zipfile

    try:
        with zipfile.ZipFile(path) as book:
            left = ZIP_MEMBERS
            for info in book.infolist():
                if left <= 0:
                    break
                with book.open(info) as member:
                    data = member.read(min(info.file_size, left))
                left -= len(data)
                if needles.in_text(html.unescape(data.decode("utf-8", "replace"))):
                    return True
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return _bytes_hold(path, needles)
    return False


def _mbox_messages(path: Path, needles: _Needles) -> tuple[int, int]:
    """(messages that hold the data, all messages) of an mbox file."""
    import mailbox

    box = mailbox.mbox(path, create=False)
    try:
        keys = list(box.iterkeys())
        found = sum(1 for key in keys if needles.in_text(
            box.get_bytes(key).decode("utf-8", "replace")))
    finally:
        box.close()
    return found, len(keys)


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def find(root: Path, needles: _Needles) -> Iterator[Finding]:
    """Every file below ``root`` (but .formtool/, which forget cleans itself) that holds
    the person's data."""
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink() or ".formtool" in path.relative_to(
                root).parts:
            continue
        suffix = path.suffix.lower()
        if suffix == ".pdf":
            if _pdf_holds(path, needles):
                yield Finding(path, 0)
        elif suffix == ".csv":
            data = path.read_bytes()
            try:
                text, _ = csvtext.decode(data, str(path))
                rows = sum(1 for i, row in enumerate(_csv_rows(text))
                           if i > 0 and any(needles.in_value(cell) for cell in row))
            except (csvtext.NotCsvError, csv.Error):
                rows = 0 if not needles.in_text(data.decode("latin-1")) else -1
            if rows > 0:
                yield Finding(path, rows, "csv")
            elif rows < 0:
                yield Finding(path, 0)
        elif suffix in (".xlsx", ".xlsm", ".ods"):
            if _workbook_holds(path, needles):
                table = path.with_suffix(".csv")
                yield Finding(path, 0, "workbook" if suffix == ".xlsx" and table.is_file()
                              else "file")
        elif _is_mbox(path) and suffix not in (".eml", ".txt"):
            found, total = _mbox_messages(path, needles)
            if found:
                yield (Finding(path, 0) if found == total else Finding(path, found, "mbox"))
        elif _bytes_hold(path, needles):
            yield Finding(path, 0)  # a Maildir message, .eml, temporary or backup file …


def delete(ws: Workspace, finding: Finding, needles: _Needles) -> None:
    """Delete the file, or rewrite it without the person: a CSV without their rows, an
    mbox without their messages, a workbook written anew from its (cleaned) table."""
    if finding.whole_file:
        finding.path.unlink()
        return
    if finding.kind == "workbook":
        from formtool.usecases.importing import rewrite_workbook

        rewrite_workbook(ws, finding.path.with_suffix(".csv"), finding.path)
        return
    if finding.kind == "mbox":
        import mailbox

        box = mailbox.mbox(finding.path, create=False)
        try:
            box.lock()
            for key in [k for k in box.iterkeys()
                        if needles.in_text(box.get_bytes(k).decode("utf-8", "replace"))]:
                box.remove(key)
            box.flush()
        finally:
            box.unlock()
            box.close()
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
        why = why_invalid(address)
        raise PrivacyError(f"„{shown(address)}“ ist keine gültige E-Mail-Adresse"
                           + (f" ({why})." if why else "."))
    with Store(ws.state_db) as db:
        planned = db.forget(sendable, dry_run=True)  # find first ...
        needles = _Needles([address, sendable], planned.response_ids)
        findings = list(find(ws.root, needles))
        removed = db.forget(sendable)  # ... then delete
        db.checkpoint(keep=1)
    result = Forgotten(removed, findings, delete_files,
                       copies=sentcopy.drop_for(ws.state_dir, sendable))
    if delete_files:
        # workbooks last: each is written anew from its table once that is clean
        for finding in sorted(findings, key=lambda f: f.kind == "workbook"):
            try:
                delete(ws, finding, needles)
            except (OSError, FormtoolError) as exc:
                result.left.append(f"{finding.path}: {exc}")
    return result


@dataclass
class Planned:
    """What ``forget`` would remove and delete for an address – found, nothing changed."""

    address: str
    removed: Removed
    findings: list[Finding]

    @property
    def nobody(self) -> bool:
        r = self.removed
        return not (r.contacts or r.sends or r.responses or r.forms or self.findings)


def plan(ws: Workspace, address: str) -> Planned:
    """The web page's first step of forgetting: exactly what would go (rows of state.db,
    files, table rows), without changing anything."""
    sendable = ascii_email(address)
    if sendable is None:
        why = why_invalid(address)
        raise PrivacyError(f"„{shown(address)}“ ist keine gültige E-Mail-Adresse"
                           + (f" ({why})." if why else "."))
    if not present(ws.state_db):
        planned = Removed()
    else:
        with Store(ws.state_db) as db:
            planned = db.forget(sendable, dry_run=True)
    needles = _Needles([address, sendable], planned.response_ids)
    return Planned(sendable, planned, list(find(ws.root, needles)))


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    organisation: str


def find_people(ws: Workspace, text: str, *, limit: int = 50) -> list[Person]:
    """People whose name, organisation or address contains ``text`` (case and accents as
    typed are ignored by casefolding): in state.db and in every contact list – so that
    the coordinator can find the address to forget by the name she knows."""
    from formtool.mail import contacts as contact_lists

    wanted = " ".join(text.split()).casefold()
    if len(wanted) < 2:
        raise PrivacyError("Bitte mindestens zwei Zeichen eingeben.")
    found: dict[str, Person] = {}

    def add(email: str, name: str, organisation: str) -> None:
        if wanted in f"{name}\n{organisation}\n{email}".casefold():
            found.setdefault(normalise(email), Person(email, name, organisation))

    if present(ws.state_db):
        with Store(ws.state_db) as db:
            for email, name, organisation in db.execute(
                    "SELECT email, name, organisation FROM contacts ORDER BY name"):
                add(email, name, organisation)
    if ws.contacts_dir.is_dir():
        for path in sorted(ws.contacts_dir.iterdir()):
            if path.suffix.lower() not in (".csv", ".xlsx", ".xlsm") or path.name.startswith(
                    (".", "~$")):
                continue
            try:
                for contact in contact_lists.read(path):
                    add(contact.email, contact.display_name, contact.get("organisation"))
            except FormtoolError:
                continue  # a list that cannot be read holds nobody findable
    return sorted(found.values(), key=lambda p: (p.name.casefold(), p.email))[:limit]
