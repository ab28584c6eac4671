"""As the coordinator sees it (issue 13): a console of 80 columns, tables Excel opens
right, every file answered, messages in German. Real files, real CLI."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.policy
import io
from email import message_from_bytes
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import invoke, pdftk_fill, run
from mailhelpers import PASSWORD, USER, MemoryKeyring
from smtpserver import LocalSmtpServer
from test_mail import configure

from formtool.cli import cli
from formtool.mail.localsmtp import Mailbox, free_port
from formtool.screen import SendProgress
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
    size = float(re.search(rb"/FtSans ([\d.]+) Tf", stream)[1])  # type: ignore[index]
    rect = [float(v) for v in field.Rect]  # type: ignore[attr-defined]
    return size, rect[2] - rect[0]


def test_the_longest_sample_address_is_drawn_whole(ws: Path) -> None:
    import pikepdf

    from formtool.pdf import fonts

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
    assert fonts.metrics().width(longest, size) <= width - 4  # drawn whole
    assert f"/FtSans {size:g} Tf" in da  # a viewer redrawing it keeps the size


# -- set-up mistakes named, checked before the question ---------------------------------

@pytest.mark.parametrize(("server_security", "auth", "security", "stored", "message"), [
    ("none", False, "ssl", PASSWORD,  # a plain server on what is set as the TLS port
     "spricht am Anfang kein TLS: security = \"ssl\" passt nicht zu diesem Port"),
    ("ssl", True, "starttls", PASSWORD,  # a TLS server on what is set as a plain port
     "Vielleicht erwartet der Server sofort TLS: dann security = \"ssl\""),
    ("closed", False, "starttls", PASSWORD, "nimmt kein Mailserver Verbindungen an"),
    ("unknown-host", False, "starttls", PASSWORD, "nicht gefunden (der Name ist unbekannt)"),
    ("no-auth", False, "none", PASSWORD, "bietet keine Anmeldung (AUTH) an"),
    ("starttls", True, "starttls", "falsch", "als koordination@buendnis.example abgelehnt"),
    ("starttls-untrusted", True, "starttls", PASSWORD,
     "Zertifikat nicht vertrauenswürdig (selbst ausgestellt)"),
], ids=["plain-on-tls-port", "tls-on-plain-port", "closed-port", "unknown-host", "no-auth",
        "refused-login", "untrusted-certificate"])
def test_setup_mistakes_are_named_in_german(
        ws: Path, certificate: tuple[Path, Path], memory_keyring: MemoryKeyring,
        server_security: str, auth: bool, security: str, stored: str, message: str) -> None:
    certfile, keyfile = certificate
    trusted = server_security != "starttls-untrusted"
    kind = server_security.removesuffix("-untrusted")
    with contextlib.ExitStack() as stack:
        if kind in ("closed", "unknown-host"):
            port = free_port()
        else:
            server = stack.enter_context(LocalSmtpServer(
                Mailbox(), security="none" if kind == "no-auth" else kind, certfile=certfile,
                keyfile=keyfile, auth=(USER, PASSWORD) if auth else None,
                offer_auth=kind != "no-auth"))
            port = server.port
        configure(ws, port, security=security, ca_file=certfile if trusted else None,
                  timeout=2)
        if kind == "unknown-host":  # .invalid never resolves (RFC 2606)
            config = ws / "formtool.toml"
            config.write_text(config.read_text(encoding="utf-8").replace(
                'host = "127.0.0.1"', 'host = "smtp.gibt-es-nicht.invalid"'), encoding="utf-8")
        memory_keyring.set_password("formtool", f"{USER}@127.0.0.1", stored)
        memory_keyring.set_password("formtool", f"{USER}@smtp.gibt-es-nicht.invalid", stored)
        login = invoke(ws, "mail", "login", input=f"{stored}\n")  # piped: no getpass
        send = invoke(ws, "mail", "send", "erinnerung", input="j\n")
    for result in (login, send):
        assert result.exit_code == 1, result.output
        assert message in result.output, result.output
    assert "(aus der Eingabe gelesen)" in login.output
    assert "jetzt senden?" not in send.output  # the check comes before the question
    assert "Anmeldung bei" not in login.output or "erfolgreich" not in login.output


def test_no_keyring_backend_says_what_to_do(ws: Path, memory_keyring: MemoryKeyring) -> None:
    import keyring
    from keyring.backends import fail

    configure(ws, free_port())
    keyring.set_keyring(fail.Keyring())
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1
    assert "kein Schlüsselbund für Passwörter eingerichtet" in result.output
    assert "FORMTOOL_SMTP_PASSWORD" in result.output
    debug = CliRunner().invoke(cli, ["--debug", "--workspace", str(ws), "mail", "send",
                                     "erinnerung", "--yes"])
    assert "Technische Meldung: No recommended backend" in debug.output


# -- the live progress line ----------------------------------------------------------------

def test_progress_on_a_non_terminal_is_a_few_plain_lines(
        ws: Path, certificate: tuple[Path, Path], memory_keyring: MemoryKeyring) -> None:
    certfile, keyfile = certificate
    with LocalSmtpServer(Mailbox(), security="starttls", certfile=certfile, keyfile=keyfile,
                         auth=(USER, PASSWORD)) as server:
        configure(ws, server.port, ca_file=certfile)
        memory_keyring.set_password("formtool", f"{USER}@127.0.0.1", PASSWORD)
        result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Senden:")]
    assert "\r" not in result.output
    assert 2 <= len(lines) <= 12, lines
    assert lines[-1] == "Senden: 40 gesendet · 0 fehlgeschlagen · 0 offen"


def test_progress_counts_down_a_pause_on_one_line() -> None:
    now = [100.0]
    screen = io.StringIO()
    progress = SendProgress(40, stream=screen, tty=True, clock=lambda: now[0])
    for _ in range(20):
        progress.event("sent")
    progress.event("wait", detail="Grenze 20 pro Minute", seconds=37)
    assert progress.line() == ("Senden: 20 gesendet · 0 fehlgeschlagen · 20 offen · Pause "
                               "(20/Minute): 37 s")
    now[0] += 10
    assert progress.line().endswith("Pause (20/Minute): 27 s")
    progress.event("failed", key="FB-00003", detail="550 5.1.1 Postfach unbekannt")
    progress.close()
    out = screen.getvalue()
    assert "\n" not in out.replace("FB-00003: 550 5.1.1 Postfach unbekannt\n", "")
    assert all(len(part) < 80 for part in out.split("\r"))


def test_progress_in_a_log_shows_a_long_pause_once() -> None:
    now = [0.0]
    log = io.StringIO()
    progress = SendProgress(100, stream=log, tty=False, clock=lambda: now[0])
    for _ in range(21):  # short waits between sends: not worth a line each
        progress.event("wait", detail="Grenze 20 pro Minute", seconds=0.4)
        progress.event("sent")
    progress.event("wait", detail="Grenze 300 pro Stunde", seconds=1800)
    progress.event("wait", detail="Grenze 300 pro Stunde", seconds=1799)
    progress.close()
    lines = log.getvalue().splitlines()
    assert lines.count("Pause: Grenze 300 pro Stunde, weiter in 1800 s") == 1
    assert not any("0 s" in line and "Pause" in line for line in lines[:-1] if "1800" not in line)
    assert lines[-1] == "Senden: 21 gesendet · 0 fehlgeschlagen · 79 offen"


# -- the plain-text part reads as text -----------------------------------------------------

def test_plain_text_part_has_no_markdown_but_keeps_the_contacts_stars(ws: Path) -> None:
    contacts = ws / "contacts" / "sterne.csv"
    contacts.write_text("id,anrede,vorname,nachname,organisation,email\n"
                        "S-1,Frau,Eva,Stern,Verein der Kolleg*innen **e. V.**,eva@kita.example\n",
                        encoding="utf-8")
    result = invoke(ws, "mail", "preview", "einladung-fachberatung", "--contacts",
                    str(contacts))
    assert result.exit_code == 0, result.output
    [eml] = (ws / "vorschau" / "einladung-fachberatung").glob("*.eml")
    assert eml.name == "00001_S-1.eml"  # numbered in list order, named by the id
    mail = message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    plain = " ".join(mail.get_body(("plain",)).get_content().split())  # lines wrap at 76
    assert "gute Qualität in der Kindertagesbetreuung" in plain
    assert "**gute" not in plain and "Beitrittserklärung** " not in plain
    assert "Verein der Kolleg*innen **e. V.**" in plain  # the contact's value, as given
    html = mail.get_body(("html",)).get_content()
    assert "<strong>gute Qualität" in html
