"""Fast pre-filling of a generated blank form: one incremental update per copy.

The blank form is laid out once. Each personal copy is the blank's bytes plus
an incremental update (PDF 32000-1, 7.5.6) that holds only the changed field
objects (with their new /V) and an appearance stream for each, made from a
small template, so every viewer shows the values without clicking. Nothing is
parsed or laid out per copy: thousands of forms a second, memory flat.

Values are stored exactly in /V, and drawn with the form's own embedded font
(fonts.py, the fields' /DR font, shared by every copy): "Łukasz Şahin-Nguyễn"
appears as written, and text extraction returns it.

A value wider than its field is drawn smaller, down to MIN_FONT_SIZE, and the
field's /DA says that size too, so a viewer that redraws it keeps it whole; what
does not fit even then is reported (``Filled.cut``) and drawn clipped.
"""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass

import pikepdf

from formtool.pdf import fonts
from formtool.pdf.formdef import TEXT_TYPES, FormDefinition
from formtool.pdf.layout import FIELD_FONT_SIZE, LINE_H

RESPONSE_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # base32 without 0/O, 1/I
RESPONSE_ID_LENGTH = 12  # 60 random bits
FONT_KEY = fonts.FIELD_FONT_KEY  # the blank's field font, in its /AcroForm /DR
MIN_FONT_SIZE = 6.0  # points: smaller is not readable on paper
PAD = 2.0  # points between the field's border and its text
_DA_SIZE = re.compile(rb"(/DA \(/\w+ )(\d+(?:\.\d+)?)( Tf)")


def new_response_id() -> str:
    """An unguessable id for one personal form: 12 characters, 60 random bits."""
    return "".join(secrets.choice(RESPONSE_ID_ALPHABET) for _ in range(RESPONSE_ID_LENGTH))


def pdf_string(text: str) -> bytes:
    """A PDF text string: literal for ASCII, UTF-16BE with BOM otherwise (7.9.2.2)."""
    if text.isascii():
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        escaped = escaped.replace("\r", "\\r").replace("\n", "\\n")
        return b"(" + escaped.encode("ascii") + b")"
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode("ascii") + b">"


@dataclass
class _Slot:
    """A field the update rewrites: its object, its dictionary minus /V and /AP, its box."""

    number: int
    generation: int
    head: bytes  # "<< ... " without the closing ">>"
    width: float
    height: float
    background: bytes  # the blank's own fill and border, so the copy looks the same
    multiline: bool
    choice_labels: dict[str, tuple[int, str]]  # export value -> (index, label)
    hidden: bool  # the response id: no room, nothing to fit


def _wrap(text: str, width: float, size: float) -> list[str]:
    lines: list[str] = []
    for paragraph in text.replace("\r\n", "\n").split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and fonts.metrics().width(candidate, size) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def fit_line(text: str, width: float) -> tuple[float, bool]:
    """The font size at which ``text`` fits one line ``width`` points wide (at most the
    form's size, at least MIN_FONT_SIZE), and whether it fits at that size."""
    natural = fonts.metrics().width(text, FIELD_FONT_SIZE)
    room = width - 2 * PAD
    if natural <= room:
        return float(FIELD_FONT_SIZE), True
    size = int(FIELD_FONT_SIZE * room / natural * 10) / 10  # round down to 0.1 pt
    return (size, True) if size >= MIN_FONT_SIZE else (MIN_FONT_SIZE, False)


def fit_lines(text: str, width: float, height: float) -> tuple[float, list[str], bool]:
    """Font size, wrapped lines and whether they fit a multi-line field's box."""
    size = float(FIELD_FONT_SIZE)
    while True:
        lines = _wrap(text, width - 2 * PAD, size)
        lead = LINE_H * size / FIELD_FONT_SIZE
        fits = len(lines) * lead <= height - 2 * PAD + (lead - size)
        if fits or size <= MIN_FONT_SIZE:
            return size, lines, fits
        size = max(MIN_FONT_SIZE, size - 0.5)


@dataclass
class Filled:
    """One personal copy: its bytes, and the fields whose value did not fit even at
    MIN_FONT_SIZE (drawn clipped; the value itself is stored whole)."""

    data: bytes
    cut: list[str]


class Personaliser:
    """Fills copies of one blank form. Make once, call :meth:`fill` per contact."""

    def __init__(self, form: FormDefinition, blank: bytes) -> None:
        self.form = form
        self.blank = blank
        self.slots: dict[str, _Slot] = {}
        with pikepdf.open(io.BytesIO(blank)) as pdf:
            trailer = pdf.trailer
            self.size = int(trailer.Size)
            self.root = trailer.Root.objgen
            self.info = trailer.Info.objgen if "/Info" in trailer else None
            ids = trailer.get("/ID")
            self.first_id = bytes(ids[0]) if ids is not None else secrets.token_bytes(16)
            font = pdf.Root.AcroForm.DR.Font[f"/{FONT_KEY}"]  # the blank's, shared
            self.font_ref = b"%d %d R" % font.objgen
            wanted = {f.name: f for f in form.fields() if f.type in TEXT_TYPES | {"choice"}}
            wanted["response_id"] = None  # type: ignore[assignment]
            for field in pdf.Root.AcroForm.Fields:
                name = str(field.get("/T", ""))
                if name in wanted:
                    self.slots[name] = self._slot(field, wanted[name] is not None and
                                                  wanted[name].type == "multiline")
        match = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", blank[-64:])
        if match is None:
            raise ValueError("blank form has no classic startxref")  # our own layout made it
        self.prev = int(match.group(1))

    @staticmethod
    def _slot(field: pikepdf.Object, multiline: bool) -> _Slot:
        rect = [float(v) for v in field.Rect]
        copy = pikepdf.Dictionary({k: v for k, v in field.items()
                                   if k not in ("/V", "/AP", "/I")})
        head = copy.unparse(resolved=True).rstrip()
        assert head.endswith(b">>")
        labels: dict[str, tuple[int, str]] = {}
        for index, option in enumerate(field.get("/Opt", [])):
            if isinstance(option, pikepdf.Array):
                labels[str(option[0])] = (index, str(option[1]))
        background = b""
        appearance = field.get("/AP")
        if appearance is not None and isinstance(appearance.get("/N"), pikepdf.Stream):
            stream = appearance.N.read_bytes()
            background = stream.split(b"/Tx BMC")[0]
        flags = field.get("/F", 0)
        hidden = bool(int(flags) & 2) or rect[2] - rect[0] <= 2 * PAD
        return _Slot(field.objgen[0], field.objgen[1], head[:-2], rect[2] - rect[0],
                     rect[3] - rect[1], background, multiline, labels, hidden)

    def _appearance(self, slot: _Slot, text: str) -> tuple[bytes, float, bool]:
        """The appearance stream, its font size and whether the text fits."""
        w, h = slot.width, slot.height
        if slot.multiline:
            size, lines, fits = fit_lines(text, w, h)
            lead = LINE_H * size / FIELD_FONT_SIZE
            top = h - PAD - size
            shown = b"".join(
                b"1 0 0 1 2 %.2f Tm %s Tj\n" % (top - i * lead, fonts.metrics().encode(line))
                for i, line in enumerate(lines))
        else:
            size, fits = (float(FIELD_FONT_SIZE), True) if slot.hidden else fit_line(text, w)
            shown = b"1 0 0 1 2 %.2f Tm %s Tj\n" % ((h - size) / 2 + 0.22 * size,
                                                    fonts.metrics().encode(text))
        clip = b"/Tx BMC\nq\n2 2 %.2f %.2f re W n\nBT\n/%s %s Tf 0.1 0.1 0.1 rg\n" % (
            w - 4, h - 4, FONT_KEY.encode(), _size(size))
        return slot.background + clip + shown + b"ET\nQ\nEMC\n", size, fits

    def fill(self, values: dict[str, str], response_id: str) -> bytes:
        """The blank with ``values`` (by field name) and ``response_id`` filled in."""
        return self.fill_reporting(values, response_id).data

    def fill_reporting(self, values: dict[str, str], response_id: str) -> Filled:
        """As :meth:`fill`, and which values did not fit their field."""
        cut: list[str] = []
        out = io.BytesIO()
        out.write(self.blank)
        if not self.blank.endswith(b"\n"):
            out.write(b"\n")
        offsets: list[tuple[int, int, int]] = []  # (number, generation, offset)
        number = self.size
        for name, value in {**values, "response_id": response_id}.items():
            slot = self.slots.get(name)
            if slot is None or not value:
                continue
            extra = b""
            shown = value
            if slot.choice_labels:
                index, shown = slot.choice_labels.get(value, (-1, value))
                if index >= 0:
                    extra = b" /I [ %d ]" % index
            stream, size, fits = self._appearance(slot, shown)
            if not fits:
                cut.append(name)
            head = slot.head
            if size != FIELD_FONT_SIZE:  # a viewer that redraws the field keeps the size
                head = _DA_SIZE.sub(rb"\g<1>" + _size(size) + rb"\g<3>", head, count=1)
            offsets.append((slot.number, slot.generation, out.tell()))
            out.write(b"%d %d obj\n%s/V %s%s /AP << /N %d 0 R >> >>\nendobj\n" % (
                slot.number, slot.generation, head, pdf_string(value), extra, number))
            offsets.append((number, 0, out.tell()))
            out.write(b"%d 0 obj\n<< /Type /XObject /Subtype /Form /BBox [ 0 0 %.2f %.2f ] "
                      b"/Resources << /Font << /%s %s >> >> /Length %d >>\nstream\n"
                      % (number, slot.width, slot.height, FONT_KEY.encode(), self.font_ref,
                         len(stream)))
            out.write(stream)
            out.write(b"\nendstream\nendobj\n")
            number += 1
        xref = out.tell()
        out.write(b"xref\n0 1\n0000000000 65535 f \n")
        for obj, gen, offset in sorted(offsets):
            out.write(b"%d 1\n%010d %05d n \n" % (obj, offset, gen))
        info = b" /Info %d %d R" % self.info if self.info else b""
        out.write(b"trailer\n<< /Size %d /Root %d %d R%s /Prev %d /ID [ <%s> <%s> ] >>\n"
                  b"startxref\n%d\n%%%%EOF\n" % (
                      number, *self.root, info, self.prev, self.first_id.hex().encode(),
                      secrets.token_hex(16).encode(), xref))
        return Filled(out.getvalue(), cut)


def _size(size: float) -> bytes:
    return (b"%d" % size) if size == int(size) else (b"%.1f" % size)
