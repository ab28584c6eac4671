"""Raw field values -> validated, normalised rows; the response CSV.

The CSV opens by double-click in German Excel and LibreOffice (UTF-8 with BOM,
``;``). It is appended to, never clobbered: each run writes a temporary file
holding the old rows and the new ones, then renames it over the old file.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from formtool.errors import OutputError
from formtool.mail.addresses import is_valid_email
from formtool.pdf.extract import Extraction, RawField
from formtool.pdf.formdef import Field, FormDefinition

META_COLUMNS = ("datei", "importiert_am", "response_id", "kontakt_id", "aktion", "pruefsumme",
                "probleme")
YES, NO = "ja", "nein"
POSTCODE_RE = re.compile(r"^\d{5}$")
NUMBER_RE = re.compile(r"^-?\d{1,3}(\.?\d{3})*(,\d+)?$|^-?\d+([.,]\d+)?$")
DATE_FORMATS = ("%d.%m.%Y", "%d.%m.%y", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d. %m. %Y",
                "%d.%m. %Y")
# OWASP "CSV injection": a spreadsheet treats these first characters as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Row:
    """One response: field values by name plus the meta columns."""

    values: dict[str, str]
    file_name: str
    imported_at: str
    response_id: str
    sha256: str
    problems: list[str] = field(default_factory=list)
    contact_key: str = ""  # who got the personal form with this response id
    campaign: str = ""

    @property
    def key(self) -> str:
        return self.response_id or f"sha256:{self.sha256}"

    def cells(self, names: list[str]) -> list[str]:
        meta = {"datei": self.file_name, "importiert_am": self.imported_at,
                "response_id": self.response_id, "kontakt_id": self.contact_key,
                "aktion": self.campaign, "pruefsumme": self.sha256,
                "probleme": "; ".join(self.problems)}
        return [neutralise(self.values.get(n, meta.get(n, ""))) for n in names]


def neutralise(cell: str) -> str:
    """Prefix cells a spreadsheet would run as a formula with an apostrophe."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


# normalisation ---------------------------------------------------------------

def _text(value: str | list[str] | None) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(v.strip() for v in value if v.strip())
    return value


def _single_line(text: str) -> str:
    return " ".join(text.split())


def _multi_line(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def parse_date(text: str) -> str | None:
    """German and ISO date spellings -> ISO ``YYYY-MM-DD``; None when not a date."""
    cleaned = re.sub(r"\s+", " ", text.strip())
    for fmt in DATE_FORMATS:
        with contextlib.suppress(ValueError):
            return dt.datetime.strptime(cleaned, fmt).date().isoformat()
    return None


def is_checked(raw: RawField) -> bool:
    """A checkbox is on when /V (or a widget's /AS) is one of its own on-states."""
    value = raw.value if isinstance(raw.value, str) else None
    if value is not None and value != "Off":
        return value in raw.on_states or not raw.on_states or value.lower() in {
            "yes", "on", "ja", "true", "1"}
    return value is None and bool(raw.selected_states)


def _radio_state(raw: RawField) -> str | None:
    value = raw.value if isinstance(raw.value, str) else None
    if not value or value == "Off":
        value = raw.selected_states[0] if raw.selected_states else None
    return raw.state_value(value) if value is not None else None


def _normalise_field(spec: Field, raw: RawField | None, problems: list[str]) -> str:
    if raw is None:
        return ""
    kind = spec.type
    if kind == "checkbox":
        return YES if is_checked(raw) else NO
    if kind == "radio":
        state = _radio_state(raw)
        if state is None:
            return ""
        label = spec.option_label(state)
        if label is None and state in raw.on_states and len(raw.on_states) == len(spec.options):
            label = spec.options[raw.on_states.index(state)].label  # e.g. LibreOffice's /1 /2
        if label is None:
            problems.append(f"{spec.label}: unbekannte Auswahl „{state}“")
            return state
        return label
    text = _text(raw.value)
    if kind == "choice":
        text = text.strip()
        if not text:
            return ""
        label = spec.option_label(text)
        if label is None and any(o.label == text for o in spec.options):
            label = text  # some viewers store the display text
        if label is None:
            problems.append(f"{spec.label}: unbekannte Auswahl „{text}“")
            return text
        return label
    if kind == "multiline":
        return _multi_line(text)
    text = _single_line(text)
    if kind == "date" and text:
        iso = parse_date(text)
        if iso is None:
            problems.append(f"{spec.label}: Datum „{text}“ nicht erkannt (TT.MM.JJJJ)")
            return text
        return iso
    return text


def _validate(spec: Field, value: str, problems: list[str]) -> None:
    empty = value in ("", NO) if spec.type == "checkbox" else not value
    if empty:
        if spec.required:
            problems.append(f"Pflichtfeld fehlt: {spec.label}")
        return
    if spec.type == "email" and not is_valid_email(value):
        problems.append(f"{spec.label}: keine gültige E-Mail-Adresse „{value}“")
    elif spec.type == "postcode" and not POSTCODE_RE.match(value):
        problems.append(f"{spec.label}: keine gültige Postleitzahl „{value}“ (5 Ziffern)")
    elif spec.type == "number" and not NUMBER_RE.match(value):
        problems.append(f"{spec.label}: keine Zahl „{value}“")
    if spec.max_length and len(value) > spec.max_length:
        problems.append(f"{spec.label}: länger als {spec.max_length} Zeichen")


def _meta(extraction: Extraction, imported_at: str) -> dict[str, str]:
    return {"file_name": extraction.path.name, "imported_at": imported_at,
            "response_id": _single_line(extraction.value("response_id")),
            "sha256": extraction.sha256}


def normalise(form: FormDefinition, extraction: Extraction, imported_at: str) -> Row:
    """Values of ``form``'s fields from one file, normalised and validated."""
    problems: list[str] = []
    values: dict[str, str] = {}
    for spec in form.fields():
        value = _normalise_field(spec, extraction.fields.get(spec.name), problems)
        _validate(spec, value, problems)
        values[spec.name] = value
    version = extraction.value("form_version")
    if version and version != form.version:
        problems.append(f"Formular-Version {version}, erwartet {form.version}")
    return Row(values, problems=[*extraction.notes, *problems], **_meta(extraction, imported_at))


def normalise_raw(extraction: Extraction, imported_at: str) -> Row:
    """Any AcroForm: its field names become the columns."""
    values: dict[str, str] = {}
    for name, raw in extraction.fields.items():
        if raw.kind == "Btn" and not raw.is_radio:
            values[name] = YES if is_checked(raw) else NO
        elif raw.is_radio:
            values[name] = _radio_state(raw) or ""
        else:
            values[name] = _multi_line(_text(raw.value))
    return Row(values, problems=list(extraction.notes), **_meta(extraction, imported_at))


# recognising the form ---------------------------------------------------------

def identify(extraction: Extraction, forms: dict[str, FormDefinition]) -> FormDefinition | str:
    """The definition this file was made from, or a German reason why none fits."""
    form_id = _single_line(extraction.value("form_id"))
    if form_id:
        if form_id in forms:
            return forms[form_id]
        return (f"unbekanntes Formular „{form_id}“ (nicht in forms/); mit --form raw "
                "trotzdem einlesen")
    names = set(extraction.fields)
    best, score = None, 0.0
    for form in forms.values():
        wanted = {f.name for f in form.fields()}
        overlap = len(wanted & names) / len(wanted) if wanted else 0.0
        if overlap > score:
            best, score = form, overlap
    if best is not None and score >= 0.8:
        return best
    return ("unbekanntes Formular: die Felder passen zu keiner Definition in forms/; "
            "mit --form raw trotzdem einlesen")


# the CSV -----------------------------------------------------------------------

def columns(form: FormDefinition | None, *, labels: bool) -> list[tuple[str, str]]:
    """(field name, header) pairs in form order, then the meta columns."""
    out: list[tuple[str, str]] = []
    if form is not None:
        specs = list(form.fields())
        counts: dict[str, int] = {}
        for spec in specs:
            counts[spec.label] = counts.get(spec.label, 0) + 1
        sections = {f.name: s.title for s in form.sections for f in s.fields}
        for spec in specs:
            header = spec.name
            if labels:
                header = spec.label
                if counts[spec.label] > 1 and spec.name in sections:
                    header = f"{sections[spec.name]}: {spec.label}"  # "Erste Ansprechperson: Name"
            out.append((spec.name, header))
    out.extend((m, m) for m in META_COLUMNS)
    return out


def _digest(pairs: Iterator[tuple[str, str]]) -> str:
    """A fingerprint of a row's field values, independent of column order."""
    text = "\x1f".join(f"{n}={v}" for n, v in sorted(pairs) if v)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Dialect:
    delimiter: str = ";"
    encoding: str = "utf-8-sig"


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
        self._tmp: Path | None = None
        self._fh: IO[str] | None = None
        self._writer: csv._writer | None = None  # type: ignore[name-defined]
        self._open()

    def _csv_open(self, path: Path, mode: str) -> IO[str]:
        return path.open(mode, encoding=self.dialect.encoding, newline="")

    def _open(self) -> None:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                       dir=self.path.parent)
        except OSError as exc:
            raise OutputError(f"{self.path}: kann nicht geschrieben werden "
                              f"({exc.strerror}).") from None
        os.close(fd)
        self._tmp = Path(tmp)
        self._fh = self._csv_open(self._tmp, "w")
        self._writer = csv.writer(self._fh, delimiter=self.dialect.delimiter)
        try:
            old = self._csv_open(self.path, "r")
        except FileNotFoundError:
            if not self.dynamic:
                self._writer.writerow(self.headers)
            return
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: kann nicht gelesen werden ({exc.strerror}).") from None
        with old:
            self._copy_old(old)

    def _copy_old(self, old: IO[str]) -> None:
        assert self._writer is not None
        reader = csv.reader(old, delimiter=self.dialect.delimiter)
        try:
            header = next(reader, None)
            if header is None:
                if not self.dynamic:
                    self._writer.writerow(self.headers)
                return
            if self.dynamic:
                # Raw columns are field names: keep the old ones, new ones follow.
                self._old_header = header
                self.names = [n for n in header if n not in META_COLUMNS]
            elif header != self.headers:
                self.abort()
                raise OutputError(
                    f"{self.path}: Die vorhandene Tabelle hat andere Spalten als dieses "
                    "Formular (andere Formular-Version oder --header). Bitte mit -o eine "
                    "andere Datei wählen.")
            else:
                self._writer.writerow(header)
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
                    self._writer.writerow(cells)
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
        if sha == row.sha256 or digest == self._row_digest(row):
            return "same"
        return "conflict"

    @staticmethod
    def _row_digest(row: Row) -> str:
        return _digest((n, neutralise(v)) for n, v in row.values.items())

    def add(self, row: Row, *, replace: bool = False) -> None:
        self.digests[row.key] = (row.sha256, self._row_digest(row))
        if replace:
            self.replacements[row.key] = row
        elif self.dynamic:
            self.pending.append(row)
            self.names.extend([n for n in row.values if n not in self.names])
        else:
            assert self._writer is not None
            try:
                self._writer.writerow(row.cells(self.names))
            except UnicodeEncodeError as exc:
                self.abort()
                raise OutputError(
                    f"{row.file_name}: das Zeichen „{exc.object[exc.start:exc.end]}“ passt "
                    f"nicht in die Kodierung {self.dialect.encoding}; bitte "
                    "--encoding utf-8-sig nehmen. Die Tabelle bleibt unverändert.") from None

    def commit(self) -> None:
        assert self._fh is not None and self._tmp is not None
        if self.dynamic:
            self._write_dynamic()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        if self.replacements:
            self._apply_replacements()
        try:
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: kann nicht ersetzt werden ({exc.strerror}); "
                              "ist die Datei in Excel geöffnet?") from None
        self._tmp = None

    def _write_dynamic(self) -> None:
        assert self._writer is not None
        fields = [n for n in self.names if n not in META_COLUMNS]
        self.names = self.headers = fields + list(META_COLUMNS)
        self._writer.writerow(self.headers)
        for cells in self._old_rows:
            by_name = dict(zip(self._old_header, cells, strict=False))
            self._writer.writerow([by_name.get(n, "") for n in self.names])
        for row in self.pending:
            self._writer.writerow(row.cells(self.names))

    def _apply_replacements(self) -> None:
        assert self._tmp is not None
        fd, second = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                      dir=self.path.parent)
        os.close(fd)
        with self._csv_open(self._tmp, "r") as src, self._csv_open(Path(second), "w") as dst:
            reader = csv.reader(src, delimiter=self.dialect.delimiter)
            writer = csv.writer(dst, delimiter=self.dialect.delimiter)
            header = next(reader)
            writer.writerow(header)
            index = {n: i for i, n in enumerate(header)}
            for cells in reader:
                rid = cells[index["response_id"]].lstrip("'")
                key = rid or f"sha256:{cells[index['pruefsumme']]}"
                row = self.replacements.pop(key, None)
                writer.writerow(row.cells(self.names) if row else cells)
            for row in self.replacements.values():  # replaced rows not in the old file
                writer.writerow(row.cells(self.names))
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(second, self._tmp)

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            self._tmp = None
