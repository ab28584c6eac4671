"""``formtool import``: files in, one answer per file, rows appended to the CSVs.

Files are read in worker processes (both cores) and arrive in order; each is
identified, normalised and appended at once, so memory stays flat in the number
of files. The CSVs are replaced only at the end, after every file was read: an
interrupted run leaves them as they were.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from formtool.addresses import same_address
from formtool.data import workbook
from formtool.data.normalise import Row, columns, identify, normalise, normalise_raw
from formtool.data.tables import Dialect, ResponseTable, RowWriter, fingerprint
from formtool.errors import FormtoolError
from formtool.pdf import formdef
from formtool.pdf.extract import TOO_BIG, Outcome, extract
from formtool.pdf.formdef import FormDefinition
from formtool.state.store import Response, Store
from formtool.usecases import evidence
from formtool.workspace import Workspace

if TYPE_CHECKING:
    from concurrent.futures import Future

RAW = "raw"
PARALLEL_FROM = 48  # below this many files a second worker costs more than it saves


class Status(Enum):
    IMPORTED = "importiert"
    WITH_PROBLEMS = "importiert mit Problemen"
    REPLACED = "ersetzt"
    DUPLICATE = "bereits importiert"
    CONFLICT = "nicht übernommen"
    HELD = "zurückgehalten (bitte prüfen)"  # somebody else's form: who sent it disagrees
    KNOWN = "schon bekannt"  # unreadable, and said so in an earlier run: no new failure
    FAILED = "fehlgeschlagen"

    @property
    def ok(self) -> bool:
        return self not in (Status.CONFLICT, Status.HELD, Status.FAILED)


@dataclass(frozen=True)
class Origin:
    """The mail a file came with (``mail fetch``), and whose send it proves (evidence)."""

    sender: str
    date: str
    message_id: str
    tie: evidence.Tie | None = None


@dataclass
class FileReport:
    path: Path
    status: Status
    form_id: str = ""
    reason: str = ""
    problems: list[str] = field(default_factory=list)
    response_id: str = ""


@dataclass(frozen=True)
class ImportOptions:
    output: Path | None = None  # one CSV for everything; else <output_dir>/<form id>.csv
    output_dir: Path = Path("antworten")
    form: str | None = None  # a form id, or RAW
    labels: bool = True
    dialect: Dialect = field(default_factory=Dialect)
    update: bool = False
    password: str = ""
    processes: int = 0  # 0: one per core
    # the mail each file came with (`mail fetch`)
    mail: dict[Path, Origin] = field(default_factory=dict)


# The operating systems' and office programs' own bookkeeping, never a return.
_NOT_RETURNS = {".ds_store", "thumbs.db", "desktop.ini"}


def _bookkeeping(path: Path) -> bool:
    name = path.name.lower()
    return name in _NOT_RETURNS or name.startswith(("~$", "._", ".~lock"))


def import_files(inputs: Iterable[Path]) -> list[Path]:
    """The files named, and every file in folders named (recursively), in a stable
    order: PDFs or not, each gets an answer (a photographed form, a Word file sent
    back). Only the system's bookkeeping files (``.DS_Store``, ``Thumbs.db``, Office
    lock files) are left out."""
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found.extend(sorted(p for p in item.rglob("*")
                                if p.is_file() and not _bookkeeping(p)))
        else:
            found.append(item)
    return found


# Bytes of address space a worker may use (POSIX; FORMTOOL_IMPORT_MEMORY_MB overrides).
WORKER_MEMORY = int(os.environ.get("FORMTOOL_IMPORT_MEMORY_MB", "1024")) * 1024 * 1024
BATCH = 8  # files a worker reads per task
WINDOW = 8  # batches in flight: enough to keep the workers busy, memory flat
FILE_SECONDS = float(os.environ.get("FORMTOOL_IMPORT_SECONDS", "120"))  # per file
MAX_RESTARTS = 5  # workers replaced after a dead one or a file over its time


@dataclass
class Read:
    """One file as a worker hands it back: failed (``reason``), or identified and
    normalised into ``row`` for the form ``form_id`` (RAW: any AcroForm)."""

    path: Path
    reason: str = ""
    form_id: str = ""
    row: Row | None = None
    form_version: str = ""


@dataclass
class FileReader:
    """What a worker does with each file: read it, recognise the form, normalise and
    validate the values, fingerprint the row. Everything but the journal and the
    tables, so that the one process that writes them has little else to do."""

    forms: dict[str, FormDefinition]
    forced: FormDefinition | None
    raw: bool
    imported_at: str
    password: str = ""

    def read(self, path: Path) -> Read:
        try:
            return self._read(path)
        except MemoryError:  # over the worker's cap while normalising a huge answer
            return Read(path, TOO_BIG)
        except Exception as exc:  # this file's answer, never the end of the run
            return Read(path, f"nicht lesbar – unerwarteter Aufbau ({type(exc).__name__}); "
                              "bitte die Datei prüfen")

    def _read(self, path: Path) -> Read:
        # MemoryError under the cap is a failed extraction (extract says so)
        extraction = extract(path, self.password)
        if extraction.outcome is Outcome.FAILED:
            return Read(path, extraction.reason)
        version = extraction.value("form_version").strip()
        if self.raw:
            return self._done(path, RAW, normalise_raw(extraction, self.imported_at), version)
        found = identify(extraction, self.forms)
        if self.forced is not None:
            form_id = extraction.value("form_id").strip()
            if form_id and form_id != self.forced.id:
                return Read(path, f"ist Formular „{form_id}“, nicht „{self.forced.id}“ (--form)",
                            form_id)
            found = self.forced
        if isinstance(found, str):
            return Read(path, found)
        return self._done(path, found.id, normalise(found, extraction, self.imported_at),
                          version or found.version)

    @staticmethod
    def _done(path: Path, form_id: str, row: Row, version: str) -> Read:
        row.fingerprint = fingerprint(row)
        return Read(path, form_id=form_id, row=row, form_version=version)


_reader: FileReader | None = None  # in a worker: set once when it starts


def _start_worker(reader: FileReader) -> None:
    """In each worker: the reader; and a memory cap, so that a file that would need more
    (a decompression bomb, a 1 GB field value) fails alone with MemoryError instead of
    taking the machine down."""
    global _reader
    _reader = reader
    try:
        import resource  # POSIX only; Windows has no per-process limit here
    except ImportError:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = WORKER_MEMORY if hard == resource.RLIM_INFINITY else min(WORKER_MEMORY, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _job(paths: list[Path]) -> list[Read]:
    assert _reader is not None
    return [_reader.read(path) for path in paths]


def _reads(paths: list[Path], reader: FileReader, processes: int) -> Iterator[Read]:
    """Each file's extraction. Every file is read in a worker process, even one alone:
    there its memory is capped (``WORKER_MEMORY``) and its time (``FILE_SECONDS``), and
    its crash is its own. Files go to the workers in batches of BATCH (one message each
    way, not one per file). A batch over its time, or whose worker died (the
    out-of-memory killer), is read again file by file in fresh workers, so that the
    file at fault gets the failed report and the rest goes on (after MAX_RESTARTS
    replacements the files left are reported unread). Nothing hangs."""
    workers = processes or os.cpu_count() or 1
    if len(paths) < PARALLEL_FROM:
        workers = 1  # few files: one worker costs less than two
    todo: deque[list[Path]] = deque(paths[i:i + BATCH] for i in range(0, len(paths), BATCH))
    pending: deque[tuple[list[Path], Future[list[Read]]]] = deque()
    restarts = 0
    pool = _pool(workers, reader)
    try:
        while todo or pending:
            while todo and len(pending) < WINDOW:
                batch = todo.popleft()
                try:
                    pending.append((batch, pool.submit(_job, batch)))
                except BrokenProcessPool:  # a worker died since the last answer
                    todo.appendleft(batch)
                    break
            if pending:
                batch, future = pending.popleft()
                outcome = _wait(future, len(batch))
            else:  # the pool broke before it took anything: a fresh one
                batch, outcome = [], BROKEN
            if not isinstance(outcome, str):
                yield from outcome
                continue
            if len(batch) == 1:
                yield Read(batch[0], outcome)
            _kill(pool)
            again = [] if len(batch) == 1 else [[path] for path in batch]  # find the one
            for other, done in pending:  # finished ones count; the rest is read again
                if done.done() and not done.cancelled() and done.exception() is None:
                    yield from done.result()
                else:
                    again.append(other)
            todo.extendleft(reversed(again))
            pending.clear()
            restarts += 1
            if restarts > MAX_RESTARTS:
                while todo:
                    for path in todo.popleft():
                        yield _lost(path)
                return
            pool = _pool(workers, reader)
        pool.shutdown()  # all read: the idle workers end by themselves
    finally:
        _kill(pool)  # interrupted (or already shut down: then nothing to kill)


BROKEN = ("nicht gelesen: ein Arbeitsprozess wurde beendet (zu wenig Speicher?) – bitte "
          "diese Datei prüfen")


def _pool(workers: int, reader: FileReader) -> ProcessPoolExecutor:
    # The platform's way to start workers: fork where there is one (Linux; the parent
    # runs no threads here), else spawn (Windows, macOS), which imports pikepdf anew.
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(),
                               initializer=_start_worker, initargs=(reader,))


def _wait(future: Future[list[Read]], files: int) -> list[Read] | str:
    """The extractions, or why there are none (too slow, the worker died)."""
    try:
        return future.result(timeout=FILE_SECONDS * files)
    except TimeoutError:
        return (f"zu langsam: nach {FILE_SECONDS:g} s noch nicht gelesen – beschädigt oder "
                "präpariert?")
    except BrokenProcessPool:
        return BROKEN


def _kill(pool: ProcessPoolExecutor) -> None:
    """End the workers now (a file over its time is still running in one)."""
    processes = getattr(pool, "_processes", None) or {}  # no public way to stop a task
    for process in list(processes.values()):
        with contextlib.suppress(OSError, AttributeError):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _lost(path: Path) -> Read:
    return Read(path, (
        "nicht gelesen: ein Arbeitsprozess wurde beendet (zu wenig Speicher?) – bitte diese "
        "Datei(en) noch einmal einlesen"))


class Importer:
    """One import run over a workspace's forms and state."""

    def __init__(self, forms_dir: Path, store: Store, options: ImportOptions) -> None:
        self.options = options
        self.store = store
        self.forms = _load_forms(forms_dir)
        forced: FormDefinition | None = None
        if options.form not in (None, RAW):
            forced = formdef.load(formdef.find_definition(forms_dir, options.form or ""))
        self.tables: dict[str, ResponseTable] = {}
        now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        self.reader = FileReader(self.forms, forced, options.form == RAW, now,
                                 options.password)

    def run(self, paths: list[Path], on_file: Callable[[FileReport], None] = lambda r: None
            ) -> Counter[Status]:
        """Import every file, handing each report to ``on_file`` as it comes (nothing is
        kept per file: memory stays flat); commit the CSVs and state only at the end."""
        counts: Counter[Status] = Counter()
        try:
            with self.store.transaction():
                for read in _reads(paths, self.reader, self.options.processes):
                    report = self._one(read)
                    counts[report.status] += 1
                    on_file(report)
                for table in self.tables.values():
                    table.commit()
        finally:
            for table in self.tables.values():
                table.abort()
        return counts

    def workbooks(self) -> tuple[list[Path], list[str]]:
        """Each table written also as an Excel workbook beside it (``FORM.xlsx``): the
        workbooks written, and why any could not be (the CSV is written either way)."""
        written: list[Path] = []
        problems: list[str] = []
        for form_id, table in self.tables.items():
            path = table.path.with_suffix(".xlsx")
            form = None if form_id == RAW else self._form(form_id)
            try:
                workbook.from_csv(table.path, path, delimiter=self.options.dialect.delimiter,
                                  encoding=self.options.dialect.encoding,
                                  kinds=_kinds(form, labels=self.options.labels),
                                  sheet=form_id)
            except (FormtoolError, OSError, UnicodeDecodeError, csv.Error) as exc:
                problems.append(f"{path.name} nicht erneuert ({exc}); ist sie in Excel "
                                "geöffnet? Die CSV-Tabelle ist vollständig.")
            else:
                written.append(path)
        return written, problems

    def _form(self, form_id: str) -> FormDefinition:
        forced = self.reader.forced
        return forced if forced and forced.id == form_id else self.forms[form_id]

    def _one(self, read: Read) -> FileReport:
        if read.row is None:
            return self._unreadable(read)
        if (self.options.output is not None and self.tables
                and read.form_id not in self.tables):
            return FileReport(read.path, Status.FAILED, read.form_id, reason=(
                f"ist Formular „{read.form_id}“; die Tabelle {self.options.output} nimmt nur "
                f"„{next(iter(self.tables))}“ auf. Ohne -o bekommt jedes Formular seine "
                "eigene Tabelle."))
        return self._add(read, read.row)

    def _unreadable(self, read: Read) -> FileReport:
        """A file the import cannot read: a failure the first time; the same bytes again
        (a folder imported anew) are "schon bekannt", not a new failure."""
        digest = _sha256(read.path)
        if digest is None or read.reason.startswith("nicht gelesen: ein Arbeitsprozess"):
            return FileReport(read.path, Status.FAILED, read.form_id, reason=read.reason)
        first = self.store.known_unreadable(digest)
        if first is not None:
            return FileReport(read.path, Status.KNOWN, read.form_id, reason=(
                f"schon am {_day(first)} gemeldet: {read.reason}"))
        self.store.remember_unreadable(digest, read.reason)
        return FileReport(read.path, Status.FAILED, read.form_id, reason=read.reason)

    def _table(self, form_id: str) -> ResponseTable:
        table = self.tables.get(form_id)
        if table is None:
            form = None if form_id == RAW else self._form(form_id)
            path = self.options.output or self.options.output_dir / f"{form_id}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            table = ResponseTable(path, columns(form, labels=self.options.labels),
                                  self.options.dialect, dynamic=form is None)
            self.tables[form_id] = table
        return table

    def _match(self, row: Row, origin: Origin | None) -> str:
        """Who the form belongs to: the contact its response id was issued to (when the
        mail it came with agrees, ``evidence.form``), else the contact the mail is tied
        to; flag returns that look forwarded. Returns why the row is held back ("")."""
        tie = origin.tie if origin is not None else None
        if not row.response_id:
            if tie is not None and tie.send is not None:
                row.contact_key, row.campaign = tie.send.contact_key, tie.send.campaign
            elif origin is not None:
                row.problems.append(f"keinem Kontakt zuzuordnen: ohne Rücklauf-Kennung, von "
                                    f"{origin.sender or 'unbekannt'} (nicht angeschrieben)")
            return ""
        issued = self.store.issued_by_response_id(row.response_id)
        if issued is None:
            row.problems.append(f"unbekannte Rücklauf-Kennung {row.response_id} (nicht aus "
                                "diesem Arbeitsordner verschickt?)")
            return ""
        invited = self.store.contact_email(issued.contact_key) or ""
        counts, note = evidence.form(tie, sender=origin.sender if origin else "",
                                     invited=invited)
        if not counts:
            return note
        if note:
            row.problems.append(note)
        row.contact_key, row.campaign = issued.contact_key, issued.campaign
        returned = row.values.get("email", "")
        if invited and returned and not same_address(returned, invited):
            row.problems.append(f"zurück von {returned}, verschickt an {invited} "
                                "(weitergeleitet?)")
        return ""

    def _add(self, read: Read, row: Row) -> FileReport:
        form_id = read.form_id
        origin = self.options.mail.get(read.path)
        held = self._match(row, origin)
        if held:
            return FileReport(read.path, Status.HELD, form_id, reason=(
                f"{held}. Zum Übernehmen: formtool import „{read.path.name}“ aus "
                f"{read.path.parent.name}/"), response_id=row.response_id)
        if origin is not None:
            row.sender, row.received, row.message_id = (origin.sender, origin.date,
                                                        origin.message_id)
        table = self._table(form_id)
        report = FileReport(read.path, Status.IMPORTED, form_id, problems=row.problems,
                            response_id=row.response_id)
        returned = _returned(read.path, origin)
        state = table.status_of(row)
        if state == "same":
            report.status = Status.DUPLICATE
        elif state == "conflict" and (verdict := self._second(form_id, row, returned)):
            report.status = Status.CONFLICT
            report.reason = verdict
            return report
        else:
            table.add(row, replace=state == "conflict")
            if state == "conflict":
                report.status = Status.REPLACED
                earlier = self.store.response(form_id, row.key)
                report.reason = (f"neuere Rücksendung (vom {_day(returned)}) ersetzt die vom "
                                 f"{_day(earlier.returned_at) if earlier else '?'}")
            elif row.problems:
                report.status = Status.WITH_PROBLEMS
        self.store.record_response(Response(
            key=row.key, form_id=form_id,
            form_version=read.form_version,
            response_id=row.response_id, sha256=row.sha256, file_name=row.file_name,
            csv_path=str(table.path), problems="; ".join(row.problems),
            imported_at=row.imported_at, contact_key=row.contact_key, campaign=row.campaign,
            returned_at=returned), replace=report.status is not Status.DUPLICATE)
        return report

    def _second(self, form_id: str, row: Row, returned: str) -> str:
        """A second return of the same response id with other values: why it does not
        replace the one in the table ("" when it does). The newest wins, by the date it
        came back – never by file name; ``--update`` takes it when the dates cannot
        tell, and never puts older values over newer ones."""
        earlier = self.store.response(form_id, row.key)
        before = earlier.returned_at if earlier is not None else ""
        if before and returned and _when(returned) < _when(before):
            return (f"ältere Rücksendung (vom {_day(returned)}) zu derselben Rücklauf-Kennung; "
                    f"die Tabelle behält die neuere vom {_day(before)}")
        if (before and returned and _when(returned) > _when(before)) or self.options.update:
            return ""
        return (f"zweite Rücksendung (vom {_day(returned)}) zu derselben Rücklauf-Kennung mit "
                f"anderen Werten; die Tabelle hat die vom {_day(before) if before else '?'}; "
                "mit --update ersetzt sie sie")


def _sha256(path: Path) -> str | None:
    import hashlib

    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _returned(path: Path, origin: Origin | None) -> str:
    """When a return came back: the date of the mail it came with, else its file's time."""
    if origin is not None and origin.date:
        return origin.date
    try:
        stamp = path.stat().st_mtime
    except OSError:
        return ""
    return dt.datetime.fromtimestamp(stamp).astimezone().isoformat()


def _when(iso: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return when if when.tzinfo else when.astimezone()


def _day(iso: str) -> str:
    """02.12.2026, 14:05 – as a German reads a date."""
    if not iso:
        return "?"
    return _when(iso).strftime("%d.%m.%Y, %H:%M")


def _kinds(form: FormDefinition | None, *, labels: bool) -> dict[str, workbook.Kind]:
    """What each column of a response table holds, by its header."""
    kinds = {"importiert_am": workbook.Kind.TIMESTAMP,
             "eingegangen_am": workbook.Kind.TIMESTAMP}
    if form is None:
        return kinds
    types = {spec.name: spec.type for spec in form.fields()}
    for name, header in columns(form, labels=labels):
        kind = {"date": workbook.Kind.DATE, "number": workbook.Kind.NUMBER}.get(
            types.get(name, ""))
        if kind is not None:
            kinds[header] = kind
    return kinds


def rewrite_workbook(ws: Workspace, table: Path, book: Path) -> None:
    """The Excel workbook ``book`` written anew from the response table ``table`` (after
    ``forget`` took rows out of it), with the cell kinds of its form."""
    from formtool.data import csvtext

    text, encoding = csvtext.decode(table.read_bytes(), str(table))
    delimiter = csvtext.delimiter(text.split("\n", 1)[0])
    form = _load_forms(ws.forms_dir).get(table.stem)
    kinds = {**_kinds(form, labels=False), **_kinds(form, labels=True)}
    workbook.from_csv(table, book, delimiter=delimiter, encoding=encoding, kinds=kinds,
                      sheet=table.stem[:31] or "Tabelle")


def _load_forms(forms_dir: Path) -> dict[str, FormDefinition]:
    forms: dict[str, FormDefinition] = {}
    for path in formdef.definitions(forms_dir):
        form = formdef.load(path)
        forms[form.id] = form
    return forms


REPORT_HEADER = ["datei", "ordner", "ergebnis", "formular", "response_id", "grund"]


@contextmanager
def report_writer(path: Path, dialect: Dialect) -> Iterator[Callable[[FileReport], None]]:
    """The per-file report as a CSV, row by row; replaced atomically when the block ends."""
    writer = RowWriter(path, REPORT_HEADER, dialect)
    try:
        yield lambda r: writer.write([r.path.name, str(r.path.parent), r.status.value,
                                      r.form_id, r.response_id,
                                      r.reason or "; ".join(r.problems)])
    except BaseException:
        writer.close(keep=False)
        raise
    writer.close()


@dataclass
class Imported:
    """What an import run did: counts per status, the tables and workbooks written."""

    counts: Counter[Status]
    tables: list[Path]
    workbooks: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a workbook open in Excel

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.counts.items() if not status.ok)


def run_import(ws: Workspace, paths: list[Path], options: ImportOptions, *,
               report_path: Path | None = None,
               on_file: Callable[[FileReport], None] = lambda r: None) -> Imported:
    """`formtool import`: every file read, matched and appended; one report per file."""
    with ExitStack() as stack:
        report = (stack.enter_context(report_writer(report_path, options.dialect))
                  if report_path else None)
        store = stack.enter_context(Store(ws.state_db))
        run = Importer(ws.forms_dir, store, options)

        def each(file_report: FileReport) -> None:
            on_file(file_report)
            if report is not None:
                report(file_report)

        counts = run.run(paths, on_file=each)
    written, notes = run.workbooks()
    return Imported(counts, [table.path for table in run.tables.values()], written, notes)
