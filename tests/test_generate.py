"""The blank-form generator: structure, accessibility, layout, errors."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import run, shipped_form
from pypdf import PdfReader
from pypdf.generic import ArrayObject

from formtool import workspace
from formtool.cli import cli
from formtool.pdf import layout

FORM_IDS = ("buendnispartner", "regionalgruppe")
PDF_TYPES = {"text": "/Tx", "multiline": "/Tx", "email": "/Tx", "phone": "/Tx",
             "postcode": "/Tx", "date": "/Tx", "number": "/Tx", "checkbox": "/Btn",
             "radio": "/Btn", "choice": "/Ch"}


def widgets(path: Path) -> list[tuple[int, dict]]:  # type: ignore[type-arg]
    out = []
    for number, page in enumerate(PdfReader(path).pages, 1):
        for ref in page.get("/Annots") or ArrayObject():
            annot = ref.get_object()
            if annot.get("/Subtype") == "/Widget":
                out.append((number, annot))
    return out


def name_of(annot: dict) -> str:  # type: ignore[type-arg]
    return str(annot.get("/T") or annot["/Parent"].get_object()["/T"])


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_every_field_is_there_with_its_type_and_tooltip(blank_forms: dict[str, Path],
                                                        form_id: str) -> None:
    form = shipped_form(form_id)
    fields = PdfReader(blank_forms[form_id]).get_fields() or {}
    for field in form.fields():
        pdf_field = fields[field.name]
        assert pdf_field["/FT"] == PDF_TYPES[field.type], field.name
        assert pdf_field["/TU"] == field.tooltip
        if field.required:
            assert pdf_field["/TU"].startswith("Pflichtfeld: ")
            assert int(pdf_field.get("/Ff", 0)) & 2, f"{field.name} lacks the required flag"
    assert fields["form_id"]["/V"] == form_id
    assert fields["form_version"]["/V"] == "1"
    assert fields["response_id"].get("/V") == ""
    # MaxLen only where the definition asks for it (reportlab's default is 100)
    max_lengths = {name_of(a): a.get("/MaxLen") for _, a in widgets(blank_forms[form_id])}
    for field in form.fields():
        assert max_lengths[field.name] == field.max_length, field.name
    expected = {f.name for f in form.fields()} | {"form_id", "form_version", "response_id"}
    assert {n for n, f in fields.items() if f.get("/FT")} == expected


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_document_is_accessible(blank_forms: dict[str, Path], form_id: str) -> None:
    reader = PdfReader(blank_forms[form_id])
    root = reader.trailer["/Root"]
    assert root["/Lang"] == "de"
    assert bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    assert reader.metadata is not None
    assert reader.metadata.title == shipped_form(form_id).title
    for page in reader.pages:
        assert page["/Tabs"] == "/S"
    for _, annot in widgets(blank_forms[form_id]):
        assert "/N" in annot["/AP"], f"{name_of(annot)} has no appearance stream"


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_hidden_fields_are_hidden(blank_forms: dict[str, Path], form_id: str) -> None:
    hidden = {name_of(a): int(a["/F"]) for _, a in widgets(blank_forms[form_id])
              if name_of(a) in ("form_id", "form_version", "response_id")}
    assert set(hidden) == {"form_id", "form_version", "response_id"}
    assert all(flags & 2 for flags in hidden.values())  # /F bit 2: Hidden


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_widgets_do_not_overlap_and_stay_on_the_page(blank_forms: dict[str, Path],
                                                     form_id: str) -> None:
    visible = [(page, [float(v) for v in a["/Rect"]], name_of(a))
               for page, a in widgets(blank_forms[form_id]) if not int(a["/F"]) & 2]
    for _, (x1, y1, x2, y2), name in visible:
        assert layout.MARGIN_X - 0.01 <= x1 < x2 <= layout.PAGE_W - layout.MARGIN_X + 0.01, name
        assert layout.CONTENT_BOTTOM <= y1 < y2 <= layout.CONTENT_TOP, name
    for (p1, a, n1), (p2, b, n2) in combinations(visible, 2):
        if p1 == p2:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, f"{n1} overlaps {n2} on page {p1}"


def test_labels_and_page_numbers_show_german_text(blank_forms: dict[str, Path]) -> None:
    text = run("pdftotext", "-layout", blank_forms["buendnispartner"], "-").stdout
    for phrase in ("Bündnis für Qualität in der Kindertagesbetreuung Thüringen",
                   "Straße und Hausnummer", "Bündnispartner*in", "Qualitätsstandards",
                   "Formular „buendnispartner“, Version 1", "Seite 1 von 2", "Seite 2 von 2",
                   "jederzeit für die Zukunft widerrufen – eine formlose E-Mail genügt",
                   "Unterschrift"):
        assert phrase in text, phrase


def test_long_form_flows_over_pages(tmp_path: Path) -> None:
    body = "".join(f'[[sections.fields]]\nname = "f{i}"\nlabel = "Feld {i}"\ntype = "multiline"\n'
                   for i in range(30))
    path = tmp_path / "lang.toml"
    path.write_text(f'id = "lang"\nversion = "1"\ntitle = "Lang"\n[[sections]]\ntitle = "S"\n'
                    f'{body}', encoding="utf-8")
    out = tmp_path / "lang.pdf"
    result = CliRunner().invoke(cli, ["forms", "generate", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    reader = PdfReader(out)
    assert len(reader.pages) >= 3
    assert f"Seite {len(reader.pages)} von {len(reader.pages)}" in run(
        "pdftotext", out, "-").stdout
    assert len([n for n, f in (reader.get_fields() or {}).items() if f.get("/FT")]) == 33


def test_generate_in_a_workspace_uses_its_alliance_name(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    workspace.init(tmp_path)
    config = tmp_path / "formtool.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        workspace.DEFAULT_ALLIANCE, "Bündnis Gera-Greiz"), encoding="utf-8")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    result = CliRunner().invoke(cli, ["forms", "generate", "regionalgruppe"])
    assert result.exit_code == 0, result.output
    assert "regionalgruppe.pdf" in result.output
    assert "Bündnis Gera-Greiz" in run("pdftotext", tmp_path / "sub" / "regionalgruppe.pdf",
                                       "-").stdout


def test_unknown_form_is_one_german_message(tmp_path: Path) -> None:
    workspace.init(tmp_path)
    result = CliRunner().invoke(cli, ["--workspace", str(tmp_path), "forms", "generate", "xyz"])
    assert result.exit_code == 1
    assert "Fehler: Unbekanntes Formular „xyz“" in result.output
    assert "buendnispartner, regionalgruppe" in result.output
    assert "Traceback" not in result.output


def test_invalid_definition_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "kaputt.toml"
    path.write_text('id = "kaputt"\ntitle = "K"\n', encoding="utf-8")
    out = tmp_path / "kaputt.pdf"
    result = CliRunner().invoke(cli, ["forms", "generate", str(path), "-o", str(out)])
    assert result.exit_code == 1
    assert "„version“ fehlt" in result.output
    assert not out.exists()


def test_unwritable_output_leaves_no_file(tmp_path: Path) -> None:
    blocker = tmp_path / "datei"
    blocker.write_text("kein Ordner", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["forms", "generate", "buendnispartner", "-o", str(blocker / "x.pdf")])
    assert result.exit_code == 1
    assert "kann nicht geschrieben werden" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["datei"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "form.pdf"
    out.write_bytes(b"old")

    def boom(*args: object, **kwargs: object) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(layout, "render", boom)
    with pytest.raises(KeyboardInterrupt):
        layout.write_blank(shipped_form("buendnispartner"), out, alliance="x")
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["form.pdf"]
