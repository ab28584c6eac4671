"""Contact lists as Excel and LibreOffice export them in Germany.

Encoding (UTF-8 with or without BOM, else cp1252) and delimiter (``,`` ``;``
tab) are detected. Every row with a problem is skipped and reported with its
row number as the spreadsheet shows it (the header is row 1).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formtool.addresses import ascii_email, shown, why_invalid
from formtool.data import csvtext
from formtool.errors import FormtoolError, os_reason

EMAIL_COLUMNS = ("email", "e-mail", "mail", "e_mail", "emailadresse", "e-mail-adresse")
OPTOUT_COLUMNS = ("optout", "opt-out", "abgemeldet")
TRUE_WORDS = {"ja", "j", "x", "1", "true", "wahr", "yes", "y"}


class ContactsError(FormtoolError):
    """The contact list as a whole is unusable."""


@dataclass(frozen=True)
class Contact:
    row: int  # as the spreadsheet numbers it; the header is row 1
    key: str  # the id column, else the address
    email: str
    columns: dict[str, str]
    opted_out: bool = False

    def get(self, name: str) -> str:
        return self.columns.get(name, "")

    @property
    def address(self) -> str:
        place = " ".join(p for p in (self.get("plz"), self.get("ort")) if p)
        return ", ".join(p for p in (self.get("strasse"), place) if p)

    @property
    def display_name(self) -> str:
        person = " ".join(p for p in (self.get("vorname"), self.get("nachname")) if p)
        return person or self.get("organisation")


@dataclass(frozen=True)
class Skipped:
    row: int
    reason: str
    key: str = ""


@dataclass
class ContactList:
    """A contact CSV, read lazily: iterate it as often as needed."""

    path: Path
    text: str
    delimiter: str
    encoding: str
    header: list[str]
    skipped: list[Skipped] = field(default_factory=list)

    def __iter__(self) -> Iterator[Contact]:
        """Valid contacts in file order; ``skipped`` holds the others after a full pass."""
        self.skipped = []
        reader = csv.reader(io.StringIO(self.text, newline=""), delimiter=self.delimiter)
        next(reader, None)
        lower = [h.lower() for h in self.header]
        email_col = next((lower.index(c) for c in EMAIL_COLUMNS if c in lower), None)
        id_col = lower.index("id") if "id" in lower else None
        optout_col = next((lower.index(c) for c in OPTOUT_COLUMNS if c in lower), None)
        seen_ids: dict[str, int] = {}
        seen_emails: dict[str, int] = {}
        start = reader.line_num + 1
        for cells in _rows(reader, self.path):
            row, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue  # blank line
            if len(cells) < len(self.header):
                self.skipped.append(Skipped(row, f"zu wenige Spalten ({len(cells)} statt "
                                                 f"{len(self.header)})"))
                continue
            if len(cells) > len(self.header) and any(c.strip() for c in cells[len(self.header):]):
                self.skipped.append(Skipped(row, f"zu viele Spalten ({len(cells)} statt "
                                                 f"{len(self.header)})"))
                continue
            columns = {h: c.strip() for h, c in zip(self.header, cells, strict=False)}
            email = cells[email_col].strip() if email_col is not None else ""
            key = cells[id_col].strip() if id_col is not None else ""
            if not email:
                self.skipped.append(Skipped(row, "keine E-Mail-Adresse", key))
                continue
            sendable = ascii_email(email)
            if sendable is None:
                why = why_invalid(email)
                self.skipped.append(Skipped(row, f"ungültige E-Mail-Adresse „{shown(email)}“"
                                            + (f" ({why})" if why else ""), key))
                continue
            key = key or sendable.lower()
            if key in seen_ids:
                self.skipped.append(Skipped(row, f"doppelte ID „{key}“ (schon in Zeile "
                                                 f"{seen_ids[key]})", key))
                continue
            if sendable.lower() in seen_emails:
                self.skipped.append(Skipped(row, f"Adresse {email} schon in Zeile "
                                                 f"{seen_emails[sendable.lower()]}", key))
                continue
            seen_ids[key] = row
            seen_emails[sendable.lower()] = row
            email = sendable
            opted_out = (optout_col is not None
                         and cells[optout_col].strip().lower() in TRUE_WORDS)
            yield Contact(row, key, email, columns, opted_out)


def _printable(text: str, limit: int = 200) -> str:
    """For messages: no control characters, not too long."""
    shown = "".join(c if c.isprintable() else "?" for c in text)
    return shown if len(shown) <= limit else shown[:limit] + " …"


def _rows(reader: Any, path: Path) -> Iterator[list[str]]:
    """The csv reader's rows; a row it cannot parse is a German error naming the line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise ContactsError(f"{path}, Zeile {reader.line_num}: keine gültige CSV-Zeile "
                                "(etwa ein Steuerzeichen oder ein nicht geschlossenes "
                                "Anführungszeichen).") from None


def read(path: Path) -> ContactList:
    """Open a contact CSV; raise ContactsError when it is unusable as a whole."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ContactsError(f"Kontaktliste {path} gibt es nicht.") from None
    except OSError as exc:
        raise ContactsError(f"{path}: kann nicht gelesen werden ({os_reason(exc)}).") from None
    try:
        text, encoding = csvtext.decode(data, str(path))
    except csvtext.NotCsvError as exc:
        raise ContactsError(str(exc)) from None
    first = text.lstrip("\r\n").split("\n", 1)[0]
    if not first.strip():
        raise ContactsError(f"{path}: die Kontaktliste ist leer.")
    delimiter = csvtext.delimiter(first)
    header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
    lower = [h.lower() for h in header]
    if not any(c in lower for c in EMAIL_COLUMNS):
        raise ContactsError(f"{path}: keine Spalte für die E-Mail-Adresse (erwartet: "
                            f"{', '.join(EMAIL_COLUMNS[:2])}); gefunden: "
                            f"{_printable(', '.join(header))}")
    duplicates = sorted({h for h in lower if lower.count(h) > 1})
    if duplicates:
        raise ContactsError(f"{path}: Spalten doppelt: {', '.join(duplicates)}")
    return ContactList(path, text.lstrip("\r\n"), delimiter, encoding, header)
