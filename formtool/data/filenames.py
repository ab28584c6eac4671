"""Readable, safe file names on Windows, macOS and Linux."""

from __future__ import annotations

import re
import unicodedata

from formtool.text import to_ascii

_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
             *(f"LPT{i}" for i in range(1, 10))}


def safe_filename(text: str, *, suffix: str = "", max_length: int = 100,
                  ascii_only: bool = False) -> str:
    """A file name from free text: no path separators, control or reserved characters.

    ``ascii_only`` also spells umlauts out ("Gößnitz" -> "Goessnitz"), for names
    that pass through tools that mangle them.
    """
    if ascii_only:
        text = to_ascii(text)
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    text = re.sub(r'[\\/:*?"<>|]+', "-", text)
    text = re.sub(r"\s+", " ", text).strip(" .-")
    text = text[: max_length - len(suffix)].rstrip(" .-") or "datei"
    if text.upper() in _RESERVED:
        text = f"_{text}"
    return text + suffix
