"""FormDefinition -> fillable A4 PDF (reportlab AcroForm, finished with pikepdf).

Layout is two passes: blocks are measured and assigned to pages first (so the
footer can say "Seite 2 von 3"), then drawn. Every field gets a widget with an
appearance stream, a /TU tooltip and a print flag; every page gets /Tabs /S.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from reportlab.lib.colors import Color
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from formtool import atomic
from formtool.pdf import fonts
from formtool.pdf.formdef import Field, FormDefinition

PAGE_W, PAGE_H = A4
MARGIN_X = 50.0
CONTENT_W = PAGE_W - 2 * MARGIN_X
CONTENT_TOP = PAGE_H - 62.0
CONTENT_BOTTOM = 58.0
COLUMN_GAP = 12.0
ROW_GAP = 9.0

# Laid out with Helvetica's metrics; _finish puts the embedded Formtool Sans in its
# place (fonts.py: the same widths), so reportlab embeds nothing and stays fast.
FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"
FIELD_RL_FONT = FONT  # what reportlab's form fields accept
LABEL_SIZE = 9.0
LABEL_LEAD = 11.0
HELP_SIZE = 7.5
HELP_LEAD = 9.0
BODY_SIZE = 9.5
BODY_LEAD = 12.5
FIELD_FONT_SIZE = 10
FIELD_H = 18.0
LINE_H = 12.5  # one line of a multi-line field
BOX = 11.0  # checkbox / radio button size

INK = Color(0.1, 0.1, 0.1)
MUTED = Color(0.38, 0.38, 0.38)
ACCENT = Color(0.12, 0.33, 0.55)
FIELD_FILL = Color(0.93, 0.96, 1.0)
FIELD_BORDER = Color(0.45, 0.55, 0.68)

# How every widget looks; forceBorder also prints the frame into the page itself.
_STYLE = {"borderWidth": 1, "borderColor": FIELD_BORDER, "fillColor": FIELD_FILL,
          "textColor": INK}

Draw = Callable[[Canvas, float], None]


@dataclass
class Block:
    """A horizontal band of content: measured first, drawn at a given top later."""

    height: float
    draw: Draw
    keep_with_next: bool = False


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(simpleSplit(paragraph, font, size, width) or [""])
    return lines


def _label_text(field: Field) -> str:
    return f"{field.label} *" if field.required else field.label


def _draw_lines(c: Canvas, lines: list[str], x: float, top: float, *, font: str, size: float,
                lead: float, color: Color = INK) -> None:
    c.setFont(font, size)
    c.setFillColor(color)
    for i, line in enumerate(lines):
        c.drawString(x, top - size - i * lead + 1, line)


def _paragraph(text: str, *, font: str = FONT, size: float = BODY_SIZE, lead: float = BODY_LEAD,
               color: Color = INK, space_after: float = 6.0) -> Block:
    lines = _wrap(text.strip(), font, size, CONTENT_W)

    def draw(c: Canvas, top: float) -> None:
        _draw_lines(c, lines, MARGIN_X, top, font=font, size=size, lead=lead, color=color)

    return Block(len(lines) * lead + space_after, draw)


def _heading(title: str) -> Block:
    def draw(c: Canvas, top: float) -> None:
        c.setFont(FONT_BOLD, 12)
        c.setFillColor(ACCENT)
        c.drawString(MARGIN_X, top - 14, title)
        c.setStrokeColor(ACCENT)
        c.setLineWidth(0.6)
        c.line(MARGIN_X, top - 18, MARGIN_X + CONTENT_W, top - 18)

    return Block(26.0, draw, keep_with_next=True)


class _Cell:
    """One field in a row: knows its height and how to draw label and widget."""

    def __init__(self, field: Field, width: float) -> None:
        self.field = field
        self.width = width
        self.help_lines = _wrap(field.help, FONT, HELP_SIZE, width) if field.help else []
        if field.type == "checkbox":
            self.label_lines = _wrap(_label_text(field), FONT, LABEL_SIZE, width - BOX - 5)
            self.radio_rows: list[list[tuple[float, str, str]]] = []
        else:
            self.label_lines = _wrap(_label_text(field), FONT, LABEL_SIZE, width)
            self.radio_rows = self._radio_rows() if field.type == "radio" else []

    def _radio_rows(self) -> list[list[tuple[float, str, str]]]:
        rows: list[list[tuple[float, str, str]]] = [[]]
        x = 0.0
        for option in self.field.options:
            text = option.label
            span = BOX + 4 + min(
                self.width - BOX - 4, _text_width(text, LABEL_SIZE)
            ) + 14
            if rows[-1] and x + span > self.width:
                rows.append([])
                x = 0.0
            rows[-1].append((x, option.value, text))
            x += span
        return rows

    @property
    def widget_height(self) -> float:
        kind = self.field.type
        if kind == "multiline":
            return self.field.lines * LINE_H + 6
        if kind == "radio":
            return len(self.radio_rows) * (LABEL_LEAD + 5)
        if kind == "checkbox":
            return 0.0
        return FIELD_H

    @property
    def height(self) -> float:
        labels = len(self.label_lines) * LABEL_LEAD
        helps = len(self.help_lines) * HELP_LEAD + (2 if self.help_lines else 0)
        if self.field.type == "checkbox":
            return max(BOX + 1, labels) + helps
        return labels + 3 + self.widget_height + helps

    def draw(self, c: Canvas, x: float, top: float) -> None:
        f = self.field
        form = c.acroForm
        flags = "required" if f.required else ""
        if f.type == "checkbox":
            form.checkbox(name=f.name, tooltip=f.tooltip, x=x, y=top - BOX, size=BOX,
                          buttonStyle="check", fieldFlags=flags, forceBorder=True, **_STYLE)
            _draw_lines(c, self.label_lines, x + BOX + 5, top + 1, font=FONT, size=LABEL_SIZE,
                        lead=LABEL_LEAD)
            below = top - max(BOX + 1, len(self.label_lines) * LABEL_LEAD)
        else:
            _draw_lines(c, self.label_lines, x, top, font=FONT, size=LABEL_SIZE, lead=LABEL_LEAD)
            wtop = top - len(self.label_lines) * LABEL_LEAD - 3
            bottom = wtop - self.widget_height
            self._widget(c, x, wtop, bottom, flags)
            below = bottom
        if self.help_lines:
            _draw_lines(c, self.help_lines, x, below - 2, font=FONT, size=HELP_SIZE,
                        lead=HELP_LEAD, color=MUTED)

    def _widget(self, c: Canvas, x: float, wtop: float, bottom: float, flags: str) -> None:
        f = self.field
        form = c.acroForm
        if f.type == "radio":
            radio_flags = f"noToggleToOff radio {flags}".strip()
            for r, row in enumerate(self.radio_rows):
                y = wtop - r * (LABEL_LEAD + 5) - BOX - 1
                for dx, value, text in row:
                    # No forceBorder: with it poppler draws the circle twice, offset.
                    form.radio(name=f.name, value=value, selected=False, tooltip=f.tooltip,
                               x=x + dx, y=y, size=BOX, buttonStyle="circle", shape="circle",
                               fieldFlags=radio_flags, forceBorder=False, **_STYLE)
                    c.setFont(FONT, LABEL_SIZE)
                    c.setFillColor(INK)
                    c.drawString(x + dx + BOX + 4, y + 2, text)
        elif f.type == "choice":
            # value [""] selects the blank first option (a plain "" trips reportlab).
            form.choice(name=f.name, tooltip=f.tooltip, value=[""], x=x, y=bottom,
                        width=self.width, height=FIELD_H, fieldFlags=f"combo {flags}".strip(),
                        options=[("", "")] + [(o.label, o.value) for o in f.options],
                        fontName=FIELD_RL_FONT, fontSize=FIELD_FONT_SIZE, forceBorder=True,
                        **_STYLE)
        else:
            field_flags = f"multiline {flags}".strip() if f.type == "multiline" else flags
            form.textfield(name=f.name, tooltip=f.tooltip, value="", x=x, y=bottom,
                           width=self.width, height=wtop - bottom, fieldFlags=field_flags,
                           maxlen=f.max_length, fontName=FIELD_RL_FONT,
                           fontSize=FIELD_FONT_SIZE,
                           forceBorder=True, **_STYLE)


def _text_width(text: str, size: float) -> float:
    return float(stringWidth(text, FONT, size))


def _rows(fields: tuple[Field, ...]) -> Iterator[list[Field]]:
    row: list[Field] = []
    used = 0.0
    for field in fields:
        if row and used + field.width > 1.0001:
            yield row
            row, used = [], 0.0
        row.append(field)
        used += field.width
    if row:
        yield row


def _row_block(fields: list[Field], keep_with_next: bool = False) -> Block:
    cells: list[tuple[float, _Cell]] = []
    x = MARGIN_X
    for field in fields:
        width = field.width * (CONTENT_W + COLUMN_GAP) - COLUMN_GAP
        cells.append((x, _Cell(field, width)))
        x += width + COLUMN_GAP
    height = max(cell.height for _, cell in cells) + ROW_GAP

    def draw(c: Canvas, top: float) -> None:
        for cx, cell in cells:
            cell.draw(c, cx, top)

    return Block(height, draw, keep_with_next)


def _signature() -> Block:
    def draw(c: Canvas, top: float) -> None:
        y = top - 34
        c.setStrokeColor(INK)
        c.setLineWidth(0.7)
        c.line(MARGIN_X, y, MARGIN_X + CONTENT_W / 2, y)
        c.setFont(FONT, LABEL_SIZE)
        c.setFillColor(MUTED)
        c.drawString(MARGIN_X, y - 11, "Unterschrift")

    return Block(52.0, draw)


def blocks(form: FormDefinition) -> list[Block]:
    """The form as a list of blocks, in reading (and tab) order."""
    out: list[Block] = []

    def title(c: Canvas, top: float) -> None:
        c.setFont(FONT_BOLD, 16)
        c.setFillColor(INK)
        c.drawString(MARGIN_X, top - 17, form.title)

    out.append(Block(28.0, title))
    if form.intro:
        out.append(_paragraph(form.intro, space_after=4))
    out.append(_paragraph("* Pflichtfeld", size=8, lead=10, color=MUTED, space_after=4))
    for section in form.sections:
        out.append(_heading(section.title))
        if section.intro:
            intro = _paragraph(section.intro, size=LABEL_SIZE, lead=LABEL_LEAD, color=MUTED)
            intro.keep_with_next = True
            out.append(intro)
        out.extend(_row_block(row) for row in _rows(section.fields))
    if form.closing:
        # The closing block stays together: consent, place/date and signature on one page.
        closing = [_heading("Einwilligung und Unterschrift")]
        if form.closing.consent_text:
            closing.append(_paragraph(form.closing.consent_text, size=8.5, lead=11))
        closing.extend(_row_block(row) for row in _rows(form.closing.fields))
        if form.closing.signature:
            closing.append(_signature())
        for block in closing[:-1]:
            block.keep_with_next = True
        out.extend(closing)
    return out


def paginate(items: list[Block]) -> list[list[Block]]:
    """Assign blocks to pages; a block marked keep_with_next moves along with its successor."""
    pages: list[list[Block]] = [[]]
    y = CONTENT_TOP
    i = 0
    available = CONTENT_TOP - CONTENT_BOTTOM
    while i < len(items):
        # The run of blocks that must stay together, starting at i.
        j = i
        while items[j].keep_with_next and j + 1 < len(items):
            j += 1
        group = items[i : j + 1]
        need = sum(b.height for b in group)
        if need > available:  # the group cannot fit on any page: keep only the pair together
            group = items[i : i + 2] if items[i].keep_with_next else items[i : i + 1]
            need = sum(b.height for b in group)
        if y - need < CONTENT_BOTTOM and pages[-1]:
            pages.append([])
            y = CONTENT_TOP
        pages[-1].extend(group)
        y -= need
        i += len(group)
    return pages


def _chrome(c: Canvas, form: FormDefinition, alliance: str, number: int, total: int) -> None:
    c.setFont(FONT_BOLD, 8)
    c.setFillColor(MUTED)
    c.drawString(MARGIN_X, PAGE_H - 36, alliance)
    c.setFont(FONT, 8)
    c.drawRightString(PAGE_W - MARGIN_X, PAGE_H - 36, form.title)
    c.setStrokeColor(MUTED)
    c.setLineWidth(0.4)
    c.line(MARGIN_X, PAGE_H - 42, PAGE_W - MARGIN_X, PAGE_H - 42)
    c.line(MARGIN_X, 44, PAGE_W - MARGIN_X, 44)
    c.drawString(MARGIN_X, 32, f"Formular „{form.id}“, Version {form.version}")
    c.drawRightString(PAGE_W - MARGIN_X, 32, f"Seite {number} von {total}")


def _hidden_fields(c: Canvas, form: FormDefinition) -> None:
    # Read by the import to recognise the form; invisible and not printed.
    for name, value, tooltip in (("form_id", form.id, "Formular-Kennung"),
                                 ("form_version", form.version, "Formular-Version"),
                                 ("response_id", "", "Rücklauf-Kennung")):
        c.acroForm.textfield(name=name, value=value, tooltip=tooltip, x=0, y=0, width=1, height=1,
                             annotationFlags="hidden", fieldFlags="readOnly", maxlen=None,
                             borderWidth=0, fillColor=None, borderColor=None)


def render(form: FormDefinition, *, alliance: str) -> bytes:
    """Lay the blank form out and return the finished PDF's bytes."""
    buffer = io.BytesIO()
    c = Canvas(buffer, pagesize=A4, lang="de", pageCompression=1)
    c.setTitle(form.title)
    c.setAuthor(alliance)
    c.setSubject(f"{form.id} v{form.version}")
    c.setCreator("formtool")
    c.setViewerPreference("DisplayDocTitle", "true")
    pages = paginate(blocks(form))
    for number, page in enumerate(pages, 1):
        _chrome(c, form, alliance, number, len(pages))
        if number == 1:
            _hidden_fields(c, form)
        y = CONTENT_TOP
        for block in page:
            block.draw(c, y)
            y -= block.height
        c.showPage()
    c.save()
    return _finish(buffer.getvalue(), form)


def _finish(data: bytes, form: FormDefinition) -> bytes:
    """What reportlab cannot set: the tab order, the language, radio buttons' own names.

    /NeedAppearances stays unset: every widget has its appearance stream, and with
    the flag poppler redraws radio buttons as squares and Acrobat asks to save
    on close. The result keeps a classic cross-reference table, which the fast
    personalisation in fill.py appends to.
    """
    with pikepdf.open(io.BytesIO(data)) as pdf:
        regular = fonts.font_file(pdf, fonts.REGULAR)
        font = fonts.field_font(pdf, regular)
        labels = fonts.label_fonts(pdf, regular)
        acroform = pdf.Root.AcroForm
        acroform.DR = pikepdf.Dictionary(Font=pikepdf.Dictionary({
            f"/{fonts.FIELD_FONT_KEY}": font}))
        acroform.DA = pikepdf.String(_field_da(str(acroform.get("/DA", "/Helv 0 Tf 0 g"))))
        for page in pdf.pages:
            page.obj.Tabs = pikepdf.Name.S  # tab order follows the structure
            _embed_label_fonts(page.obj, labels)
            for widget in page.obj.get("/Annots", []):
                _name_radio_button(widget, form)
                _use_field_font(widget, font)
        pdf.Root.Lang = pikepdf.String("de")
        out = io.BytesIO()
        pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.disable)
        return out.getvalue()


_DA_FONT = re.compile(r"/[^\s/]+\s+(\d+(?:\.\d+)?)\s+Tf")


def _field_da(da: str) -> str:
    """A default appearance with the form font in place of reportlab's Helvetica."""
    return _DA_FONT.sub(lambda m: f"/{fonts.FIELD_FONT_KEY} {m[1]} Tf", da, count=1)


def _use_field_font(widget: pikepdf.Object, font: pikepdf.Object) -> None:
    """Text and choice fields write with the form font: their /DA names it, and the
    fonts of their (empty) appearance streams are it, so no unembedded font is left."""
    field = widget.get("/Parent", widget) if "/FT" not in widget else widget
    if field.get("/FT") not in ("/Tx", "/Ch"):
        return
    if "/DA" in field:
        field.DA = pikepdf.String(_field_da(str(field.DA)))
    if "/DA" in widget:
        widget.DA = pikepdf.String(_field_da(str(widget.DA)))
    appearance = widget.get("/AP")
    if not isinstance(appearance, pikepdf.Dictionary):
        return
    for state in appearance.values():
        streams = state.values() if not isinstance(state, pikepdf.Stream) else [state]
        for stream in streams:
            resources = stream.get("/Resources") if isinstance(stream, pikepdf.Stream) else None
            if isinstance(resources, pikepdf.Dictionary) and "/Font" in resources:
                resources.Font = pikepdf.Dictionary({
                    str(key): font for key in resources.Font.keys()})  # noqa: SIM118


def _embed_label_fonts(page: pikepdf.Object, labels: dict[str, pikepdf.Object]) -> None:
    """The page's Helvetica and Helvetica-Bold (reportlab's) become the embedded form
    font: same widths, so every label stays where it was laid out."""
    resources = page.get("/Resources")
    table = resources.get("/Font") if isinstance(resources, pikepdf.Dictionary) else None
    if not isinstance(table, pikepdf.Dictionary):
        return
    for key, value in list(table.items()):
        base = str(value.get("/BaseFont", "")) if isinstance(value, pikepdf.Dictionary) else ""
        if base in labels:
            table[key] = labels[base]


def _name_radio_button(widget: pikepdf.Object, form: FormDefinition) -> None:
    """Give each radio button its own accessible name: "Art der Organisation: Kita"."""
    group = widget.get("/Parent")
    if group is None:
        return
    field = form.field(str(group.T))
    states = [str(k)[1:] for k in widget.AP.N.keys() if k != "/Off"]  # noqa: SIM118
    label = field.option_label(states[0]) if field and states else None
    if label:
        widget.TU = pikepdf.String(f"{group.TU}: {label}")


def write_blank(form: FormDefinition, out: Path, *, alliance: str) -> Path:
    """Render the blank form and write it atomically to ``out``."""
    atomic.write_bytes(out, render(form, alliance=alliance))
    return out
