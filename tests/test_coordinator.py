"""As the coordinator sees it (issue 13): a console of 80 columns, tables Excel opens
right, every file answered, messages in German. Real files, real CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from helpers import invoke, pdftk_fill, run

from formtool.state.store import Journal, SendState, Store

WIDTH = 80


def _hostile_journal(ws: Path) -> None:
    campaign = "einladung-fachberatungen-thueringen-herbst-2026-zweite-runde-mit-langem-namen-x"
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign(campaign, "einladung")
        for i in range(3):
            key = f"FB-{i:05d}"
            email = f"sehr.lange.adresse.{i}@kinder-und-jugendhilfe-landkreis-beispiel.example"
            store.remember_contact(
                key=key, email=email, name="Prof. Dr. " + "Mustermann-" * 12 + str(i),
                organisation="Arbeitsgemeinschaft " * 8,
                address="Straße des Friedens 1\nHinterhaus, 3. Etage\n07381 Pößneck")
            journal.mark(campaign, email=email, key=key,
                         state=SendState.SENT if i else SendState.FAILED, sent_at=0.0,
                         reply="" if i else "550 5.1.1 " + "Das Postfach ist unbekannt. " * 9)


def test_status_fits_80_columns(ws: Path) -> None:
    _hostile_journal(ws)
    for args in ([], ["--offen"], ["--fehler"]):
        result = invoke(ws, "status", *args)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert len(lines) >= 3
        too_wide = [line for line in lines if len(line) > WIDTH]
        assert too_wide == [], args
    offen = invoke(ws, "status", "--offen").output
    assert "07381 Pößneck" in offen and "Hinterhaus" in offen  # wrapped, not cut
    fehler = invoke(ws, "status", "--fehler").output
    assert "Das Postfach ist unbekannt." in fehler and "fehlgeschlagen" in fehler


# -- an Excel workbook beside every table ------------------------------------------------

def _import_one(ws: Path, blank: Path, **values: str) -> Path:
    source = pdftk_fill(blank, values, ws.parent / "rueck" / "antwort.pdf")
    result = invoke(ws, "import", str(source.parent))
    assert result.exit_code == 0, result.output
    book = ws / "antworten" / "buendnispartner.xlsx"
    assert f"Tabelle für Excel:                  {book}" in result.output
    return book


def test_the_workbook_keeps_zeros_dates_and_formulas_as_they_are(
        ws: Path, blank_forms: dict[str, Path], tmp_path: Path) -> None:
    import openpyxl

    (ws.parent / "rueck").mkdir()
    book = _import_one(ws, blank_forms["buendnispartner"], organisation="=HYPERLINK(\"x\")",
                       plz="07381", telefon="+49 3647 0123456", datum="3.2.2026",
                       email="a@kita.example", thema_sonstiges="Zeile eins\nZeile zwei")
    sheet = openpyxl.load_workbook(book).active
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    header = [c.value for c in sheet[1]]
    row = {h: c for h, c in zip(header, sheet[2], strict=True)}
    assert (row["PLZ"].value, row["PLZ"].data_type) == ("07381", "s")
    assert (row["Telefon"].value, row["Telefon"].data_type) == ("+49 3647 0123456", "s")
    assert (row["Name der Organisation"].value, row["Name der Organisation"].data_type) == (
        "=HYPERLINK(\"x\")", "s")  # text, never a formula
    assert row["Datum"].value == dt.datetime(2026, 2, 3)
    assert row["Datum"].number_format == "dd.mm.yyyy"
    assert isinstance(row["importiert_am"].value, dt.datetime)
    assert row["Weitere Themen"].value == "Zeile eins\nZeile zwei"
    assert sheet.column_dimensions["A"].width >= len("=HYPERLINK(\"x\")")

    # LibreOffice opens it as Excel would: the zero, the text, the German date
    profile = tmp_path / "lo-profile"
    run("soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
        "csv:Text - txt - csv (StarCalc):59,34,76", "--outdir", tmp_path / "lo", book)
    text = (tmp_path / "lo" / "buendnispartner.csv").read_text(encoding="utf-8")
    assert ";07381;" in text and "+49 3647 0123456" in text and "03.02.2026" in text
    assert '"=HYPERLINK(""x"")"' in text or "=HYPERLINK" in text


def test_a_second_import_rewrites_the_workbook_with_every_row(
        ws: Path, blank_forms: dict[str, Path]) -> None:
    import openpyxl

    (ws.parent / "rueck").mkdir()
    _import_one(ws, blank_forms["buendnispartner"], organisation="Erste", plz="07381")
    (ws.parent / "rueck" / "antwort.pdf").unlink()
    book = _import_one(ws, blank_forms["buendnispartner"], organisation="Zweite", plz="04639")
    sheet = openpyxl.load_workbook(book).active
    assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == ["Erste", "Zweite"]


def test_status_lists_as_workbooks(ws: Path) -> None:
    import openpyxl

    _hostile_journal(ws)
    for args, sheet_name in (([], "Stand"), (["--offen"], "Offen"),
                             (["--fehler"], "Nicht zugestellt")):
        book = ws / f"stand{len(args)}{sheet_name[0]}.xlsx"
        result = invoke(ws, "status", *args, "--xlsx", str(book))
        assert result.exit_code == 0, result.output
        sheet = openpyxl.load_workbook(book)[sheet_name]
        rows = list(sheet.iter_rows(values_only=True))
        assert sheet.freeze_panes == "A2" and len(rows) >= 2
        if sheet_name == "Stand":
            assert rows[1][1:3] == (2, 1)  # gesendet, fehlgeschlagen: numbers
        if sheet_name == "Offen":
            assert "07381 Pößneck" in rows[1][3]


# -- every file in an import folder gets an answer ---------------------------------------

def test_every_file_in_the_folder_gets_an_answer(ws: Path, blank_forms: dict[str, Path]
                                                 ) -> None:
    import zipfile

    folder = ws.parent / "rueck"
    folder.mkdir()
    pdftk_fill(blank_forms["buendnispartner"], {"organisation": "Kita A"},
               folder / "antwort.pdf")
    (folder / "scan.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200))
    with zipfile.ZipFile(folder / "Beitrittserklärung.docx", "w") as docx:
        docx.writestr("[Content_Types].xml", "<Types/>")
        docx.writestr("word/document.xml", "<w:document/>")
    (folder / "notiz.txt").write_text("bitte anrufen", encoding="utf-8")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "~$itrittserklärung.docx").write_bytes(b"lock")
    result = invoke(ws, "import", str(folder))
    assert result.exit_code == 1  # three files could not be taken
    out = result.output
    assert "scan.jpg" in out and "Foto oder Scan (JPEG-Bild)" in out
    assert "Beitrittserklärung.docx" in out and "Word- oder Office-Dokument" in out
    assert "notiz.txt" in out and "keine PDF-Datei" in out
    assert ".DS_Store" not in out and "~$" not in out
    assert "4 Datei(en)" in out and "1 importiert" in out


# -- pre-filled values fit their fields ---------------------------------------------------

def _appearance_size(field: object) -> tuple[float, float]:
    """The font size an appearance stream draws with, and the field's width."""
    import re

    stream = field.AP.N.read_bytes()  # type: ignore[attr-defined]
    size = float(re.search(rb"/FtHelv ([\d.]+) Tf", stream)[1])  # type: ignore[index]
    rect = [float(v) for v in field.Rect]  # type: ignore[attr-defined]
    return size, rect[2] - rect[0]


def test_the_longest_sample_address_is_drawn_whole(ws: Path) -> None:
    import pikepdf
    from reportlab.pdfbase.pdfmetrics import stringWidth

    contacts = ws / "contacts" / "fachberatungen.csv"
    lines = contacts.read_text(encoding="utf-8").splitlines()
    lines.append("FB-09999,Frau,,Ewa,Lang,Verein " + "mit sehr langem Namen " * 12
                 + ",,Weg 1,07381,Pößneck,Saale-Orla-Kreis,ewa.lang@verein.example,")
    contacts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke(ws, "forms", "generate", "buendnispartner", "--contacts", str(contacts))
    assert result.exit_code == 0, result.output
    # the one value that cannot fit even small is named, with the remedy
    assert "1 vorausgefüllte Angabe(n) passen auch in kleiner Schrift nicht" in result.output
    assert "FB-09999: Name der Organisation" in result.output
    longest = max((line.split(",")[11] for line in lines[1:-1]), key=len)
    assert len(longest) >= 50
    found = None
    for pdf_path in (ws / "formulare" / "buendnispartner").glob("*.pdf"):
        with pikepdf.open(pdf_path) as pdf:
            for field in pdf.Root.AcroForm.Fields:
                if str(field.get("/T")) == "email" and str(field.get("/V")) == longest:
                    found = _appearance_size(field), str(field.DA)
    assert found is not None
    (size, width), da = found
    assert 6 <= size < 10
    assert stringWidth(longest, "Helvetica", size) <= width - 4  # drawn whole
    assert f"/Helv {size:g} Tf" in da  # a viewer redrawing it keeps the size
