"""[imap] sent_copy (issue 12): every message formtool sends lands once, byte for byte, in
the mailbox's Sent folder of a real Dovecot – also when a run is killed between the send
and the append, or the mailbox goes away during the run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from helpers import invoke, kill_sends
from imapserver import PASSWORD as IMAP_PASSWORD
from imapserver import USER as IMAP_USER
from imapserver import Dovecot
from mailhelpers import PASSWORD, USER, FaultyMailbox, MemoryKeyring
from smtpserver import LocalSmtpServer
from test_mail import configure

from formtool.mail.sentcopy import SPOOL, spool_name
from formtool.state.store import Journal, SendState, Store
from formtool.usecases import credentials

CONTACTS = 40  # the sample list's contacts (workspace template)


@pytest.fixture
def peers(ws: Path, certificate: tuple[Path, Path], memory_keyring: MemoryKeyring,
          monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
          ) -> Iterator[tuple[LocalSmtpServer, Dovecot]]:
    """SMTP (STARTTLS + AUTH) and IMAP on loopback, the workspace set up for both; the
    SMTP server waits ``delay`` seconds before each reply (parametrize indirectly)."""
    certfile, keyfile = certificate
    dovecot = Dovecot(certificate)
    delay = getattr(request, "param", 0.002)
    try:
        with LocalSmtpServer(FaultyMailbox(), security="starttls", certfile=certfile,
                             keyfile=keyfile, auth=(USER, PASSWORD), delay=delay) as smtp:
            configure(ws, smtp.port, ca_file=certfile)
            dovecot.configure(ws, certfile)
            memory_keyring.set_password("formtool", f"{USER}@127.0.0.1", PASSWORD)
            monkeypatch.setenv(credentials.IMAP_PASSWORD_ENV, IMAP_PASSWORD)
            yield smtp, dovecot
    finally:
        dovecot.stop()


def _sent_folder(dovecot: Dovecot, cafile: Path, folder: str = "Gesendet"
                 ) -> list[tuple[bytes, tuple[bytes, ...]]]:
    """(bytes, flags) of every message in the Sent folder."""
    with dovecot.client(cafile) as client:
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        data = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
    return [(d[b"BODY[]"], d[b"FLAGS"]) for d in data.values()]


def _ids(messages: list[tuple[bytes, tuple[bytes, ...]]]) -> Counter[str]:
    return Counter(str(message_from_bytes(m)["Message-ID"]) for m, _ in messages)


def _spool(ws: Path) -> list[Path]:
    folder = ws / ".formtool" / SPOOL
    return sorted(folder.glob("*")) if folder.exists() else []


def test_every_sent_message_lands_once_byte_for_byte(
        ws: Path, peers: tuple[LocalSmtpServer, Dovecot],
        certificate: tuple[Path, Path]) -> None:
    smtp, dovecot = peers
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 0, result.output
    assert f"Kopie im Ordner „Gesendet“ abgelegt: {CONTACTS}." in result.output

    copies = _sent_folder(dovecot, certificate[0])
    # exactly what the recipients' server took (DATA without its dot-stuffing)
    assert sorted(m for m, _ in copies) == sorted(r.data for r in smtp.handler.received)
    assert len(copies) == CONTACTS and max(_ids(copies).values()) == 1
    assert all(b"\\Seen" in flags for _, flags in copies)  # one's own mail: not "new"
    assert _spool(ws) == []

    again = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert again.exit_code == 0 and "Kopie im Ordner" not in again.output, again.output
    assert len(_sent_folder(dovecot, certificate[0])) == CONTACTS


def test_a_kill_between_send_and_append_never_appends_twice(
        ws: Path, peers: tuple[LocalSmtpServer, Dovecot],
        certificate: tuple[Path, Path]) -> None:
    """The three places a kill can leave a spooled copy, made exactly: appended but not
    removed; sent but not appended; its send unknown (never put in Sent)."""
    _, dovecot = peers
    cafile = certificate[0]
    assert invoke(ws, "mail", "send", "erinnerung", "--yes").exit_code == 0
    spool = ws / ".formtool" / SPOOL
    with dovecot.client(cafile) as client:
        client.select_folder("Gesendet")
        uids = sorted(client.search(["ALL"]))
        bodies = client.fetch(uids[:2], ["BODY.PEEK[]"])
        appended, lost = (bodies[u][b"BODY[]"] for u in uids[:2])
        client.delete_messages([uids[1]])  # as if the kill came before its append
        client.uid_expunge([uids[1]])
    spooled = [str(message_from_bytes(data)["Message-ID"]) for data in (appended, lost)]
    for data, message_id in zip((appended, lost), spooled, strict=True):
        (spool / spool_name(message_id)).write_bytes(data)
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        send = next(s for s in journal.sends("erinnerung") if s.message_id not in spooled)
        journal.mark("erinnerung", email=send.email, key="x", state=SendState.UNKNOWN,
                     message_id="<unbekannt@buendnis.example>", reply="abgebrochen")
    unknown = appended.replace(message_from_bytes(appended)["Message-ID"].encode(),
                               b"<unbekannt@buendnis.example>")
    (spool / spool_name("<unbekannt@buendnis.example>")).write_bytes(unknown)

    result = invoke(ws, "mail", "send", "erinnerung", "--yes")  # nothing new to send
    assert "Kopie im Ordner „Gesendet“ abgelegt: 1 (1 lagen schon dort)." in result.output
    copies = _sent_folder(dovecot, cafile)
    ids = _ids(copies)
    assert len(copies) == CONTACTS and max(ids.values()) == 1
    assert "<unbekannt@buendnis.example>" not in ids
    assert lost in [m for m, _ in copies]
    assert _spool(ws) == []


def test_sigkill_at_random_moments_each_copy_once(
        ws: Path, peers: tuple[LocalSmtpServer, Dovecot],
        certificate: tuple[Path, Path]) -> None:
    smtp, dovecot = peers
    kills = kill_sends(ws, lambda: len(smtp.handler.received), seed=20261126)
    env = {**os.environ, credentials.PASSWORD_ENV: PASSWORD,
           credentials.IMAP_PASSWORD_ENV: IMAP_PASSWORD}
    command = [sys.executable, "-m", "formtool", "--workspace", str(ws), "mail", "send",
               "erinnerung", "--yes"]
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in final.stdout + final.stderr
    assert kills >= 3

    with Store(ws / ".formtool" / "state.db") as store:
        sent = {s.message_id for s in Journal(store).sends("erinnerung")
                if s.state == SendState.SENT}
    ids = _ids(_sent_folder(dovecot, certificate[0]))
    assert max(ids.values()) == 1, "a copy was appended twice"
    assert set(ids) == sent  # every message known to have gone out, and only those
    assert _spool(ws) == []


@pytest.mark.parametrize("peers", [0.01], indirect=True)  # 40 messages in a few seconds
def test_the_mailbox_going_away_mid_run_sends_on_and_catches_up_later(
        ws: Path, peers: tuple[LocalSmtpServer, Dovecot],
        certificate: tuple[Path, Path]) -> None:
    smtp, dovecot = peers

    def halt_after_ten() -> None:
        deadline = time.monotonic() + 60
        while len(smtp.handler.received) < 10 and time.monotonic() < deadline:
            time.sleep(0.001)
        dovecot.halt()

    watcher = threading.Thread(target=halt_after_ten)
    watcher.start()
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    watcher.join()
    assert result.exit_code == 0, result.output
    assert f"Fertig: {CONTACTS} gesendet." in result.output  # the mail goes out regardless
    assert "noch nicht abgelegt. Grund: Verbindung zum Postfach 127.0.0.1:" in result.output
    waiting = len(_spool(ws))
    assert 0 < waiting <= CONTACTS - 1 and f"Achtung: {waiting} Kopie(n)" in result.output

    dovecot.start()
    later = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert f"abgelegt: {waiting}" in later.output, later.output
    copies = _sent_folder(dovecot, certificate[0])
    assert len(copies) == CONTACTS and max(_ids(copies).values()) == 1
    assert _spool(ws) == []


def test_a_mailbox_problem_is_named_before_anything_is_sent(
        ws: Path, peers: tuple[LocalSmtpServer, Dovecot], monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp, _ = peers
    monkeypatch.setenv(credentials.IMAP_PASSWORD_ENV, "falsch")
    asked = invoke(ws, "mail", "send", "erinnerung", input="j\n")
    assert asked.exit_code == 1 and "Anmeldung am Postfach" in asked.output, asked.output
    assert "Kopie in „Gesendet“" in asked.output and "sent_copy = false" in asked.output
    assert "jetzt senden?" not in asked.output
    unattended = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert unattended.exit_code == 1 and "Anmeldung am Postfach" in unattended.output
    assert smtp.handler.received == []


def test_the_sent_folder_is_found_by_its_usual_name_or_named(
        ws: Path, certificate: tuple[Path, Path], memory_keyring: MemoryKeyring,
        monkeypatch: pytest.MonkeyPatch) -> None:
    certfile, keyfile = certificate
    dovecot = Dovecot(certificate, sent_flag=False)  # no folder flagged \Sent
    try:
        with LocalSmtpServer(FaultyMailbox(), security="starttls", certfile=certfile,
                             keyfile=keyfile, auth=(USER, PASSWORD)) as smtp:
            configure(ws, smtp.port, ca_file=certfile)
            dovecot.configure(ws, certfile)
            memory_keyring.set_password("formtool", f"{USER}@127.0.0.1", PASSWORD)
            monkeypatch.setenv(credentials.IMAP_PASSWORD_ENV, IMAP_PASSWORD)
            none = invoke(ws, "mail", "send", "erinnerung", "--yes")
            assert none.exit_code == 1 and "[imap] sent_folder setzen" in none.output
            assert smtp.handler.received == []
            with dovecot.client(certfile) as client:
                client.create_folder("Gesendete Elemente")  # as Outlook names it
            result = invoke(ws, "mail", "send", "erinnerung", "--yes", "--limit", "2")
            assert "Kopie im Ordner „Gesendete Elemente“ abgelegt: 2." in result.output
            assert len(_sent_folder(dovecot, certfile, "Gesendete Elemente")) == 2
    finally:
        dovecot.stop()


def test_sent_copy_default_and_the_providers_that_file_their_own() -> None:
    from formtool.workspace import imap_settings

    assert not imap_settings({}).sent_copy  # no mailbox, no copy
    assert imap_settings({"imap": {"host": "imap.ionos.de"}}).sent_copy
    assert not imap_settings({"imap": {"host": "imap.gmail.com"}}).sent_copy
    assert not imap_settings({"imap": {"host": "outlook.office365.com"}}).sent_copy
    assert imap_settings({"imap": {"host": "imap.gmail.com", "sent_copy": True}}).sent_copy
    from formtool.workspace import WorkspaceError

    with pytest.raises(WorkspaceError, match="true oder false"):
        imap_settings({"imap": {"host": "x", "sent_copy": "ja"}})


def test_forget_removes_a_waiting_copy(ws: Path) -> None:
    """A copy still waiting for the Sent folder holds the person's message: `forget` takes
    it with the rest; another person's stays."""
    spool = ws / ".formtool" / SPOOL
    spool.mkdir(parents=True)
    for address in ("anna.weg@kita.example", "bleibt@kita.example",
                    "johanna.weg@kita.example"):  # holds the address, is another person
        message_id = f"<{address.split('@')[0]}@buendnis.example>"
        (spool / spool_name(message_id)).write_bytes(
            f"To: Anna <{address}>\r\nMessage-ID: {message_id}\r\n\r\nHallo\r\n".encode())
    result = invoke(ws, "forget", "Anna.Weg@kita.example")
    assert result.exit_code == 0, result.output
    assert "1 wartende Kopie(n) für „Gesendet“" in result.output
    left = b" ".join(p.read_bytes() for p in _spool(ws))
    assert len(_spool(ws)) == 2 and b"anna.weg@kita.example>" not in left.replace(
        b"johanna.weg", b"")
    assert b"bleibt@kita.example" in left and b"johanna.weg@kita.example" in left


@pytest.mark.parametrize("same", [True, False])
def test_one_mail_login_for_sending_and_the_mailbox(
        same: bool, ws: Path, certificate: tuple[Path, Path],
        memory_keyring: MemoryKeyring) -> None:
    """Most providers have one password for SMTP and IMAP: `mail login` asks once and
    checks the mailbox with it; only when that fails does it ask for the mailbox's."""
    certfile, keyfile = certificate
    smtp_password = IMAP_PASSWORD if same else PASSWORD
    dovecot = Dovecot(certificate)
    try:
        with LocalSmtpServer(FaultyMailbox(), security="starttls", certfile=certfile,
                             keyfile=keyfile, auth=(IMAP_USER, smtp_password)) as smtp:
            configure(ws, smtp.port, ca_file=certfile, user=IMAP_USER)
            dovecot.configure(ws, certfile)
            answers = f"{smtp_password}\n" + ("" if same else f"{IMAP_PASSWORD}\n")
            result = invoke(ws, "mail", "login", input=answers)
            assert result.exit_code == 0, result.output
            if same:
                assert "mit demselben Passwort erfolgreich" in result.output
                assert memory_keyring.get_password(
                    "formtool", f"imap:{IMAP_USER}@127.0.0.1") is None  # one password kept
            else:
                assert "mit demselben Passwort nicht möglich" in result.output
                assert "Postfach-Passwort für" in result.output
            # sending with a Sent copy and fetching find the right password by themselves
            sent = invoke(ws, "mail", "send", "erinnerung", "--yes", "--limit", "1")
            assert "Kopie im Ordner „Gesendet“ abgelegt: 1." in sent.output, sent.output
            assert invoke(ws, "mail", "fetch").exit_code == 0
    finally:
        dovecot.stop()
