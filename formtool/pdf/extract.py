"""Any PDF -> raw AcroForm field values, or a plain reason why not.

Reads with pikepdf (qpdf): about 15x faster than pypdf on these files (see
bench/bench_import.py), repairs damaged cross-reference tables, opens
owner-password-only files, and detects loops. Fields are collected from the
AcroForm tree *and* from the widgets on every page, because macOS Preview is
known to drop fields from /AcroForm /Fields (pdfium-render #201, pdfcpu #769).
Only the latest revision counts, so incremental saves (pdf.js, Acrobat) read
as the last value. Content streams are never decoded: a decompression bomb in
a page costs nothing.

Runs in worker processes: everything here is plain data and picklable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import pikepdf

from formtool.errors import os_reason

TOO_BIG = ("zu groß zum Einlesen (ein Wert oder Datenstrom bräuchte mehr Speicher, als "
           "formtool einer Datei gibt) – beschädigt oder präpariert?")


class Outcome(Enum):
    READ = "gelesen"
    FAILED = "fehlgeschlagen"


@dataclass
class RawField:
    """One terminal field with everything needed to normalise its value."""

    name: str  # fully qualified ("parent.kid")
    kind: str  # "Tx", "Btn", "Ch" or "" when the file gives none
    value: str | list[str] | None  # /V: text, or a state name without "/"
    flags: int = 0
    on_states: list[str] = field(default_factory=list)  # each widget's non-Off /AP /N state
    selected_states: list[str] = field(default_factory=list)  # widgets whose /AS is on
    export_values: list[str] = field(default_factory=list)  # a button's /Opt (12.7.4.2.3)

    def state_value(self, state: str) -> str:
        """A button state as its export value: with /Opt, states are indices into it."""
        if self.export_values and state.isdigit() and int(state) < len(self.export_values):
            return self.export_values[int(state)]
        return state

    @property
    def is_radio(self) -> bool:
        return self.kind == "Btn" and bool(self.flags & (1 << 15))

    @property
    def is_pushbutton(self) -> bool:
        return self.kind == "Btn" and bool(self.flags & (1 << 16))


@dataclass
class Extraction:
    path: Path
    outcome: Outcome
    sha256: str = ""
    fields: dict[str, RawField] = field(default_factory=dict)
    reason: str = ""  # why it failed, in plain German
    notes: list[str] = field(default_factory=list)  # e.g. "beschädigt, repariert und gelesen"

    def value(self, name: str) -> str:
        raw = self.fields.get(name)
        return raw.value if raw and isinstance(raw.value, str) else ""


_ASK_FOR_THE_PDF = ("bitte um die ausgefüllte PDF-Datei bitten oder die Angaben von Hand "
                    "übertragen")
_SIGNATURES = (  # how a file starts -> what it is
    ((b"\xff\xd8\xff",), "Foto oder Scan (JPEG-Bild), kein ausfüllbares Formular"),
    ((b"\x89PNG",), "Bild (PNG), kein ausfüllbares Formular"),
    ((b"II*\x00", b"MM\x00*"), "Scan (TIFF-Bild), kein ausfüllbares Formular"),
    ((b"GIF8",), "Bild (GIF), kein ausfüllbares Formular"),
    ((b"\xd0\xcf\x11\xe0",), "Word- oder Excel-Datei (altes Office-Format), kein PDF"),
)


def not_a_pdf(data: bytes) -> str:
    """What a file that is not a PDF most likely is, and what to do, in plain German."""
    head = data[:64]
    for starts, what in _SIGNATURES:
        if head.startswith(starts):
            return f"{what} – {_ASK_FOR_THE_PDF}"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return f"Foto (HEIC, vom iPhone), kein ausfüllbares Formular – {_ASK_FOR_THE_PDF}"
    if head.startswith(b"PK\x03\x04"):  # a zip: Office Open XML or OpenDocument
        if b"word/" in data[:4096] or b"[Content_Types].xml" in data[:4096]:
            return f"Word- oder Office-Dokument, kein PDF – {_ASK_FOR_THE_PDF}"
        if b"opendocument" in data[:4096]:
            return f"LibreOffice-/OpenOffice-Dokument, kein PDF – {_ASK_FOR_THE_PDF}"
        return "ZIP-Archiv, kein PDF – bitte entpacken und die PDF-Dateien einlesen"
    if head.lstrip().startswith((b"From ", b"Return-Path:", b"Received:", b"MIME-Version:")):
        return "eine E-Mail (.eml), kein PDF – bitte den PDF-Anhang speichern und einlesen"
    return "keine PDF-Datei"


def _failed(path: Path, sha: str, reason: str) -> Extraction:
    return Extraction(path, Outcome.FAILED, sha, reason=reason)


def extract(path: Path, password: str = "") -> Extraction:
    """Read one file. Never raises for a bad file: the outcome says what happened."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _failed(path, "", f"Datei kann nicht gelesen werden ({os_reason(exc)})")
    sha = hashlib.sha256(data).hexdigest()
    if not data:
        return _failed(path, sha, "leere Datei (0 Byte)")
    if b"%PDF-" not in data[:1024]:
        return _failed(path, sha, not_a_pdf(data))
    try:
        # By path, not from the bytes above: qpdf then reads the file itself, where a
        # Python stream costs a callback per read (2-3x slower on these files).
        with pikepdf.open(path, password=password, suppress_warnings=True) as pdf:
            result = _read(pdf, path, sha)
            warnings = pdf.get_warnings()
            if any("bad_alloc" in w for w in warnings):  # qpdf ran out of (capped) memory
                return _failed(path, sha, TOO_BIG)
            if result.outcome is Outcome.READ and _repaired(warnings):
                result.notes.append("Datei war beschädigt, wurde repariert und gelesen")
            return result
    except pikepdf.PasswordError:
        if password:
            return _failed(path, sha, "passwortgeschützt, und das angegebene Passwort passt nicht")
        return _failed(path, sha, "passwortgeschützt: mit --password PASSWORT erneut einlesen")
    except (pikepdf.PdfError, pikepdf.DataDecodingError) as exc:
        return _failed(path, sha, f"beschädigt und nicht lesbar – {_short(exc, path)}")
    except MemoryError:
        return _failed(path, sha, TOO_BIG)
    except (RecursionError, ValueError, KeyError, TypeError) as exc:
        # qpdf accepted the file but its structure is nonsense; say so for this file.
        return _failed(path, sha, f"beschädigt und nicht lesbar – {type(exc).__name__}")


# qpdf's warnings that mean the file was broken and rebuilt, or data could not be
# decoded; everything else (an object count off by one, a missing xref entry for the
# xref stream itself, an /Parent a viewer wrote) is harmless and not the user's concern.
_DAMAGE = ("reconstruct", "file is damaged", "error decoding", "unable to find")


def _repaired(warnings: list[str]) -> bool:
    return any(word in w.lower() for w in warnings for word in _DAMAGE)


_DAMAGE_KINDS = (  # words in qpdf's (English) message -> what it means, in German
    (("loop",), "eine Schleife im Aufbau der Datei"),
    (("trailer", "startxref", "xref", "eof", "unexpected end", "premature"),
     "das Ende der Datei oder ihr Inhaltsverzeichnis fehlt (unvollständig übertragen?)"),
    (("header", "not a pdf"), "der Anfang der Datei ist kein gültiges PDF"),
    (("password", "encrypt", "decrypt"), "die Verschlüsselung ist beschädigt"),
    (("stream", "decode", "inflate", "filter"), "ein Datenstrom ist beschädigt"),
)


def _short(exc: Exception, path: Path) -> str:
    """What qpdf's message says is broken, in German (its own words are English)."""
    text = str(exc).lower()
    return next((german for words, german in _DAMAGE_KINDS if any(w in text for w in words)),
                "der Aufbau der Datei ist zerstört")


def _read(pdf: pikepdf.Pdf, path: Path, sha: str) -> Extraction:
    acroform = pdf.Root.get("/AcroForm")
    has_xfa = isinstance(acroform, pikepdf.Dictionary) and "/XFA" in acroform
    fields: dict[str, RawField] = {}
    # qpdf's form helper walks the field tree (kids, inheritance, loops) in C++ and
    # also takes widgets that are on a page but missing from /AcroForm /Fields.
    helper = pdf.acroform
    tree = _top_level(acroform)
    for item in helper.fields:
        if _inert_orphan(item, tree):
            continue
        raw = _field_of(item)
        if raw is None:
            continue
        if raw.kind == "Btn":
            for widget in _widgets(item.obj):
                state = _on_state(widget)
                if state is not None:
                    raw.on_states.append(state)
                    if _name(widget.get("/AS")) == state:
                        raw.selected_states.append(state)
        existing = fields.get(raw.name)
        if existing is None:
            fields[raw.name] = raw
        else:  # duplicate name, another object: one field, widgets merged
            if existing.value in (None, "", "Off") and raw.value not in (None, ""):
                existing.value = raw.value
            existing.on_states += raw.on_states
            existing.selected_states += raw.selected_states

    fields = {n: f for n, f in fields.items() if not f.is_pushbutton}
    # what a person filled in: not a signature, not a read-only field (a form's own
    # hidden id and version, PDF 32000-1 12.7.3.1 bit 1)
    answers = [f for f in fields.values() if f.kind != "Sig" and not f.flags & 1
               and f.value not in (None, "", [], "Off")]
    xfa = _xfa_values(acroform) if isinstance(acroform, pikepdf.Dictionary) and has_xfa else {}
    dynamic = has_xfa and bool(pdf.Root.get("/NeedsRendering", False))
    if (dynamic and not answers) or (has_xfa and not answers and xfa):
        # the answers live only in the XFA data (a dynamic form, or a hybrid one filled by
        # a program that wrote only XFA): the AcroForm is a shell
        return _failed(path, sha, "XFA-Formular (Adobe LiveCycle): die Antworten stehen nur "
                                  "in den XFA-Daten, die formtool nicht liest. Bitte als "
                                  "normales PDF-Formular ausfüllen lassen")
    if not fields:
        if has_xfa:
            return _failed(path, sha, "XFA-Formular (Adobe LiveCycle) ohne normale "
                                      "Formularfelder: bitte als normales PDF-Formular "
                                      "senden lassen")
        return _failed(path, sha, "keine Formularfelder – die Datei wurde wohl gedruckt, "
                                  "abgeflacht oder eingescannt. Bitte die ausfüllbare Datei "
                                  "speichern und senden lassen")
    result = Extraction(path, Outcome.READ, sha, fields=fields)
    if has_xfa:
        differ = _differences(fields, xfa)
        result.notes.append("enthält auch XFA-Daten; gelesen wurden die normalen Formularfelder"
                            + (f" – die XFA-Daten weichen ab: {differ}" if differ else ""))
    return result


XFA_MAX = 8 * 1024 * 1024  # bytes of XFA datasets read at most


def _xfa_values(acroform: pikepdf.Dictionary) -> dict[str, str]:
    """The answers in a form's XFA datasets (the ``datasets`` packet, XFA 3.3 ch. 4):
    each leaf element's text by its name, the non-empty ones. Bounded in size; an
    unreadable packet counts as empty."""
    import xml.etree.ElementTree as ET

    xfa = acroform.get("/XFA")
    streams: list[pikepdf.Object] = []
    if isinstance(xfa, pikepdf.Array):  # [name, stream, name, stream …]
        items = list(xfa)
        streams = [items[i + 1] for i in range(0, len(items) - 1, 2)
                   if str(items[i]) == "datasets"] or items[1::2]
    elif isinstance(xfa, pikepdf.Stream):
        streams = [xfa]
    values: dict[str, str] = {}
    for stream in streams:
        if not isinstance(stream, pikepdf.Stream):
            continue
        try:
            data = stream.read_bytes()[:XFA_MAX]
        except pikepdf.PdfError:
            continue
        start = data.find(b"<xfa:datasets")
        if start < 0:
            continue
        end = data.find(b"</xfa:datasets>", start)
        packet = data[start:end + len(b"</xfa:datasets>")] if end >= 0 else b""
        try:
            # the packet alone, its prefix declared (a packet cut out of the XDP may not)
            root = ET.fromstring(b'<r xmlns:xfa="http://www.xfa.org/schema/xfa-data/1.0/">'
                                 + packet + b"</r>")
        except ET.ParseError:
            continue
        for element in root.iter():
            text = (element.text or "").strip()
            if len(element) == 0 and text:
                values.setdefault(element.tag.rpartition("}")[2], text)
    return values


def _differences(fields: dict[str, RawField], xfa: dict[str, str]) -> str:
    """Where a hybrid form's AcroForm answer and its XFA data disagree (at most five),
    matched by the field's last name part (XFA's "form1[0].seite1[0].name[0]")."""
    out = []
    for name, raw in fields.items():
        leaf = name.rpartition(".")[2].split("[", 1)[0]
        value = raw.value if isinstance(raw.value, str) else ""
        if leaf in xfa and value and xfa[leaf] != value:
            out.append(f"{leaf} (XFA „{xfa[leaf][:40]}“)")
    return ", ".join(out[:5]) + (f" und {len(out) - 5} weitere" if len(out) > 5 else "")


def _field_of(item: pikepdf.AcroFormField) -> RawField | None:
    name = item.fully_qualified_name
    if not name:
        return None
    kind = str(item.field_type)[1:] if item.field_type is not None else ""
    raw = RawField(name, kind, _value(item.value), _int(item.flags))
    if kind == "Btn":
        if isinstance(raw.value, str) and raw.value.startswith("/"):
            raw.value = raw.value[1:]  # a state written as a string "/kita" (pypdf does)
        options = _value(item.get_inheritable_field_value("/Opt"))
        raw.export_values = options if isinstance(options, list) else []
    return raw


ANNOT_HIDDEN, ANNOT_READ_ONLY, ANNOT_LOCKED = 2, 64, 128  # PDF 32000-1 12.5.3
FIELD_READ_ONLY = 1  # 12.7.3.1


def _top_level(acroform: object) -> set[tuple[int, int]]:
    """The objects listed in /AcroForm /Fields."""
    fields = acroform.get("/Fields") if isinstance(acroform, pikepdf.Dictionary) else None
    if not isinstance(fields, pikepdf.Array):
        return set()
    return {f.objgen for f in fields if isinstance(f, pikepdf.Dictionary)}


def _inert_orphan(item: pikepdf.AcroFormField, tree: set[tuple[int, int]]) -> bool:
    """A widget on a page but outside the field tree that nobody can fill (hidden,
    read-only or locked: a watermark, a stamp) is no answer. A fillable one is kept
    (macOS Preview drops real fields from the tree)."""
    obj = item.obj
    if obj.objgen in tree:
        return False
    top: pikepdf.Object = obj
    seen: set[tuple[int, int]] = set()
    while "/Parent" in top and top.objgen not in seen:  # a kid of a listed field?
        seen.add(top.objgen)
        top = top.Parent
        if top.objgen in tree:
            return False
    flags = obj.get("/F", 0)
    annotation = flags if isinstance(flags, int) else 0
    return bool(annotation & (ANNOT_HIDDEN | ANNOT_READ_ONLY | ANNOT_LOCKED)
                or _int(item.flags) & FIELD_READ_ONLY)


def _widgets(field: pikepdf.Object) -> list[pikepdf.Object]:
    """A terminal field's widgets: its kids, or itself when field and widget are one
    dictionary (PDF 32000-1 12.7.3.1). Read directly: asking qpdf's form helper per
    field costs more than reading the whole file."""
    kids = field.get("/Kids")
    if isinstance(kids, pikepdf.Array):
        return [kid for kid in kids if isinstance(kid, pikepdf.Dictionary)]
    return [field]


def _int(obj: object) -> int:
    return obj if isinstance(obj, int) else 0  # pikepdf hands PDF integers out as int


def _name(obj: object) -> str | None:
    if isinstance(obj, pikepdf.Name):
        return str(obj)[1:]
    return None


def _value(obj: object) -> str | list[str] | None:
    if obj is None:
        return None
    if isinstance(obj, pikepdf.Name):
        return str(obj)[1:]
    if isinstance(obj, pikepdf.String):
        return str(obj)
    if isinstance(obj, pikepdf.Array):
        return [v for v in (_value(item) for item in obj) if isinstance(v, str)]
    return None


def _on_state(widget: pikepdf.Object) -> str | None:
    """The widget's own on-state: the /AP /N key that is not /Off (any name, even empty)."""
    appearance = widget.get("/AP")
    if not isinstance(appearance, pikepdf.Dictionary):
        return None
    normal = appearance.get("/N")
    if not isinstance(normal, pikepdf.Dictionary) or isinstance(normal, pikepdf.Stream):
        return None
    states = [str(k)[1:] for k in normal.keys() if k != "/Off"]  # noqa: SIM118
    return states[0] if states else None
