"""`formtool website` (issue 14): the public partner list and the regional groups from
the imported returns. Real forms filled by pdftk, the real import, the real CLI."""

from __future__ import annotations

import html
import json
from pathlib import Path

import html5lib
import pytest
from helpers import invoke, pdftk_fill

from formtool.data.publish import din_key, safe_url

FORMATS = ("html", "md", "csv", "json")
PERSON = {  # what a return says about a person: never on the website
    "anrede": "frau", "titel": "Dr.", "vorname": "Wilhelmine", "nachname": "Privatmann",
    "funktion": "Geheimhaltung", "email": "wilhelmine.privat@kita.example",
    "telefon": "03447 987654", "strasse": "Geheimweg 7", "plz": "07381",
}


def partner(organisation: str, *, named: str = "ja", consent: bool = True,
            **values: str) -> dict[str, str]:
    base = {**PERSON, "organisation": organisation, "art": "kita", "ort_organisation": "Gera",
            "landkreis": "Gera", "kreis": "partner", "website_nennung": named,
            "ort": "Gera", "datum": "1.10.2026"}
    if consent:
        base["einwilligung"] = "Yes"
    return {**base, **values}


def _return(ws: Path, blank: Path, name: str, values: dict[str, str]) -> None:
    folder = ws.parent / "rueck"
    folder.mkdir(exist_ok=True)
    pdftk_fill(blank, values, folder / f"{name}.pdf")


def _import(ws: Path) -> None:
    result = invoke(ws, "import", str(ws.parent / "rueck"))
    assert "fehlgeschlagen " not in result.output, result.output


def _outputs(ws: Path, stem: str = "partnerliste") -> dict[str, str]:
    return {f: (ws / "website" / f"{stem}.{f}").read_text(encoding="utf-8") for f in FORMATS}


def _names(ws: Path) -> list[str]:
    data = json.loads((ws / "website" / "partnerliste.json").read_text(encoding="utf-8"))
    return [html.unescape(e["Name"]) for e in data["eintraege"]]  # escaped for TablePress


HOSTILE = '<script>alert("x")</script> "Kita" & Co'


@pytest.fixture
def published(ws: Path, blank_forms: dict[str, Path]) -> Path:
    blank = blank_forms["buendnispartner"]
    _return(ws, blank, "a", partner("Kita Sonnenschein", website="www.sonnenschein.example",
                                    kreis="kerngruppe"))
    _return(ws, blank, "b", partner("Kita Nein", named="nein"))
    _return(ws, blank, "c", partner("Kita Ohne Einwilligung", consent=False))
    _return(ws, blank, "d", partner("Kita Später Nein", email="d@kita.example"))
    _return(ws, blank, "e", partner("Kita Vergessen", email="vergessen@kita.example"))
    _return(ws, blank, "f", partner("Kita Abgemeldet", email="abgemeldet@kita.example"))
    _return(ws, blank, "g", partner(HOSTILE, website="javascript:alert(1)",
                                    ort_organisation='=HYPERLINK("http://evil")',
                                    landkreis="**fett** [x](javascript:y) <img src=x>",
                                    email="g@kita.example"))
    _import(ws)
    # a later return of the same organisation says no; one forgotten, one opted out
    _return(ws, blank, "d2", partner("Kita Später Nein", named="nein", email="d@kita.example",
                                     datum="20.11.2026"))
    _import(ws)
    assert invoke(ws, "forget", "vergessen@kita.example").exit_code == 0
    assert invoke(ws, "mail", "optout", "abgemeldet@kita.example").exit_code == 0
    result = invoke(ws, "website")
    assert result.exit_code == 0, result.output
    assert "Partnerliste: 2 Organisation(en)" in result.output
    return ws


def test_only_who_said_yes_and_consented_is_listed(published: Path) -> None:
    assert sorted(_names(published)) == sorted(["Kita Sonnenschein", HOSTILE])
    for text in _outputs(published).values():
        for gone in ("Kita Nein", "Ohne Einwilligung", "Später Nein", "Vergessen",
                     "Abgemeldet"):
            assert gone not in text


def test_no_personal_data_in_any_format(published: Path) -> None:
    for fmt, text in {**_outputs(published), **_outputs(published, "regionalgruppen")}.items():
        for value in PERSON.values():
            if len(value) > 4:
                assert value not in text, (fmt, value)


def test_hostile_values_are_escaped_and_bad_links_dropped(published: Path) -> None:
    out = _outputs(published)
    page = out["html"]
    fragment = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parseFragment(page)
    assert fragment.findall(".//script") == [] and fragment.findall(".//img") == []
    hrefs = [a.get("href") for a in fragment.iter("a")]
    assert hrefs == ["https://www.sonnenschein.example"]
    texts = "".join(fragment.itertext())
    assert HOSTILE in texts  # shown as text, exactly
    assert "javascript" not in page.replace("[x](javascript:y)", "")
    assert "<script>" not in out["md"] and "&lt;script&gt;" in out["md"]
    assert "](javascript" not in out["md"]
    assert "'=HYPERLINK" in out["csv"]  # no formula for TablePress or a spreadsheet
    # TablePress renders a cell's HTML: every cell of the CSV and JSON is escaped
    escaped = html.escape(HOSTILE, quote=True)
    entry = next(e for e in json.loads(out["json"])["eintraege"] if e["Name"] == escaped)
    assert entry["Website"] == "" and entry["Ort"] == html.escape('=HYPERLINK("http://evil")')
    assert "<script>" not in out["csv"] and "<script>" not in out["json"]
    import csv
    import io

    cells = [c for row in csv.reader(io.StringIO(out["csv"])) for c in row]
    assert escaped in cells
    for text in (out["csv"], out["json"]):  # what TablePress shows: the text, not a tag
        table = html5lib.HTMLParser(namespaceHTMLElements=False).parseFragment(
            f"<table><tr><td>{escaped}</td></tr></table>")
        assert table.findall(".//script") == [] and HOSTILE in "".join(table.itertext())
        assert escaped in text


def test_a_rerun_writes_the_same_bytes(published: Path) -> None:
    before = {p.name: p.read_bytes() for p in (published / "website").iterdir()}
    assert invoke(published, "website").exit_code == 0
    after = {p.name: p.read_bytes() for p in (published / "website").iterdir()}
    assert before == after and len(after) == 8


def test_diff_after_a_withdrawal(published: Path, blank_forms: dict[str, Path]) -> None:
    _return(published, blank_forms["buendnispartner"], "a1",
            partner("Kita Sonnenschein", website="www.sonnenschein.example",
                    kreis="kerngruppe", ort_organisation="Jena", datum="22.11.2026"))
    _import(published)
    moved = invoke(published, "website", "--diff")
    assert "Geändert: Kita Sonnenschein: Ort „Gera“ → „Jena“" in moved.output, moved.output
    _return(published, blank_forms["buendnispartner"], "a2",
            partner("Kita Sonnenschein", named="nein", datum="24.11.2026"))
    _import(published)
    result = invoke(published, "website", "--diff")
    assert "Nicht mehr dabei: Kita Sonnenschein" in result.output
    again = invoke(published, "website", "--diff")
    assert "Gegenüber der letzten Liste: keine Änderung." in again.output


def test_grouped_by_landkreis(published: Path) -> None:
    result = invoke(published, "website", "--gruppieren", "landkreis")
    assert result.exit_code == 0
    page = (published / "website" / "partnerliste.html").read_text(encoding="utf-8")
    assert '<h3 class="formtool-partner__gruppe">Gera</h3>' in page


def test_german_sort_order() -> None:
    names = ["zwerge", "Straße der Kinder", "Ostsee", "Änderungsverein", "Strasse am Park",
             "ökumenische Kita", "Apfel e. V.", "Übergang", "Ulme"]
    assert sorted(names, key=din_key) == [
        "Änderungsverein", "Apfel e. V.", "ökumenische Kita", "Ostsee", "Strasse am Park",
        "Straße der Kinder", "Übergang", "Ulme", "zwerge"]


@pytest.mark.parametrize(("given", "link"), [
    ("www.kita.example", "https://www.kita.example"),
    ("http://kita.example/seite?a=1", "http://kita.example/seite?a=1"),
    ("HTTPS://Kita.example", "https://Kita.example"),
    ("javascript:alert(1)", ""), ("JaVaScRiPt:alert(1)", ""), ("data:text/html,x", ""),
    ("file:///etc/passwd", ""), ("https://user:pw@kita.example", ""),
    ('https://kita.example/"onmouseover="x', "https://kita.example/%22onmouseover=%22x"),
    ("https://kita.example/<b> a'`\\", "https://kita.example/%3Cb%3E%20a%27%60%5C"),
    ("kita", ""), ("", ""),
    ("https://kita.example/\u2028x", ""),
])
def test_only_web_addresses_become_links(given: str, link: str) -> None:
    assert safe_url(given) == link


def test_regional_groups_without_people(ws: Path, blank_forms: dict[str, Path]) -> None:
    _return(ws, blank_forms["regionalgruppe"], "r", {
        "region": "Saale-Orla-Kreis", "gruppenname": "Kita-Runde Pößneck",
        "moderation": "Petra Persönlich, Kita Stern", "kontakt1_name": "Karl Kontakt",
        "kontakt1_email": "karl@kita.example", "kontakt1_telefon": "0123 45678",
        "organisationen": "Kita Stern\nKita Mond", "schwerpunkte": "Sprache\nÜbergänge",
        "treffen": "monatlich", "einwilligung": "Yes", "ort": "Pößneck",
        "datum": "2.11.2026"})
    _import(ws)
    assert invoke(ws, "website").exit_code == 0
    out = _outputs(ws, "regionalgruppen")
    assert "Kita-Runde Pößneck" in out["html"]
    assert "Kita Stern; Kita Mond" in out["json"] and "Sprache; Übergänge" in out["json"]
    for text in out.values():
        for person in ("Petra Persönlich", "Karl Kontakt", "karl@kita.example", "0123 45678"):
            assert person not in text
