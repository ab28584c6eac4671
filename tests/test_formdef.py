"""Form definitions: the shipped ones are valid; every kind of mistake is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from formtool import workspace
from formtool.cli import cli
from formtool.errors import FormDefinitionError
from formtool.pdf import formdef

BAD = """\
id = "test"
version = 1
title = "Test"
colour = "blue"

[[sections]]
title = "A"

[[sections.fields]]
name = "org.name"
label = "Organisation"

[[sections.fields]]
name = "plz"
label = "PLZ"
type = "postleitzahl"

[[sections.fields]]
name = "plz"
label = "PLZ noch einmal"

[[sections.fields]]
name = "art"
label = "Art"
type = "radio"

[[sections.fields]]
name = "zustimmung"
type = "checkbox"
required = true

[[sections.fields]]
name = "rolle"
label = "Rolle"
type = "choice"
options = [{ label = "Trägerin", value = "trägerin" }]

[[sections.fields]]
name = "form_id"
label = "Versteckt"

[[sections.fields]]
name = "notiz"
label = "Notiz"
max_length = 0
width = "wide"
"""


def test_shipped_forms_are_valid() -> None:
    forms = {p.stem: formdef.load(p) for p in formdef.definitions(workspace.shipped_forms_dir())}
    assert set(forms) == {"buendnispartner", "regionalgruppe"}
    partner = forms["buendnispartner"]
    art = partner.field("art")
    assert art is not None and art.type == "radio"
    assert [o.label for o in art.options] == [
        "Träger", "Kita", "Kommune", "Verein/Verband", "Fachberatung",
        "Hochschule/Wissenschaft", "Sonstige"]
    assert all(o.value.isascii() for f in partner.fields() for o in f.options)
    names = [f.name for f in partner.fields()]
    assert len(names) == len(set(names))
    assert names[-3:] == ["einwilligung", "ort", "datum"]
    consent = partner.field("einwilligung")
    assert consent is not None and consent.required and consent.type == "checkbox"
    group = forms["regionalgruppe"]
    assert {"region", "gruendungsdatum", "kontakt1_email", "kontakt2_email", "treffen",
            "organisationen"} <= {f.name for f in group.fields()}


def test_every_problem_is_reported_with_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "test.toml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(FormDefinitionError) as info:
        formdef.load(path)
    problems = "\n".join(info.value.problems)
    expected = [
        "test.toml:4: unbekannter Schlüssel „colour“",
        "test.toml:10: Feld „org.name“: ungültiger Name",
        "Feld „plz“: unbekannter Typ „postleitzahl“",
        "Feld „plz“: der Name kommt doppelt vor",
        "Feld „art“: „radio“ braucht Auswahlmöglichkeiten",
        "Feld „zustimmung“: Pflicht-Ankreuzfeld ohne Beschriftung",
        "Feld „rolle“: Auswahl „Trägerin“: Wert 'trägerin' muss ASCII sein",
        "Feld „form_id“: der Name ist für ein verstecktes Feld reserviert",
        "Feld „notiz“: „max_length“ muss eine ganze Zahl ab 1 sein",
        "Feld „notiz“: unbekannte Breite „wide“",
    ]
    for text in expected:
        assert text in problems
    assert len(info.value.problems) == len(expected)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "kaputt.toml"
    path.write_text('id = "x"\ntitle = "ohne Ende\n', encoding="utf-8")
    with pytest.raises(FormDefinitionError) as info:
        formdef.load(path)
    assert "keine gültige TOML-Datei" in str(info.value)
    assert "line 2" in str(info.value)


def test_forms_check_cli_lists_problems_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "test.toml"
    path.write_text(BAD, encoding="utf-8")
    result = CliRunner().invoke(cli, ["forms", "check", str(path)])
    assert result.exit_code == 1
    assert "Die Formular-Definition hat 10 Fehler" in result.output
    assert "Pflicht-Ankreuzfeld ohne Beschriftung" in result.output
    assert "Traceback" not in result.output


def test_forms_check_ok(tmp_path: Path) -> None:
    workspace.init(tmp_path)
    result = CliRunner().invoke(cli, ["--workspace", str(tmp_path), "forms", "check"])
    assert result.exit_code == 0, result.output
    assert "buendnispartner.toml: in Ordnung (26 Felder, 2 Seite(n))" in result.output
    assert "regionalgruppe.toml: in Ordnung" in result.output


def test_option_values_are_derived_from_labels(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text('id = "f"\nversion = "2"\ntitle = "F"\n[[sections]]\ntitle = "S"\n'
                    '[[sections.fields]]\nname = "wahl"\nlabel = "Wahl"\ntype = "choice"\n'
                    'options = ["Träger", "Fachkräfte & Qualität"]\n', encoding="utf-8")
    field = formdef.load(path).field("wahl")
    assert field is not None
    assert [(o.label, o.value) for o in field.options] == [
        ("Träger", "traeger"), ("Fachkräfte & Qualität", "fachkraefte_qualitaet")]
