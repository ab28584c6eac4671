"""Every table formtool writes: the response CSVs, reports and exports, in one place.

German Excel and LibreOffice open them by double-click (UTF-8 with BOM, ``;``).
Cells that a spreadsheet would run as a formula are neutralised here, for every
table. The response CSV is appended to, never clobbered: each run writes a
temporary file holding the old rows and the new ones, then renames it over the
old file (``atomic.AtomicFile``).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from formtool import atomic
from formtool.data import csvtext  # noqa: F401 (sets the csv field limit for reading)
from formtool.data.normalise import ADDED_META_COLUMNS, META_COLUMNS, Row
from formtool.errors import OutputError, os_reason

# OWASP "CSV injection": a spreadsheet treats these first characters as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Prefix cells a spreadsheet would run as a formula with an apostrophe."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def unneutralise(cell: str) -> str:
    """A header as written before neutralise (for reading our own tables back)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


@dataclass(frozen=True)
class Dialect:
    delimiter: str = ";"
    encoding: str = "utf-8-sig"


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]],
              dialect: Dialect = Dialect()) -> None:
    """A whole table, replaced atomically; every cell neutralised."""
    with atomic.replacing(path, mode="w", encoding=dialect.encoding, newline="") as fh:
        writer = csv.writer(fh, delimiter=dialect.delimiter)
        writer.writerow([neutralise(str(h)) for h in header])
        writer.writerows([neutralise(str(c)) for c in row] for row in rows)


class RowWriter:
    """A table written row by row (reports of long runs); replaced when closed."""

    def __init__(self, path: Path, header: Sequence[str], dialect: Dialect = Dialect()) -> None:
        self.file = atomic.AtomicFile(path, mode="w", encoding=dialect.encoding, newline="")
        self.writer = csv.writer(self.file.fh, delimiter=dialect.delimiter)
        self.writer.writerow([neutralise(h) for h in header])

    def write(self, row: Sequence[Any]) -> None:
        self.writer.writerow([neutralise(str(c)) for c in row])

    def close(self, *, keep: bool = True) -> None:
        if keep:
            self.file.commit()
        else:
            self.file.abort()


def _cells(row: Row, names: list[str]) -> list[str]:
    return [neutralise(row.get(n)) for n in names]


def _digest(pairs: Iterator[tuple[str, str]]) -> str:
    """A fingerprint of a row's field values, independent of column order."""
    text = "\x1f".join(f"{n}={v}" for n, v in sorted(pairs) if v)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _older(header: list[str], headers: list[str]) -> bool:
    """``header`` is this table's as written before the columns added since."""
    added = len(ADDED_META_COLUMNS)
    return header == headers[:-added] and tuple(headers[-added:]) == ADDED_META_COLUMNS


def fingerprint(row: Row) -> str:
    """The row's field values as the table compares them with an earlier return of the
    same response id (the import's workers compute it, the table only compares)."""
    return row.fingerprint or _digest((n, neutralise(v)) for n, v in row.values.items())


class ResponseTable:
    """One response CSV, opened for appending: old rows are copied, new rows added.

    Nothing reaches ``path`` until :meth:`commit`; :meth:`abort` (or an error)
    leaves the old file as it was.
    """

    def __init__(self, path: Path, cols: list[tuple[str, str]], dialect: Dialect, *,
                 dynamic: bool = False) -> None:
        self.path = path
        self.names = [] if dynamic else [n for n, _ in cols]
        self.headers = [] if dynamic else [h for _, h in cols]
        self.dialect = dialect
        self.dynamic = dynamic  # raw mode: columns grow with the files
        self.digests: dict[str, tuple[str, str]] = {}  # key -> (sha256, digest of values)
        self.replacements: dict[str, Row] = {}
        self.pending: list[Row] = []  # raw mode only: rows wait for the final columns
        self._old_header: list[str] = []  # raw mode only
        self._old_rows: list[list[str]] = []  # raw mode only
        self._file: atomic.AtomicFile | None = None
        self._writer: Any = None  # csv writer
        self._open()

    def _csv_open(self, path: Path, mode: str) -> IO[str]:
        return path.open(mode, encoding=self.dialect.encoding, newline="")

    def _open(self) -> None:
        self._file = atomic.AtomicFile(self.path, mode="w", encoding=self.dialect.encoding,
                                       newline="")
        self._writer = csv.writer(self._file.fh, delimiter=self.dialect.delimiter)
        try:
            old = self._csv_open(self.path, "r")
        except FileNotFoundError:
            if not self.dynamic:
                self._writer.writerow([neutralise(h) for h in self.headers])
            return
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: kann nicht gelesen werden "
                              f"({os_reason(exc)}).") from None
        with old:
            try:
                self._copy_old(old)
            except OSError as exc:
                self.abort()
                raise atomic.failed(self.path, exc) from None

    def _copy_old(self, old: IO[str]) -> None:
        assert self._writer is not None
        reader = csv.reader(old, delimiter=self.dialect.delimiter)
        try:
            header = next(reader, None)
            if header is None:
                if not self.dynamic:
                    self._writer.writerow([neutralise(h) for h in self.headers])
                return
            if self.dynamic:
                # Raw columns are field names: keep the old ones, new ones follow.
                header = [unneutralise(h) for h in header]
                self._old_header = header
                self.names = [n for n in header if n not in META_COLUMNS]
            elif header != self.headers and not _older(header, self.headers):
                self.abort()
                raise OutputError(
                    f"{self.path}: Die vorhandene Tabelle hat andere Spalten als dieses "
                    "Formular (andere Formular-Version oder --header). Bitte mit -o eine "
                    "andere Datei wählen.")
            else:
                self._writer.writerow([neutralise(h) for h in self.headers])
            widen = len(self.headers) - len(header)  # an older table: new columns, empty
            index = {n: i for i, n in enumerate(header)}
            names = header if self.dynamic else self.names
            fields = [i for i, n in enumerate(names) if n not in META_COLUMNS]
            for cells in reader:
                if not any(cells):
                    continue
                cells += [""] * (len(header) - len(cells))
                rid = cells[index["response_id"]].lstrip("'") if "response_id" in index else ""
                sha = cells[index["pruefsumme"]] if "pruefsumme" in index else ""
                key = rid or f"sha256:{sha}"
                self.digests[key] = (sha, _digest((names[i], cells[i]) for i in fields))
                if self.dynamic:
                    self._old_rows.append(cells)
                else:
                    self._writer.writerow(cells + [""] * widen if widen > 0 else cells)
        except (csv.Error, UnicodeDecodeError) as exc:
            self.abort()
            raise OutputError(f"{self.path}: Die vorhandene Tabelle ist nicht lesbar ({exc}); "
                              "sie bleibt unverändert. Bitte mit -o eine andere Datei wählen, "
                              "oder --encoding / --delimiter angeben.") from None

    def status_of(self, row: Row) -> str:
        """"new", "same" (already imported) or "conflict" (same key, other values)."""
        seen = self.digests.get(row.key)
        if seen is None:
            return "new"
        sha, digest = seen
        if sha == row.sha256 or digest == fingerprint(row):
            return "same"
        return "conflict"

    def add(self, row: Row, *, replace: bool = False) -> None:
        self.digests[row.key] = (row.sha256, fingerprint(row))
        if replace:
            self.replacements[row.key] = row
        elif self.dynamic:
            self.pending.append(row)
            self.names.extend([n for n in row.values if n not in self.names])
        else:
            assert self._writer is not None
            try:
                self._writer.writerow(_cells(row, self.names))
            except OSError as exc:
                self.abort()
                raise atomic.failed(self.path, exc) from None
            except UnicodeEncodeError as exc:
                self.abort()
                raise OutputError(
                    f"{row.file_name}: das Zeichen „{exc.object[exc.start:exc.end]}“ passt "
                    f"nicht in die Kodierung {self.dialect.encoding}; bitte "
                    "--encoding utf-8-sig nehmen. Die Tabelle bleibt unverändert.") from None

    def commit(self) -> None:
        assert self._file is not None
        if self.dynamic:
            self._write_dynamic()
        if self.replacements:
            self._apply_replacements()
        try:
            self._file.commit()
        except OutputError:
            raise OutputError(f"{self.path}: kann nicht ersetzt werden; ist die Datei in "
                              "Excel geöffnet?") from None
        finally:
            self._file = None

    def _write_dynamic(self) -> None:
        assert self._writer is not None
        fields = [n for n in self.names if n not in META_COLUMNS]
        self.names = self.headers = fields + list(META_COLUMNS)
        self._writer.writerow([neutralise(h) for h in self.headers])
        for cells in self._old_rows:
            by_name = dict(zip(self._old_header, cells, strict=False))
            self._writer.writerow([by_name.get(n, "") for n in self.names])
        for row in self.pending:
            self._writer.writerow(_cells(row, self.names))

    def _apply_replacements(self) -> None:
        """Rows replaced by --update: the table written so far, read back, rewritten."""
        assert self._file is not None
        first = self._file
        first.fh.flush()
        second = atomic.AtomicFile(self.path, mode="w", encoding=self.dialect.encoding,
                                   newline="")
        try:
            with self._csv_open(first.tmp, "r") as src:
                reader = csv.reader(src, delimiter=self.dialect.delimiter)
                writer = csv.writer(second.fh, delimiter=self.dialect.delimiter)
                header = next(reader)
                writer.writerow(header)
                index = {n: i for i, n in enumerate(header)}
                for cells in reader:
                    rid = cells[index["response_id"]].lstrip("'")
                    key = rid or f"sha256:{cells[index['pruefsumme']]}"
                    row = self.replacements.pop(key, None)
                    writer.writerow(_cells(row, self.names) if row else cells)
                for row in self.replacements.values():  # replaced rows not in the old file
                    writer.writerow(_cells(row, self.names))
        except BaseException:
            second.abort()
            raise
        first.abort()
        self._file = second

    def abort(self) -> None:
        if self._file is not None:
            self._file.abort()
            self._file = None
