"""Readable, safe file names on Windows, macOS and Linux."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

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


def file_in(folder: Path, name: str, suffixes: tuple[str, ...]) -> Path | None:
    """The file ``name`` right inside ``folder`` when it is one of ``suffixes`` – never a
    path elsewhere (a name with a separator or "..", a folder, a missing file): None."""
    if Path(name).name != name or name in ("", ".", ".."):
        return None
    path = folder / name
    return path if path.suffix.lower() in suffixes and path.is_file() else None
