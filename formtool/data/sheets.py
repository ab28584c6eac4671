"""Excel workbooks (.xlsx) read as the coordinator sees them in Excel, streaming.

openpyxl in read-only mode (one row at a time; memory stays flat), cached values only
(a formula is never evaluated: its last value as Excel saved it, or empty). Cells as
Excel shows them: a number with the format ``00000`` keeps its leading zeros (7381 →
07381), whole numbers without ``.0``, decimals with a comma, dates as TT.MM.JJJJ.
Hidden rows and columns are read and named. Bounded: a zip bomb, too many rows or a
cell longer than Excel allows are a clear German message before memory grows.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from formtool.errors import FormtoolError, os_reason

SUFFIXES = (".xlsx", ".xlsm")
MAX_ROWS = 200_000  # a contact list, not a database
MAX_CELL = 32_767  # characters Excel itself allows in a cell
MAX_UNPACKED = 512 * 1024 * 1024  # bytes of all parts together once unpacked
MAX_STRINGS = 64 * 1024 * 1024  # the shared strings (held in memory by openpyxl)
MAX_RATIO = 200  # unpacked : packed of one part; real workbooks stay far below


class SheetError(FormtoolError):
    """The workbook cannot be read as a contact list."""


@dataclass
class Sheet:
    """The rows of one sheet as text, and what the coordinator should know of it."""

    name: str
    rows: list[list[str]]  # from the sheet's first row on (Excel's row 1 is rows[0])
    hidden_rows: list[int] = field(default_factory=list)  # Excel's row numbers
    hidden_columns: list[str] = field(default_factory=list)  # Excel's letters
    other_sheets: list[str] = field(default_factory=list)


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            total = 0
            for info in archive.infolist():
                total += info.file_size
                ratio = info.file_size / max(1, info.compress_size)
                big = info.file_size > 16 * 1024 * 1024
                if (big and ratio > MAX_RATIO) or total > MAX_UNPACKED or (
                        info.filename.endswith("sharedStrings.xml")
                        and info.file_size > MAX_STRINGS):
                    raise SheetError(f"{path.name}: die Arbeitsmappe ist entpackt viel zu "
                                     "groß (eine „Zip-Bombe“ oder keine Kontaktliste); "
                                     "nichts gelesen.")
    except zipfile.BadZipFile:
        raise SheetError(f"{path.name}: keine lesbare Excel-Arbeitsmappe (beschädigt oder "
                         "ein anderes Format). Bitte in Excel öffnen und erneut als "
                         "„Excel-Arbeitsmappe (.xlsx)“ speichern.") from None
    except OSError as exc:
        raise SheetError(f"{path.name}: kann nicht gelesen werden ({os_reason(exc)})."
                         ) from None


def _decimal(value: float) -> str:
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")


def shown(value: Any, number_format: str) -> str:
    """A cell's value as Excel shows it (the formats contact lists use)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "WAHR" if value else "FALSCH"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return f"{value:%d.%m.%Y}"
        return f"{value:%d.%m.%Y %H:%M}"
    if isinstance(value, dt.date):
        return f"{value:%d.%m.%Y}"
    if isinstance(value, dt.time):
        return f"{value:%H:%M}"
    if isinstance(value, (int, float)):
        zeros = re.fullmatch(r"0+", number_format.strip())
        if zeros and float(value).is_integer():
            return str(int(value)).zfill(len(zeros.group(0)))
        if float(value).is_integer():
            return str(int(value))
        return _decimal(float(value))
    text = str(value)
    return " ".join(text.splitlines()) if "\n" in text or "\r" in text else text


def _hidden(archive: zipfile.ZipFile, member: str) -> tuple[list[int], list[str]]:
    """Hidden rows and columns from the sheet's XML, streaming (elements cleared)."""
    from openpyxl.utils import get_column_letter

    rows: list[int] = []
    columns: list[str] = []
    with archive.open(member) as fh:
        for _, element in ElementTree.iterparse(fh, events=("end",)):
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "row":
                if element.get("hidden") in ("1", "true") and len(rows) < 1000:
                    rows.append(int(element.get("r") or 0))
                element.clear()
            elif tag == "col" and element.get("hidden") in ("1", "true"):
                first, last = int(element.get("min") or 0), int(element.get("max") or 0)
                columns.extend(get_column_letter(i) for i in range(first, min(last, first + 50)
                                                                    + 1))
            elif tag == "c":
                element.clear()
    return rows, columns


def read(path: Path, sheet: str | None = None) -> Sheet:
    """The named sheet (or the first) of a workbook, as text rows."""
    import openpyxl

    _check_zip(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise SheetError(f"{path.name}: keine lesbare Excel-Arbeitsmappe ({type(exc).__name__})"
                         ". Bitte in Excel öffnen und erneut speichern.") from None
    try:
        names = book.sheetnames
        if sheet is not None and sheet not in names:
            raise SheetError(f"{path.name}: kein Blatt „{sheet}“ (vorhanden: "
                             f"{', '.join(names)}).")
        name = sheet if sheet is not None else names[0]
        worksheet = book[name]
        rows = list(_rows(worksheet, path))
        member = getattr(worksheet, "_worksheet_path", "")
    finally:
        book.close()
    hidden_rows: list[int] = []
    hidden_columns: list[str] = []
    if member:
        with zipfile.ZipFile(path) as archive:
            hidden_rows, hidden_columns = _hidden(archive, member.lstrip("/"))
    return Sheet(name, rows, hidden_rows, hidden_columns, [n for n in names if n != name])


def _rows(worksheet: Any, path: Path) -> Iterator[list[str]]:
    expected = 1
    for count, row in enumerate(worksheet.iter_rows(), 1):
        if count > MAX_ROWS:
            raise SheetError(f"{path.name}: mehr als {MAX_ROWS:,} Zeilen – das ist keine "
                             "Kontaktliste (oder ein Blatt voller leerer Zeilen); bitte nur "
                             "die Kontakte in ein Blatt.".replace(",", "."))
        number = next((c.row for c in row if getattr(c, "row", None)), expected)
        while expected < number:  # rows Excel did not store: empty, kept for the numbers
            yield []
            expected += 1
        cells = []
        for cell in row:
            value = getattr(cell, "value", None)
            if isinstance(value, str) and len(value) >= MAX_CELL:  # openpyxl cuts there
                raise SheetError(f"{path.name}: Zelle {cell.coordinate} ist mindestens "
                                 f"{MAX_CELL:,} Zeichen lang – so viel zeigt Excel in keiner "
                                 "Zelle; das ist keine Kontaktliste. Nichts gelesen."
                                 .replace(",", "."))
            cells.append(shown(value, getattr(cell, "number_format", "General") or ""))
        while cells and not cells[-1]:
            cells.pop()
        yield cells
        expected = number + 1
