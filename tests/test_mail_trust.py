"""The promises of sending, tried as an attacker and an unlucky user would (issue 10).

Never twice (two runs at once, a changed list, a lost journal), never from a forged
header, never into a wall; unknown outcomes named. Real servers on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from pathlib import Path

import pytest
from helpers import campaign_counts, invoke, small_disk
from hypothesis import given, settings
from hypothesis import strategies as st
from mailhelpers import PASSWORD, USER, FaultyMailbox
from smtpserver import LocalSmtpServer
from test_mail import CONTACTS, configure

from formtool import workspace
from formtool.mail import headers
from formtool.mail.outbox import WALL_CONNECTION, WALL_REFUSED
from formtool.state.store import Journal, SendState, Store
from formtool.usecases import credentials


@pytest.fixture
def provider(ws: Path, certificate: tuple[Path, Path]) -> Iterator[LocalSmtpServer]:
    """STARTTLS + AUTH on loopback; the password in the environment (for subprocesses)."""
    certfile, keyfile = certificate
    with LocalSmtpServer(FaultyMailbox(), security="starttls", certfile=certfile,
                         keyfile=keyfile, auth=(USER, PASSWORD)) as smtp, \
            pytest.MonkeyPatch.context() as mp:
        configure(ws, smtp.port, ca_file=certfile)
        mp.setenv(credentials.PASSWORD_ENV, PASSWORD)
        yield smtp


def _process(ws: Path, *args: str, user: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, credentials.PASSWORD_ENV: PASSWORD}
    return subprocess.Popen([sys.executable, "-m", "formtool", "--workspace", str(ws), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, user=user)


def _received(server: LocalSmtpServer) -> Counter[str]:
    return Counter(r.rcpt_tos[0] for r in server.handler.received)


# -- one sender at a time -----------------------------------------------------------------

def test_two_runs_at_once_mail_everybody_once(ws: Path, certificate: tuple[Path, Path]) -> None:
    certfile, keyfile = certificate
    with LocalSmtpServer(FaultyMailbox(), security="starttls", certfile=certfile,
                         keyfile=keyfile, auth=(USER, PASSWORD), delay=0.01) as server:
        configure(ws, server.port, ca_file=certfile)
        first, second = (_process(ws, "mail", "send", "erinnerung", "--yes") for _ in range(2))
        outputs = [p.communicate(timeout=120)[0] for p in (first, second)]
    counts = _received(server)
    assert len(counts) == 40 and set(counts.values()) == {1}, counts
    refused = [o for o in outputs if "läuft schon ein Versand" in o]
    assert len(refused) == 1, outputs
    assert "„mail send“, gestartet am" in refused[0] and "Prozess " in refused[0]
    assert "Traceback" not in "".join(outputs)
    assert sorted(p.returncode for p in (first, second)) == [0, 1]


def test_a_dead_runs_lock_is_taken_over_with_a_note(ws: Path, provider: LocalSmtpServer) -> None:
    (ws / ".formtool").mkdir()
    (ws / ".formtool" / "lauf.json").write_text(
        '{"command": "mail send", "pid": 999999, "host": "", "started": '
        '"2026-11-24T09:15:00+01:00"}', encoding="utf-8")
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 0, result.output
    assert ("Ein früherer Lauf („mail send“, gestartet am 24.11.2026 um 09:15:00, Prozess "
            "999999) wurde nicht ordentlich beendet; seine Sperre ist übernommen.") in result.output
    assert not (ws / ".formtool" / "lauf.json").exists()


def test_status_during_a_run_and_after_a_crash(ws: Path, provider: LocalSmtpServer) -> None:
    """Rows left in 'sending' count as unknown at once, unless a run is sending them."""
    invoke(ws, "mail", "send", "erinnerung", "--yes", "--limit", "2")
    with Store(ws / ".formtool" / "state.db") as store:
        store.execute("UPDATE sends SET state = 'sending' WHERE rowid = 1")
    table = invoke(ws, "status").output
    counts = campaign_counts(table, "erinnerung")
    assert [counts[k] for k in ("gesendet", "fehlgeschlagen", "zurückgestellt", "unbekannt")
            ] == [1, 0, 0, 1], table
    listed = invoke(ws, "status", "erinnerung", "--fehler")
    assert "unbekannt" in listed.output and "Ordner „Gesendet“" in listed.output
    invoke(ws, "status", "erinnerung", "--fehler", "--csv", str(ws / "fehler.csv"))
    csv_text = (ws / "fehler.csv").read_text(encoding="utf-8-sig")
    assert "claudia.koehler.1@caritasverba-altenburger-la.example" in csv_text
    assert "unbekannt" in csv_text


# -- a recipient is an address ------------------------------------------------------------

def test_a_key_column_added_between_runs_sends_nothing_new(ws: Path,
                                                           provider: LocalSmtpServer) -> None:
    plain = ws / "contacts" / "fachberatungen.csv"
    lines = CONTACTS.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    without_id = [",".join(line.split(",")[1:]) for line in lines]  # no id column
    assert header[0] == "id"
    plain.write_text("\n".join(without_id) + "\n", encoding="utf-8")
    first = invoke(ws, "mail", "send", "erinnerung", "--yes", "--limit", "15")
    assert "Fertig: 15 gesendet" in first.output
    # the list gets an id column, numbered differently from before
    renumbered = [lines[0]] + [f"NEU-{100 - i}," + row for i, row in enumerate(without_id[1:])]
    plain.write_text("\n".join(renumbered) + "\n", encoding="utf-8")
    second = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert "schon gesendet: 15" in second.output and "Fertig: 25 gesendet" in second.output
    third = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert "schon gesendet: 40" in third.output and "Nichts zu senden." in third.output
    counts = _received(provider)
    assert len(counts) == 40 and set(counts.values()) == {1}
    status = invoke(ws, "status").output
    assert "erinnerung" in status


def test_address_spelling_does_not_matter(ws: Path, provider: LocalSmtpServer) -> None:
    invoke(ws, "mail", "send", "erinnerung", "--yes")
    lines = CONTACTS.read_text(encoding="utf-8").splitlines()
    shouting = [lines[0]] + [line.upper() if i == 1 else line
                             for i, line in enumerate(lines[1:], 1)]
    (ws / "contacts" / "fachberatungen.csv").write_text("\n".join(shouting) + "\n",
                                                        encoding="utf-8")
    again = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert "schon gesendet: 40" in again.output
    assert len(provider.handler.received) == 40


# -- the journal cannot vanish silently ---------------------------------------------------

def _sent_once(ws: Path, provider: LocalSmtpServer) -> None:
    result = invoke(ws, "mail", "send", "erinnerung", "--yes", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert len(provider.handler.received) == 5


@pytest.mark.parametrize("damage", ["deleted", "emptied", "foreign", "older"])
def test_a_lost_journal_stops_every_run(ws: Path, provider: LocalSmtpServer, tmp_path: Path,
                                        damage: str) -> None:
    _sent_once(ws, provider)
    db = ws / ".formtool" / "state.db"
    backup = sorted((ws / ".formtool" / "sicherung").glob("state-*.db"))[-1]
    if damage == "older":
        shutil.copy(backup, tmp_path / "old.db")
        invoke(ws, "mail", "send", "erinnerung", "--yes", "--limit", "5")
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if damage == "deleted":
        db.unlink()
    elif damage == "emptied":
        db.write_bytes(b"")
    elif damage == "foreign":
        other = tmp_path / "other"
        workspace.init(other)
        with Store(other / ".formtool" / "state.db") as store:
            Journal(store).add_optout("x@y.example", "test")
        db.write_bytes((other / ".formtool" / "state.db").read_bytes())
    else:
        db.write_bytes((tmp_path / "old.db").read_bytes())
    before = len(provider.handler.received)
    for args in (("mail", "send", "erinnerung", "--yes"), ("status",)):
        result = invoke(ws, *args)
        assert result.exit_code == 1, result.output
        assert "würde alle noch einmal anschreiben" in result.output
        assert "Sicherung wiederherstellen" in result.output
    assert len(provider.handler.received) == before
    # the way back that the message names
    shutil.copy(sorted((ws / ".formtool" / "sicherung").glob("state-*.db"))[-1], db)
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 0, result.output
    counts = _received(provider)
    assert len(counts) == 40 and set(counts.values()) == {1}


def test_a_corrupt_journal_is_a_plain_message(ws: Path, provider: LocalSmtpServer) -> None:
    _sent_once(ws, provider)
    db = ws / ".formtool" / "state.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"Das ist keine Datenbank. " * 400)
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1
    assert "beschädigt" in result.output and "Sicherung" in result.output
    assert len(provider.handler.received) == 5


def test_a_read_only_journal_is_a_plain_message(ws: Path, provider: LocalSmtpServer) -> None:
    _sent_once(ws, provider)
    with small_disk(ws / ".formtool", 4096, read_only=True):
        result = invoke(ws, "mail", "send", "erinnerung", "--yes")
        status = invoke(ws, "status")
    assert result.exit_code == 1, result.output
    assert "schreibgeschützt" in result.output or "Sperrdatei" in result.output
    assert status.exit_code == 1 and "schreibgeschützt" in status.output
    assert len(provider.handler.received) == 5


def test_a_full_disk_never_resends(ws: Path, provider: LocalSmtpServer) -> None:
    """A real full disk under .formtool: a German message, nothing sent twice; with
    space again, a rerun delivers the rest exactly once."""
    _sent_once(ws, provider)
    with small_disk(ws / ".formtool", 8192) as state:
        filler = state / "voll"
        with contextlib.suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        result = invoke(ws, "mail", "send", "erinnerung", "--yes")
        assert result.exit_code == 1, result.output
        assert "Datenträger ist voll" in result.output
        assert set(_received(provider).values()) == {1}
        filler.unlink()
        again = invoke(ws, "mail", "send", "erinnerung", "--yes")
    counts = _received(provider)
    assert set(counts.values()) == {1}, counts
    unknown = "Zustand unbekannt" in again.output
    assert again.exit_code == (1 if unknown else 0), again.output
    assert len(counts) == 40 - again.output.count("Zustand unbekannt (1;")


def test_the_sent_mark_failing_after_the_250_never_resends(ws: Path,
                                                           provider: LocalSmtpServer) -> None:
    """The write after the server's 250 fails (as on a disk that fills up at that very
    moment): the row stays 'sending', the next run reports it unknown, never resends."""
    invoke(ws, "mail", "send", "erinnerung", "--yes", "--limit", "3")
    db = ws / ".formtool" / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TRIGGER full BEFORE UPDATE ON sends WHEN NEW.state = 'sent' "
                     "BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END")
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1
    assert "Datenträger ist voll" in result.output
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER full")
    again = invoke(ws, "mail", "send", "erinnerung", "--yes")
    counts = _received(provider)
    assert set(counts.values()) == {1}, counts
    assert "Zustand unbekannt (1; " in again.output
    # the last line names the state, not a reason that is not the case
    assert "1 Kontakt(e) ohne E-Mail: 1 mit unbekanntem Zustand" in " ".join(
        again.output.split())


# -- data never becomes structure ---------------------------------------------------------

HOSTILE = [
    "Eve =?utf-8?q?x=0D=0AReply-To:_boss@evil.example=0D=0A=0D=0AUeberweisen_Sie?=",
    "=?utf-8?b?DQpCY2M6IGFsbEBleGFtcGxlLm9yZw0K?=",
    "Null\x00Byte Vertical\x0bTab\u2028Zeile",
    ('Müller, Hans "der Ältere" (Leitung), Referat Kita, ' * 4)[:200],
    "[Hier klicken](http://evil.example/) ![Bild](http://evil.example/a.png) **fett**",
]


def _structure(message: Message) -> list[object]:
    return [list(message.keys()), [p.get_content_type() for p in message.walk()]]


def test_hostile_names_arrive_as_one_literal_display_name(ws: Path,
                                                          provider: LocalSmtpServer) -> None:
    rows = ["id,vorname,nachname,organisation,email", "K0,Clara,Klar,Kita Klar,k0@kita.example"]
    for i, name in enumerate(HOSTILE, 1):
        cell = '"' + name.replace('"', '""') + '"'
        rows.append(f"K{i},,{cell},{cell},k{i}@kita.example")
    (ws / "contacts" / "fachberatungen.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (ws / "templates" / "hallo.md.j2").write_text(
        "Subject: Hallo {{ nachname }} – {{ organisation }}\n\n"
        "Guten Tag {{ nachname }},\n\nbei **{{ organisation }}** alles gut?\n", encoding="utf-8")
    result = invoke(ws, "mail", "send", "hallo", "--yes")
    assert result.exit_code == 0, result.output
    received = {r.rcpt_tos[0]: r for r in provider.handler.received}
    assert len(received) == 6
    clean_modern = email.message_from_bytes(received["k0@kita.example"].data,
                                            policy=email.policy.default)
    for i, name in enumerate(HOSTILE, 1):
        data = received[f"k{i}@kita.example"].data
        modern = email.message_from_bytes(data, policy=email.policy.default)
        assert _structure(modern) == _structure(clean_modern), (name, data[:2000])
        assert modern["Reply-To"] is None and modern["Bcc"] is None
        [to] = modern["To"].addresses
        assert to.display_name == headers.shown_name(name) and to.addr_spec == f"k{i}@kita.example"
        literal = headers.clean(name)
        assert str(modern["Subject"]) == headers.clean(f"Hallo {name} – {name}")
        old = email.message_from_bytes(data)  # compat32, as many clients behave
        assert _structure(old) == _structure(clean_modern)
        [(old_name, old_addr)] = getaddresses([old["To"]])
        assert str(make_header(decode_header(old_name))) == headers.shown_name(name)
        assert old_addr == f"k{i}@kita.example"
        assert str(make_header(decode_header(old["Subject"]))) == headers.clean(
            f"Hallo {name} – {name}")
        html_part = modern.get_body(("html",))
        assert html_part is not None
        html = html_part.get_content()
        assert "evil.example" not in "".join(re.findall(r'(?:href|src)="[^"]*"', html))
        assert html.count("<a ") == 1  # the opt-out footer's own mailto link, nothing else
        assert "<img" not in html and "<h1" not in html
        text_part = modern.get_body(("plain",))
        assert text_part is not None
        # the value as typed (the plain text wraps at 76 columns: compare words, not lines)
        flat = " ".join(text_part.get_content().replace("\x00", " ").split())
        assert " ".join(literal[:20].split("\x00")[0].split()) in flat or "\x00" in name


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_any_subject_and_name_survive_both_parsers(name: str, subject: str) -> None:
    from email.message import EmailMessage

    from formtool.mail.message import POLICY

    message = EmailMessage(policy=POLICY)
    message["To"] = headers.mailbox("To", name, "x@kita.example")
    message["Subject"] = headers.text("Subject", subject)
    message.set_content("x")
    data = message.as_bytes(policy=POLICY)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    modern = email.message_from_bytes(data, policy=email.policy.default)
    assert list(modern.keys())[:2] == ["To", "Subject"]
    [to] = modern["To"].addresses
    assert (to.display_name, to.addr_spec) == (headers.shown_name(name), "x@kita.example")
    assert str(modern["Subject"]) == headers.clean(subject)
    old = email.message_from_bytes(data)
    [(old_name, old_addr)] = getaddresses([old["To"]])
    assert str(make_header(decode_header(old_name))) == headers.shown_name(name)
    assert old_addr == "x@kita.example"
    assert str(make_header(decode_header(old["Subject"]))) == headers.clean(subject)


def test_the_reminder_subject_keeps_its_spaces(ws: Path, provider: LocalSmtpServer) -> None:
    invoke(ws, "mail", "send", "erinnerung", "--yes", "--limit", "1")
    [got] = provider.handler.received
    subject = email.message_from_bytes(got.data, policy=email.policy.default)["Subject"]
    assert str(subject) == "Erinnerung: Ihre Beitrittserklärung zum Bündnis für Kita-Qualität"
    old = email.message_from_bytes(got.data)
    assert str(make_header(decode_header(old["Subject"]))) == str(subject)


@pytest.mark.parametrize("value", ["/etc/passwd", "../../../etc/passwd", ".formtool/state.db",
                                   "anhaenge/../formtool.toml", "C:\\Windows\\win.ini",
                                   "anhaenge/link.pdf"])
def test_attach_takes_files_from_anhaenge_only(ws: Path, provider: LocalSmtpServer,
                                               value: str) -> None:
    (ws / "anhaenge").mkdir()
    (ws / "anhaenge" / "link.pdf").symlink_to("/etc/passwd")
    (ws / "templates" / "anhang.md.j2").write_text(
        "Subject: Mit Anhang\nAttach: {{ anhang }}\n\nText\n", encoding="utf-8")
    (ws / "contacts" / "fachberatungen.csv").write_text(
        f'id,email,anhang\nA1,a@kita.example,anhaenge/Flyer.pdf\nA2,b@kita.example,"{value}"\n',
        encoding="utf-8")
    (ws / "anhaenge" / "Flyer.pdf").write_bytes(b"%PDF-1.4 Flyer")
    result = invoke(ws, "mail", "send", "anhang", "--yes")
    assert result.exit_code == 1
    assert "Zeile 3 (A2): Anhang" in result.output and "anhaenge/" in result.output
    assert provider.handler.received == []  # refused before the first message


def test_attach_from_anhaenge_works(ws: Path, provider: LocalSmtpServer) -> None:
    (ws / "anhaenge").mkdir()
    (ws / "anhaenge" / "Flyer Bündnis.pdf").write_bytes(b"%PDF-1.4 Flyer")
    (ws / "templates" / "anhang.md.j2").write_text(
        "Subject: Mit Anhang\nAttach: Flyer Bündnis.pdf\n\nText\n", encoding="utf-8")
    result = invoke(ws, "mail", "send", "anhang", "--yes", "--limit", "1")
    assert result.exit_code == 0, result.output
    [got] = provider.handler.received
    [part] = got.message().iter_attachments()
    assert part.get_filename() == "Flyer Bündnis.pdf"


# -- walls --------------------------------------------------------------------------------

@pytest.mark.parametrize("reply", ["550 5.7.1 Sender not allowed", "552 5.3.4 Message too big",
                                   "554 5.7.1 Policy rejection"])
def test_a_wall_stops_the_run_and_a_rerun_delivers_the_rest(ws: Path, provider: LocalSmtpServer,
                                                            reply: str) -> None:
    lines = CONTACTS.read_text(encoding="utf-8").splitlines()
    addresses = [line.split(",")[11] for line in lines[1:]]
    provider.handler.refuse.update({a: reply for a in addresses})
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert result.exit_code == 1
    assert f"Angehalten: {WALL_REFUSED} Empfänger nacheinander abgewiesen mit „{reply}“" \
        in result.output
    assert "ein neuer Aufruf" in result.output
    with Store(ws / ".formtool" / "state.db") as store:
        states = Counter(s.state for s in Journal(store).sends("erinnerung"))
    assert states == {SendState.PENDING: WALL_REFUSED}  # the wall's: not the recipients'
    provider.handler.refuse.clear()
    again = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert again.exit_code == 0, again.output
    counts = _received(provider)
    assert len(counts) == 40 and set(counts.values()) == {1}


def test_retry_failed_sends_to_refused_addresses_again(ws: Path,
                                                       provider: LocalSmtpServer) -> None:
    bad = "anja.gross-dietrich.2@diakonie-eichsfeld.example"
    provider.handler.refuse[bad] = "550 5.1.1 Postfach voll"
    assert invoke(ws, "mail", "send", "erinnerung", "--yes").exit_code == 1
    provider.handler.refuse.clear()
    plain = invoke(ws, "mail", "send", "erinnerung", "--yes")
    assert "früher abgewiesen (erneut mit --retry-failed): 1" in plain.output
    retried = invoke(ws, "mail", "send", "erinnerung", "--yes", "--retry-failed")
    assert retried.exit_code == 0 and "Fertig: 1 gesendet" in retried.output
    assert _received(provider)[bad] == 1


class RawServer:
    """A socket server that misbehaves on purpose: ``dribble`` sends 220- continuation
    lines forever; ``mute_after_data`` answers everything but the end of DATA."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.datas = 0

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by __exit__
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.mode == "dribble":
                    while not self.stop.is_set():
                        conn.sendall(b"220-noch nicht ganz bereit\r\n")
                        time.sleep(0.2)
                    return
                conn.sendall(b"220 bereit\r\n")
                reader = conn.makefile("rb")
                in_data = False
                for line in reader:
                    if in_data:
                        if line == b".\r\n":
                            self.datas += 1
                            in_data = False  # and never answer
                        continue
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        conn.sendall(b"250-hallo\r\n250 SIZE 100000000\r\n")
                    elif verb == b"DATA":
                        conn.sendall(b"354 los\r\n")
                        in_data = True
                    elif verb == b"QUIT":
                        conn.sendall(b"221 tschuess\r\n")
                        return
                    else:
                        conn.sendall(b"250 ok\r\n")
            except OSError:
                return

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.sock.close()


def test_a_dribbling_server_is_cut_off(ws: Path) -> None:
    with RawServer("dribble") as server:
        configure(ws, server.port, security="none", user="", timeout=2)
        start = time.monotonic()
        result = invoke(ws, "mail", "send", "erinnerung", "--yes")
        took = time.monotonic() - start
    assert result.exit_code == 1
    assert "antwortet nicht rechtzeitig (Grenze 2 s)" in result.output
    assert took < 10, took


def test_a_server_mute_after_data_stops_the_run(ws: Path) -> None:
    with RawServer("mute") as server:
        configure(ws, server.port, security="none", user="", timeout=1)
        start = time.monotonic()
        result = invoke(ws, "mail", "send", "erinnerung", "--yes")
        took = time.monotonic() - start
        datas = server.datas
    assert result.exit_code == 1
    assert f"Angehalten: {WALL_CONNECTION}-mal nacheinander" in result.output
    assert datas == WALL_CONNECTION and took < 20, (datas, took)
    # each one named, with the advice to look in the Sent folder
    assert result.output.count("@") >= WALL_CONNECTION
    assert "im Ordner „Gesendet“ nachsehen" in result.output
    with Store(ws / ".formtool" / "state.db") as store:
        states = Counter(s.state for s in Journal(store).sends("erinnerung"))
    assert states == {SendState.UNKNOWN: WALL_CONNECTION}


def test_ctrl_c_ends_a_stalled_run_at_the_first_press(ws: Path) -> None:
    with RawServer("mute") as server:
        configure(ws, server.port, security="none", user="", timeout=60)
        process = _process(ws, "mail", "send", "erinnerung", "--yes")
        deadline = time.monotonic() + 30
        while server.datas < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        start = time.monotonic()
        output, _ = process.communicate(timeout=30)
        took = time.monotonic() - start
    assert process.returncode == 1, output
    assert "Abgebrochen (Strg+C)." in output and "Traceback" not in output
    assert took < 10, took
    with Store(ws / ".formtool" / "state.db") as store:
        states = Counter(s.state for s in Journal(store).sends("erinnerung"))
    assert states == {SendState.UNKNOWN: 1}  # DATA went out: maybe delivered, never resent


def test_journal_writers_wait_for_each_other(ws: Path) -> None:
    """A command that writes state.db while another holds it waits, then does its work:
    never 'database is locked'."""
    with Store(ws / ".formtool" / "state.db") as store:
        store.execute("BEGIN IMMEDIATE")
        release = threading.Timer(1.0, lambda: store.execute("COMMIT"))
        release.start()
        result = invoke(ws, "mail", "optout", "a@kita.example")
        release.join()
    assert result.exit_code == 0, result.output
    assert "1 Adresse(n) abgemeldet." in result.output


def test_fresh_workspace_opened_by_many_at_once(tmp_path: Path) -> None:
    """The migrations race: every process finds the schema complete, none fails."""
    for round_ in range(3):
        root = tmp_path / f"ws{round_}"
        workspace.init(root)
        processes = [_process(root, "status") for _ in range(4)]
        outputs = [p.communicate(timeout=60)[0] for p in processes]
        assert [p.returncode for p in processes] == [0] * 4, outputs
        assert all("Noch nichts gesendet." in o for o in outputs), outputs


def test_an_older_journal_is_migrated_to_addresses(tmp_path: Path) -> None:
    """A state.db of the previous version (sends keyed by contact key, one address under
    two keys, mixed case) opens with one row per address, the most advanced state kept."""
    from formtool.state.store import MIGRATIONS

    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:
        for script in MIGRATIONS[:3]:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        conn.execute("INSERT INTO campaigns VALUES ('c', 't', '2026-11-01')")
        rows = [("c", "K1", "Anna@Kita.example", "failed"), ("c", "K9", "anna@kita.example",
                                                              "sent"),
                ("c", "K2", "bert@kita.example", "unknown")]
        for campaign, key, email, state in rows:
            conn.execute("INSERT INTO sends (campaign, contact_key, email, state, updated_at) "
                         "VALUES (?, ?, ?, ?, '2026-11-01')", (campaign, key, email, state))
    with Store(db) as store:
        sends = {s.email: s.state for s in Journal(store).sends("c")}
        assert store.meta("journal_id")
    assert sends == {"anna@kita.example": SendState.SENT, "bert@kita.example": SendState.UNKNOWN}


def test_messages_that_cannot_be_built_are_no_wall(ws: Path, provider: LocalSmtpServer) -> None:
    """Our own failures (too big to build) are each contact's, not the server's: the run
    goes on past WALL_REFUSED of them."""
    import functools

    from formtool.mail import outbox
    from formtool.mail.template import ComposeError
    from formtool.usecases import mailing

    run = mailing.open_mailing(workspace.load(ws), "erinnerung", None, "bau")
    people = list(run.contacts)[:WALL_REFUSED + 3]

    def build(contact: object, index: int) -> object:
        if index <= WALL_REFUSED:
            raise ComposeError(f"Zeile {index}: zu groß")
        return run.built(people[index])

    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign("bau", "erinnerung")
        sender = outbox.Outbox(workspace.load(ws).mail_settings(), journal, "bau",
                               password=PASSWORD)
        jobs = (outbox.Job(c, functools.partial(build, c, i)) for i, c in enumerate(people))
        summary = sender.run(jobs)  # type: ignore[arg-type]
    assert summary.wall == ""
    assert (summary.failed, summary.sent) == (WALL_REFUSED + 1, 2)
