"""Returns as real mail servers and mail programs write them (issue 22, first part):
automatic replies in many languages never count as answers, human replies that quote
an out-of-office text still do; delay and success reports are no bounces, a 4.x.x
given up is; every recipient block is read; a blank form from a contact's own address
belongs to that contact."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from helpers import invoke, pdftk_fill, read_csv
from test_fetch import _as_maildir, _message

from formtool.mail.inbound import Kind, classify
from formtool.state.store import Journal, SendState, Store

AUTO_SUBJECTS = [
    # German
    "Abwesenheitsnotiz: Einladung", "Automatische Antwort: Einladung", "AW: Abwesend",
    "Urlaubsbenachrichtigung", "Nicht im Büro: Einladung", "Abwesenheitsnachricht",
    # English
    "Out of Office: Invitation", "Automatic reply: Einladung", "Auto Reply: Einladung",
    "Auto-Reply: Einladung", "Autoreply: Einladung", "[Auto-Reply] Einladung",
    "Out of the office", "Auto Response: Einladung", "Away from the office",
    # French, Dutch, Italian, Spanish, Portuguese
    "Réponse automatique : Einladung", "Absent du bureau", "Message d'absence",
    "Automatisch antwoord: Einladung", "Afwezig: Einladung", "Niet aanwezig",
    "Risposta automatica: Einladung", "Fuori sede", "Fuori ufficio",
    "Respuesta automática: Einladung", "Fuera de la oficina", "Resposta automática",
    # Polish, Turkish
    "Odpowiedź automatyczna: Einladung", "Automatyczna odpowiedź", "Poza biurem",
    "Otomatik yanıt: Einladung", "Otomatik cevap", "Ofis dışında",
    # Swedish, Norwegian, Danish, Finnish, Czech
    "Automatiskt svar: Einladung", "Frånvaro", "Ej på kontoret",
    "Automatisk svar: Einladung", "Fravær", "Ikke på kontoret",
    "Automaattinen vastaus: Einladung", "Automatická odpověď",
]
AUTO_HEADERS = [{"Auto_Submitted": "auto-replied"}, {"Precedence": "bulk"},
                {"Precedence": "junk"}, {"Precedence": "auto_reply"},
                {"X_Autoreply": "yes"}, {"X_Autorespond": "1"}]
HUMAN = [  # real answers that quote an invitation or mention being away
    ("AW: Einladung", "Gern dabei!\n\n> Out of Office? Dann bitte später."),
    ("Re: Einladung", "Wir sind dabei.\n\nAm 01.12.2026 schrieb Bündnis:\n> Abwesenheit"),
    ("AW: Einladung", "Ich war im Urlaub, jetzt antworte ich: ja, wir machen mit."),
    ("AW: Abwesenheit im Dezember", "Kein Autoreply: wir melden uns im Januar."),
    ("Re: Einladung", "Thanks, we'll join. (Sorry, I was out of office.)"),
]


@pytest.mark.parametrize("subject", AUTO_SUBJECTS)
def test_automatic_replies_by_subject(subject: str) -> None:
    msg = _message("jemand@kita.example", subject, "Ich bin bis 15.12. nicht erreichbar.",
                   In_Reply_To="<inv@buendnis.example>")
    assert classify(msg.as_bytes()).kind is Kind.AUTOREPLY, subject


@pytest.mark.parametrize("headers", AUTO_HEADERS)
def test_automatic_replies_by_header(headers: dict[str, str]) -> None:
    msg = _message("jemand@kita.example", "AW: Einladung", "Danke für Ihre Nachricht.",
                   In_Reply_To="<inv@buendnis.example>", **headers)
    assert classify(msg.as_bytes()).kind is Kind.AUTOREPLY


def test_outlooks_out_of_office_by_its_suppress_header() -> None:
    away = _message("jemand@kita.example", "AW: Einladung",
                    "Ich bin bis zum 04.01. nicht im Büro.", X_Auto_Response_Suppress="All",
                    In_Reply_To="<inv@buendnis.example>")
    plain = _message("jemand@kita.example", "AW: Einladung", "Wir sind dabei.",
                     X_Auto_Response_Suppress="All", In_Reply_To="<inv@buendnis.example>")
    assert classify(away.as_bytes()).kind is Kind.AUTOREPLY
    assert classify(plain.as_bytes()).kind is Kind.REPLY


@pytest.mark.parametrize(("subject", "body"), HUMAN)
def test_human_replies_stay_answers(subject: str, body: str) -> None:
    msg = _message("jemand@kita.example", subject, body, In_Reply_To="<inv@buendnis.example>")
    assert classify(msg.as_bytes()).kind is Kind.REPLY


def _dsn(blocks: str, *, subject: str = "Delivery Status Notification") -> bytes:
    return ("From: MAILER-DAEMON <>\r\nTo: koordination@buendnis.example\r\n"
            f"Subject: {subject}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n"
            "\r\n--B\r\nContent-Type: text/plain\r\n\r\nDies ist eine automatisch erstellte "
            "Nachricht.\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; mx.example\r\n\r\n{blocks}--B\r\n"
            "Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: <inv-1@buendnis.example>\r\n"
            "\r\n--B--\r\n").encode()


def test_delays_and_successes_are_no_bounces() -> None:
    delayed = _dsn("Final-Recipient: rfc822; a@kita.example\r\nAction: delayed\r\n"
                   "Status: 4.4.1\r\nWill-Retry-Until: Mon, 7 Dec 2026 10:00:00 +0100\r\n\r\n")
    delivered = _dsn("Final-Recipient: rfc822; a@kita.example\r\nAction: delivered\r\n"
                     "Status: 2.0.0\r\n\r\n")
    text_delay = _message("MAILER-DAEMON@mx.example", "Delayed Mail (still being retried)",
                          "THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.\n"
                          "It will be retried until it is 5 days old.")
    for data in (delayed, delivered, text_delay.as_bytes()):
        found = classify(data)
        assert found.kind is Kind.NOTICE and not found.bounces


def test_a_4xx_given_up_and_every_block_are_read() -> None:
    found = classify(_dsn(
        "Final-Recipient: rfc822; alias@relay.example\r\nAction: delivered\r\n"
        "Status: 2.0.0\r\n\r\n"
        "Final-Recipient: rfc822; ziel@kita.example\r\n"
        "Original-Recipient: rfc822; a@kita.example\r\nAction: failed\r\nStatus: 4.4.7\r\n"
        "Diagnostic-Code: smtp; 451 4.4.7 delivery time expired\r\n\r\n"))
    assert found.kind is Kind.BOUNCE
    [block] = found.bounces
    assert (block.recipient, block.also, block.status) == ("ziel@kita.example",
                                                           ("a@kita.example",), "4.4.7")
    assert block.diagnostic == "451 4.4.7 delivery time expired"
    assert block.original_id == "<inv-1@buendnis.example>"
    assert found.report  # From: MAILER-DAEMON <> – the empty address of a server


def test_exims_failed_recipients_header() -> None:
    msg = _message("Mail Delivery System <Mailer-Daemon@mx.example>",
                   "Mail delivery failed: returning message to sender",
                   "This message was created automatically by mail delivery software.",
                   X_Failed_Recipients="a@kita.example")
    found = classify(msg.as_bytes())
    assert found.kind is Kind.BOUNCE and "a@kita.example" in [b.recipient for b in found.bounces]


def test_a_blank_form_from_a_contacts_own_address_is_theirs(
        ws: Path, blank_forms: dict[str, Path], tmp_path: Path) -> None:
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign("einladung", "einladung-fachberatung")
        journal.mark("einladung", email="kita@traeger.example", key="FB-7", state=SendState.SENT,
                     message_id="<inv-7@buendnis.example>", sent_at=1000.0)
    filled = pdftk_fill(blank_forms["buendnispartner"], {"organisation": "Kita Sieben"},
                        tmp_path / "f.pdf")
    msgs: list[EmailMessage | bytes] = []
    for sender in ("kita@traeger.example", "neu@anderswo.example"):
        msg = _message(sender, "Beitritt", "Anbei, von Ihrer Website.")
        msg.add_attachment(filled.read_bytes() + sender.encode(), maintype="application",
                           subtype="pdf", filename="Formular.pdf")
        msgs.append(msg)
    invoke(ws, "mail", "fetch", "--from", str(_as_maildir(msgs, tmp_path / "box")))
    rows = read_csv(ws / "antworten" / "buendnispartner.csv")
    assert sorted((r["absender"], r["kontakt_id"]) for r in rows) == [
        ("kita@traeger.example", "FB-7"), ("neu@anderswo.example", "")]
    stranger = next(r for r in rows if r["absender"] == "neu@anderswo.example")
    assert "keinem Kontakt zuzuordnen" in stranger["probleme"]  # the row says so
    with Store(ws / ".formtool" / "state.db") as store:
        assert not list(Journal(store).unanswered("einladung"))


# hybrid XFA forms (AcroForm fields and XFA datasets side by side, as Acrobat and
# LiveCycle Designer save them)

XFA_NS = b'xmlns:xfa="http://www.xfa.org/schema/xfa-data/1.0/"'


def _with_xfa(source: Path, out: Path, data: bytes, *, dynamic: bool = False) -> Path:
    import pikepdf

    with pikepdf.open(source) as pdf:
        datasets = b"<xfa:datasets " + XFA_NS + b"><xfa:data>" + data + b"</xfa:data>" \
            b"</xfa:datasets>"
        pdf.Root.AcroForm.XFA = pikepdf.Array([
            pikepdf.String("preamble"), pdf.make_stream(
                b'<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/">'),
            pikepdf.String("template"), pdf.make_stream(b"<template/>"),
            pikepdf.String("datasets"), pdf.make_stream(datasets),
            pikepdf.String("postamble"), pdf.make_stream(b"</xdp:xdp>")])
        if dynamic:
            pdf.Root.NeedsRendering = True
        pdf.save(out)
    return out


@pytest.mark.parametrize(("acro", "xfa", "dynamic", "verdict"), [
    ("Kita Acro", b"<form1><organisation/></form1>", False, "read"),  # empty XFA data
    ("Kita Acro", b"<form1><organisation>Kita Acro</organisation></form1>", False, "read"),
    ("Kita Acro", b"<form1><organisation>Kita XFA</organisation></form1>", False, "differ"),
    ("", b"<form1><organisation>Kita XFA</organisation></form1>", False, "xfa only"),
    ("", b"<form1><organisation>Kita XFA</organisation></form1>", True, "xfa only"),
    ("", b"<form1><organisation/></form1>", False, "not xfa"),  # a blank hybrid
])
def test_hybrid_xfa_forms(ws: Path, blank_forms: dict[str, Path], tmp_path: Path, acro: str,
                          xfa: bytes, dynamic: bool, verdict: str) -> None:
    filled = (pdftk_fill(blank_forms["buendnispartner"], {"organisation": acro},
                         tmp_path / "acro.pdf") if acro else blank_forms["buendnispartner"])
    form = _with_xfa(filled, tmp_path / "hybrid.pdf", xfa, dynamic=dynamic)
    result = invoke(ws, "import", str(form))
    text = " ".join(result.output.split())
    table = ws / "antworten" / "buendnispartner.csv"
    if verdict == "xfa only":
        assert "Antworten stehen nur in den XFA-Daten" in text and not table.exists()
        return
    assert "Antworten stehen nur in den XFA-Daten" not in text
    if verdict == "not xfa":
        return
    [row] = read_csv(table)
    assert row["Name der Organisation"] == acro
    assert "enthält auch XFA-Daten" in row["probleme"]
    assert ("weichen ab: organisation (XFA „Kita XFA“)" in row["probleme"]) == (
        verdict == "differ")
