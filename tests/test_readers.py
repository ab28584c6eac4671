"""Independent readers agree on the generated forms, and independent fillers fill them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import field_values, node, pdflib_fill, pdftk_fill, run, shipped_form
from pypdf import PdfReader, PdfWriter

FORM_IDS = ("buendnispartner", "regionalgruppe")
PDFTK_TYPES = {"checkbox": "Button", "radio": "Button", "choice": "Choice"}
PDFJS_TYPES = {"checkbox": "checkbox", "radio": "radiobutton", "choice": "combobox"}

UMLAUTS = "Jürgen Größe-Weiß, „Kita Sonnenschein“ – 5 € Ä Ö Ü"
MULTILINE = "AWO Kreisverband Gera\nDiakonie Ostthüringen\nStadt Gera – Jugendamt"


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_qpdf_check_is_clean(blank_forms: dict[str, Path], form_id: str) -> None:
    result = run("qpdf", "--check", blank_forms[form_id])
    assert "No syntax or stream encoding errors found" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_pdftk_lists_every_field_with_its_type(blank_forms: dict[str, Path], form_id: str) -> None:
    dump = run("pdftk", blank_forms[form_id], "dump_data_fields_utf8").stdout
    fields = {}
    for record in dump.split("---"):
        entries = [line.split(": ", 1) for line in record.strip().splitlines() if ": " in line]
        data: dict[str, list[str]] = {}
        for key, value in entries:
            data.setdefault(key, []).append(value)
        if "FieldName" in data:
            fields[data["FieldName"][0]] = data
    for field in shipped_form(form_id).fields():
        data = fields[field.name]
        assert data["FieldType"] == [PDFTK_TYPES.get(field.type, "Text")], field.name
        # pdftk shows a radio button's own /TU ("Art der Organisation: Sonstige")
        assert data["FieldNameAlt"][0].startswith(field.tooltip), field.name
        if field.type == "radio":
            assert set(data["FieldStateOption"]) == {"Off", *(o.value for o in field.options)}
    assert fields["form_id"]["FieldValue"] == [form_id]


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_pdfjs_sees_every_field(blank_forms: dict[str, Path], form_id: str) -> None:
    seen = json.loads(node("pdfjs_fields.mjs", blank_forms[form_id]).stdout)
    assert seen["isPureXfa"] is False
    for field in shipped_form(form_id).fields():
        widgets = seen["fields"][field.name]
        assert {w["type"] for w in widgets} == {PDFJS_TYPES.get(field.type, "text")}, field.name
        if field.type == "radio":
            assert [w["exportValues"] for w in widgets] == [o.value for o in field.options]
    assert seen["fields"]["form_id"][0]["value"] == form_id
    assert seen["fields"]["form_id"][0]["hidden"] is True
    first = next(shipped_form(form_id).fields())
    assert seen["titles"][first.name] == first.tooltip


def test_pdftk_fill_with_umlauts_reads_back_exactly(blank_forms: dict[str, Path],
                                                    tmp_path: Path) -> None:
    filled = pdftk_fill(blank_forms["regionalgruppe"], {
        "gruppenname": UMLAUTS, "organisationen": MULTILINE, "treffen": "vierteljaehrlich",
        "einwilligung": "Yes", "datum": "24.12.2026",
    }, tmp_path / "pdftk.pdf")
    values = field_values(filled)
    assert values["gruppenname"] == UMLAUTS
    assert values["organisationen"] == MULTILINE
    assert values["treffen"] == "vierteljaehrlich"
    assert values["einwilligung"] == "/Yes"
    assert values["datum"] == "24.12.2026"
    assert values["form_id"] == "regionalgruppe"
    assert "No syntax or stream encoding errors" in run("qpdf", "--check", filled).stdout


def test_pdflib_fill_reads_back_exactly(blank_forms: dict[str, Path], tmp_path: Path) -> None:
    filled = pdflib_fill(blank_forms["buendnispartner"], {
        "organisation": UMLAUTS, "art": "verein_verband", "anrede": "frau",
        "thema_fachkraefte": True, "thema_sonstiges": MULTILINE, "kreis": "partner",
        "einwilligung": True, "plz": "07545",
    }, tmp_path / "pdflib.pdf")
    values = field_values(filled)
    assert values["organisation"] == UMLAUTS
    assert values["art"] == "/verein_verband"
    assert values["anrede"] == "frau"
    assert values["thema_fachkraefte"] == "/Yes"
    assert values["thema_finanzierung"] == "/Off"
    assert values["thema_sonstiges"] == MULTILINE
    assert values["kreis"] == "/partner"
    assert values["einwilligung"] == "/Yes"
    assert values["plz"] == "07545"


def test_names_beyond_latin1_are_stored_and_read_back(blank_forms: dict[str, Path],
                                                      tmp_path: Path) -> None:
    """Ł, ş, ğ (common in German address lists) survive a fill by pypdf and by pdftk."""
    name = "Łucja Kowalczyk-Şahin, Ağaoğlu"
    writer = PdfWriter(clone_from=PdfReader(blank_forms["buendnispartner"]))
    writer.update_page_form_field_values(writer.pages[0], {"organisation": name},
                                         auto_regenerate=False)
    out = tmp_path / "pypdf.pdf"
    writer.write(out)
    assert field_values(out)["organisation"] == name
    by_pdftk = pdftk_fill(blank_forms["buendnispartner"], {"organisation": name},
                          tmp_path / "pdftk.pdf")
    assert field_values(by_pdftk)["organisation"] == name
    seen = json.loads(node("pdfjs_fields.mjs", by_pdftk).stdout)
    assert seen["fields"]["organisation"][0]["value"] == name
