"""Contact lists as people make them in Excel (issue 20): headers as written
(`Organisation`, `Nachname`, `E-Mail-Adresse`), postcodes stored as numbers, and the
older "CSV (Trennzeichen-getrennt)" that turns ł ś ş into "?"."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default
from pathlib import Path

from helpers import field_values, invoke

HEADER = "Organisation;Anrede;Titel;Vorname;Nachname;E-Mail-Adresse;Straße;PLZ;Ort\r\n"
ROWS = ("Jugendamt Saale-Orla;Frau;Dr.;Jana;Köhler;jana.koehler@saale-orla.example;"
        "Oschitzer Str. 4;7907;Schleiz\r\n"
        "Caritas Eichsfeld;Frau;;Agnieszka;Wi?niewska-Kowalczyk;a.w@caritas-eichsfeld.example;"
        "Lindenallee 2;37308;Heilbad Heiligenstadt\r\n")


def _list(ws: Path) -> Path:
    (ws / "contacts" / "fachberatungen.csv").unlink()
    path = ws / "contacts" / "liste.csv"
    path.write_bytes((HEADER + ROWS).encode("cp1252"))  # as Excel's older CSV writes it
    return path


def test_headers_as_people_write_them(ws: Path) -> None:
    contacts = _list(ws)
    result = invoke(ws, "mail", "preview", "einladung-fachberatung", "--contacts", str(contacts))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Kontaktliste: liste.csv" in text
    assert "„E-Mail-Adresse“ → email" in text and "„Nachname“ → nachname" in text
    assert "„Organisation“ → organisation" in text
    first = sorted((ws / "vorschau").rglob("*.eml"))[0]
    msg = message_from_bytes(first.read_bytes(), policy=default)
    assert msg["To"].addresses[0].addr_spec == "jana.koehler@saale-orla.example"
    body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Sehr geehrte Frau Dr. Köhler," in body


def test_a_lost_leading_zero_is_restored_and_said(ws: Path, tmp_path: Path) -> None:
    contacts = _list(ws)
    result = invoke(ws, "mail", "preview", "einladung-fachberatung", "--contacts", str(contacts))
    text = " ".join(result.output.split())
    assert "1 Postleitzahl(en) mit 4 Ziffern um die führende 0 ergänzt" in text
    assert "Zeile 2: 7907 → 07907" in text
    out = tmp_path / "formulare"
    invoke(ws, "forms", "generate", "buendnispartner", "--contacts", str(contacts),
           "--out-dir", str(out))
    values = [field_values(p) for p in sorted(out.glob("*.pdf"))]
    assert "07907" in [v.get("plz") for v in values]  # the personal form shows it right


def test_question_marks_of_excels_old_csv_are_named(ws: Path) -> None:
    contacts = _list(ws)
    result = invoke(ws, "mail", "preview", "einladung-fachberatung", "--contacts", str(contacts))
    text = " ".join(result.output.split())
    assert "Zeile 3: „Wi?niewska-Kowalczyk“" in text and "CSV UTF-8" in text


def test_a_workbook_beside_the_list_is_named_not_passed_over(ws: Path) -> None:
    """Two lists (a CSV and a workbook): formtool asks which one; a format it cannot read
    (.ods) beside the list is named, so nobody believes the wrong list went out."""
    (ws / "contacts" / "Fachberatungen 2026.xlsx").write_bytes(b"PK\x03\x04 workbook")
    both = invoke(ws, "mail", "preview", "einladung-fachberatung")
    text = " ".join(both.output.split())
    assert both.exit_code == 1 and "Bitte die Kontaktliste mit --contacts angeben" in text
    assert "Fachberatungen 2026.xlsx, fachberatungen.csv" in text
    (ws / "contacts" / "Fachberatungen 2026.xlsx").rename(ws / "contacts" / "Liste.ods")
    result = invoke(ws, "mail", "preview", "einladung-fachberatung")
    text = " ".join(result.output.split())
    assert "Kontaktliste: fachberatungen.csv (nicht gelesen: Liste.ods" in text
    assert "CSV UTF-8" in text
    (ws / "contacts" / "fachberatungen.csv").unlink()
    alone = invoke(ws, "mail", "preview", "einladung-fachberatung")
    assert alone.exit_code == 1 and "keine Kontaktliste (.csv oder .xlsx)" in alone.output
    assert "Liste.ods" in " ".join(alone.output.split())


def test_preview_attaches_what_send_would_and_starts_fresh(ws: Path) -> None:
    """`mail preview --attach-form`: each .eml carries the contact's own pre-filled form;
    a second preview replaces the first instead of piling up beside it (issue 20)."""
    import io

    from pypdf import PdfReader

    first = invoke(ws, "mail", "preview", "einladung-fachberatung", "--attach-form",
                   "buendnispartner")
    assert first.exit_code == 0, first.output
    folder = ws / "vorschau" / "einladung-fachberatung"
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 40
    msg = message_from_bytes(files[0].read_bytes(), policy=default)
    [pdf] = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
    fields = PdfReader(io.BytesIO(pdf.get_content())).get_fields() or {}
    assert fields["response_id"].get("/V")  # the personal copy, not the blank form
    assert fields["email"].get("/V") == msg["To"].addresses[0].addr_spec
    again = invoke(ws, "mail", "preview", "einladung-fachberatung", "--to", "FB-00001")
    assert again.exit_code == 0
    assert len(list(folder.glob("*.eml"))) == 1  # this preview only


def test_rows_less_personal_than_meant_are_warned_before_the_question(ws: Path) -> None:
    """A list whose columns are named so that nothing matches: the mails greet
    "Damen und Herren" and the personal forms stay empty – said with count and example."""
    (ws / "contacts" / "fachberatungen.csv").unlink()
    path = ws / "contacts" / "liste.csv"
    path.write_text("Mail;Ansprechperson;Einrichtung\n"
                    "a@kita-one.example;Frau Jana Köhler;Kita Sonnenschein\n"
                    "b@kita-two.example;Herr Ali Yılmaz;Kita Regenbogen\n", encoding="utf-8")
    result = invoke(ws, "mail", "preview", "einladung-fachberatung", "--attach-form",
                    "buendnispartner")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Achtung: 2 von 2 E-Mails beginnen mit „Sehr geehrte Damen und Herren,“" in text
    assert "z. B. Zeile 2 (a@kita-one.example)" in text
    assert "Im persönlichen Formular bleiben Felder leer:" in text
    assert "von 2 Formularen" in text and "Nachname" in text and "Organisation" not in text

    from test_mail import configure

    from formtool import workspace
    from formtool.usecases import sending

    configure(ws, 2525)  # a sender; nothing is sent
    with sending.prepare(workspace.load(ws), "einladung-fachberatung",
                         attach_form="buendnispartner") as plan:
        warned = " ".join(plan.warnings)
    assert "2 von 2 E-Mails beginnen mit" in warned and "bleiben Felder leer" in warned


def test_a_list_that_greets_by_name_is_not_warned(ws: Path) -> None:
    result = invoke(ws, "mail", "preview", "einladung-fachberatung", "--attach-form",
                    "buendnispartner")
    assert result.exit_code == 0, result.output
    assert "Damen und Herren" not in " ".join(result.output.split()).split("Betreff")[0]
    assert "bleiben Felder leer" not in result.output
