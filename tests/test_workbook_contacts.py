"""Contact lists straight from Excel (issue 23): an .xlsx read as Excel shows it, with
the same verdicts as the CSV, streaming and bounded."""

from __future__ import annotations

import datetime as dt
import io
import tracemalloc
import zipfile
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import openpyxl
import pytest
from helpers import invoke

from formtool.mail import contacts

HEADER = ["Organisation", "Anrede", "Nachname", "E-Mail-Adresse", "PLZ", "Seit", "Summe"]


def _book(path: Path, rows: list[list[object]], *, sheet: str = "Kontakte",
          blank_top: int = 0) -> Path:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = sheet
    for _ in range(blank_top):
        ws.append([])
    ws.append(HEADER)
    for row in rows:
        ws.append(row)
    for cell in ws["E"][1 + blank_top:]:
        cell.number_format = "00000"
    book.create_sheet("Notizen").append(["nur", "Text"])
    book.save(path)
    return path


def test_a_workbook_is_read_as_excel_shows_it(ws: Path) -> None:
    path = _book(ws / "contacts" / "liste.xlsx", [
        ["Jugendamt Saale-Orla", "Frau", "Köhler", "jana@saale-orla.example", 7907,
         dt.date(2024, 3, 1), "=1+1"],
        ["Caritas", "Herr", "Wiśniewski", "kein-at-zeichen", 37308, None, 2.5],
        ["Diakonie", "Frau", "Groß", "JANA@saale-orla.example", 99084, None, 3],
    ], blank_top=2)
    listed = contacts.read(path)
    found = list(listed)
    assert [c.email for c in found] == ["jana@saale-orla.example"]
    first = found[0]
    assert first.row == 4  # Excel's row number: two empty rows, then the header
    assert first.get("plz") == "07907" and first.get("Seit") == "01.03.2024"
    assert first.get("Summe") == ""  # a formula: its cached value, never evaluated
    reasons = {s.row: s.reason for s in listed.skipped}
    assert "ungültige E-Mail-Adresse" in reasons[5] and "schon in Zeile 4" in reasons[6]
    assert any("Blatt „Kontakte“" in line and "Notizen" in line for line in listed.described())


def test_the_cli_sends_from_a_workbook_and_its_named_sheet(ws: Path) -> None:
    (ws / "contacts" / "fachberatungen.csv").unlink()
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "Alt"
    first.append(["E-Mail", "Nachname"])
    first.append(["alt@kita.example", "Alt"])
    second = book.create_sheet("Aktuell")
    second.append(["Organisation", "Anrede", "Nachname", "E-Mail"])
    second.append(["Kita Sonnenschein", "Frau", "Yılmaz", "neu@kita.example"])
    second.row_dimensions[2].hidden = True
    book.save(ws / "contacts" / "kontakte.xlsx")
    result = invoke(ws, "mail", "preview", "einladung-fachberatung", "--blatt", "Aktuell")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Kontaktliste: kontakte.xlsx" in text and "Blatt „Aktuell“" in text
    assert "1 ausgeblendete Zeile(n) werden mitgelesen (Zeile 2" in text
    eml = sorted((ws / "vorschau").rglob("*.eml"))
    assert len(eml) == 1
    msg = message_from_bytes(eml[0].read_bytes(), policy=default)
    assert msg["To"].addresses[0].addr_spec == "neu@kita.example"
    assert "Sehr geehrte Frau Yılmaz," in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    wrong = invoke(ws, "mail", "preview", "einladung-fachberatung", "--blatt", "Fehlt")
    assert wrong.exit_code == 1 and "kein Blatt „Fehlt“ (vorhanden: Alt, Aktuell)" in wrong.output


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    path = tmp_path / "bombe.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/sharedStrings.xml", b"<sst>" + b"A" * (300 * 1024 * 1024))
    tracemalloc.start()
    with pytest.raises(contacts.ContactsError, match="Zip-Bombe"):
        contacts.read(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


def test_a_huge_cell_and_too_many_rows_are_clear_messages(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from formtool.data import sheets

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["E-Mail", "Notiz"])
    sheet.append(["a@b.example", "x" * 40_000])  # more than Excel itself allows
    book.save(tmp_path / "zelle.xlsx")
    with pytest.raises(contacts.ContactsError, match=r"Zelle B2 ist mindestens 32\.767"):
        contacts.read(tmp_path / "zelle.xlsx")
    monkeypatch.setattr(sheets, "MAX_ROWS", 50)
    rows = [["E-Mail"]] + [[f"p{i}@b.example"] for i in range(60)]
    many = openpyxl.Workbook()
    target = many.active
    assert target is not None
    for row in rows:
        target.append(row)
    many.save(tmp_path / "viele.xlsx")
    with pytest.raises(contacts.ContactsError, match="mehr als 50 Zeilen"):
        contacts.read(tmp_path / "viele.xlsx")


def test_a_damaged_workbook_is_named(tmp_path: Path) -> None:
    path = tmp_path / "kaputt.xlsx"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(contacts.ContactsError, match="keine lesbare Excel-Arbeitsmappe"):
        contacts.read(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "no workbook")
    path.write_bytes(buffer.getvalue())
    with pytest.raises(contacts.ContactsError, match="keine lesbare Excel-Arbeitsmappe"):
        contacts.read(path)
