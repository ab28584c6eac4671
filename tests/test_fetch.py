"""`formtool mail fetch --from` (issue 12, the file sources): real-shaped messages in an
mbox, a Maildir and a folder of .eml files, handled once each, the real import."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from helpers import campaign_counts, invoke, pdftk_fill, read_csv

from formtool.state.store import Journal, SendState, Store

SENT = {  # address -> the Message-ID our invitation went out with
    "kita.a@traeger.example": "<inv-a@buendnis.example>",
    "b.bounce@kita.example": "<inv-b@buendnis.example>",
    "c.weg@kita.example": "<inv-c@buendnis.example>",
    "d.frage@kita.example": "<inv-d@buendnis.example>",
}


def _journal(ws: Path) -> None:
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign("einladung", "einladung-fachberatung")
        for i, (address, message_id) in enumerate(SENT.items()):
            journal.mark("einladung", email=address, key=f"K-{i}", state=SendState.SENT,
                         message_id=message_id, sent_at=1000.0 + i)


def _message(sender: str, subject: str, body: str = "Guten Tag", **headers: str
             ) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "koordination@buendnis.example", subject
    msg["Message-ID"] = make_msgid(domain="absender.example")
    msg["Date"] = "Mon, 23 Nov 2026 09:15:00 +0100"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def _dsn() -> bytes:
    """A standard delivery status notification (RFC 3464) for the mail to b, as an MTA
    (Postfix) writes it."""
    return (b"From: Mail Delivery System <MAILER-DAEMON@mx.provider.example>\r\n"
            b"To: koordination@buendnis.example\r\n"
            b"Subject: Undelivered Mail Returned to Sender\r\n"
            b"Message-ID: <dsn-1@mx.provider.example>\r\n"
            b"Auto-Submitted: auto-replied\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status;\r\n"
            b"\tboundary=\"BOUND\"\r\n\r\n"
            b"--BOUND\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            b"This is the mail system. Your message could not be delivered.\r\n\r\n"
            b"--BOUND\r\nContent-Type: message/delivery-status\r\n\r\n"
            b"Reporting-MTA: dns; mx.provider.example\r\n\r\n"
            b"Final-Recipient: rfc822; b.bounce@kita.example\r\nAction: failed\r\n"
            b"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
            b"--BOUND\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            b"From: koordination@buendnis.example\r\n"
            b"Message-ID: " + SENT["b.bounce@kita.example"].encode() + b"\r\n"
            b"Subject: Einladung\r\n\r\n--BOUND--\r\n")


def _provider_bounce() -> EmailMessage:
    """A German provider's own wording, the original attached (as web.de/GMX send)."""
    msg = _message("MAILER-DAEMON@web.example", "Mail delivery failed: returning message",
                   "Die Nachricht konnte nicht zugestellt werden.\n\n"
                   "c.weg@kita.example: 550 Requested action not taken: mailbox unavailable\n")
    original = _message("koordination@buendnis.example", "Einladung")
    original.replace_header("Message-ID", SENT["c.weg@kita.example"])
    msg.add_attachment(original)
    return msg


@pytest.fixture
def box(ws: Path, blank_forms: dict[str, Path], tmp_path: Path) -> list[EmailMessage]:
    _journal(ws)
    fill = tmp_path / "filled"
    fill.mkdir()
    first = pdftk_fill(blank_forms["buendnispartner"], {
        "organisation": "Kita A", "email": "kita.a@traeger.example"}, fill / "a.pdf")
    second = pdftk_fill(blank_forms["buendnispartner"], {
        "organisation": "Kita Zwei", "email": "zwei@traeger.example"}, fill / "b.pdf")
    returns = []
    for pdf, sender in ((first, "kita.a@traeger.example"), (second, "zwei@traeger.example")):
        msg = _message(sender, "AW: Einladung", "Anbei unser Formular.",
                       In_Reply_To=SENT["kita.a@traeger.example"])
        # every return carries the same name; one also tries to climb out of the folder
        msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf",
                           filename="../../Beitrittserklärung Bündnispartner.pdf")
        returns.append(msg)
    scan = _message("e.scan@kita.example", "Formular als Foto")
    scan.add_attachment(b"\xff\xd8\xff\xe0" + bytes(60_000), maintype="image", subtype="jpeg",
                        filename="IMG_0001.jpg")
    broken = b"From: x@y.example\nContent-Type: multipart/mixed; boundary=\"zz\"\n\n--zz\n" \
             b"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n%%%%\n"
    return [*returns, scan,
            _message("d.frage@kita.example", "AW: Einladung", "Wer ist im Bündnis?",
                     In_Reply_To=SENT["d.frage@kita.example"]),
            _message("f.tschuess@kita.example", "Abmelden"),
            _message("g.urlaub@kita.example", "Abwesenheitsnotiz: Einladung",
                     Auto_Submitted="auto-replied"),
            _dsn(), _provider_bounce(),
            _message("werbung@spam.example", "Günstige Kredite"),
            broken]  # type: ignore[list-item]


def _as_mbox(messages: list[EmailMessage | bytes], path: Path) -> Path:
    out = mailbox.mbox(path)
    for msg in messages:
        out.add(msg if isinstance(msg, bytes) else msg.as_bytes())
    out.close()
    return path


def _as_maildir(messages: list[EmailMessage | bytes], path: Path) -> Path:
    out = mailbox.Maildir(path)
    for msg in messages:
        out.add(msg if isinstance(msg, bytes) else msg.as_bytes())
    return path


def _outcome(ws: Path) -> dict[str, object]:
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        sends = {s.email: (s.state, s.reply) for s in journal.sends("einladung")}
        optout = journal.is_opted_out("f.tschuess@kita.example")
    rows = read_csv(ws / "antworten" / "buendnispartner.csv")
    return {"files": sorted(p.name for p in (ws / "ruecklaeufe").iterdir()),
            "rows": sorted(r["Name der Organisation"] for r in rows), "optout": optout,
            "b": sends["b.bounce@kita.example"][0], "c": sends["c.weg@kita.example"][0],
            "a": sends["kita.a@traeger.example"][0]}


def test_mbox_is_handled_once(ws: Path, box: list[EmailMessage], tmp_path: Path) -> None:
    source = _as_mbox(box, tmp_path / "Posteingang")
    result = invoke(ws, "mail", "fetch", "--from", str(source))
    assert result.exit_code == 1, result.output  # the photo is not a form: to look at
    out = " ".join(result.output.split())
    assert ("3 mit Formular/Anhang, 1 Antwort, 1 Abmeldung, 2 unzustellbar, "
            "1 automatische Antwort") in out
    assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
    assert "nicht eingelesen: IMG_0001.jpg: Foto oder Scan" in out
    assert "d.frage@kita.example – AW: Einladung" in out  # a reply to read
    outcome = _outcome(ws)
    files = outcome["files"]
    assert isinstance(files, list) and len(files) == 3, files  # none overwritten
    assert all(".." not in f and "/" not in f for f in files), files
    assert sum("Beitrittserkl" in f for f in files) == 2
    assert outcome["rows"] == ["Kita A", "Kita Zwei"]
    assert outcome["optout"] is True
    assert (outcome["b"], outcome["c"], outcome["a"]) == (SendState.FAILED, SendState.FAILED,
                                                          SendState.SENT)
    fehler = invoke(ws, "status", "einladung", "--fehler").output
    assert "5.1.1" in fehler and "c.weg@kita.example" in fehler
    # the reply without a form counts as an answer: no reminder for d, none for the bounced
    status = invoke(ws, "status").output
    assert "Postfach (formtool mail fetch, zuletzt am " in status
    assert ("3 mit Formular/Anhang · 1 Antwort · 1 Abmeldung · 2 unzustellbar · 1 "
            "automatische Antwort") in " ".join(status.split())
    counts = campaign_counts(status, "einladung")
    assert (counts["beantwortet"], counts["davon per E-Mail"], counts["offen"],
            counts["unzustellbar"], counts["fehlgeschlagen"]) == (2, 1, 0, 2, 0), counts
    offen = invoke(ws, "status", "einladung", "--offen").output
    assert "d.frage@kita.example" not in offen and "b.bounce" not in offen

    again = invoke(ws, "mail", "fetch", "--from", str(source))
    # handled messages are not handled again; spam and the broken one stay untouched
    assert "2 andere (nicht angefasst); 8 schon früher verarbeitet" in " ".join(
        again.output.split()), again.output
    assert again.exit_code == 0
    assert _outcome(ws) == outcome

    # forget leaves no trace of the reply either
    assert invoke(ws, "forget", "d.frage@kita.example").exit_code == 0
    with Store(ws / ".formtool" / "state.db") as store:
        assert store.execute("SELECT COUNT(*) FROM answers WHERE email = ?",
                             ("d.frage@kita.example",)).fetchone()[0] == 0


def test_maildir_and_eml_folder_give_the_same_result(
        ws: Path, box: list[EmailMessage], tmp_path: Path) -> None:
    from formtool import workspace

    invoke(ws, "mail", "fetch", "--from", str(_as_mbox(box, tmp_path / "mbox")))
    expected = _outcome(ws)
    for kind in ("maildir", "eml"):
        other = tmp_path / f"ws-{kind}"
        workspace.init(other)
        _journal(other)
        if kind == "maildir":
            source = _as_maildir(box, tmp_path / "Maildir")
        else:
            source = tmp_path / "eml"
            source.mkdir()
            for i, msg in enumerate(box):
                data = msg if isinstance(msg, bytes) else msg.as_bytes()
                (source / f"{i:02d}.eml").write_bytes(data)
        invoke(other, "mail", "fetch", "--from", str(source))
        assert _outcome(other) == expected, kind


def test_dry_run_changes_nothing(ws: Path, box: list[EmailMessage], tmp_path: Path) -> None:
    source = _as_mbox(box, tmp_path / "Posteingang")
    before = (ws / ".formtool" / "state.db").read_bytes()
    result = invoke(ws, "mail", "fetch", "--from", str(source), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Probelauf, nichts geändert" in result.output
    assert not (ws / "ruecklaeufe").exists() and not (ws / "antworten").exists()
    assert (ws / ".formtool" / "state.db").read_bytes() == before


@pytest.mark.parametrize("name", [
    "../../etc/passwd.pdf", "..\\..\\Windows\\x.pdf", "C:\\Users\\a.pdf",
    "Antwort\r\nBcc: x@y.pdf", "A" * 300 + ".pdf", "\x00\x07.pdf", "CON.pdf", ".pdf", "",
])
def test_attachment_names_from_the_internet_stay_in_the_folder(name: str,
                                                                tmp_path: Path) -> None:
    from formtool.usecases.fetching import _Folder

    folder = tmp_path / "ruecklaeufe"
    path = _Folder(folder).save(name, b"%PDF-1.4 data")
    assert path.parent == folder and path.is_file()
    assert len(path.name) <= 100 and not any(c in path.name for c in "/\\\r\n\x00")
    # a later run (a new listing of the folder): the same bytes keep their file, other
    # bytes never overwrite it
    again = _Folder(folder).save(name, b"%PDF-1.4 data")
    other = _Folder(folder).save(name, b"%PDF-1.4 other")
    assert again == path and other != path and path.read_bytes() == b"%PDF-1.4 data"


def test_a_message_over_the_cap_is_reported_not_read(ws: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from formtool.mail import inbound

    monkeypatch.setattr(inbound, "MAX_MESSAGE", 2000)
    big = _message("gross@kita.example", "Riesig")
    big.add_attachment(bytes(5000), maintype="application", subtype="pdf", filename="x.pdf")
    result = invoke(ws, "mail", "fetch", "--from", str(_as_mbox([big], tmp_path / "m")))
    out = " ".join(result.output.split())
    assert "1 zu groß" in out and "zu groß zum Einlesen" in out
    assert not (ws / "ruecklaeufe").exists()


def test_a_second_fetch_while_one_runs_is_refused(ws: Path, box: list[EmailMessage],
                                                  tmp_path: Path) -> None:
    from formtool.state.runlock import RunLock

    source = _as_mbox(box, tmp_path / "Posteingang")
    lock = RunLock(ws / ".formtool", "mail fetch")
    lock.acquire()  # as a first run holds it
    try:
        result = invoke(ws, "mail", "fetch", "--from", str(source))
    finally:
        lock.release()
    assert result.exit_code == 1 and "läuft schon" in result.output
    assert not (ws / "ruecklaeufe").exists()


def test_returns_as_people_really_send_them(ws: Path, blank_forms: dict[str, Path],
                                            tmp_path: Path) -> None:
    """Filled with pdf-lib and pdf.js (browser); forwarded as an attachment by a secretary
    (the original answers the invitation: its Message-ID is evidence) and inline by a
    colleague (only a "Von:" line: no evidence, listed); a reply without In-Reply-To
    from a contact's own address. Each row names the mail it came with."""
    from helpers import pdfjs_fill, pdflib_fill

    _journal(ws)
    blank = blank_forms["buendnispartner"]
    by_pdflib = pdflib_fill(blank, {"organisation": "Kita C"}, tmp_path / "c.pdf")
    by_pdfjs = pdfjs_fill(blank, {"organisation": "Kita D"}, tmp_path / "d.pdf")

    original = _message("c.weg@kita.example", "AW: Einladung", "Anbei.",
                        In_Reply_To=SENT["c.weg@kita.example"])
    original.add_attachment(by_pdflib.read_bytes(), maintype="application", subtype="pdf",
                            filename="Beitrittserklärung.pdf")
    as_attachment = _message("sekretariat@traeger.example", "WG: AW: Einladung",
                             "Kam bei uns an, bitte übernehmen.")
    as_attachment.add_attachment(original)  # message/rfc822, as Thunderbird forwards
    inline = _message("leitung@anderer-traeger.example", "WG: Beitrittserklärung",
                      "zur Info\n\n-----Ursprüngliche Nachricht-----\n"
                      "Von: Kita D <d.frage@kita.example>\nGesendet: Montag, 23. November 2026\n"
                      "Betreff: Beitrittserklärung\n")
    inline.add_attachment(by_pdfjs.read_bytes(), maintype="application", subtype="pdf",
                          filename="Beitrittserklärung.pdf")
    no_reference = _message("kita.a@traeger.example", "Bündnis",
                            "Wir sind dabei, das Formular folgt nächste Woche.")
    result = invoke(ws, "mail", "fetch", "--from",
                    str(_as_mbox([as_attachment, inline, no_reference], tmp_path / "m")))
    text = " ".join(result.output.split())
    assert "2 mit Formular/Anhang, 1 Antwort." in text
    assert "nennt d.frage@kita.example – das belegt nichts" in text

    rows = {r["Name der Organisation"]: r for r in read_csv(ws / "antworten" /
                                                             "buendnispartner.csv")}
    assert set(rows) == {"Kita C", "Kita D"}
    assert rows["Kita C"]["absender"] == "sekretariat@traeger.example"
    assert rows["Kita C"]["message_id"] == as_attachment["Message-ID"]
    assert rows["Kita D"]["eingegangen_am"] == "2026-11-23T09:15:00+01:00"  # its Date
    import datetime as dt

    import openpyxl

    sheet = openpyxl.load_workbook(ws / "antworten" / "buendnispartner.xlsx").active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    received = sheet.cell(row=2, column=header.index("eingegangen_am") + 1).value
    assert isinstance(received, dt.datetime)  # a date-time cell in Excel, not text
    with Store(ws / ".formtool" / "state.db") as store:
        open_ = {r.email for r in Journal(store).unanswered("einladung")}
    # c answered through the forward, a by mail; d's form came from an address that was
    # never mailed, with nothing that ties it to d: d is still open (and the row is kept)
    assert open_ == {"b.bounce@kita.example", "d.frage@kita.example"}
    assert rows["Kita D"]["kontakt_id"] == ""


def test_an_older_table_gets_the_mail_columns(ws: Path, box: list[EmailMessage],
                                              tmp_path: Path) -> None:
    """A table written before the mail columns existed is continued, not refused."""
    import csv

    first, second = box[0], box[1]
    invoke(ws, "mail", "fetch", "--from", str(_as_mbox([first], tmp_path / "eins")))
    table = ws / "antworten" / "buendnispartner.csv"
    text = table.read_text(encoding="utf-8-sig")
    old = [row[:-3] for row in csv.reader(text.splitlines(), delimiter=";")]
    assert old[0][-1] == "probleme"
    with table.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh, delimiter=";").writerows(old)  # as formtool wrote it before
    result = invoke(ws, "mail", "fetch", "--from", str(_as_mbox([second], tmp_path / "zwei")))
    assert "andere Spalten" not in result.output, result.output
    rows = read_csv(table)
    assert [(r["Name der Organisation"], r["absender"]) for r in rows] == [
        ("Kita A", ""), ("Kita Zwei", "zwei@traeger.example")]


def test_encoded_words_and_raw_bytes_in_headers() -> None:
    """Headers as mail programs really write them: RFC 2047 subjects and attachment names
    (Outlook), RFC 2231 names (Thunderbird), raw 8-bit bytes, a broken encoded word."""
    from formtool.mail.inbound import Kind, classify

    optout = classify(b"From: =?utf-8?q?J=C3=BCrgen?= <j@kita.example>\r\n"
                      b"Subject: =?utf-8?q?Abmelden?=\r\n\r\nbitte\r\n")
    assert optout.kind is Kind.OPTOUT and optout.sender == "j@kita.example"
    outlook = classify(
        b"From: a@kita.example\r\nSubject: =?iso-8859-1?q?R=FCcklauf?=\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe\r\n--b\r\n"
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n"
        b" filename=\"=?utf-8?B?QmVpdHJpdHRzZXJrbMOkcnVuZy5wZGY=?=\"\r\n\r\n%PDF-1.4\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n"
        b" filename*=utf-8''R%C3%BCcklauf%20M%C3%BCller.pdf\r\n\r\n%PDF-1.7\r\n--b--\r\n")
    assert outlook.subject == "Rücklauf" and outlook.snippet == "Grüße"
    assert [name for name, _ in outlook.attachments] == ["Beitrittserklärung.pdf",
                                                          "Rücklauf Müller.pdf"]
    raw = classify(b"From: M\xfcller <m@kita.example>\r\nSubject: Gr\xc3\xbc\xc3\x9fe "
                   b"=?utf-8?q?broken\r\nIn-Reply-To: <inv-a@buendnis.example>\r\n\r\nHallo\r\n")
    assert raw.kind is Kind.REPLY and raw.sender == "m@kita.example"
    assert raw.subject == "Grüße =?utf-8?q?broken"


def test_status_lists_the_replies_to_read(ws: Path, tmp_path: Path) -> None:
    """`status --antworten`: who answered by mail, the subject and the first lines – and
    nothing a hostile sender put in them reaches the terminal or a table as more than text."""
    _journal(ws)
    hostile = _message("kita.a@traeger.example", "AW: Einladung\x1b[2J\u202e",
                       "=HYPERLINK(\"http://x.example\")\n\x1b]0;pwned\x07Wir melden uns.\n"
                       "> zitiert\n", In_Reply_To=SENT["kita.a@traeger.example"])
    question = _message("d.frage@kita.example", "AW: Einladung", "Wer ist im Bündnis?",
                        In_Reply_To=SENT["d.frage@kita.example"])
    invoke(ws, "mail", "fetch", "--from", str(_as_mbox([hostile, question], tmp_path / "m")))
    result = invoke(ws, "status", "einladung", "--antworten")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "d.frage@kita.example · am " in out and "| Wer ist im Bündnis?" in out
    assert "Wir melden uns." in out and "zitiert" not in out  # quoted lines left out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    invoke(ws, "status", "einladung", "--antworten", "--csv", str(tmp_path / "a.csv"))
    rows = read_csv(tmp_path / "a.csv")
    assert [r["E-Mail"] for r in rows] == ["kita.a@traeger.example", "d.frage@kita.example"]
    assert rows[0]["Anfang der Nachricht"].startswith("'=HYPERLINK")  # never a formula
    both = invoke(ws, "status", "einladung", "--antworten", "--offen")
    assert both.exit_code == 2 and "Nur eines von" in both.output


def test_a_photo_and_a_word_file_from_a_contact_are_kept_and_count_as_answer(
        ws: Path, tmp_path: Path) -> None:
    """A contact returns the form as a phone photo and a Word file: both are saved under
    ruecklaeufe/, the contact is not reminded, and `status --antworten` lists the files
    for that contact (issue 20)."""
    import io
    import zipfile

    _journal(ws)
    reply = _message("d.frage@kita.example", "AW: Einladung", "Anbei als Foto und Word.",
                     In_Reply_To=SENT["d.frage@kita.example"])
    reply.add_attachment(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(60_000), maintype="image",
                         subtype="jpeg", filename="IMG_2040.jpg")
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    reply.add_attachment(docx.getvalue(), maintype="application", subtype=(
        "vnd.openxmlformats-officedocument.wordprocessingml.document"),
        filename="Beitritt <script>.docx")
    result = invoke(ws, "mail", "fetch", "--from", str(_as_mbox([reply], tmp_path / "box")))
    out = " ".join(result.output.split())
    assert result.exit_code == 1, result.output  # still to look at: not a readable form
    assert "als Antwort von d.frage@kita.example vermerkt (keine Erinnerung)" in out
    saved = sorted(p.name for p in (ws / "ruecklaeufe").iterdir())
    assert len(saved) == 2 and "IMG_2040.jpg" in saved, saved
    assert all("/" not in name for name in saved)
    offen = invoke(ws, "status", "einladung", "--offen").output
    assert "d.frage@kita.example" not in offen
    antworten = " ".join(invoke(ws, "status", "einladung", "--antworten").output.split())
    assert "d.frage@kita.example" in antworten and "IMG_2040.jpg" in antworten
    # fetched again: nothing twice, nothing new
    again = invoke(ws, "mail", "fetch", "--from", str(_as_mbox([reply], tmp_path / "box2")))
    assert "als Antwort" not in again.output and again.exit_code == 0, again.output
    assert sorted(p.name for p in (ws / "ruecklaeufe").iterdir()) == saved
