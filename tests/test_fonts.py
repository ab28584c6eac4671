"""Every name visible in every viewer (issue 14): the forms carry their own font, and
independent readers (poppler's pdffonts, pdftotext, pdftoppm; pdf.js) prove it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import ALLIANCE, FILLERS, pdfjs_fill, run

from formtool import workspace
from formtool.pdf import fill, fonts, formdef, layout

NAMES = "Łukasz Şahin-Nguyễn, Żaneta Dvořáková, Ioana Țăranu"


@pytest.fixture(scope="module")
def personal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fonts")
    form = formdef.load(workspace.shipped_forms_dir() / "buendnispartner.toml")
    blank = layout.render(form, alliance=ALLIANCE)
    (folder / "blank.pdf").write_bytes(blank)
    copy = fill.Personaliser(form, blank).fill(
        {"organisation": NAMES, "vorname": "Łukasz", "nachname": "Şahin-Nguyễn",
         "ort_organisation": "Pößneck"}, "ABC234ABC234")
    (folder / "personal.pdf").write_bytes(copy)
    return folder / "blank.pdf", folder / "personal.pdf"


def _fonts(path: Path) -> list[list[str]]:
    lines = run("pdffonts", path).stdout.splitlines()[2:]
    return [line.split() for line in lines if line.strip()]


def test_every_font_is_embedded(personal: tuple[Path, Path]) -> None:
    for path in personal:
        rows = _fonts(path)
        assert rows, path
        for row in rows:
            emb = row[-5]  # name type encoding emb sub uni object ID
            assert emb == "yes", (path.name, row)
        assert any("FormtoolSans" in row[0] for row in rows)


def test_sizes(personal: tuple[Path, Path]) -> None:
    blank, copy = personal
    assert blank.stat().st_size <= 200_000
    assert copy.stat().st_size - blank.stat().st_size <= 20_000


def test_pdftotext_reads_the_names_exactly(personal: tuple[Path, Path]) -> None:
    text = run("pdftotext", personal[1], "-").stdout
    assert NAMES in text
    assert "Łukasz" in text and "Şahin-Nguyễn" in text


def test_pdfjs_draws_a_typed_name_with_the_fields_font(personal: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    """What Firefox does when a recipient types such a name: pdf.js finds the glyphs in
    the field's own font and writes an appearance that pdftotext reads back."""
    out = pdfjs_fill(personal[0], {"organisation": NAMES, "funktion": "Leiterin Ærø"},
                     tmp_path / "pdfjs.pdf")
    text = run("pdftotext", out, "-").stdout
    assert NAMES in text and "Leiterin Ærø" in text
    rows = _fonts(out)
    assert all(row[-5] == "yes" for row in rows), rows


@pytest.mark.parametrize("filler", ["pdftk", "pdf-lib"])
def test_latin1_fills_still_round_trip(filler: str, personal: tuple[Path, Path],
                                       tmp_path: Path) -> None:
    from formtool.pdf.extract import extract

    out = FILLERS[filler](personal[0], {"organisation": "Kita Gößnitz – „Sonne“",
                                        "ort_organisation": "Pößneck"}, tmp_path / "f.pdf")
    assert extract(out).value("organisation") == "Kita Gößnitz – „Sonne“"


def test_the_rendered_page_shows_the_glyphs(personal: tuple[Path, Path],
                                            tmp_path: Path) -> None:
    """The letters are drawn as themselves: a page with "Łukasz Ţ" renders differently
    from one with "Lukasz T" (a fallback to base letters would render the same)."""
    form = formdef.load(workspace.shipped_forms_dir() / "buendnispartner.toml")
    filler = fill.Personaliser(form, personal[0].read_bytes())
    pages = []
    for name in ("Łukasz Ş", "Lukasz S"):
        out = tmp_path / f"{len(pages)}.pdf"
        out.write_bytes(filler.fill({"vorname": name}, "ABC234ABC234"))
        run("pdftoppm", "-png", "-r", "72", "-f", "1", "-l", "1", out, tmp_path / f"r{len(pages)}")
        pages.append((tmp_path / f"r{len(pages)}-1.png").read_bytes())
    assert pages[0] != pages[1]


def test_widths_are_helveticas() -> None:
    """The form font has Helvetica's metrics: labels keep their places."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    text = "Beitrittserklärung: Bündnispartner*in werden"
    ours = fonts.metrics().width(text, 10)
    assert abs(ours - stringWidth(text, "Helvetica", 10)) < 0.5
    assert re.fullmatch(r"<[0-9A-F]+>", fonts.metrics().encode(NAMES).decode())
