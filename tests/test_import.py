"""formtool import: round trips through independent fillers, normalisation, the CSV."""

from __future__ import annotations

import warnings
from pathlib import Path

import pikepdf
import pytest
from click.testing import CliRunner
from helpers import FILLERS, make_foreign_form, node, pdftk_fill, pypdf_fill, read_csv

from formtool import workspace
from formtool.cli import cli
from formtool.state.store import Store

PARTNER = {
    "organisation": "Kita „Sonnenschein“ Gößnitz e. V.",
    "art": "verein_verband",
    "strasse": "Schloßberg 12",
    "plz": "04639",
    "ort_organisation": "Gößnitz",
    "landkreis": "Altenburger Land",
    "website": "www.sonnenschein.example",
    "anrede": "frau",
    "titel": "Dr.",
    "vorname": "Jürgen",
    "nachname": "Größe-Weiß",
    "funktion": "Leitung",
    "email": "j.groesse-weiss@sonnenschein.example",
    "telefon": "03447 123456",
    "kreis": "buendnisgruppe",
    "thema_finanzierung": True,
    "thema_fachkraefte": True,
    "thema_sprachfoerderung": False,
    "thema_sonstiges": "Inklusion in kleinen Kitas\nÜbergang Kita – Schule",
    "website_nennung": "ja",
    "einwilligung": True,
    "ort": "Gößnitz",
    "datum": "3.2.2026",
}
EXPECTED = {
    "organisation": "Kita „Sonnenschein“ Gößnitz e. V.",
    "art": "Verein/Verband",
    "strasse": "Schloßberg 12",
    "plz": "04639",
    "ort_organisation": "Gößnitz",
    "anrede": "Frau",
    "vorname": "Jürgen",
    "nachname": "Größe-Weiß",
    "email": "j.groesse-weiss@sonnenschein.example",
    "telefon": "03447 123456",
    "kreis": "Bündnisgruppe (arbeitet regelmäßig mit)",
    "thema_finanzierung": "ja",
    "thema_qualitaetsstandards": "nein",
    "thema_fachkraefte": "ja",
    "thema_sprachfoerderung": "nein",
    "thema_sonstiges": "Inklusion in kleinen Kitas\nÜbergang Kita – Schule",
    "website_nennung": "Ja",
    "einwilligung": "ja",
    "ort": "Gößnitz",
    "datum": "2026-02-03",
    "probleme": "",
}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace.init(tmp_path / "ws")
    (tmp_path / "in").mkdir()
    return tmp_path / "ws"


def do_import(ws: Path, *args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--workspace", str(ws), "import", *map(str, args)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.parametrize("filler", list(FILLERS))
def test_round_trip_through_independent_fillers(filler: str, blank_forms: dict[str, Path],
                                                ws: Path) -> None:
    filled = FILLERS[filler](blank_forms["buendnispartner"], PARTNER,
                             ws.parent / "in" / f"{filler}.pdf")
    code, output = do_import(ws, filled, "--header", "names")
    assert code == 0, output
    assert "1 Datei(en): 1 importiert" in output
    [row] = read_csv(ws / "antworten" / "buendnispartner.csv")
    for name, value in EXPECTED.items():
        assert row[name] == value, f"{filler}: {name}"
    assert row["datei"] == f"{filler}.pdf"
    assert len(row["pruefsumme"]) == 64


def test_regionalgruppe_round_trip_with_labels_as_header(blank_forms: dict[str, Path],
                                                         ws: Path) -> None:
    filled = pdftk_fill(blank_forms["regionalgruppe"], {
        "region": "Gera", "gruppenname": "Regionalgruppe Gera", "gruendungsdatum": "2026-03-15",
        "gruendungsort": "Gera, Kultur- und Kongresszentrum", "kontakt1_name": "Maria Şahin",
        "kontakt1_organisation": "Stadt Gera", "kontakt1_email": "m.sahin@gera.example",
        "kontakt2_name": "Olaf Bär", "kontakt2_email": "o.baer@awo.example",
        "organisationen": "Stadt Gera\nAWO\nDiakonie", "treffen": "vierteljaehrlich",
        "einwilligung": "Yes"}, ws.parent / "in" / "gera.pdf")
    code, output = do_import(ws, filled)
    assert code == 0, output
    [row] = read_csv(ws / "antworten" / "regionalgruppe.csv")
    assert row["Gründungsdatum"] == "2026-03-15"
    assert row["Erste Ansprechperson: Name"] == "Maria Şahin"
    assert row["Zweite Ansprechperson: Name"] == "Olaf Bär"
    assert row["Wie oft möchten Sie sich treffen?"] == "vierteljährlich"
    assert row["Beteiligte Organisationen"] == "Stadt Gera\nAWO\nDiakonie"
    assert row["probleme"] == ""
    raw = (ws / "antworten" / "regionalgruppe.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b";" in raw.splitlines()[0]


def test_rerun_adds_nothing_and_update_replaces(blank_forms: dict[str, Path], ws: Path) -> None:
    first = pypdf_fill(blank_forms["buendnispartner"], {**PARTNER, "response_id": "ABCDEFGHJK"},
                       ws.parent / "in" / "a.pdf")
    do_import(ws, ws.parent / "in")
    code, output = do_import(ws, ws.parent / "in")
    assert code == 0
    assert "bereits importiert" in output
    assert len(read_csv(ws / "antworten" / "buendnispartner.csv")) == 1

    second_dir = ws.parent / "second"
    second_dir.mkdir()
    pypdf_fill(first, {"telefon": "0365 99999"}, second_dir / "a-korrigiert.pdf")
    # the correction came back later (its file is newer): the newest return wins
    code, output = do_import(ws, second_dir)
    assert code == 0, output
    assert "ersetzt" in output and "neuere Rücksendung" in " ".join(output.split())
    rows = read_csv(ws / "antworten" / "buendnispartner.csv")
    assert [(r["Telefon"], r["response_id"]) for r in rows] == [("0365 99999", "ABCDEFGHJK")]
    with Store(ws / ".formtool" / "state.db") as store:
        [response] = list(store.responses())
    assert response.response_id == "ABCDEFGHJK"
    assert response.file_name == "a-korrigiert.pdf"


def test_formulas_are_neutralised(blank_forms: dict[str, Path], ws: Path) -> None:
    pdftk_fill(blank_forms["buendnispartner"], {
        "organisation": '=HYPERLINK("http://evil.example","klick")', "telefon": "+49 361 1234",
        "funktion": "@SUM(A1)", "website": "-1+1"}, ws.parent / "in" / "evil.pdf")
    do_import(ws, ws.parent / "in", "--header", "names")
    [row] = read_csv(ws / "antworten" / "buendnispartner.csv")
    assert row["organisation"] == "'=HYPERLINK(\"http://evil.example\",\"klick\")"
    assert row["telefon"] == "'+49 361 1234"
    assert row["funktion"] == "'@SUM(A1)"
    assert row["website"] == "'-1+1"


@pytest.mark.parametrize(("typed", "iso"), [("3.2.2026", "2026-02-03"), ("03.02.26", "2026-02-03"),
                                            ("2026-02-03", "2026-02-03"),
                                            ("03/02/2026", "2026-02-03"),
                                            (" 3. 2. 2026 ", "2026-02-03")])
def test_dates_become_iso(typed: str, iso: str, blank_forms: dict[str, Path], ws: Path) -> None:
    pdftk_fill(blank_forms["buendnispartner"], {"datum": typed}, ws.parent / "in" / "d.pdf")
    do_import(ws, ws.parent / "in", "--header", "names")
    [row] = read_csv(ws / "antworten" / "buendnispartner.csv")
    assert row["datum"] == iso
    assert "Datum" not in row["probleme"]


def test_problems_are_reported_and_the_row_kept(blank_forms: dict[str, Path], ws: Path) -> None:
    pdftk_fill(blank_forms["buendnispartner"], {
        "organisation": "Kita\nMitte", "email": "kita(at)mitte.example", "plz": "999",
        "datum": "nächsten Montag"}, ws.parent / "in" / "p.pdf")
    code, output = do_import(ws, ws.parent / "in", "--header", "names")
    assert code == 0
    assert "importiert mit Problemen" in output
    [row] = read_csv(ws / "antworten" / "buendnispartner.csv")
    assert row["organisation"] == "Kita Mitte"  # line break collapsed in a single-line field
    problems = row["probleme"]
    assert "E-Mail: keine gültige E-Mail-Adresse „kita(at)mitte.example“" in problems
    assert "PLZ: keine gültige Postleitzahl „999“" in problems
    assert "Datum: Datum „nächsten Montag“ nicht erkannt" in problems
    assert "Pflichtfeld fehlt: Nachname" in problems
    assert "Pflichtfeld fehlt: Ich willige in die Verarbeitung" in problems


def test_recognised_by_field_names_without_form_id(blank_forms: dict[str, Path],
                                                   ws: Path) -> None:
    path = pdftk_fill(blank_forms["buendnispartner"], {"organisation": "Ohne Kennung"},
                      ws.parent / "in" / "ohne.pdf")
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        fields = pdf.Root.AcroForm.Fields
        for i in reversed(range(len(fields))):
            if str(fields[i].get("/T")) in ("form_id", "form_version"):
                del fields[i]
        for annot in pdf.pages[0].Annots:
            if str(annot.get("/T")) in ("form_id", "form_version"):
                del annot["/T"]
                annot.FT = pikepdf.Name.Sig
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pdf.save(path)
    code, output = do_import(ws, path, "--header", "names")
    assert code == 0, output
    assert read_csv(ws / "antworten" / "buendnispartner.csv")[0]["organisation"] == "Ohne Kennung"


def test_foreign_forms_import_raw(ws: Path) -> None:
    crafted = make_foreign_form(ws.parent / "in" / "fremd.pdf")
    made_by_pdflib = ws.parent / "in" / "pdflib.pdf"
    node("pdflib_make_form.mjs", made_by_pdflib)
    code, output = do_import(ws, crafted, made_by_pdflib, "--form", "raw", "-o",
                             ws / "fremd.csv")
    assert code == 0, output
    crafted_row, pdflib_row = read_csv(ws / "fremd.csv")
    assert crafted_row["plain"] == "Ferhat Ağaoğlu"
    assert [crafted_row[n] for n in ("cb_on", "cb_ja", "cb_empty", "cb_as_only", "cb_off")] == [
        "ja", "ja", "ja", "ja", "nein"]
    assert crafted_row["farbe"] == "2"
    assert crafted_row["person.name"] == "Łucja Nowak"
    assert crafted_row["person.email"] == "l.nowak@kita.example"
    assert crafted_row["notiz"] == "zweite Zeile\nmit Umbruch"
    assert crafted_row["nur_auf_der_seite"] == "Preview war hier"
    assert pdflib_row["Antragsteller"] == "Anna Weiß"
    assert pdflib_row["Bemerkung"] == "erste Zeile\nzweite Zeile"
    assert (pdflib_row["Zustimmung"], pdflib_row["Newsletter"]) == ("ja", "nein")
    assert pdflib_row["Groesse"] == "Choice2"
    assert pdflib_row["Land"] == "Sachsen"
    assert crafted_row["Antragsteller"] == "" and pdflib_row["plain"] == ""


def test_foreign_form_without_raw_is_unknown(ws: Path) -> None:
    crafted = make_foreign_form(ws.parent / "in" / "fremd.pdf")
    code, output = do_import(ws, crafted)
    assert code == 1
    assert "unbekanntes Formular" in output and "--form raw" in output


def test_incremental_saves_read_the_last_value(blank_forms: dict[str, Path], ws: Path) -> None:
    once = FILLERS["pdf.js"](blank_forms["buendnispartner"], {"organisation": "Erst"},
                             ws.parent / "once.pdf")
    twice = FILLERS["pdf.js"](once, {"organisation": "Zuletzt"}, ws.parent / "in" / "twice.pdf")
    assert twice.read_bytes().count(b"%%EOF") == 3
    do_import(ws, twice, "--header", "names")
    assert read_csv(ws / "antworten" / "buendnispartner.csv")[0]["organisation"] == "Zuletzt"


def test_one_output_takes_one_form(blank_forms: dict[str, Path], ws: Path) -> None:
    pdftk_fill(blank_forms["buendnispartner"], {"organisation": "A"}, ws.parent / "in" / "a.pdf")
    pdftk_fill(blank_forms["regionalgruppe"], {"region": "B"}, ws.parent / "in" / "b.pdf")
    code, output = do_import(ws, ws.parent / "in", "-o", ws / "alles.csv")
    assert code == 1
    assert "b.pdf: ist Formular „regionalgruppe“" in output
    assert len(read_csv(ws / "alles.csv")) == 1
    code, output = do_import(ws, ws.parent / "in")
    assert code == 0, output
    assert (ws / "antworten" / "regionalgruppe.csv").exists()


def test_forced_form_rejects_another_form(blank_forms: dict[str, Path], ws: Path) -> None:
    pdftk_fill(blank_forms["regionalgruppe"], {"region": "B"}, ws.parent / "in" / "b.pdf")
    code, output = do_import(ws, ws.parent / "in", "--form", "buendnispartner")
    assert code == 1
    assert "ist Formular „regionalgruppe“, nicht „buendnispartner“" in output


def test_cp1252_and_comma_when_asked(blank_forms: dict[str, Path], ws: Path) -> None:
    pdftk_fill(blank_forms["buendnispartner"], {"organisation": "Größe"},
               ws.parent / "in" / "a.pdf")
    code, _ = do_import(ws, ws.parent / "in", "--encoding", "cp1252", "--delimiter", ",",
                        "-o", ws / "excel.csv", "--header", "names")
    assert code == 0
    assert read_csv(ws / "excel.csv", ",", "cp1252")[0]["organisation"] == "Größe"


def test_unencodable_character_fails_and_keeps_the_old_csv(blank_forms: dict[str, Path],
                                                           ws: Path) -> None:
    out = ws / "excel.csv"
    pdftk_fill(blank_forms["buendnispartner"], {"organisation": "Größe"},
               ws.parent / "in" / "a.pdf")
    do_import(ws, ws.parent / "in", "--encoding", "cp1252", "-o", out)
    before = out.read_bytes()
    pdftk_fill(blank_forms["buendnispartner"], {"organisation": "Łukasz"},
               ws.parent / "in" / "b.pdf")
    code, output = do_import(ws, ws.parent / "in", "--encoding", "cp1252", "-o", out)
    assert code == 1
    assert "„Ł“ passt nicht in die Kodierung cp1252" in output
    assert out.read_bytes() == before
    assert sorted(p.name for p in ws.iterdir() if p.name.startswith(".excel")) == []


def test_interrupted_import_leaves_csv_and_state_untouched(
        blank_forms: dict[str, Path], ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from formtool.usecases import importing as importer

    pdftk_fill(blank_forms["buendnispartner"], {"organisation": "A"}, ws.parent / "in" / "a.pdf")
    do_import(ws, ws.parent / "in")
    csv_path = ws / "antworten" / "buendnispartner.csv"
    before = csv_path.read_bytes()
    book = csv_path.with_suffix(".xlsx").read_bytes()
    pdftk_fill(blank_forms["buendnispartner"], {"organisation": "B"}, ws.parent / "in" / "b.pdf")
    pdftk_fill(blank_forms["buendnispartner"], {"organisation": "C"}, ws.parent / "in" / "c.pdf")
    real = importer.extract
    calls = []

    def interrupted(path: Path, password: str = "") -> object:
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, password)

    monkeypatch.setattr(importer, "extract", interrupted)
    result = CliRunner().invoke(cli, ["--workspace", str(ws), "import", str(ws.parent / "in")])
    assert result.exit_code == 1  # click: "Aborted!"
    assert csv_path.read_bytes() == before
    assert csv_path.with_suffix(".xlsx").read_bytes() == book
    assert sorted(p.name for p in csv_path.parent.iterdir()) == ["buendnispartner.csv",
                                                                "buendnispartner.xlsx"]
    with Store(ws / ".formtool" / "state.db") as store:
        assert len(list(store.responses())) == 1


def test_a_file_that_breaks_the_reader_gets_its_own_answer(
        blank_forms: dict[str, Path], ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error nobody foresaw while reading one file (here injected into the reader,
    which the workers inherit) is that file's answer; the others are imported."""
    from formtool.usecases import importing as importer

    real = importer.extract

    def fragile(path: Path, password: str = "") -> object:
        if path.name == "boese.pdf":
            raise AttributeError("'NoneType' object has no attribute 'is_indirect'")
        return real(path, password)

    monkeypatch.setattr(importer, "extract", fragile)
    pdftk_fill(blank_forms["buendnispartner"], {"organisation": "A"}, ws.parent / "in" / "a.pdf")
    pdftk_fill(blank_forms["buendnispartner"], {"organisation": "B"},
               ws.parent / "in" / "boese.pdf")
    code, output = do_import(ws, ws.parent / "in")
    assert code == 1
    assert "boese.pdf" in output and "unerwarteter Aufbau (AttributeError)" in output
    assert "is_indirect" not in output
    assert [r["Name der Organisation"] for r in
            read_csv(ws / "antworten" / "buendnispartner.csv")] == ["A"]



@pytest.mark.parametrize("names", [("Antwort.pdf", "Antwort (5).pdf"),
                                   ("Antwort (5).pdf", "Antwort.pdf")])
def test_the_newest_return_wins_whatever_the_file_names(
        blank_forms: dict[str, Path], ws: Path, names: tuple[str, str]) -> None:
    """Two returns of one response id: the one that came back later is in the table,
    in either name order, and --update never puts the older values back (issue 20)."""
    import os

    folder = ws.parent / "beide"
    folder.mkdir()
    old_name, new_name = names
    older = pypdf_fill(blank_forms["buendnispartner"], {**PARTNER, "response_id": "NEUEST0001",
                                                       "telefon": "alt"}, folder / old_name)
    newer = pypdf_fill(blank_forms["buendnispartner"], {**PARTNER, "response_id": "NEUEST0001",
                                                       "telefon": "neu"}, folder / new_name)
    os.utime(older, (1_764_000_000, 1_764_000_000))  # 24.11.2025
    os.utime(newer, (1_764_600_000, 1_764_600_000))  # 01.12.2025
    for args in ((), ("--update",)):
        _, output = do_import(ws, folder, *args)
        rows = read_csv(ws / "antworten" / "buendnispartner.csv")
        assert [r["Telefon"] for r in rows] == ["neu"], (args, output)
    text = " ".join(output.split())
    assert "ältere Rücksendung (vom 24.11.2025" in text and "neuere vom 01.12.2025" in text


def test_a_file_reported_unreadable_is_said_once(ws: Path) -> None:
    """The same old photo in a folder imported again: "schon bekannt", exit 0 – a
    failure is only what failed in this run (issue 20)."""
    folder = ws.parent / "rueck"
    folder.mkdir()
    (folder / "IMG_0001.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(5000))
    code, output = do_import(ws, folder)
    assert code == 1 and "fehlgeschlagen" in output
    code, output = do_import(ws, folder)
    assert code == 0, output
    assert "schon bekannt" in output and "gemeldet" in output
    (folder / "IMG_0002.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(6000))
    code, output = do_import(ws, folder)
    assert code == 1 and "1 von 2 Datei(en) nicht übernommen" in " ".join(output.split())
