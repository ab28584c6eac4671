"""Outreach mail against a real SMTP server on 127.0.0.1 (aiosmtpd), STARTTLS and AUTH."""

from __future__ import annotations

import dataclasses
import email.policy
import functools
import re
import shutil
import smtplib
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import pytest
from helpers import invoke
from hypothesis import given
from hypothesis import strategies as st
from mailhelpers import PASSWORD, USER, FaultyMailbox, MemoryKeyring
from smtpserver import LocalSmtpServer

from formtool import addresses, workspace
from formtool.mail import contacts, message, outbox, smtp, template
from formtool.state.store import Journal, SendState, Store
from formtool.usecases import credentials, sending

SHARED = Path(__file__).resolve().parent / "data"  # copies of shared/data
CONTACTS = workspace.shipped_forms_dir().parent / "contacts" / "fachberatungen.csv"


def configure(ws: Path, port: int, *, security: str = "starttls", ca_file: Path | None = None,
              user: str = USER, extra_smtp: str = "", limits: str = "",
              timeout: float = 10) -> None:
    (ws / "formtool.toml").write_text(f"""
[buendnis]
name = "Bündnis für Qualität in der Kindertagesbetreuung Thüringen"

[sender]
name = "Bündnis Kita-Qualität Thüringen – Koordination"
email = "koordination@buendnis.example"
unsubscribe = "abmelden@buendnis.example"

[smtp]
host = "127.0.0.1"
port = {port}
security = "{security}"
user = "{user}"
ca_file = "{ca_file or ''}"
timeout = {timeout:g}
{extra_smtp}

[limits]
per_minute = 0
per_hour = 0
{limits}
""", encoding="utf-8")


@pytest.fixture
def server(certificate: tuple[Path, Path], ws: Path,
           memory_keyring: MemoryKeyring) -> Iterator[LocalSmtpServer]:
    """STARTTLS + AUTH on loopback; the workspace is configured for it, password stored."""
    certfile, keyfile = certificate
    with LocalSmtpServer(FaultyMailbox(), security="starttls", certfile=certfile,
                         keyfile=keyfile, auth=(USER, PASSWORD)) as smtp:
        configure(ws, smtp.port, ca_file=certfile)
        memory_keyring.set_password("formtool", f"{USER}@127.0.0.1", PASSWORD)
        yield smtp


def received(smtp: LocalSmtpServer) -> list[EmailMessage]:
    return [r.message() for r in smtp.handler.received]


def test_messy_contacts_are_reported_by_row() -> None:
    contact_list = contacts.read(SHARED / "fachberatungen-messy.csv")
    good = list(contact_list)
    assert [c.key for c in good] == ["FB-1", "FB-2", "FB-6"]
    assert good[1].email == "soeren.weiss@diakonie-gotha.example"  # spaces stripped
    assert good[1].get("organisation") == "Diakonie Gotha"
    assert [(s.row, s.reason) for s in contact_list.skipped] == [
        (4, "keine E-Mail-Adresse"),
        (5, "ungültige E-Mail-Adresse „renee.moeller(at)caritas-eichsfeld.example“"),
        (6, "Adresse jana.koehler@jugendamt-greiz.example schon in Zeile 2"),
        (9, "zu wenige Spalten (8 statt 9)"),
        (10, "doppelte ID „FB-1“ (schon in Zeile 2)"),
    ]


def test_excel_export_reads_like_the_utf8_list() -> None:
    excel = contacts.read(SHARED / "fachberatungen-excel.csv")
    plain = contacts.read(SHARED / "fachberatungen.csv")
    assert (excel.encoding, excel.delimiter) == ("cp1252", ";")
    assert [c.columns for c in excel] == [c.columns for c in plain]


def test_bom_and_tab_separated(tmp_path: Path) -> None:
    path = tmp_path / "tab.csv"
    path.write_bytes("\ufeff id \t E-Mail \tNachname\n1\ta@b.example\tGröße\n".encode())
    [contact] = list(contacts.read(path))
    assert (contact.key, contact.email, contact.get("Nachname")) == ("1", "a@b.example", "Größe")


UMLAUT_DOMAINS = ("id,anrede,nachname,organisation,email\n"
                  "U1,Frau,Özdemir,Kita Müller,info@Kita-Müller.example\n"
                  "U2,Herr,Weiß,Kita an der Straße,post@straße.example\n"
                  "U3,Herr,Müller,Kita Sonnenschein,jürgen@kita.example\n"
                  "U4,,,Kita Müller (doppelt),INFO@kita-müller.example\n")


def test_umlaut_domains_are_sent_in_their_idna_form(tmp_path: Path) -> None:
    """info@kita-müller.de is a valid address (IDNA, RFC 5891): mail goes to its ASCII form.
    ß stays ß (IDNA 2008, as DENIC registers it), umlauts before the @ are refused."""
    path = tmp_path / "umlaute.csv"
    path.write_text(UMLAUT_DOMAINS, encoding="utf-8")
    contact_list = contacts.read(path)
    assert [(c.key, c.email) for c in contact_list] == [
        ("U1", "info@xn--kita-mller-feb.example"), ("U2", "post@xn--strae-oqa.example")]
    assert [(s.row, s.reason) for s in contact_list.skipped] == [
        (4, "ungültige E-Mail-Adresse „jürgen@kita.example“ (Umlaute vor dem @)"),
        (5, "Adresse INFO@kita-müller.example schon in Zeile 2"),
    ]
    assert addresses.same_address("Info@Kita-Müller.example", "info@xn--kita-mller-feb.example")
    assert not addresses.same_address("post@straße.example", "post@strasse.example")


def test_umlaut_domain_over_the_wire_opt_out_and_forget(ws: Path,
                                                        server: LocalSmtpServer) -> None:
    (ws / "contacts" / "fachberatungen.csv").write_text(UMLAUT_DOMAINS, encoding="utf-8")
    invoke(ws, "mail", "optout", "post@straße.example")
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1, result.output  # one row skipped: not everybody got it
    assert "abgemeldet: 1" in result.output
    assert "1 Kontakt(e) ohne E-Mail" in result.output  # the repeated address is a note
    [got] = server.handler.received
    assert got.rcpt_tos == ("info@xn--kita-mller-feb.example",)
    assert got.message()["To"].addresses[0].addr_spec == "info@xn--kita-mller-feb.example"
    forgotten = invoke(ws, "forget", "info@kita-müller.example")
    assert "1 Kontakt(e), 1 Sendung(en)" in forgotten.output
    assert "contacts/fachberatungen.csv: 2 Zeile(n) enthält noch Daten" in forgotten.output


@pytest.mark.parametrize(("anrede", "titel", "nachname", "expected"), [
    ("Frau", "Dr.", "Köhler", "Sehr geehrte Frau Dr. Köhler,"),
    ("Herr", "", "Weiß", "Sehr geehrter Herr Weiß,"),
    ("", "", "Fachberatung", "Sehr geehrte Damen und Herren,"),
    ("Frau", "", "", "Sehr geehrte Damen und Herren,"),
])
def test_salutation(anrede: str, titel: str, nachname: str, expected: str) -> None:
    from formtool.mail.template import salutation

    contact = contacts.Contact(2, "x", "x@y.example",
                               {"anrede": anrede, "titel": titel, "nachname": nachname})
    assert salutation(contact) == expected


def test_preview_writes_eml_and_sends_nothing(ws: Path) -> None:
    result = invoke(ws, "mail", "preview", "einladung-fachberatung", "--contacts",
                    str(SHARED / "fachberatungen-messy.csv"))
    assert result.exit_code == 0, result.output
    # the repeated address is a note, not a row whose person gets nothing (issue 20)
    assert "4 Zeile(n) in fachberatungen-messy.csv übersprungen" in result.output
    assert "Hinweis: 1 Zeile(n) in fachberatungen-messy.csv wiederholen eine Adresse" in (
        result.output)
    assert "Zeile 5 (FB-4): ungültige E-Mail-Adresse" in result.output
    assert "Subject: Einladung: Werden Sie Bündnispartner*in" in result.output
    assert "Sehr geehrte Frau Köhler," in result.output
    assert "Sehr geehrter Herr Dr. Weiß," not in result.output  # only the first is printed
    files = sorted((ws / "vorschau" / "einladung-fachberatung").glob("*.eml"))
    assert len(files) == 3
    second = message_from_bytes(files[1].read_bytes(), policy=email.policy.default)
    assert "Sehr geehrter Herr Dr. Weiß," in second.get_body(("plain",)).get_content()
    assert "gesendet wurde nichts" in result.output


def test_unknown_variable_stops_before_the_first_message(ws: Path,
                                                         server: LocalSmtpServer) -> None:
    (ws / "templates" / "kaputt.md.j2").write_text(
        "Subject: Hallo {{ organisation }}\n\n{{ anrede_brief }}\n\nTel. {{ telefonnummer }}\n",
        encoding="utf-8")
    result = invoke(ws, "mail", "send", "kaputt", "--yes")
    assert result.exit_code == 1
    assert ("contacts/fachberatungen.csv, Zeile 2 (FB-00001): Vorlage kaputt.md.j2:5: "
            "unbekannte Variable „telefonnummer“") in result.output
    assert "40 E-Mail(s) lassen sich nicht erstellen" in result.output
    assert server.handler.received == []


def test_send_over_starttls_with_auth(ws: Path, server: LocalSmtpServer) -> None:
    result = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes")
    assert result.exit_code == 0, result.output
    assert "Fertig: 40 gesendet." in result.output
    assert server.handler.connections == 1  # one connection carries all 40
    messages = received(server)
    assert len(messages) == 40
    ids = [m["Message-ID"] for m in messages]
    assert len(set(ids)) == 40 and all(i.endswith("@buendnis.example>") for i in ids)
    first = messages[0]
    assert first["From"].addresses[0].display_name == (
        "Bündnis Kita-Qualität Thüringen – Koordination")
    assert first["To"].addresses[0].display_name == "Claudia Köhler"
    assert first["To"].addresses[0].addr_spec == (
        "claudia.koehler.1@caritasverba-altenburger-la.example")
    assert first["List-Unsubscribe"] == "<mailto:abmelden@buendnis.example?subject=Abmelden>"
    assert first["Date"] and "Bcc" not in first
    assert first.get_content_type() == "multipart/mixed"
    alternative, pdf = first.iter_parts()
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain",
                                                                       "text/html"]
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == "Beitrittserklärung Bündnispartner.pdf"
    assert pdf.get_content().startswith(b"%PDF-")
    raw = re.sub(r"\r\n[ \t]+", " ", server.handler.received[0].data.decode("ascii"))
    assert "filename*=utf-8''Beitrittserkl%C3%A4rung%20B%C3%BCndnispartner.pdf" in raw
    # RFC 2047: the display name is one encoded word, the address readable outside it
    assert re.search(r"^From: =\?utf-8\?q\?B=C3=BCndnis_.*_Koordination\?= "
                     r"<koordination@buendnis\.example>\r?$", raw, re.M)
    html = alternative.get_body(("html",)).get_content()
    assert "<strong>Caritasverband Altenburger Land</strong>" in html
    text = first.get_body(("plain",)).get_content()
    assert text.startswith("Sehr geehrte Frau Köhler,")
    assert "Betreff „Abmelden“ an abmelden@buendnis.example" in text
    assert server.handler.received[0].rcpt_tos == (
        "claudia.koehler.1@caritasverba-altenburger-la.example",)

    again = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes")
    assert again.exit_code == 0
    assert "schon gesendet: 40" in again.output and "Nichts zu senden." in again.output
    assert len(server.handler.received) == 40


def test_values_are_escaped_in_html_and_cannot_inject_headers(ws: Path,
                                                               server: LocalSmtpServer) -> None:
    path = ws / "contacts" / "boese.csv"
    path.write_text('id,email,organisation,nachname\n1,a@kita.example,"<script>x</script> & Co'
                    '\r\nBcc: evil@evil.example",Test\n', encoding="utf-8")
    (ws / "templates" / "t.md.j2").write_text(
        "Subject: Für {{ organisation }}\n\nHallo **{{ organisation }}**\n", encoding="utf-8")
    result = invoke(ws, "mail", "send", "t", "--contacts", str(path), "--yes")
    assert result.exit_code == 0, result.output
    [message] = received(server)
    assert "Bcc" not in message
    assert message["Subject"] == "Für <script>x</script> & Co Bcc: evil@evil.example"
    assert server.handler.received[0].rcpt_tos == ("a@kita.example",)
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt; &amp; Co" in html


def test_implicit_tls(ws: Path, certificate: tuple[Path, Path]) -> None:
    certfile, keyfile = certificate
    with LocalSmtpServer(security="ssl", certfile=certfile, keyfile=keyfile,
                         auth=(USER, PASSWORD)) as smtp:
        configure(ws, smtp.port, security="ssl", ca_file=certfile)
        (ws / "contacts" / "eine.csv").write_text("email,organisation\nx@kita.example,Kita\n",
                                                 encoding="utf-8")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(credentials.PASSWORD_ENV, PASSWORD)
            result = invoke(ws, "mail", "send", "erinnerung", "--contacts",
                            str(ws / "contacts" / "eine.csv"), "--yes")
        assert result.exit_code == 0, result.output
        assert len(smtp.handler.received) == 1


def test_untrusted_certificate_is_refused(ws: Path, server: LocalSmtpServer) -> None:
    configure(ws, server.port)  # no ca_file: the self-signed certificate is not trusted
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1
    assert "Zertifikat nicht vertrauenswürdig" in result.output
    assert server.handler.received == []


def test_no_plain_text_fallback_without_starttls(ws: Path) -> None:
    with LocalSmtpServer() as smtp:
        configure(ws, smtp.port, user="")
        result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1
    assert "bietet kein STARTTLS an; unverschlüsselt sendet formtool nicht" in result.output


def test_refused_login_stops_the_run(ws: Path, server: LocalSmtpServer,
                                     memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password("formtool", f"{USER}@127.0.0.1", "falsch")
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1
    assert f"Anmeldung bei 127.0.0.1:{server.port} als {USER} abgelehnt (535" in result.output
    assert "formtool mail login" in result.output
    assert server.handler.received == []


def test_missing_password_names_the_remedy(ws: Path, server: LocalSmtpServer,
                                           memory_keyring: MemoryKeyring) -> None:
    memory_keyring.passwords.clear()
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1
    assert "Kein Passwort für" in result.output and "formtool mail login" in result.output


def test_confirmation_in_german(ws: Path, server: LocalSmtpServer) -> None:
    result = invoke(ws, "mail", "send", "erinnerung", "--limit", "1", input="ja\n")
    assert result.exit_code == 0, result.output
    assert len(server.handler.received) == 1


def test_a_mailbox_of_another_domain_is_pointed_out(ws: Path, server: LocalSmtpServer,
                                                   certificate: tuple[Path, Path],
                                                   memory_keyring: MemoryKeyring) -> None:
    """Sent from koordination@buendnis.example through a gmail.example mailbox: receivers
    checking SPF/DKIM/DMARC may reject it, so the user hears it before confirming."""
    result = invoke(ws, "mail", "send", "erinnerung", input="n\n")
    assert "verschiedene Domains" not in result.output
    configure(ws, server.port, ca_file=certificate[0], user="buendnis.kita@gmail.example")
    memory_keyring.set_password("formtool", "buendnis.kita@gmail.example@127.0.0.1", PASSWORD)
    result = invoke(ws, "mail", "send", "erinnerung", input="n\n")
    assert ("Achtung: Absender koordination@buendnis.example, Postfach "
            "buendnis.kita@gmail.example: verschiedene Domains.") in result.output
    # the login is tried before the question: this server knows no such user
    assert "als buendnis.kita@gmail.example abgelehnt" in result.output
    assert "jetzt senden?" not in result.output and result.exit_code == 1
    for same in ("koordination@buendnis.example", "versand@mail.buendnis.example", "kita-buendnis"):
        settings = workspace.load(ws).mail_settings()
        assert smtp.domain_mismatch(dataclasses.replace(settings, user=same)) is None


def test_send_refuses_without_a_sender(ws: Path) -> None:
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1
    assert "Kein Absender eingestellt" in result.output


def test_confirmation_is_asked(ws: Path, server: LocalSmtpServer) -> None:
    result = invoke(ws, "mail", "send", "erinnerung", input="n\n")
    assert result.exit_code == 1
    assert "40 E-Mail(s) jetzt senden? [j/N]" in result.output
    assert "Abgebrochen – gesendet wurde nichts." in result.output
    assert "Fehler" not in result.output  # declining is the user's choice, not an error
    assert server.handler.received == []


def test_550_fails_one_and_the_run_goes_on(ws: Path, server: LocalSmtpServer) -> None:
    bad = "anja.gross-dietrich.2@diakonie-eichsfeld.example"
    server.handler.refuse[bad] = "550 5.1.1 Postfach unbekannt"
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1
    assert "Fertig: 39 gesendet, 1 fehlgeschlagen." in result.output
    assert (f"Zeile 3 (Anja Groß-Dietrich <{bad}>): 550 5.1.1 Postfach unbekannt"
            in result.output)
    with Store(ws / ".formtool" / "state.db") as store:
        record = Journal(store).get("erinnerung", bad)
    assert record is not None and (record.state, record.reply) == (
        "failed", "550 5.1.1 Postfach unbekannt")
    again = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert "früher abgewiesen (erneut mit --retry-failed): 1" in again.output
    assert again.exit_code == 1  # the contact did not get the mail
    assert len(server.handler.received) == 39
    listed = invoke(ws, "status", "erinnerung", "--fehler")
    [block] = [b for b in listed.output.split("\n\n") if "FB-00002" in b]
    assert "Anja Groß-Dietrich" in block and "fehlgeschlagen" in block
    assert "550 5.1.1 Postfach unbekannt" in block
    invoke(ws, "status", "erinnerung", "--fehler", "--csv", str(ws / "fehler.csv"))
    table = (ws / "fehler.csv").read_text(encoding="utf-8-sig").splitlines()
    assert table[0] == "ID;Name;Organisation;E-Mail;Zustand;Antwort des Servers;versucht am"
    assert len(table) == 2 and table[1].startswith("FB-00002;Anja Groß-Dietrich;")
    both = invoke(ws, "status", "erinnerung", "--fehler", "--offen")
    assert both.exit_code == 2 and "Nur eines von --offen, --fehler, --antworten." in both.output


def test_dropped_connection_reconnects_without_duplicates(ws: Path,
                                                          server: LocalSmtpServer) -> None:
    server.handler.drop.add("heike.schroeder.3@kita-zweckve-gotha.example")
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 0, result.output
    assert server.handler.connections == 2
    tos = Counter(r.rcpt_tos[0] for r in server.handler.received)
    assert len(tos) == 40 and set(tos.values()) == {1}


def test_parallel_connections(ws: Path, server: LocalSmtpServer,
                              certificate: tuple[Path, Path]) -> None:
    configure(ws, server.port, ca_file=certificate[0], extra_smtp="connections = 3")
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 0, result.output
    assert server.handler.connections == 3
    tos = Counter(r.rcpt_tos[0] for r in server.handler.received)
    assert len(tos) == 40 and set(tos.values()) == {1}


def test_limit_and_resume(ws: Path, server: LocalSmtpServer) -> None:
    first = invoke(ws, "mail", "send", "erinnerung", "--yes", "--limit", "15")
    assert "Fertig: 15 gesendet, 25 wegen --limit nicht gesendet." in first.output
    second = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert "schon gesendet: 15" in second.output
    assert "Fertig: 25 gesendet, 15 schon vorher gesendet." in second.output
    tos = Counter(r.rcpt_tos[0] for r in server.handler.received)
    assert len(tos) == 40 and set(tos.values()) == {1}


def test_optouts_are_never_mailed(ws: Path, server: LocalSmtpServer) -> None:
    result = invoke(ws, "mail", "optout", "Claudia.Koehler.1@caritasverba-altenburger-la.example")
    assert "1 Adresse(n) abgemeldet." in result.output
    listed = ws / "contacts" / "mit-abmeldung.csv"
    text = CONTACTS.read_text(encoding="utf-8").splitlines()
    rows = [text[0] + ",abgemeldet"] + [f"{line},{'ja' if i == 2 else ''}"
                                        for i, line in enumerate(text[1:], 1)]
    listed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = invoke(ws, "mail", "send", "erinnerung", "--contacts", str(listed), "--yes")
    assert "abgemeldet: 2" in result.output and "Fertig: 38 gesendet" in result.output
    # the opt-out from the list now holds for every campaign and every list
    other = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes", "--contacts",
                   str(ws / "contacts" / "fachberatungen.csv"))
    assert "abgemeldet: 2" in other.output
    tos = {r.rcpt_tos[0] for r in server.handler.received}
    assert "claudia.koehler.1@caritasverba-altenburger-la.example" not in tos
    assert "anja.gross-dietrich.2@diakonie-eichsfeld.example" not in tos
    assert len(server.handler.received) == 76
    with Store(ws / ".formtool" / "state.db") as store:
        hashes = [r[0] for r in store.db.execute("SELECT email_hash FROM optouts")]
    assert len(hashes) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)


def test_size_limit_is_checked_before_sending(ws: Path, server: LocalSmtpServer,
                                              certificate: tuple[Path, Path]) -> None:
    configure(ws, server.port, ca_file=certificate[0], limits="max_size_mb = 0.01")
    result = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes")
    assert result.exit_code == 1
    assert "MB groß (Grenze 0.01 MB)" in result.output
    assert server.handler.received == []


def test_login_stores_the_password_and_never_shows_it(ws: Path, server: LocalSmtpServer,
                                                      memory_keyring: MemoryKeyring) -> None:
    memory_keyring.passwords.clear()
    result = invoke(ws, "mail", "login", input=f"{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Anmeldung bei 127.0.0.1 erfolgreich" in result.output
    assert memory_keyring.get_password("formtool", f"{USER}@127.0.0.1") == PASSWORD
    send = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert send.exit_code == 0
    outputs = result.output + send.output
    assert PASSWORD not in outputs
    for path in ws.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
            assert PASSWORD.encode("utf-8") not in path.read_bytes().replace(b"\0", b"")


def test_wrong_password_at_login_is_not_stored(ws: Path, server: LocalSmtpServer,
                                               memory_keyring: MemoryKeyring) -> None:
    memory_keyring.passwords.clear()
    result = invoke(ws, "mail", "login", input="falsch\n")
    assert result.exit_code == 1
    assert "abgelehnt" in result.output
    assert memory_keyring.passwords == {}


def test_4xx_is_retried_then_left_pending(ws: Path, server: LocalSmtpServer) -> None:
    deferred = "nils.thiele.4@jugendamt-greiz.example"
    server.handler.defer[deferred] = 1
    settings = workspace.load(ws).mail_settings()
    sent = _send_library(ws, settings, retry_delays=(0.01,))
    assert sent.sent == 40 and sent.pending == 0
    server.handler.defer["heike.schroeder.3@kita-zweckve-gotha.example"] = 5
    again = _send_library(ws, settings, campaign="zweite", retry_delays=(0.01, 0.01))
    assert (again.sent, again.pending) == (39, 1)
    with Store(ws / ".formtool" / "state.db") as store:
        record = Journal(store).get("zweite", "heike.schroeder.3@kita-zweckve-gotha.example")
    assert record is not None and record.state == "pending" and record.reply.startswith("451")
    server.handler.defer.clear()
    with sending.prepare(workspace.load(ws), "erinnerung", campaign="zweite") as plan:
        last = plan.send(PASSWORD)
    assert (last.summary.sent, last.before.already_sent) == (1, 39)


def _send_library(ws: Path, settings: workspace.MailSettings, *, campaign: str = "erste",
                  retry_delays: tuple[float, ...] = ()) -> outbox.Summary:
    with sending.prepare(workspace.load(ws), "erinnerung", campaign=campaign) as plan:
        return plan.send(PASSWORD, retry_delays=retry_delays).summary


def test_the_next_message_is_built_while_the_server_takes_this_one(
        ws: Path, server: LocalSmtpServer) -> None:
    """One thread per connection: message 2 is built between the end of message 1's
    DATA and the server's 250, and never more than one message ahead."""
    from formtool.usecases import mailing

    first = "claudia.koehler.1@caritasverba-altenburger-la.example"
    server.handler.hold, server.handler.hold_seconds = {first}, 0.3
    events: list[str] = []
    run = mailing.open_mailing(workspace.load(ws), "erinnerung", None, "erste")

    def build(contact: contacts.Contact) -> smtp.Built:
        events.append(f"gebaut {contact.key}")
        return run.built(contact)

    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign("erste", "erinnerung")
        sender = outbox.Outbox(workspace.load(ws).mail_settings(), journal, "erste",
                               password=PASSWORD, on_event=lambda e: events.append(
                                   f"{e.kind} {e.contact.key if e.contact else ''}"))
        jobs = (outbox.Job(c, functools.partial(build, c)) for c in list(run.contacts)[:4])
        summary = sender.run(jobs)
    assert summary.sent == 4
    assert events == ["gebaut FB-00001", "gebaut FB-00002", "sent FB-00001",
                      "gebaut FB-00003", "sent FB-00002", "gebaut FB-00004", "sent FB-00003",
                      "sent FB-00004"]


def test_a_message_that_cannot_be_built_while_another_is_sent(
        ws: Path, server: LocalSmtpServer) -> None:
    """A message that cannot be built fails alone; an unexpected error while building
    ahead ends the run only after the message under way is recorded as sent."""
    from formtool.usecases import mailing

    run = mailing.open_mailing(workspace.load(ws), "erinnerung", None, "erste")

    def build(contact: contacts.Contact) -> smtp.Built:
        if contact.key == "FB-00002":
            raise template.ComposeError("zu groß")
        if contact.key == "FB-00004":
            raise RuntimeError("Datenträger voll")
        return run.built(contact)

    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign("erste", "erinnerung")
        sender = outbox.Outbox(workspace.load(ws).mail_settings(), journal, "erste",
                               password=PASSWORD)
        jobs = (outbox.Job(c, functools.partial(build, c)) for c in list(run.contacts)[:5])
        with pytest.raises(RuntimeError, match="Datenträger voll"):
            sender.run(jobs)
        states = {s.contact_key: (s.state, s.reply) for s in journal.sends("erste")}
    assert states["FB-00001"][0] == states["FB-00003"][0] == "sent"
    assert states["FB-00002"] == ("failed", "zu groß")
    assert "FB-00004" not in states and "FB-00005" not in states
    assert len(server.handler.received) == 2


@given(st.binary(max_size=200) | st.lists(st.sampled_from([b".", b"\r\n", b"\n", b"a"]))
       .map(b"".join))
def test_dot_stuffing_is_smtplibs(data: bytes) -> None:
    """The bytes after DATA are what smtplib's data() sends for the same message."""
    quoted = smtplib._quote_periods(data)  # smtplib's own helper, the reference
    expected = quoted + (b"" if quoted.endswith(b"\r\n") else b"\r\n") + b".\r\n"
    assert smtp._stuffed(data) == expected


def test_what_goes_over_the_wire(ws: Path, server: LocalSmtpServer) -> None:
    """A line starting with a dot arrives as written (dot-stuffing, RFC 5321 4.5.2);
    MAIL FROM declares the size; the socket sends without Nagle delays."""
    import socket

    (ws / "templates" / "punkt.md.j2").write_text(
        "Subject: Punkt\n\n.punkt am Zeilenanfang\n..zwei Punkte\n.\nÄnderung\n",
        encoding="utf-8")
    result = invoke(ws, "mail", "send", "punkt", "--yes", "--limit", "1")
    assert result.exit_code == 0, result.output
    [got] = server.handler.received
    text = got.message().get_body(("plain",))
    assert text is not None
    assert text.get_content().replace("\r\n", "\n").startswith(
        ".punkt am Zeilenanfang\n..zwei Punkte\n.\nÄnderung\n")
    assert got.mail_options == (f"SIZE={len(got.data)}",)
    session = smtp.Session(workspace.load(ws).mail_settings(), PASSWORD)
    session.connect()
    assert session.smtp is not None and session.smtp.sock is not None
    assert session.smtp.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    session.close()


def test_rate_limit_waits_and_says_so() -> None:
    clock = [1000.0]
    waits: list[str] = []

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    settings = workspace.MailSettings(per_minute=2, per_hour=3)
    limiter = outbox.RateLimiter(settings, [], clock=lambda: clock[0], sleep=sleep)
    import threading

    stop = threading.Event()
    times = []
    for _ in range(4):
        assert limiter.acquire(lambda delay, why: waits.append(why), stop)
        times.append(clock[0])
    assert times[:2] == [1000.0, 1000.0]
    assert times[2] == pytest.approx(1060.0)
    assert times[3] == pytest.approx(4600.0)
    assert waits == ["2 pro Minute", "3 pro Stunde"]  # announced once per wait


def test_rate_limit_counts_earlier_runs(ws: Path) -> None:
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign("alt", "x")
        import time

        for i in range(3):
            journal.mark("alt", key=str(i), email=f"{i}@x.example", state=SendState.SENT,
                         sent_at=time.time())
        assert len(journal.sent_since(time.time() - 60)) == 3
        limiter = outbox.RateLimiter(workspace.MailSettings(per_minute=3),
                                     journal.sent_since(time.time() - 86400))
        delay, why = limiter.wait(time.time())
        assert delay > 50 and why == "3 pro Minute"


def test_unknown_template_and_contacts_are_plain_errors(ws: Path) -> None:
    result = invoke(ws, "mail", "preview", "gibtsnicht")
    assert result.exit_code == 1
    assert "Unbekannte Vorlage „gibtsnicht“" in result.output
    assert "einladung-fachberatung, erinnerung" in result.output
    shutil.copy(CONTACTS, ws / "contacts" / "zweite.csv")
    result = invoke(ws, "mail", "preview", "erinnerung")
    assert result.exit_code == 1
    assert "Bitte die Kontaktliste mit --contacts angeben" in result.output


def test_the_caches_change_no_byte(ws: Path) -> None:
    """Shared header objects, folded headers and attachment bytes: the message is
    exactly what the email package writes without them."""
    from formtool.usecases import mailing

    run = mailing.open_mailing(workspace.load(ws), "einladung-fachberatung", None, None)
    for contact in list(run.contacts)[:5]:
        built = run.message(contact)
        assert len(built.get_payload()) == 2  # mixed(alternative(plain, html), the form)
        data = message.to_bytes(built, contact, 10**8)
        assert data == built.as_bytes(policy=email.policy.SMTP)
        assert data == message.to_bytes(built, contact, 10**8)


def test_no_answer_at_the_question_is_german(ws: Path, server: LocalSmtpServer) -> None:
    """Ctrl+C or the end of input at "jetzt senden?": „Abgebrochen.“, never click's
    "Aborted!", and nothing sent."""
    result = invoke(ws, "mail", "send", "erinnerung", input="")
    assert result.exit_code == 1
    assert "Abgebrochen." in result.output and "Aborted" not in result.output
    assert server.handler.received == []


@pytest.mark.parametrize(("port", "security", "words"), [
    (465, "starttls", "Port 465 spricht sofort TLS"),
    (587, "ssl", "Port 587 beginnt unverschlüsselt"),
])
def test_a_port_that_speaks_the_other_way_is_named_at_once(
        ws: Path, port: int, security: str, words: str) -> None:
    """Caught from the settings, before connecting: no 68 s of silence (issue 20)."""
    import time

    configure(ws, port, security=security)
    for args in (("mail", "send", "erinnerung", "--yes"), ("mail", "login")):
        start = time.monotonic()
        result = invoke(ws, *args, input="x\n")
        assert result.exit_code == 1 and words in " ".join(result.output.split())
        assert time.monotonic() - start < 5


def test_login_uses_the_password_in_the_environment(ws: Path, server: LocalSmtpServer,
                                                    memory_keyring: MemoryKeyring,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """FORMTOOL_SMTP_PASSWORD set: `mail login` says so, tests it, asks nothing and
    stores nothing (issue 20)."""
    from formtool.usecases import credentials

    memory_keyring.passwords.clear()
    monkeypatch.setenv(credentials.PASSWORD_ENV, PASSWORD)
    result = invoke(ws, "mail", "login", input="")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "FORMTOOL_SMTP_PASSWORD ist gesetzt" in text and "erfolgreich" in text
    assert memory_keyring.passwords == {}
    monkeypatch.setenv(credentials.PASSWORD_ENV, "falsch")
    wrong = invoke(ws, "mail", "login", input="")
    assert wrong.exit_code == 1 and "abgelehnt" in wrong.output


def test_a_repeated_address_is_no_failure(ws: Path, server: LocalSmtpServer) -> None:
    """A list with one address twice: everyone got the mail, exit 0, no "ohne E-Mail"."""
    shipped = ws / "contacts" / "fachberatungen.csv"
    lines = shipped.read_text(encoding="utf-8").splitlines()
    twice = lines[1].split(",")
    twice[0] = "FB-99999"
    shipped.write_text("\n".join([*lines, ",".join(twice)]) + "\n", encoding="utf-8")
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 0, result.output
    assert "ohne E-Mail" not in result.output and "wiederholen eine Adresse" in result.output
    assert len(server.handler.received) == 40


def test_a_server_that_never_greets_is_named_within_seconds(ws: Path) -> None:
    """security = "starttls" against a server that waits for TLS: no greeting ever comes.
    The hint comes after ~10 s, not after the 60 s timeout (issue 20)."""
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True).start()
    configure(ws, port, security="starttls", timeout=60)
    start = time.monotonic()
    try:
        result = invoke(ws, "mail", "login", input="x\n")
    finally:
        listener.close()
        for conn in held:
            conn.close()
    assert time.monotonic() - start < 20
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "nicht gemeldet (keine Begrüßung)" in text
    assert 'security = "ssl"' in text


def test_plain_text_lines_fit_76_columns(ws: Path) -> None:
    """The plain-text part as a mail program shows it: no line over 76 characters but
    a single long word (a link), lists indented on (issue 20: it was 92 wide)."""
    long = "sehr " * 40
    template = ws / "templates" / "breit.md.j2"
    template.write_text("Subject: Breit\n\n{{ anrede_brief }}\n\n" + long + "\n\n- " + long
                        + "\n\nhttps://www.buendnis-kita-qualitaet.example/" + "x" * 80 + "\n",
                        encoding="utf-8")
    for name in ("einladung-fachberatung", "erinnerung", "breit"):
        result = invoke(ws, "mail", "preview", name, "--to", "FB-00001")
        assert result.exit_code == 0, result.output
        [eml] = (ws / "vorschau" / name).glob("*.eml")
        text = message_from_bytes(eml.read_bytes(), policy=email.policy.default).get_body(
            ("plain",)).get_content()
        for line in text.splitlines():
            assert len(line) <= 76 or " " not in line.strip(), (name, line)
    assert "\n  sehr sehr" in text  # the list item's continuation, indented
