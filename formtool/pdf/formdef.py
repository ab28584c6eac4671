"""Form definitions: ``forms/*.toml`` -> :class:`FormDefinition`.

The format is documented in ``examples/forms/README.md``. Loading validates the
whole definition and reports every problem at once, each with file, line and
field, so that ``formtool forms check`` can list them all.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from formtool.errors import FormDefinitionError
from formtool.text import to_ascii

FIELD_TYPES = (
    "text", "multiline", "email", "phone", "postcode", "date", "number",
    "checkbox", "radio", "choice",
)
TEXT_TYPES = frozenset({"text", "multiline", "email", "phone", "postcode", "date", "number"})
OPTION_TYPES = frozenset({"radio", "choice"})
WIDTHS = {"full": 1.0, "two-thirds": 2 / 3, "half": 0.5, "third": 1 / 3, "quarter": 0.25}
# Hidden fields every generated form carries, so an import recognises it.
HIDDEN_FIELDS = ("form_id", "form_version", "response_id")
CLOSING_FIELDS = ("einwilligung", "ort", "datum")

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
VALUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

_TOP_KEYS = {"id", "version", "title", "file_name", "intro", "sections", "closing"}
_SECTION_KEYS = {"title", "intro", "fields"}
_FIELD_KEYS = {"name", "label", "type", "required", "options", "max_length", "help", "width",
               "lines", "prefill"}
_CLOSING_KEYS = {"consent_text", "consent_label", "place_date", "signature"}


@dataclass(frozen=True)
class Option:
    label: str
    value: str  # ASCII export value, PDF name of the widget's on-state


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str
    required: bool = False
    options: tuple[Option, ...] = ()
    max_length: int | None = None
    help: str = ""
    width: float = 1.0
    lines: int = 4
    prefill: str = ""  # contact column that fills personal copies

    @property
    def tooltip(self) -> str:
        """Accessible name (/TU): screen readers announce it, viewers show it on hover."""
        text = f"Pflichtfeld: {self.label}" if self.required else self.label
        return f"{text} – {self.help}" if self.help else text

    def option_label(self, value: str) -> str | None:
        return next((o.label for o in self.options if o.value == value), None)


@dataclass(frozen=True)
class Section:
    title: str
    intro: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Closing:
    consent_text: str
    fields: tuple[Field, ...]  # consent checkbox, place, date
    signature: bool


@dataclass(frozen=True)
class FormDefinition:
    id: str
    version: str
    title: str
    intro: str
    sections: tuple[Section, ...]
    closing: Closing | None
    path: Path | None = None
    file_name: str = ""  # for attachments and saved copies; the title when empty

    def fields(self) -> Iterator[Field]:
        """Every fillable field in form order, the closing block's last."""
        for section in self.sections:
            yield from section.fields
        if self.closing:
            yield from self.closing.fields

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields() if f.name == name), None)


def ascii_value(label: str) -> str:
    """A readable ASCII export value for an option label ("Träger" -> "traeger")."""
    text = to_ascii(label).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "option"


class _Problems:
    """Collects problems with the line of the field they concern."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.items: list[str] = []

    def line_of(self, key: str, value: str | None = None) -> int | None:
        """The first line that sets ``key`` (to ``value``, when given)."""
        rest = "" if value is None else rf"[\"']{re.escape(value)}[\"']"
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=\s*{rest}")
        return next((i for i, line in enumerate(self.lines, 1) if pattern.match(line)), None)

    def add(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        if line is None and field is not None:
            line = self.line_of("name", field)
        where = f"{self.path.name}:{line}" if line else self.path.name
        prefix = f"Feld „{field}“: " if field else ""
        self.items.append(f"{where}: {prefix}{message}")


def load(path: Path) -> FormDefinition:
    """Load and validate one definition; raise FormDefinitionError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormDefinitionError(f"Formular-Definition {path} gibt es nicht.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormDefinitionError(f"{path}: kann nicht gelesen werden ({exc}).") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FormDefinitionError(
            f"{path}: ist keine gültige TOML-Datei", [f"{path.name}: {exc}"]
        ) from None
    problems = _Problems(path, text)
    form = _build(data, problems, path)
    if problems.items:
        raise FormDefinitionError(
            f"{path}: Die Formular-Definition hat {len(problems.items)} Fehler", problems.items
        )
    assert form is not None
    return form


def _text(data: dict[str, Any], key: str, problems: _Problems, *, where: str,
          field: str | None = None, required: bool = True) -> str:
    value = data.get(key)
    if value is None:
        if required:
            problems.add(f"„{key}“ fehlt ({where})", field=field)
        return ""
    if not isinstance(value, str):
        problems.add(f"„{key}“ muss Text sein ({where})", field=field)
        return ""
    if required and not value.strip():
        problems.add(f"„{key}“ ist leer ({where})", field=field)
    return value.strip()


def _unknown_keys(data: dict[str, Any], allowed: set[str], problems: _Problems, *, where: str,
                  field: str | None = None) -> None:
    for key in sorted(set(data) - allowed):
        problems.add(f"unbekannter Schlüssel „{key}“ ({where}; erlaubt: "
                     f"{', '.join(sorted(allowed))})", field=field, line=problems.line_of(key))


def _build(data: dict[str, Any], problems: _Problems, path: Path) -> FormDefinition | None:
    _unknown_keys(data, _TOP_KEYS, problems, where="Kopf")
    form_id = _text(data, "id", problems, where="Kopf")
    if form_id and not ID_RE.match(form_id):
        problems.add(f"„id“ = „{form_id}“: nur a-z, 0-9, _ und - erlaubt")
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str) or not version.strip():
        problems.add("„version“ fehlt oder ist leer (Kopf)")
        version = ""
    title = _text(data, "title", problems, where="Kopf")
    intro = _text(data, "intro", problems, where="Kopf", required=False)

    seen: set[str] = set()
    sections: list[Section] = []
    raw_sections = data.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        problems.add("keine Abschnitte ([[sections]]) mit Feldern")
        raw_sections = []
    for number, raw in enumerate(raw_sections, 1):
        where = f"Abschnitt {number}"
        if not isinstance(raw, dict):
            problems.add(f"{where} ist keine Tabelle")
            continue
        _unknown_keys(raw, _SECTION_KEYS, problems, where=where)
        section_title = _text(raw, "title", problems, where=where)
        raw_fields = raw.get("fields")
        if not isinstance(raw_fields, list) or not raw_fields:
            problems.add(f"{where} „{section_title}“ hat keine Felder ([[sections.fields]])")
            raw_fields = []
        fields = [f for f in (_field(r, problems, where, seen) for r in raw_fields) if f]
        sections.append(Section(section_title, _text(raw, "intro", problems, where=where,
                                                     required=False), tuple(fields)))

    closing = _closing(data.get("closing"), problems, seen)
    file_name = _text(data, "file_name", problems, where="Kopf", required=False)
    return FormDefinition(form_id, version.strip(), title, intro, tuple(sections), closing, path,
                          file_name or title)


def _field(raw: Any, problems: _Problems, where: str, seen: set[str]) -> Field | None:
    if not isinstance(raw, dict):
        problems.add(f"ein Feld in {where} ist keine Tabelle")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.add(f"ein Feld in {where} hat keinen „name“")
        return None
    _unknown_keys(raw, _FIELD_KEYS, problems, where=where, field=name)
    if not NAME_RE.match(name):
        problems.add("ungültiger Name: nur Kleinbuchstaben a-z, Ziffern und _, am Anfang ein "
                     "Buchstabe (keine Punkte: PDF-Programme lesen sie als Hierarchie)", field=name)
    if name in HIDDEN_FIELDS:
        problems.add("der Name ist für ein verstecktes Feld reserviert", field=name)
    elif name in seen:
        problems.add("der Name kommt doppelt vor", field=name)
    seen.add(name)

    ftype = raw.get("type", "text")
    if ftype not in FIELD_TYPES:
        problems.add(f"unbekannter Typ „{ftype}“ (erlaubt: {', '.join(FIELD_TYPES)})", field=name)
    required = raw.get("required", False)
    if not isinstance(required, bool):
        problems.add("„required“ muss true oder false sein", field=name)
        required = False
    label = _text(raw, "label", problems, where=where, field=name, required=False)
    if not label:
        if ftype == "checkbox" and required:
            problems.add("Pflicht-Ankreuzfeld ohne Beschriftung („label“): niemand weiß, "
                         "wozu das Kreuz gehört", field=name)
        else:
            problems.add("„label“ fehlt (die Beschriftung ist auch der Tooltip für "
                         "Bildschirmleser)", field=name)

    options = _options(raw.get("options"), problems, name, ftype)
    max_length = raw.get("max_length")
    if max_length is not None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            problems.add("„max_length“ muss eine ganze Zahl ab 1 sein", field=name)
            max_length = None
        elif ftype not in TEXT_TYPES:
            problems.add(f"„max_length“ gilt nur für Textfelder, nicht für „{ftype}“", field=name)
            max_length = None
    width_name = raw.get("width", "full")
    if width_name not in WIDTHS:
        problems.add(f"unbekannte Breite „{width_name}“ (erlaubt: {', '.join(WIDTHS)})",
                     field=name)
        width_name = "full"
    lines = raw.get("lines", 4)
    if isinstance(lines, bool) or not isinstance(lines, int) or not 2 <= lines <= 30:
        problems.add("„lines“ muss eine ganze Zahl von 2 bis 30 sein", field=name)
        lines = 4
    help_text = _text(raw, "help", problems, where=where, field=name, required=False)
    prefill = _text(raw, "prefill", problems, where=where, field=name, required=False)
    if prefill and ftype not in TEXT_TYPES | OPTION_TYPES - {"radio"}:
        problems.add(f"„prefill“ gibt es nur für Text- und Auswahlfelder, nicht für „{ftype}“",
                     field=name)
        prefill = ""
    return Field(name=name, label=label, type=ftype, required=required, options=options,
                 max_length=max_length, help=help_text, width=WIDTHS[width_name], lines=lines,
                 prefill=prefill)


def _options(raw: Any, problems: _Problems, name: str, ftype: str) -> tuple[Option, ...]:
    if raw is None:
        if ftype in OPTION_TYPES:
            problems.add(f"„{ftype}“ braucht Auswahlmöglichkeiten („options“)", field=name)
        return ()
    if ftype not in OPTION_TYPES:
        problems.add(f"„options“ gibt es nur bei radio und choice, nicht bei „{ftype}“",
                     field=name)
        return ()
    if not isinstance(raw, list) or not raw:
        problems.add("„options“ muss eine nicht leere Liste sein", field=name)
        return ()
    options: list[Option] = []
    for item in raw:
        if isinstance(item, str):
            label, value = item, ascii_value(item)
        elif isinstance(item, dict) and isinstance(item.get("label"), str):
            label = item["label"]
            value = item.get("value", ascii_value(label))
        else:
            problems.add(f"Auswahl {item!r}: braucht Text oder {{label = …, value = …}}",
                         field=name)
            continue
        if not isinstance(value, str) or not VALUE_RE.match(value) or value == "Off":
            problems.add(f"Auswahl „{label}“: Wert {value!r} muss ASCII sein (A-Z, a-z, 0-9, "
                         "_ und -) und darf nicht „Off“ heißen", field=name)
            continue
        if any(o.value == value for o in options):
            problems.add(f"Auswahl „{label}“: Wert „{value}“ kommt doppelt vor", field=name)
            continue
        options.append(Option(label.strip(), value))
    if ftype == "radio" and len(options) == 1:
        problems.add("eine Optionsgruppe („radio“) braucht mindestens zwei Auswahlmöglichkeiten; "
                     "für eine einzelne nehmen Sie „checkbox“", field=name)
    return tuple(options)


def _closing(raw: Any, problems: _Problems, seen: set[str]) -> Closing | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add("[closing] ist keine Tabelle")
        return None
    _unknown_keys(raw, _CLOSING_KEYS, problems, where="[closing]")
    for name in CLOSING_FIELDS:
        if name in seen:
            problems.add("der Name ist für den Schlussblock ([closing]) reserviert", field=name)
    consent_text = _text(raw, "consent_text", problems, where="[closing]", required=False)
    consent_label = _text(raw, "consent_label", problems, where="[closing]",
                          required=bool(consent_text))
    fields: list[Field] = []
    if consent_label:
        fields.append(Field("einwilligung", consent_label, "checkbox", required=True))
    if raw.get("place_date", True):
        fields.append(Field("ort", "Ort", "text", width=0.5))
        fields.append(Field("datum", "Datum", "date", width=0.5, help="TT.MM.JJJJ"))
    return Closing(consent_text, tuple(fields), bool(raw.get("signature", True)))


def find_definition(forms_dir: Path, name: str) -> Path:
    """Resolve FORM: a path to a .toml file, or a form id / file stem in ``forms_dir``."""
    candidate = Path(name)
    if candidate.suffix == ".toml" or candidate.is_file():
        return candidate
    path = forms_dir / f"{name}.toml"
    if path.is_file():
        return path
    known = ", ".join(p.stem for p in sorted(forms_dir.glob("*.toml"))) or "keine"
    raise FormDefinitionError(f"Unbekanntes Formular „{name}“ (vorhanden in {forms_dir}: {known}).")


def definitions(forms_dir: Path) -> list[Path]:
    return sorted(forms_dir.glob("*.toml"))
