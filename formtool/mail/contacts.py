"""Contact lists as Excel and LibreOffice export them in Germany.

Encoding (UTF-8 with or without BOM, else cp1252) and delimiter (``,`` ``;``
tab) are detected. Every row with a problem is skipped and reported with its
row number as the spreadsheet shows it (the header is row 1).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formtool.addresses import ascii_email, shown, why_invalid
from formtool.data import csvtext, sheets
from formtool.errors import FormtoolError, os_reason

# The columns formtool reads, and how people write them in a spreadsheet's header:
# case, spaces, hyphens, dots and umlaut spellings do not matter (``_folded``).
COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("e-mail", "mail", "emailadresse", "e-mail-adresse", "mailadresse",
              "email address", "e-mail address", "elektronische post"),
    "id": ("kennung", "kontakt-id", "kontaktnummer", "nr", "nummer"),
    "anrede": ("salutation", "geschlecht"),
    "titel": ("title", "akademischer titel", "akad. titel"),
    "vorname": ("rufname", "first name", "firstname", "given name"),
    "nachname": ("name", "familienname", "zuname", "last name", "lastname", "surname"),
    "organisation": ("organization", "einrichtung", "träger", "traeger", "institution",
                     "firma", "dienststelle", "behörde", "verband", "organisation/träger"),
    "fachbereich": ("abteilung", "bereich", "referat"),
    "strasse": ("straße", "str", "str.", "anschrift", "straße und hausnummer",
                "strasse und hausnummer", "adresse"),
    "plz": ("postleitzahl", "zip", "zip code"),
    "ort": ("stadt", "city", "wohnort", "gemeinde"),
    "landkreis": ("kreis", "landkreis/kreisfreie stadt"),
    "telefon": ("tel", "tel.", "telefonnummer", "phone", "fon", "festnetz"),
    "optout": ("opt-out", "abgemeldet", "abmeldung"),
}
EMAIL_COLUMNS = ("email", *COLUMNS["email"])
TRUE_WORDS = {"ja", "j", "x", "1", "true", "wahr", "yes", "y"}
NAME_COLUMNS = ("anrede", "titel", "vorname", "nachname", "organisation", "strasse", "ort")


def _folded(header: str) -> str:
    text = header.strip().lower()
    for umlaut, plain in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, plain)
    return "".join(c for c in text if c.isalnum())


_NAMES = {_folded(word): name for name, words in COLUMNS.items() for word in (name, *words)}


def column_names(header: list[str]) -> list[str]:
    """The name formtool reads each header as: its own (``email``, ``nachname`` …) where
    the header is one of the ways people write it, else the header itself. A header
    written exactly as the name wins over a synonym ("Nachname" over "Name")."""
    names = list(header)
    taken = {h for h in header if h in COLUMNS}
    for exact in (True, False):
        for i, text in enumerate(header):
            name = _NAMES.get(_folded(text))
            if names[i] in COLUMNS or name is None or name in taken:
                continue
            if exact != (_folded(text) == _folded(name)):
                continue
            names[i] = name
            taken.add(name)
    return names


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
    duplicate: bool = False  # the same address again: it gets the mail once, no failure


@dataclass
class ContactList:
    """A contact CSV, read lazily: iterate it as often as needed."""

    path: Path
    text: str
    delimiter: str
    encoding: str
    header: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # what each header is read as
    notes: list[str] = field(default_factory=list)  # values repaired or suspect, after a pass
    passed_over: list[str] = field(default_factory=list)  # other files beside it, not read
    offset: int = 0  # rows above the header (a workbook's empty first rows)
    sheet_notes: list[str] = field(default_factory=list)  # a workbook's sheet, hidden rows

    def described(self) -> list[str]:
        """What the coordinator should know about the list, in German: which file, how
        its columns are read, and (after a pass) what was repaired or looks damaged."""
        lines = [f"Kontaktliste: {self.path.name}"
                 + (f" (nicht gelesen: {', '.join(self.passed_over)})" if self.passed_over
                    else "")]
        lines.extend(self.sheet_notes)
        if self.mapping:
            lines.append("Spalten erkannt: " + ", ".join(f"„{h}“ → {n}"
                                                        for h, n in self.mapping))
        return lines + self.notes

    @property
    def mapping(self) -> list[tuple[str, str]]:
        """(header as written, name formtool reads it as) where the two differ."""
        return [(h, n) for h, n in zip(self.header, self.names, strict=True) if h != n]

    def __iter__(self) -> Iterator[Contact]:
        """Valid contacts in file order; ``skipped`` holds the others after a full pass,
        ``notes`` what was repaired (a postcode's lost leading zero) or looks damaged."""
        self.skipped = []
        self.notes = []
        postcodes: list[str] = []
        lost: list[str] = []
        reader = csv.reader(io.StringIO(self.text, newline=""), delimiter=self.delimiter)
        next(reader, None)
        names = self.names or column_names(self.header)
        email_col = names.index("email") if "email" in names else None
        id_col = names.index("id") if "id" in names else None
        optout_col = names.index("optout") if "optout" in names else None
        plz_col = names.index("plz") if "plz" in names else None
        checked = [i for i, n in enumerate(names) if n in NAME_COLUMNS]
        seen_ids: dict[str, int] = {}
        seen_emails: dict[str, int] = {}
        start = reader.line_num + 1 + self.offset
        for cells in _rows(reader, self.path):
            row, start = start, reader.line_num + 1 + self.offset
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
            columns.update({n: c.strip() for n, c in zip(names, cells, strict=False)})
            if plz_col is not None and re.fullmatch(r"\d{4}", columns.get("plz", "")):
                # Excel kept the postcode as a number: 07318 became 7318
                postcodes.append(f"Zeile {row}: {columns['plz']} → 0{columns['plz']}")
                columns["plz"] = "0" + columns["plz"]
                columns[self.header[plz_col]] = columns["plz"]
            if self.encoding == "cp1252":
                lost += [f"Zeile {row}: „{cells[i].strip()}“" for i in checked
                         if i < len(cells) and re.search(r"\w\?|\?\w", cells[i])]
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
                                                 f"{seen_emails[sendable.lower()]}", key,
                                            duplicate=True))
                continue
            seen_ids[key] = row
            seen_emails[sendable.lower()] = row
            email = sendable
            opted_out = (optout_col is not None
                         and cells[optout_col].strip().lower() in TRUE_WORDS)
            yield Contact(row, key, email, columns, opted_out)
        if postcodes:
            self.notes.append(f"{len(postcodes)} Postleitzahl(en) mit 4 Ziffern um die "
                              "führende 0 ergänzt (Excel hatte sie als Zahl gespeichert), "
                              f"z. B. {postcodes[0]}")
        if lost:
            self.notes.append(f"{len(lost)} Name(n) mit „?“ mitten im Wort, z. B. {lost[0]}: "
                              "Zeichen, die Excel beim Speichern als „CSV (Trennzeichen-"
                              "getrennt)“ nicht speichern konnte (ł, ś, ş …). Bitte in Excel "
                              "„Speichern unter → CSV UTF-8“ wählen.")


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


def read(path: Path, sheet: str | None = None) -> ContactList:
    """Open a contact list – a CSV, or an Excel workbook's first sheet (or ``sheet``);
    raise ContactsError when it is unusable as a whole."""
    if path.suffix.lower() in sheets.SUFFIXES:
        return _workbook(path, sheet)
    if sheet is not None:
        raise ContactsError(f"{path.name}: --blatt gilt nur für Excel-Arbeitsmappen (.xlsx).")
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
    return _listed(path, text.lstrip("\r\n"), delimiter, encoding, header)


def _listed(path: Path, text: str, delimiter: str, encoding: str, header: list[str],
            **more: Any) -> ContactList:
    names = column_names(header)
    if "email" not in names:
        raise ContactsError(f"{path}: keine Spalte für die E-Mail-Adresse (erwartet: "
                            f"{', '.join(EMAIL_COLUMNS[:3])} …); gefunden: "
                            f"{_printable(', '.join(header))}")
    lower = [h.lower() for h in header]
    duplicates = sorted({h for h in lower if lower.count(h) > 1})
    if duplicates:
        raise ContactsError(f"{path}: Spalten doppelt: {', '.join(duplicates)}")
    return ContactList(path, text, delimiter, encoding, header, names=names, **more)


def _workbook(path: Path, sheet: str | None) -> ContactList:
    """A workbook's sheet as the same list a CSV gives: the same verdicts for every row,
    Excel's row numbers; the header is the first row that is not empty."""
    try:
        found = sheets.read(path, sheet)
    except FileNotFoundError:
        raise ContactsError(f"Kontaktliste {path} gibt es nicht.") from None
    except sheets.SheetError as exc:
        raise ContactsError(str(exc)) from None
    offset = next((i for i, row in enumerate(found.rows) if any(c.strip() for c in row)), None)
    if offset is None:
        raise ContactsError(f"{path}: das Blatt „{found.name}“ ist leer.")
    header = [h.strip() for h in found.rows[offset]]
    width = len(header)
    while width and not header[width - 1]:
        width -= 1
    header = header[:width]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    for row in found.rows[offset:]:
        writer.writerow(row[:width] + [""] * (width - len(row)) if len(row) <= width
                        else row)
    notes = [f"Blatt „{found.name}“" + (f" (weitere Blätter, nicht gelesen: "
                                       f"{', '.join(found.other_sheets)}; ein anderes mit "
                                       "--blatt NAME)" if found.other_sheets else "")]
    if found.hidden_rows:
        shown_rows = ", ".join(map(str, found.hidden_rows[:10]))
        more = " …" if len(found.hidden_rows) > 10 else ""
        notes.append(f"{len(found.hidden_rows)} ausgeblendete Zeile(n) werden mitgelesen "
                     f"(Zeile {shown_rows}{more}) – in Excel einblenden, um sie zu sehen")
    if found.hidden_columns:
        notes.append(f"ausgeblendete Spalte(n) {', '.join(found.hidden_columns[:10])} werden "
                     "mitgelesen")
    return _listed(path, out.getvalue(), ";", "xlsx", header, offset=offset,
                   sheet_notes=notes)
