"""Tables as Excel workbooks (.xlsx): what a double-click in German Excel shows right.

A CSV opened by double-click loses the leading zero of a postcode (07381 -> 7381) and
of a phone number, shows ``+49 …`` with the formula guard's apostrophe, and dates as
text. A workbook says what each cell is: text stays text, dates are date cells
(shown TT.MM.JJJJ), answers are never formulas. The header row is frozen, with a
filter, the columns as wide as their content.

Written with XlsxWriter: write-only, streaming (``constant_memory``: 60,000 rows
cost no more memory than 60), no formula or URL guessing when told so, and well
kept. (openpyxl reads and writes, and keeps every cell in memory while writing.)
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from formtool import atomic
from formtool.errors import OutputError


class Kind(enum.Enum):
    TEXT = "text"
    DATE = "date"  # ISO YYYY-MM-DD
    TIMESTAMP = "timestamp"  # ISO 8601 with time (and zone)
    NUMBER = "number"  # German spelling: 1.234,5


MAX_WIDTH = 50  # characters: wider columns wrap
MAX_ROWS = 1_048_575  # Excel's rows under the header
_GERMAN_NUMBER = re.compile(r"^-?\d{1,3}(\.\d{3})*(,\d+)?$|^-?\d+(,\d+)?$")


def _number(text: str) -> float | None:
    text = text.strip()
    if not _GERMAN_NUMBER.match(text):
        return None
    return float(text.replace(".", "").replace(",", "."))


def _date(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        return None


def _timestamp(text: str) -> dt.datetime | None:
    try:  # Excel has no time zones: the local time as written
        return dt.datetime.fromisoformat(text.strip()).replace(tzinfo=None)
    except ValueError:
        return None


def write_workbook(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]],
                   kinds: Sequence[Kind] = (), *, sheet: str = "Tabelle") -> int:
    """Write ``rows`` under ``header`` to ``path`` (replaced whole, or left as it was);
    returns the number of rows. ``kinds`` says per column what a cell is (default text);
    a value that is not what its column says stays text."""
    import xlsxwriter  # imported here: only the commands that write a workbook pay for it

    kinds = list(kinds) + [Kind.TEXT] * (len(header) - len(kinds))
    file = atomic.AtomicFile(path, mode="wb")
    count = 0
    try:
        book = xlsxwriter.Workbook(file.fh, {
            "constant_memory": True, "strings_to_numbers": False,
            "strings_to_formulas": False, "strings_to_urls": False,
            "default_date_format": "dd.mm.yyyy"})
        bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        wrap = book.add_format({"text_wrap": True, "valign": "top"})
        date = book.add_format({"num_format": "dd.mm.yyyy", "valign": "top"})
        stamp = book.add_format({"num_format": "dd.mm.yyyy hh:mm", "valign": "top"})
        number = book.add_format({"num_format": "General", "valign": "top"})
        text = book.add_format({"num_format": "@", "valign": "top"})
        sheet_ = book.add_worksheet(sheet[:31])
        widths = [min(max(len(h), 8), MAX_WIDTH) for h in header]
        for col, name in enumerate(header):
            sheet_.write_string(0, col, str(name), bold)
        for count, row in enumerate(rows, start=1):
            if count > MAX_ROWS:
                raise OutputError(f"{path.name}: mehr als {MAX_ROWS:,} Zeilen passen nicht in "
                                  "eine Excel-Tabelle".replace(",", "."))
            for col, value in enumerate(row):
                cell = "" if value is None else str(value)
                if not cell:
                    continue
                kind = kinds[col] if col < len(kinds) else Kind.TEXT
                if kind is Kind.DATE and (when := _date(cell)) is not None:
                    sheet_.write_datetime(count, col, when, date)
                    width = 10
                elif kind is Kind.TIMESTAMP and (when := _timestamp(cell)) is not None:
                    sheet_.write_datetime(count, col, when, stamp)
                    width = 16
                elif kind is Kind.NUMBER and (amount := _number(cell)) is not None:
                    sheet_.write_number(count, col, amount, number)
                    width = len(cell)
                else:
                    sheet_.write_string(count, col, cell, wrap if "\n" in cell else text)
                    width = max(len(line) for line in cell.splitlines() or [""])
                if col < len(widths) and width > widths[col]:
                    widths[col] = min(width, MAX_WIDTH)
        for col, width in enumerate(widths):
            sheet_.set_column(col, col, width + 2)
        sheet_.freeze_panes(1, 0)
        if header:
            sheet_.autofilter(0, 0, max(count, 1), len(header) - 1)
        book.close()
    except OSError as exc:
        file.abort()
        raise atomic.failed(path, exc) from None
    except BaseException:
        file.abort()
        raise
    file.commit()
    return count


def from_csv(csv_path: Path, path: Path, *, delimiter: str, encoding: str,
             kinds: dict[str, Kind], sheet: str = "Tabelle") -> int:
    """The workbook beside one of formtool's CSV tables: the same rows, the formula
    guard's apostrophes taken off (a workbook cell is text anyway), ``kinds`` by
    column header. Streams: the CSV is read row by row."""
    import csv

    from formtool.data.tables import unneutralise

    with csv_path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = [unneutralise(h) for h in next(reader, [])]
        rows = ([unneutralise(c) for c in cells] for cells in reader if any(cells))
        return write_workbook(path, header, rows, [kinds.get(h, Kind.TEXT) for h in header],
                              sheet=sheet)
