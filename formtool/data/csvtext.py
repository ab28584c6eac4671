"""Reading CSV files as Excel and LibreOffice write them in Germany: one reader for all.

Encoding: UTF-8 with or without BOM, else Windows-1252 (Excel's "CSV" on a German
Windows). Delimiter: ``,``, ``;`` or tab, sniffed from the header line.
"""

from __future__ import annotations

import csv


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read with."""
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
