"""Make the form font shipped in formtool/fonts/ (run by a developer, not at run time).

    python tools/make_font.py [LIBERATION_DIR]   (Debian: fonts-liberation2)

Liberation Sans 2 (SIL OFL 1.1), chosen because its metrics are Helvetica's (Arial's):
labels and fields keep their places, and a viewer that substitutes Helvetica for it
draws the same widths. Subset with fontTools to what German contact lists hold:
Latin-1, Latin Extended-A (Polish, Czech, Turkish, Croatian, Hungarian …), the Latin
Extended-B letters of Romanian (Ș ș Ț ț) and the Vietnamese letters (Ơ ơ Ư ư and
Latin Extended Additional), the usual punctuation („ “ – € …). The OFL reserves the
name "Liberation" for the original, so the subset is renamed "Formtool Sans".
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

RANGES = [
    (0x0020, 0x007E), (0x00A0, 0x00FF),  # Basic Latin, Latin-1
    (0x0100, 0x017F),  # Latin Extended-A
    (0x0180, 0x024F),  # Latin Extended-B (Ơ ơ Ư ư, Ș ș Ț ț, …)
    (0x0300, 0x0323),  # combining accents (decomposed input)
    (0x1E00, 0x1EFF),  # Latin Extended Additional (Vietnamese)
    (0x2010, 0x2027), (0x2030, 0x203A), (0x20AC, 0x20AC), (0x2122, 0x2122),
    (0x2212, 0x2212), (0xFB01, 0xFB02),
]
NAME = "Formtool Sans"
OUT = Path(__file__).resolve().parents[1] / "formtool" / "fonts"


def make(source: Path, style: str) -> Path:
    font = TTFont(source)
    options = subset.Options()
    options.layout_features = ["kern", "liga"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False  # smaller; PDF viewers do not hint
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[c for a, b in RANGES for c in range(a, b + 1)])
    subsetter.subset(font)
    postscript = f"FormtoolSans-{style}"
    for record in font["name"].names:
        if record.nameID in (1, 16):
            record.string = NAME
        elif record.nameID == 4:
            record.string = f"{NAME} {style}" if style != "Regular" else NAME
        elif record.nameID in (3, 6):
            record.string = postscript
        elif record.nameID == 5:
            record.string = str(record.toUnicode()) + "; subset by formtool"
    out = OUT / f"{postscript}.ttf"
    font.save(out)
    return out


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/truetype/liberation2")
    for style in ("Regular", "Bold"):
        out = make(folder / f"LiberationSans-{style}.ttf", style)
        print(f"{out}: {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
