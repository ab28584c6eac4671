"""The form font: Formtool Sans (a subset of Liberation Sans, SIL OFL; fonts/), embedded.

Labels are drawn with it (a simple TrueType font, WinAnsi: German labels need no
more), and every field gets it as its font (/DA, /AcroForm /DR): a composite font
(Type0, Identity-H) that holds every glyph of the subset, with a ToUnicode map. Both
share one embedded font file. So a personal copy shows
"Łukasz Şahin-Nguyễn" as written, a viewer that draws what a recipient types (pdf.js)
finds the glyphs in the field's own font, and text extraction (pdftotext, screen
readers) gets the exact name. Metrics are Helvetica's, so nothing moves.
"""

from __future__ import annotations

import functools
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

import pikepdf

FONT_DIR = Path(__file__).resolve().parents[1] / "fonts"
REGULAR = FONT_DIR / "FormtoolSans-Regular.ttf"
BOLD = FONT_DIR / "FormtoolSans-Bold.ttf"
FIELD_FONT_KEY = "FtSans"  # the fields' font in /DR and /DA


@dataclass(frozen=True)
class Metrics:
    """Glyph ids and widths (1/1000 em) of the regular face, by character."""

    glyphs: dict[int, int]
    widths: dict[int, float]
    default_width: float
    ascent: float
    descent: float
    cap_height: float
    bbox: tuple[float, float, float, float]
    stem_v: float
    flags: int

    def glyph(self, char: str) -> int:
        """The glyph of ``char``; a letter the font lacks becomes its base letter (ǅ -> D),
        anything else "?"."""
        found = self.glyphs.get(ord(char))
        if found is not None:
            return found
        base = unicodedata.normalize("NFKD", char)[:1]
        return self.glyphs.get(ord(base), self.glyphs.get(ord("?"), 0)) if base else 0

    def width(self, text: str, size: float) -> float:
        """The width of ``text`` at ``size`` points."""
        total = 0.0
        for char in text:
            code = ord(char) if ord(char) in self.widths else ord(
                unicodedata.normalize("NFKD", char)[:1] or "?")
            total += self.widths.get(code, self.default_width)
        return total * size / 1000

    def encode(self, text: str) -> bytes:
        """``text`` as a hex string of glyph ids, for ``Tj`` with Identity-H."""
        return b"<" + "".join(f"{self.glyph(c):04X}" for c in text).encode("ascii") + b">"


@functools.cache
def metrics(path: Path = REGULAR) -> Metrics:
    from reportlab.pdfbase.ttfonts import TTFontFile

    face = TTFontFile(str(path))
    glyphs = {c: g for c, g in face.charToGlyph.items() if c < 0x110000}
    widths = {c: w for c, w in face.charWidths.items() if c in glyphs}
    x0, y0, x1, y1 = (float(v) for v in face.bbox)
    return Metrics(glyphs, widths, float(face.defaultWidth), float(face.ascent),
                   float(face.descent), float(face.capHeight), (x0, y0, x1, y1),
                   float(face.stemV), int(face.flags))


def _to_unicode(m: Metrics) -> bytes:
    """A ToUnicode CMap: each glyph id -> the character it draws (the first one)."""
    pairs: dict[int, int] = {}
    for char, glyph in sorted(m.glyphs.items()):
        pairs.setdefault(glyph, char)
    lines = [b"/CIDInit /ProcSet findresource begin", b"12 dict begin", b"begincmap",
             b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
             b"/CMapName /Adobe-Identity-UCS def", b"/CMapType 2 def",
             b"1 begincodespacerange", b"<0000> <FFFF>", b"endcodespacerange"]
    items = sorted(pairs.items())
    for start in range(0, len(items), 100):
        chunk = items[start:start + 100]
        lines.append(b"%d beginbfchar" % len(chunk))
        lines += [b"<%04X> <%s>" % (g, chr(c).encode("utf-16-be").hex().upper().encode())
                  for g, c in chunk]
        lines.append(b"endbfchar")
    lines += [b"endcmap", b"CMapName currentdict /CMap defineresource pop", b"end", b"end"]
    return b"\n".join(lines) + b"\n"


@functools.cache
def _parts() -> tuple[bytes, bytes]:
    """The ToUnicode map, deflated once per process, and the widths as the text of a
    /W array (qpdf parses it at once; 900 numbers handed over one by
    one would cost a tenth of a blank form)."""
    m = metrics()
    by_glyph: dict[int, float] = {}
    for char, glyph in m.glyphs.items():
        by_glyph.setdefault(glyph, m.widths.get(char, m.default_width))
    widths = " ".join(_w_runs([round(by_glyph.get(g, m.default_width))
                               for g in range(max(by_glyph) + 1)]))
    return zlib.compress(_to_unicode(m), 9), f"[{widths}]".encode("ascii")


def _w_runs(widths: list[int]) -> list[str]:
    """/W entries (PDF 32000-1 9.7.4.3) for glyphs 0…n: "first last w" where neighbours
    share a width, "first [w …]" for the rest. Fewer objects: qpdf copies each one
    when the array joins the document, and that was a tenth of a blank form."""
    out: list[str] = []
    single: list[int] = []
    start = 0
    i = 0
    while i < len(widths):
        j = i
        while j + 1 < len(widths) and widths[j + 1] == widths[i]:
            j += 1
        if j - i >= 2:  # three or more alike: a range
            if single:
                out.append(f"{start} [{' '.join(map(str, single))}]")
                single = []
            out.append(f"{i} {j} {widths[i]}")
        else:
            if not single:
                start = i
            single += widths[i:j + 1]
        i = j + 1
    if single:
        out.append(f"{start} [{' '.join(map(str, single))}]")
    return out


def _deflated(pdf: pikepdf.Pdf, data: bytes, **keys: object) -> pikepdf.Stream:
    """A stream of already deflated ``data`` (stored as given, marked as deflated)."""
    return pdf.make_stream(data, Filter=pikepdf.Name.FlateDecode, **keys)


def _descriptor(pdf: pikepdf.Pdf, m: Metrics, name: str, file: pikepdf.Object,
                flags: int) -> pikepdf.Object:
    return pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor, FontName=pikepdf.Name(f"/{name}"),
        Flags=flags, FontBBox=pikepdf.Array([round(v) for v in m.bbox]), ItalicAngle=0,
        Ascent=round(m.ascent), Descent=round(m.descent), CapHeight=round(m.cap_height),
        StemV=round(m.stem_v), FontFile2=file))


@functools.cache
def _winansi_widths(path: Path) -> bytes:
    """/Widths for codes 32-255 of WinAnsiEncoding (cp1252)."""
    m = metrics(path)
    widths = []
    for code in range(32, 256):
        try:
            char = bytes([code]).decode("cp1252")
        except UnicodeDecodeError:
            widths.append(0)
            continue
        widths.append(round(m.widths.get(ord(char), m.default_width)))
    return ("[" + " ".join(map(str, widths)) + "]").encode("ascii")


@functools.cache
def _deflated_file(path: Path) -> bytes:
    return zlib.compress(path.read_bytes(), 9)


NONSYMBOLIC = 32  # PDF 32000-1 9.8.2: the standard Latin character set


def label_fonts(pdf: pikepdf.Pdf, regular: pikepdf.Object) -> dict[str, pikepdf.Object]:
    """Formtool Sans regular and bold as simple TrueType fonts (WinAnsi) for the labels,
    by the standard font they replace ("/Helvetica", "/Helvetica-Bold"); ``regular`` is
    the regular face's file, already in ``pdf``."""
    out: dict[str, pikepdf.Object] = {}
    for standard, path, name in (("/Helvetica", REGULAR, "FormtoolSans-Regular"),
                                 ("/Helvetica-Bold", BOLD, "FormtoolSans-Bold")):
        m = metrics(path)
        file = regular if path == REGULAR else font_file(pdf, path)
        out[standard] = pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.TrueType,
            BaseFont=pikepdf.Name(f"/{name}"), FirstChar=32, LastChar=255,
            Widths=pikepdf.Object.parse(_winansi_widths(path)),
            Encoding=pikepdf.Name.WinAnsiEncoding,
            FontDescriptor=_descriptor(pdf, m, name, file, NONSYMBOLIC)))
    return out


def font_file(pdf: pikepdf.Pdf, path: Path) -> pikepdf.Object:
    """The font file of ``path`` embedded in ``pdf`` (deflated once per process); the
    fonts that use the same face share it."""
    return _deflated(pdf, _deflated_file(path), Length1=path.stat().st_size)


def field_font(pdf: pikepdf.Pdf, regular: pikepdf.Object) -> pikepdf.Object:
    """Add the whole regular face to ``pdf`` as a Type0 font (an indirect object) for
    the fields and return it; ``regular`` is the face's file, already in ``pdf``."""
    m = metrics()
    to_unicode, widths = _parts()
    descriptor = _descriptor(pdf, m, "FormtoolSans-Regular", regular, m.flags)
    cid = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.CIDFontType2,
        BaseFont=pikepdf.Name("/FormtoolSans-Regular"),
        CIDSystemInfo=pikepdf.Dictionary(Registry=pikepdf.String("Adobe"),
                                         Ordering=pikepdf.String("Identity"), Supplement=0),
        FontDescriptor=descriptor, DW=round(m.default_width), W=pikepdf.Object.parse(widths),
        CIDToGIDMap=pikepdf.Name.Identity))
    return pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type0,
        BaseFont=pikepdf.Name("/FormtoolSans-Regular"), Encoding=pikepdf.Name("/Identity-H"),
        DescendantFonts=pikepdf.Array([cid]), ToUnicode=_deflated(pdf, to_unicode)))
