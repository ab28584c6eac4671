"""Raw field values of a filled form -> one validated, normalised row.

Checkboxes become ja/nein whatever their on-state, radios and choices their labels,
dates ISO; every problem is noted in the row, which is kept. ``data/tables.py``
writes the rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass, field

from formtool.addresses import is_valid_email
from formtool.pdf.extract import Extraction, RawField
from formtool.pdf.formdef import Field, FormDefinition

META_COLUMNS = ("datei", "importiert_am", "response_id", "kontakt_id", "aktion", "pruefsumme",
                "probleme", "absender", "eingegangen_am", "message_id")
# The columns a table written before formtool 2026-11-26 lacks (the mail a return came
# with, for `mail fetch`): such a table gets them, empty for its old rows.
ADDED_META_COLUMNS = ("absender", "eingegangen_am", "message_id")
YES, NO = "ja", "nein"
POSTCODE_RE = re.compile(r"^\d{5}$")
NUMBER_RE = re.compile(r"^-?\d{1,3}(\.?\d{3})*(,\d+)?$|^-?\d+([.,]\d+)?$")
DATE_FORMATS = ("%d.%m.%Y", "%d.%m.%y", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d. %m. %Y",
                "%d.%m. %Y")


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
    fingerprint: str = ""  # of the field values, once computed (data.tables.fingerprint)
    sender: str = ""  # the mail it came with (`mail fetch`): From, Date, Message-ID
    received: str = ""
    message_id: str = ""

    @property
    def key(self) -> str:
        return self.response_id or f"sha256:{self.sha256}"

    def get(self, name: str) -> str:
        """A field's value, or a meta column's."""
        if name in self.values:
            return self.values[name]
        return {"datei": self.file_name, "importiert_am": self.imported_at,
                "response_id": self.response_id, "kontakt_id": self.contact_key,
                "aktion": self.campaign, "pruefsumme": self.sha256,
                "probleme": "; ".join(self.problems), "absender": self.sender,
                "eingegangen_am": self.received, "message_id": self.message_id}.get(name, "")


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


MAX_VALUE = 32_767  # characters: what an Excel cell shows; longer answers are cut
MAX_NAME = 200  # characters of a field name used as a column header (--form raw)


def _capped(label: str, value: str, problems: list[str]) -> str:
    if len(value) <= MAX_VALUE:
        return value
    problems.append(f"{label}: Antwort mit {len(value):,} Zeichen auf {MAX_VALUE:,} gekürzt "
                    "(mehr zeigt eine Tabellenzelle nicht)".replace(",", "."))
    return value[:MAX_VALUE]


def normalise(form: FormDefinition, extraction: Extraction, imported_at: str) -> Row:
    """Values of ``form``'s fields from one file, normalised and validated."""
    problems: list[str] = []
    values: dict[str, str] = {}
    for spec in form.fields():
        value = _normalise_field(spec, extraction.fields.get(spec.name), problems)
        value = _capped(spec.label, value, problems)
        _validate(spec, value, problems)
        values[spec.name] = value
    version = extraction.value("form_version")
    if version and version != form.version:
        problems.append(f"Formular-Version {version}, erwartet {form.version}")
    return Row(values, problems=[*extraction.notes, *problems], **_meta(extraction, imported_at))


def normalise_raw(extraction: Extraction, imported_at: str) -> Row:
    """Any AcroForm: its field names become the columns."""
    values: dict[str, str] = {}
    problems = list(extraction.notes)
    for field_name, raw in extraction.fields.items():
        # a field called like a meta column keeps its value under its own header
        name = f"{field_name} (Feld)" if field_name in META_COLUMNS else field_name
        if len(name) > MAX_NAME:  # a column header, not a paragraph
            problems.append(f"Feldname mit {len(name)} Zeichen auf {MAX_NAME} gekürzt")
            name = name[:MAX_NAME]
        if raw.kind == "Btn" and not raw.is_radio:
            values[name] = YES if is_checked(raw) else NO
        elif raw.is_radio:
            values[name] = _radio_state(raw) or ""
        else:
            values[name] = _capped(name, _multi_line(_text(raw.value)), problems)
    return Row(values, problems=problems, **_meta(extraction, imported_at))


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
