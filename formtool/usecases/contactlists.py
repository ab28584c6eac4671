"""Use case: the contact lists in ``contacts/`` – uploaded, looked at page by page, with
the rows that will be skipped and why, the duplicates and the opted-out addresses."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

from formtool import atomic
from formtool.data.filenames import safe_filename
from formtool.errors import FormtoolError
from formtool.mail import contacts
from formtool.mail.contacts import Skipped
from formtool.state.store import Journal, Store, present
from formtool.workspace import Workspace

MAX_UPLOAD = 20 * 1024 * 1024  # a list of 60,000 contacts is about 8 MB
LIST_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")


class ListError(FormtoolError):
    """An upload or a list name that cannot be taken."""


def lists(ws: Workspace) -> list[str]:
    """The lists in contacts/, by name (files only, no lock or hidden files)."""
    if not ws.contacts_dir.is_dir():
        return []
    return sorted(p.name for p in ws.contacts_dir.iterdir() if p.is_file()
                  and p.suffix.lower() in LIST_SUFFIXES and not p.name.startswith((".", "~$")))


def path_of(ws: Workspace, name: str) -> Path:
    """A list by its name as ``lists`` gives it; never a path outside contacts/."""
    if name not in lists(ws):
        raise ListError(f"Keine Kontaktliste „{name}“ in contacts/ (vorhanden: "
                        f"{', '.join(lists(ws)) or 'keine'}).")
    return ws.contacts_dir / name


def save_upload(ws: Workspace, filename: str, data: bytes) -> str:
    """Store an uploaded list under a safe name in contacts/ (replacing one of the same
    name, atomically); it is read once first, so a file that is no list is refused."""
    if len(data) > MAX_UPLOAD:
        raise ListError(f"„{filename}“ ist {len(data) / 1024 / 1024:.1f} MB groß; höchstens "
                        f"{MAX_UPLOAD // 1024 // 1024} MB.")
    suffix = Path(filename).suffix.lower()
    if suffix in (".xls", ".ods", ".numbers"):
        raise ListError(f"„{filename}“: dieses Tabellenformat liest formtool nicht; bitte in "
                        "Excel „Speichern unter → Excel-Arbeitsmappe (.xlsx)“ oder „CSV UTF-8“ "
                        "wählen.")
    if suffix not in LIST_SUFFIXES:
        raise ListError(f"„{filename}“ ist keine Kontaktliste (erwartet: .csv oder .xlsx).")
    name = safe_filename(Path(filename).stem or "kontakte",
                         suffix=".csv" if suffix == ".txt" else suffix, max_length=80)
    ws.contacts_dir.mkdir(parents=True, exist_ok=True)
    probe = ws.contacts_dir / f".upload-{name}"
    atomic.write_bytes(probe, data)
    try:
        listed = contacts.read(probe)
        sum(1 for _ in listed)
    except BaseException:
        probe.unlink(missing_ok=True)
        raise
    probe.replace(ws.contacts_dir / name)
    return name


@dataclass
class ListView:
    """One page of a list, and what the whole list holds."""

    name: str
    described: list[str]
    header: list[str]
    rows: list[list[str]]  # this page: row number, id, e-mail, then the columns
    total: int = 0  # valid contacts
    page: int = 1
    pages: int = 1
    skipped: list[Skipped] = field(default_factory=list)
    opted_out: list[str] = field(default_factory=list)  # addresses never mailed again


@dataclass
class _Scan:
    """One pass over a list: its rows as shown (joined, to stay small), the verdicts."""

    described: list[str]
    header: list[str]
    rows: list[str]  # "row\x1fid\x1femail\x1fcells…" per valid contact
    skipped: list[Skipped]
    opted_out: list[str]


_SCANS: dict[Path, tuple[tuple[int, ...], _Scan]] = {}  # the last scan of each list
_SCANNING = threading.Lock()  # one scan at a time: a second request waits for it
SEP = "\x1f"


def _stamp(*paths: Path) -> tuple[int, ...]:
    out: list[int] = []
    for path in paths:
        try:
            info = path.stat()
            out += [info.st_mtime_ns, info.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return tuple(out)


def _scan(ws: Workspace, path: Path) -> _Scan:
    """The list read once per change of it (or of the opt-outs in state.db): a page of
    60,000 contacts is then cut from memory instead of parsing the file again."""
    with _SCANNING:
        stamp = _stamp(path, ws.state_db, ws.state_db.with_name(ws.state_db.name + "-wal"))
        known = _SCANS.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        scan = _read(ws, path)
        _SCANS.clear()  # one list in memory at a time
        _SCANS[path] = (stamp, scan)
        return scan


def _read(ws: Workspace, path: Path) -> _Scan:
    listed = contacts.read(path)
    rows: list[str] = []
    opted_out: list[str] = []
    with contextlib.ExitStack() as stack:  # looking creates nothing: no state.db, no opt-out
        journal = (Journal(stack.enter_context(Store(ws.state_db)))
                   if present(ws.state_db) else None)
        for contact in listed:
            if contact.opted_out or (journal is not None
                                     and journal.is_opted_out(contact.email)):
                opted_out.append(contact.email)
            rows.append(SEP.join([str(contact.row), contact.key, contact.email,
                                  *(contact.get(h).replace(SEP, " ") for h in listed.header)]))
    return _Scan(listed.described(), ["Zeile", "ID", "E-Mail", *listed.header], rows,
                 list(listed.skipped), opted_out)


def view(ws: Workspace, name: str, *, page: int = 1, per_page: int = 50) -> ListView:
    scan = _scan(ws, path_of(ws, name))
    total = len(scan.rows)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    first = (page - 1) * per_page
    rows = [row.split(SEP) for row in scan.rows[first:first + per_page]]
    return ListView(name, scan.described, scan.header, rows, total, page, pages,
                    scan.skipped, scan.opted_out)
