"""Reading CSV files as Excel and LibreOffice write them in Germany: one reader for all.

Encoding: UTF-8 with or without BOM, else Windows-1252 (Excel's "CSV" on a German
Windows). Delimiter: ``,``, ``;`` or tab, sniffed from the header line.
"""

from __future__ import annotations

import csv

from formtool.errors import FormtoolError

# Excel shows at most 32,767 characters in a cell; answers are cut there (normalise.py).
# Reading allows far more, so that no table formtool wrote (or a long contact cell)
# trips the csv module's default limit of 131,072 characters.
FIELD_LIMIT = 16 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))


class NotCsvError(FormtoolError):
    """The file is a workbook or binary data, not a CSV text."""


_SIGNATURES = (
    (b"PK\x03\x04", "eine Excel- oder LibreOffice-Arbeitsmappe (.xlsx/.ods)"),
    (b"\xd0\xcf\x11\xe0", "eine alte Excel-Arbeitsmappe (.xls)"),
    (b"%PDF-", "ein PDF"),
)


def decode(data: bytes, name: str = "Die Datei") -> tuple[str, str]:
    """The text and the encoding it was read with; NotCsvError for workbooks and binaries.

    Excel's "Unicode-Text" is UTF-16 with a byte order mark (and tabs).
    """
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            raise NotCsvError(f"{name} ist keine CSV-Datei, sondern {what}. Bitte in Excel "
                              "„Speichern unter …“ → „CSV UTF-8 (durch Trennzeichen "
                              "getrennt)“ wählen, in LibreOffice „Text CSV“.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    head = data[:4096]
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    if head and controls > len(head) // 20:  # a stray NUL is text; 5 % of them is not
        raise NotCsvError(f"{name} ist keine Textdatei (sie enthält Binärdaten). Bitte die "
                          "Kontaktliste als CSV speichern.")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


def delimiter(header_line: str) -> str:
    """The delimiter of a table whose first line is ``header_line``."""
    try:
        return csv.Sniffer().sniff(header_line, delimiters=",;\t").delimiter
    except csv.Error:
        counts = {d: header_line.count(d) for d in ",;\t"}
        return max(counts, key=lambda d: counts[d])
