"""The mailbox cannot be used against the campaign (issue 21): each case an attacker or
bad luck would try, as a message in a Maildir (and the whole box once more over a real
Dovecot), asserting whose state changed – nobody's but the sender's – and that the rest
of the mailbox was processed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from helpers import invoke, pdftk_fill, read_csv
from test_fetch import _as_maildir, _message

from formtool.mail.inbound import Kind, Optout, classify, optout_of
from formtool.state.store import Journal, SendState, Store
from formtool.usecases import evidence

CONTACTS = {f"kontakt{i}@kita{i}.example": f"<inv-{i}@buendnis.example>" for i in range(20)}
A, B = "kontakt1@kita1.example", "kontakt2@kita2.example"
VICTIM = "kontakt3@kita3.example"


def _journal(ws: Path) -> None:
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign("einladung", "einladung-fachberatung")
        for i, (address, message_id) in enumerate(CONTACTS.items()):
            journal.mark("einladung", email=address, key=f"K{i}", state=SendState.SENT,
                         message_id=message_id, sent_at=1000.0 + i)
            store.remember_contact(key=f"K{i}", email=address, name=f"Person {i}",
                                   organisation=f"Kita {i}", address="")


def _state(ws: Path) -> dict[str, tuple[str, bool, bool, str]]:
    """address -> (send state, answered, opted out, reply) for every contact."""
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        return {r.email: (r.state.value, r.answered, journal.is_opted_out(r.email), r.reply)
                for r in journal.recipients("einladung")}


def _changed(before: dict[str, tuple[str, bool, bool, str]],
             after: dict[str, tuple[str, bool, bool, str]]) -> set[str]:
    return {a for a in after if after[a] != before[a]}


@pytest.fixture
def campaign(ws: Path) -> Path:
    _journal(ws)
    return ws


def _kita1(blank_forms: dict[str, Path], tmp_path: Path) -> Path:
    return pdftk_fill(blank_forms["buendnispartner"], {"organisation": "Kita 1"},
                      tmp_path / "f.pdf")


def _attach(msg: EmailMessage, pdf: Path) -> EmailMessage:
    msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf",
                       filename="Formular.pdf")
    return msg


def _fetch(ws: Path, messages: list[EmailMessage | bytes], folder: Path) -> str:
    result = invoke(ws, "mail", "fetch", "--from", str(_as_maildir(messages, folder)))
    return " ".join(result.output.split())


def _report(recipients: list[str], *, sender: str = "reports@evil.example",
            original: str = "") -> bytes:
    """A multipart/report naming ``recipients`` as failed; the original's headers only
    when ``original`` is a Message-ID."""
    blocks = "".join(f"Final-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                     f"Diagnostic-Code: smtp; 550 5.1.1 <{r}>: User unknown\r\n\r\n"
                     for r in recipients)
    headers = (f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {original}\r\n"
               "Subject: Einladung\r\n\r\n" if original else "")
    return (f"From: {sender}\r\nTo: koordination@buendnis.example\r\n"
            f"Subject: Zustellung fehlgeschlagen\r\nMessage-ID: {make_msgid()}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
            "report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nNicht zustellbar.\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; mx.evil.example\r\n\r\n{blocks}"
            f"{headers}--B--\r\n").encode()


# 1 ---------------------------------------------------------------------------------

def test_a_forged_report_naming_twenty_contacts_marks_nobody(campaign: Path,
                                                              tmp_path: Path) -> None:
    before = _state(campaign)
    text = _fetch(campaign, [_report(list(CONTACTS))], tmp_path / "box")
    assert _changed(before, _state(campaign)) == set()
    assert "nennt 20 Kontakte, aber keine verschickte E-Mail" in text


def test_a_report_with_the_returned_original_is_proof(campaign: Path, tmp_path: Path) -> None:
    before = _state(campaign)
    # the report's first block is an alias the address expanded to; the original proves it
    _fetch(campaign, [_report(["alias@relay.example", B], original=CONTACTS[B])],
           tmp_path / "box")
    after = _state(campaign)
    assert _changed(before, after) == {B}
    assert after[B][0] == "failed" and "nicht bestätigt" not in after[B][3]


def test_a_report_without_the_original_marks_one_contact_unconfirmed(
        campaign: Path, tmp_path: Path) -> None:
    before = _state(campaign)
    plain = _message("MAILER-DAEMON@evil.example", "Undelivered Mail Returned to Sender",
                     f"Your message to {A} could not be delivered.")
    two = _message("MAILER-DAEMON@evil.example", "Undelivered Mail Returned to Sender",
                   f"Your message to {VICTIM} and {B} could not be delivered.")
    not_a_server = _message("jemand@evil.example", "Undelivered Mail Returned to Sender",
                            f"Your message to {VICTIM} could not be delivered.")
    _fetch(campaign, [plain, two, not_a_server], tmp_path / "box")
    after = _state(campaign)
    assert _changed(before, after) == {A}
    assert after[A][0] == "failed" and "nicht bestätigt" in after[A][3]
    result = invoke(campaign, "status", "einladung", "--fehler")
    assert "(nicht bestätigt)" in " ".join(result.output.split())


# 2, 3 ------------------------------------------------------------------------------

def test_a_strangers_forward_with_a_von_line_is_nobodys_return(
        campaign: Path, blank_forms: dict[str, Path], tmp_path: Path) -> None:
    before = _state(campaign)
    forward = _message("fremd@evil.example", "WG: Einladung",
                       f"-----Ursprüngliche Nachricht-----\nVon: Opfer <{VICTIM}>\n"
                       "Betreff: Einladung\n")
    filled = pdftk_fill(blank_forms["buendnispartner"], {"organisation": "Kita Opfer"},
                        tmp_path / "f.pdf")
    forward.add_attachment(filled.read_bytes(), maintype="application", subtype="pdf",
                           filename="Formular.pdf")
    text = _fetch(campaign, [forward], tmp_path / "box")
    assert _changed(before, _state(campaign)) == set()
    rows = read_csv(campaign / "antworten" / "buendnispartner.csv")
    assert [r["kontakt_id"] for r in rows] == [""]  # the row is kept, tied to nobody
    assert f"nennt {VICTIM} – das belegt nichts" in text
    # which file was imported with problems, and what they are (issue 20)
    assert "mit Problemen: Formular.pdf:" in text and "keinem Kontakt zuzuordnen" in text


@pytest.mark.parametrize("references", [
    f"{CONTACTS[B]} {CONTACTS[A]}",  # B's invitation first, then A's: the last counts
    f"{CONTACTS[A]} {CONTACTS[B]}",  # B's last: the sender's own state is what changes
])
def test_a_reply_counts_for_its_sender(campaign: Path, tmp_path: Path,
                                       references: str) -> None:
    before = _state(campaign)
    reply = _message(A, "AW: Einladung", "Wir sind dabei.", References=references)
    text = _fetch(campaign, [reply], tmp_path / "box")
    after = _state(campaign)
    assert _changed(before, after) == {A} and after[A][1]
    if references.endswith(CONTACTS[B]):
        assert f"bezieht sich auf die E-Mail an {B}" in text


# 4 ---------------------------------------------------------------------------------

def test_somebody_elses_personal_form_is_held_and_counts_for_the_sender(
        campaign: Path, blank_forms: dict[str, Path], tmp_path: Path) -> None:
    with Store(campaign / ".formtool" / "state.db") as store:
        store.issue(response_id="R-B-0001", form_id="buendnispartner", contact_key="K2",
                    campaign="einladung", file="b.pdf")
    by_a = pdftk_fill(blank_forms["buendnispartner"], {
        "organisation": "Kita 2, ausgefüllt von A", "response_id": "R-B-0001"},
        tmp_path / "a.pdf")
    by_b = pdftk_fill(blank_forms["buendnispartner"], {
        "organisation": "Kita 2", "response_id": "R-B-0001"}, tmp_path / "b.pdf")
    from_a = _message(A, "AW: Einladung", "Anbei das Formular von Kita 2.",
                      In_Reply_To=CONTACTS[A])
    from_a.add_attachment(by_a.read_bytes(), maintype="application", subtype="pdf",
                          filename="Formular.pdf")
    before = _state(campaign)
    text = _fetch(campaign, [from_a], tmp_path / "box1")
    after = _state(campaign)
    assert _changed(before, after) == {A} and after[A][1] and not after[B][1]
    assert f"Formular von {B}, eingesandt von {A}" in text
    assert not (campaign / "antworten" / "buendnispartner.csv").exists()

    from_b = _message(B, "AW: Einladung", "Anbei.", In_Reply_To=CONTACTS[B])
    from_b.add_attachment(by_b.read_bytes(), maintype="application", subtype="pdf",
                          filename="Formular.pdf")
    _fetch(campaign, [from_b], tmp_path / "box2")
    rows = read_csv(campaign / "antworten" / "buendnispartner.csv")
    assert [(r["Name der Organisation"], r["kontakt_id"]) for r in rows] == [("Kita 2", "K2")]
    assert _state(campaign)[B][1]


# 5 ---------------------------------------------------------------------------------

def test_a_strangers_form_reaches_the_website_only_when_confirmed(
        campaign: Path, blank_forms: dict[str, Path], tmp_path: Path) -> None:
    from test_website import partner as returned

    partner = returned("DRK Kreisverband Erfurt", website="https://drk-erfurt.example",
                       email=A)
    own = pdftk_fill(blank_forms["buendnispartner"], partner, tmp_path / "own.pdf")
    forged = pdftk_fill(blank_forms["buendnispartner"], {
        **partner, "website": "https://evil.example/phish", "email": "x@evil.example"},
        tmp_path / "forged.pdf")
    first = _message(A, "Beitritt", "Anbei.")
    first.add_attachment(own.read_bytes(), maintype="application", subtype="pdf",
                         filename="Beitritt.pdf")
    _fetch(campaign, [first], tmp_path / "box1")
    listed = invoke(campaign, "website")
    assert "drk-erfurt.example" in (campaign / "website" / "partnerliste.html").read_text()

    stranger = _message("x@evil.example", "Beitritt", "Anbei.")
    stranger.add_attachment(forged.read_bytes(), maintype="application", subtype="pdf",
                            filename="Beitritt.pdf")
    _fetch(campaign, [stranger], tmp_path / "box2")
    listed = invoke(campaign, "website", "--diff")
    html = (campaign / "website" / "partnerliste.html").read_text()
    assert "evil.example" not in html and "drk-erfurt.example" in html
    text = " ".join(listed.output.split())
    assert "Geändert" not in text
    assert "wartet auf Freigabe" in text and "x@evil.example" in text
    code = text.split("--freigeben ")[1].split()[0].strip("„“.,:")
    approved = invoke(campaign, "website", "--diff", "--freigeben", code)
    text = " ".join(approved.output.split())
    assert "evil.example/phish" in (campaign / "website" / "partnerliste.html").read_text()
    assert "Geändert" in text and "x@evil.example" in text  # where the change came from


# 6, 7, 8 ---------------------------------------------------------------------------

def test_a_forged_optout_is_honoured_and_named(campaign: Path, tmp_path: Path) -> None:
    forged = _message(VICTIM, "Abmelden", "Bitte nehmen Sie uns aus dem Verteiler.",
                      Authentication_Results="mx.buendnis.example; spf=fail "
                      "smtp.mailfrom=evil.example; dmarc=fail header.from=kita3.example")
    before = _state(campaign)
    text = _fetch(campaign, [forged], tmp_path / "box")
    after = _state(campaign)
    assert _changed(before, after) == {VICTIM} and after[VICTIM][2]
    assert "Absender nicht bestätigt" in text and "Bitte lesen (1" in text


def test_a_question_is_not_an_optout(campaign: Path, tmp_path: Path) -> None:
    reply = _message(A, "AW: Einladung", "Abmelden? Auf keinen Fall! Wir sind gern dabei.",
                     In_Reply_To=CONTACTS[A])
    before = _state(campaign)
    text = _fetch(campaign, [reply], tmp_path / "box")
    after = _state(campaign)
    assert _changed(before, after) == {A} and after[A][1] and not after[A][2]
    assert "bitte prüfen: Abmeldung?" in text


def test_a_form_under_an_optout_subject_is_a_return_first(
        campaign: Path, blank_forms: dict[str, Path], tmp_path: Path) -> None:
    msg = _message(A, "AW: Abmelden", "Anbei unser Formular.", In_Reply_To=CONTACTS[A])
    _attach(msg, _kita1(blank_forms, tmp_path))
    text = _fetch(campaign, [msg], tmp_path / "box")
    after = _state(campaign)
    assert after[A][1] and not after[A][2]  # answered, not opted out
    assert [r["kontakt_id"] for r in read_csv(campaign / "antworten" /
                                              "buendnispartner.csv")] == ["K1"]
    assert "bitte prüfen: Abmeldung?" in text


@pytest.mark.parametrize(("subject", "body", "form", "expected"), [
    ("Abmelden", "", False, Optout.CLEAR),
    ("AW: Einladung", "Bitte streichen Sie uns aus dem Verteiler.", False, Optout.CLEAR),
    ("AW: Einladung", "Wir möchten keine weiteren E-Mails erhalten.", False, Optout.CLEAR),
    ("AW: Einladung", "Bitte austragen, danke.", False, Optout.CLEAR),
    ("Re: Invitation", "Please unsubscribe me.", False, Optout.CLEAR),
    ("Re: Invitation", "Please remove us from your list.", False, Optout.CLEAR),
    ("AW: Einladung", "Abmelden? Auf keinen Fall! Wir sind gern dabei.", False,
     Optout.UNCLEAR),
    ("AW: Einladung", "Wir möchten uns nicht abmelden.", False, Optout.UNCLEAR),
    ("AW: Einladung", "Wie kann ich mich abmelden?", False, Optout.UNCLEAR),
    ("AW: Abmelden", "Anbei das Formular.", True, Optout.UNCLEAR),
    ("AW: Einladung", "Gern dabei!\n\n> Abmelden: Antworten Sie mit Abmelden.", False,
     Optout.NO),
    ("AW: Einladung", "Gern dabei!\n\nAm 01.12.2026 schrieb Bündnis:\nAbmelden? Antworten "
     "Sie mit „Abmelden“.", False, Optout.NO),
    ("AW: Einladung", "Wir haben keine E-Mail von Ihnen bekommen.", False, Optout.NO),
])
def test_optout_words(subject: str, body: str, form: bool, expected: Optout) -> None:
    assert optout_of(subject, body, form=form) is expected


# 9 ---------------------------------------------------------------------------------

def test_a_copied_message_id_does_not_hide_the_real_return(
        campaign: Path, blank_forms: dict[str, Path], tmp_path: Path) -> None:
    real = _message(A, "AW: Einladung", "Anbei.", In_Reply_To=CONTACTS[A])
    _attach(real, _kita1(blank_forms, tmp_path))
    decoy = _message("fremd@evil.example", "Hallo", "nichts")
    decoy.replace_header("Message-ID", real["Message-ID"])
    text = _fetch(campaign, [decoy, real], tmp_path / "box")
    assert "schon früher verarbeitet" not in text
    assert [r["kontakt_id"] for r in read_csv(campaign / "antworten" /
                                              "buendnispartner.csv")] == ["K1"]


# 10, 11 ----------------------------------------------------------------------------

def _nested_multipart(depth: int) -> bytes:
    body = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
                    for i in range(depth))
    body += b"Content-Type: text/plain\r\n\r\nhallo\r\n"
    body += b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    return b"From: tief@evil.example\r\nSubject: tief\r\nMIME-Version: 1.0\r\n" + body


def _nested_rfc822(depth: int) -> bytes:
    inner = b"From: tief@evil.example\r\nSubject: innen\r\n\r\nhallo\r\n"
    for _ in range(depth):
        inner = (b"From: tief@evil.example\r\nSubject: tief\r\nMIME-Version: 1.0\r\n"
                 b"Content-Type: message/rfc822\r\n\r\n" + inner)
    return inner


def _many_parts(count: int) -> bytes:
    parts = b"".join(b"--p\r\nContent-Type: application/pdf\r\nContent-Disposition: "
                     b"attachment; filename=\"a.pdf\"\r\n\r\nkein pdf %d\r\n" % i
                     for i in range(count))
    return (b"From: viele@evil.example\r\nSubject: viele\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n' + parts + b"--p--\r\n")


def test_no_message_blocks_the_mailbox(campaign: Path, blank_forms: dict[str, Path],
                                       tmp_path: Path) -> None:
    good = _message(A, "AW: Einladung", "Anbei.", In_Reply_To=CONTACTS[A])
    _attach(good, _kita1(blank_forms, tmp_path))
    optout = _message(B, "Abmelden")
    start = time.monotonic()
    text = _fetch(campaign, [good, _nested_multipart(1000), _nested_rfc822(1000),
                             _many_parts(10_000), optout], tmp_path / "box")
    assert time.monotonic() - start < 60
    after = _state(campaign)
    assert after[A][1] and after[B][2]  # the good return imported, the opt-out recorded
    assert text.count("nicht lesbar:") == 3
    assert "mehr als 20 Ebenen" in text and "mehr als 1000 Teile" in text
    assert "Interner Fehler" not in text and not list((campaign / "ruecklaeufe").glob("a*"))
    again = _fetch(campaign, [], tmp_path / "box")  # reported once, never again
    assert "nicht lesbar" not in again and "5 schon früher verarbeitet" in again


def test_a_thousand_parts_of_one_name_are_saved_quickly_and_listed_briefly(
        campaign: Path, tmp_path: Path) -> None:
    start = time.monotonic()
    result = invoke(campaign, "mail", "fetch", "--from",
                    str(_as_maildir([_many_parts(999)], tmp_path / "box")))
    assert time.monotonic() - start < 120
    assert len(list((campaign / "ruecklaeufe").glob("a*.pdf"))) == 999
    assert len(result.output.splitlines()) < 60
    text = " ".join(result.output.split())
    assert "… und 989 weitere" in text and "… und 979 weitere" in text


def test_classify_never_raises_and_stays_bounded() -> None:
    import tracemalloc

    for data in (_nested_multipart(1000), _nested_rfc822(1000), _many_parts(10_000),
                 _nested_multipart(21), b"\x00" * 1000, b"Content-Type: multipart/mixed\r\n"):
        start = time.monotonic()
        found = classify(data)
        assert found.kind in (Kind.UNREADABLE, Kind.OTHER)
        assert time.monotonic() - start < 20
    assert classify(_nested_multipart(19)).kind is Kind.OTHER
    data = _many_parts(10_000)  # 1 MB: what parsing it may cost
    tracemalloc.start()
    try:
        classify(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20


# the evidence rule, case by case ----------------------------------------------------

def test_the_evidence_rule_table(campaign: Path) -> None:
    with Store(campaign / ".formtool" / "state.db") as store:
        journal = Journal(store)
        a, b = journal.get("einladung", A), journal.get("einladung", B)
        assert a is not None and b is not None
        cases: list[tuple[str, bytes, str | None, evidence.Proof]] = [
            ("own reply", _message(A, "AW", In_Reply_To=CONTACTS[A]).as_bytes(), A,
             evidence.Proof.MESSAGE_ID),
            ("own address, no reference", _message(A, "Hallo").as_bytes(), A,
             evidence.Proof.SENDER),
            ("B's id from A", _message(A, "AW", In_Reply_To=CONTACTS[B]).as_bytes(), A,
             evidence.Proof.SENDER),
            ("B's id from a stranger", _message("x@y.example", "AW",
                                                In_Reply_To=CONTACTS[B]).as_bytes(), B,
             evidence.Proof.MESSAGE_ID),
            ("an old reference first", _message("x@y.example", "AW", References=(
                f"{CONTACTS[B]} <other@x.example>")).as_bytes(), None, evidence.Proof.NONE),
            ("a Von: line", _message("x@y.example", "WG: Einladung",
                                     f"Von: {B}").as_bytes(), None, evidence.Proof.NONE),
        ]
        for name, data, owner, proof in cases:
            tie = evidence.answer(journal, classify(data))
            assert (tie.send.email if tie.send else None, tie.proof) == (owner, proof), name
        assert evidence.form(None, sender="", invited=B) == (True, "")
        own = evidence.Tie(b, evidence.Proof.MESSAGE_ID)
        assert evidence.form(own, sender=B, invited=B) == (True, "")
        counts, note = evidence.form(evidence.Tie(a, evidence.Proof.SENDER), sender=A,
                                     invited=B)
        assert not counts and "eingesandt von" in note
        counts, note = evidence.form(evidence.NOBODY, sender="x@y.example", invited=B)
        assert counts and "eingesandt von x@y.example" in note


@pytest.fixture
def dovecot(certificate: tuple[Path, Path]) -> Iterator[object]:
    from imapserver import Dovecot

    server = Dovecot(certificate)
    yield server
    server.stop()


def test_the_hostile_mailbox_over_imap(campaign: Path, dovecot: object,
                                       certificate: tuple[Path, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The forged report, the question, the nested and many-part messages and a good
    reply, over a real IMAP server: the same state as from a Maildir, the unreadable
    ones left in the inbox, the rest moved."""
    from imapserver import PASSWORD, Dovecot

    assert isinstance(dovecot, Dovecot)
    box: list[EmailMessage | bytes] = [
        _report(list(CONTACTS)), _message(A, "AW: Einladung", "Abmelden? Auf keinen Fall!",
                                          In_Reply_To=CONTACTS[A]),
        _nested_multipart(1000), _nested_rfc822(1000), _many_parts(2_000),
        _message(B, "Abmelden")]
    cafile = certificate[0]
    dovecot.seed(cafile, box)
    dovecot.configure(campaign, cafile)
    monkeypatch.setenv("FORMTOOL_IMAP_PASSWORD", PASSWORD)
    before = _state(campaign)
    text = " ".join(invoke(campaign, "mail", "fetch").output.split())
    after = _state(campaign)
    assert _changed(before, after) == {A, B} and after[A][1] and after[B][2]
    assert text.count("nicht lesbar:") == 3
    with dovecot.client(cafile) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 3  # the unreadable ones stay
    other = tmp_path / "ws2"
    from formtool import workspace

    workspace.init(other)
    _journal(other)
    _fetch(other, box, tmp_path / "box")
    assert _state(other) == after


# 12 --------------------------------------------------------------------------------

def _holders(root: Path, needles: list[bytes]) -> list[str]:
    """Every file below ``root`` whose bytes – or, for a zip (a workbook), whose
    members' bytes – hold one of ``needles``."""
    import zipfile

    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        blobs = [path.read_bytes()]
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as book:
                blobs += [book.read(info) for info in book.infolist()]
        if any(n in blob for n in needles for blob in blobs):
            found.append(str(path.relative_to(root)))
    return found


def test_forget_reaches_every_copy(campaign: Path, blank_forms: dict[str, Path],
                                   tmp_path: Path) -> None:
    """A return fetched from a Maildir inside the workspace and one from an mbox there,
    imported into the table and its workbook: after ``forget --delete-files`` no byte of
    the workspace holds the address or the name – and the other person is still there."""
    from test_website import PERSON, partner

    person = {**PERSON, "email": A}
    mine = pdftk_fill(blank_forms["buendnispartner"], partner("Kita 1", **person),
                      tmp_path / "a.pdf")
    other = pdftk_fill(blank_forms["buendnispartner"], partner(
        "Kita 2", vorname="Berta", nachname="Bleibt", email=B), tmp_path / "b.pdf")
    messages: list[EmailMessage | bytes] = []
    for sender, pdf in ((A, mine), (B, other)):
        msg = _message(sender, "AW: Einladung", "Anbei.", In_Reply_To=CONTACTS[sender])
        msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf",
                           filename="Formular.pdf")
        messages.append(msg)
    maildir = _as_maildir(messages, campaign / "eingang")
    invoke(campaign, "mail", "fetch", "--from", str(maildir))
    from test_fetch import _as_mbox

    _as_mbox([*messages, _message("dritte@x.example", "Hallo")], campaign / "export.mbox")
    needles = [A.encode(), b"Privatmann", b"Wilhelmine"]
    assert "antworten/buendnispartner.xlsx" in _holders(campaign, needles)
    assert any(p.startswith("eingang/") for p in _holders(campaign, needles))

    result = invoke(campaign, "forget", A, "--delete-files")
    assert result.exit_code == 0, result.output
    assert "Excel-Tabelle ohne diese Person neu geschrieben" in result.output
    assert _holders(campaign, needles) == []
    assert "antworten/buendnispartner.xlsx" in _holders(campaign, [b"Bleibt"])
    import mailbox

    left = [m["From"] for m in mailbox.mbox(campaign / "export.mbox")]
    assert left == [B, "dritte@x.example"]  # the mbox keeps the others' mail


# 13 --------------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "words"), [
    ("zero\u200b@y.example", "unsichtbares Zeichen U+200B ZERO WIDTH SPACE an Stelle 5"),
    ("\uff41nna@x.example", "„\uff41“ (U+FF41 FULLWIDTH LATIN SMALL LETTER A) an Stelle 1"),
    ("jürgen@x.example", "Umlaute vor dem @"),
])
def test_an_odd_character_in_an_address_is_named(ws: Path, address: str, words: str) -> None:
    shipped = ws / "contacts" / "fachberatungen.csv"
    header, first = shipped.read_text(encoding="utf-8").splitlines()[:2]
    contacts = ws / "contacts" / "liste.csv"
    odd = first.replace(first.split(",")[11], address)
    contacts.write_text(f"{header}\n{odd}\n{first}\n", encoding="utf-8")
    shipped.unlink()
    result = invoke(ws, "mail", "preview", "einladung-fachberatung", "--contacts",
                    str(contacts))
    text = " ".join(result.output.split())
    assert words in text
    assert ("\u200b" not in result.output and "[U+200B]" in text) or "200B" not in words
    optout = invoke(ws, "mail", "optout", address)
    assert optout.exit_code == 2 and words.split(" an Stelle")[0] in " ".join(
        optout.output.split())


def test_every_kind_is_counted_in_words() -> None:
    from formtool.screen import _KINDS

    assert {value for value, _, _ in _KINDS} == {kind.value for kind in Kind}


def test_what_a_person_must_decide_is_kept_and_decided(campaign: Path, tmp_path: Path) -> None:
    """An unclear opt-out and an unconfirmed bounce are kept as questions (issue 23's
    /postfach): each decided once, with its effect; a second fetch asks nothing twice."""
    from formtool import workspace
    from formtool.usecases import questions

    unclear = _message(A, "AW: Einladung", "Wie kann ich mich abmelden?",
                       In_Reply_To=CONTACTS[A])
    bounce = _message("MAILER-DAEMON@mx.example", "Undelivered Mail Returned to Sender",
                      f"Your message to {B} could not be delivered.")
    _fetch(campaign, [unclear, bounce], tmp_path / "box")
    _fetch(campaign, [unclear, bounce], tmp_path / "box2")
    ws = workspace.load(campaign)
    asked = {q.question.kind: q for q in questions.open_questions(ws)}
    assert set(asked) == {"abmeldung", "unzustellbar"}
    assert asked["abmeldung"].question.email == A and asked["unzustellbar"].question.email == B
    assert _state(campaign)[B][0] == "failed"
    said = questions.decide(ws, asked["unzustellbar"].question.id, "kam-an")
    assert "wieder als zugestellt" in said and _state(campaign)[B][0] == "sent"
    said = questions.decide(ws, asked["abmeldung"].question.id, "abmelden")
    assert "abgemeldet" in said and _state(campaign)[A][2]
    assert questions.open_questions(ws) == []
    with pytest.raises(questions.QuestionError, match="schon entschieden"):
        questions.decide(ws, asked["abmeldung"].question.id, "keine")
    # forget takes the person's questions too
    _fetch(campaign, [_message(VICTIM, "AW: Einladung", "Wie kann ich mich abmelden?",
                               In_Reply_To=CONTACTS[VICTIM])], tmp_path / "box3")
    assert [q.question.email for q in questions.open_questions(ws)] == [VICTIM]
    assert invoke(campaign, "forget", VICTIM).exit_code == 0
    assert questions.open_questions(ws) == []
