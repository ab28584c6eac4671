"""`formtool mail fetch` from a real IMAP server (Dovecot on 127.0.0.1, issue 12): the
same messages as the file tests, appended over IMAP; handled ones moved away, nothing
marked read, a second run changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from helpers import invoke
from imapserver import PASSWORD, USER, Dovecot, configure_imap
from mailhelpers import MemoryKeyring
from test_fetch import _as_mbox, _journal, _message, _outcome, box  # noqa: F401 (box is a fixture)

from formtool import workspace
from formtool.state.store import Store


@pytest.fixture
def dovecot(certificate: tuple[Path, Path]) -> Iterator[Dovecot]:
    server = Dovecot(certificate)
    yield server
    server.stop()


def test_fetch_over_imap(ws: Path, box: list[EmailMessage | bytes],  # noqa: F811
                         dovecot: Dovecot, certificate: tuple[Path, Path], tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    cafile = certificate[0]
    dovecot.seed(cafile, box)
    dovecot.configure(ws, cafile)
    monkeypatch.setenv("FORMTOOL_IMAP_PASSWORD", PASSWORD)
    state = ws / ".formtool" / "state.db"
    before = state.read_bytes()
    trial = invoke(ws, "mail", "fetch", "--dry-run")
    assert "Probelauf, nichts geändert: 3 mit Formular/Anhang" in " ".join(trial.output.split())
    assert state.read_bytes() == before and not (ws / "ruecklaeufe").exists()
    with dovecot.client(cafile) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == len(box)  # nothing moved
        assert not client.folder_exists("formtool/erledigt")
    result = invoke(ws, "mail", "fetch")
    assert "3 mit Formular/Anhang, 1 Antwort, 1 Abmeldung, 2 unzustellbar" in " ".join(
        result.output.split())
    outcome = _outcome(ws)

    # the same messages from an mbox give the same result
    other = tmp_path / "ws-mbox"
    workspace.init(other)
    _journal(other)
    invoke(other, "mail", "fetch", "--from", str(_as_mbox(box, tmp_path / "m")))
    assert _outcome(other) == outcome

    with dovecot.client(cafile) as client:
        inbox = client.select_folder("INBOX")
        assert inbox[b"EXISTS"] == 2  # spam and the broken message stay where they were
        flags = client.get_flags(client.search(["ALL"]))
        assert all(b"\\Seen" not in f for f in flags.values())  # nothing marked as read
        assert client.select_folder("formtool/erledigt")[b"EXISTS"] == 8

    again = invoke(ws, "mail", "fetch")
    assert "3 mit Formular" not in again.output and again.exit_code == 0, again.output
    assert _outcome(ws) == outcome


def test_login_and_wrong_password(ws: Path, dovecot: Dovecot, certificate: tuple[Path, Path],
                                  memory_keyring: MemoryKeyring) -> None:
    dovecot.configure(ws, certificate[0])
    wrong = invoke(ws, "mail", "login", "--imap", input="falsch\n")
    assert wrong.exit_code == 1 and "Anmeldung am Postfach" in wrong.output
    right = invoke(ws, "mail", "login", "--imap", input=f"{PASSWORD}\n")
    assert right.exit_code == 0, right.output
    assert memory_keyring.get_password("formtool", f"imap:{USER}@127.0.0.1") == PASSWORD
    assert invoke(ws, "mail", "fetch").exit_code == 0


def test_sigkill_at_any_moment_loses_and_duplicates_nothing(
        ws: Path, box: list[EmailMessage | bytes],  # noqa: F811
        dovecot: Dovecot, certificate: tuple[Path, Path], tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    cafile = certificate[0]
    dovecot.seed(cafile, box)
    dovecot.configure(ws, cafile)
    env = {**os.environ, "FORMTOOL_IMAP_PASSWORD": PASSWORD}
    command = [sys.executable, "-m", "formtool", "--workspace", str(ws), "mail", "fetch"]
    for delay in (0.4, 0.7, 1.0, 1.3, 1.6, 2.0):  # killed at different moments of the run
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in final.stdout + final.stderr

    other = tmp_path / "ws-clean"
    workspace.init(other)
    _journal(other)
    invoke(other, "mail", "fetch", "--from", str(_as_mbox(box, tmp_path / "m")))
    assert _outcome(ws) == _outcome(other)  # rows, files, opt-out, bounces: as in one run
    with dovecot.client(cafile) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 2
        assert client.select_folder("formtool/erledigt")[b"EXISTS"] == 8  # each moved once


def test_a_30_mb_attachment_is_named_not_loaded(ws: Path, dovecot: Dovecot,
                                                certificate: tuple[Path, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A 30 MB scan makes a 41 MB message (base64): over the cap, only its head is fetched,
    it is named with its sender and left in the inbox, once. A 20 MB scan is kept."""
    import os

    huge = _message("gross@kita.example", "Scan der Beitrittserklärung")
    huge.add_attachment(os.urandom(30 * 1024 * 1024), maintype="application", subtype="pdf",
                        filename="Scan.pdf")
    scan = _message("scan@kita.example", "Formular als Foto")
    scan.add_attachment(b"\xff\xd8\xff\xe0" + os.urandom(20 * 1024 * 1024), maintype="image",
                        subtype="jpeg", filename="IMG_2040.jpg")
    cafile = certificate[0]
    dovecot.seed(cafile, [huge, scan])
    del huge, scan
    dovecot.configure(ws, cafile)
    monkeypatch.setenv("FORMTOOL_IMAP_PASSWORD", PASSWORD)
    result = invoke(ws, "mail", "fetch")
    out = " ".join(result.output.split())
    assert "gross@kita.example – Scan der Beitrittserklärung" in out, out
    assert "zu groß zum Einlesen (die E-Mail mit 41 MB) – bleibt im Posteingang" in out
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert "nicht eingelesen: IMG_2040.jpg: Foto oder Scan" in out
    assert [p.name for p in (ws / "ruecklaeufe").iterdir()] == ["IMG_2040.jpg"]
    with dovecot.client(cafile) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 1  # the big one, to look at
    again = invoke(ws, "mail", "fetch")
    assert "gross@kita.example" not in again.output and again.exit_code == 0, again.output


def test_a_server_without_move_gets_copy_and_delete(
        ws: Path, box: list[EmailMessage | bytes],  # noqa: F811
        certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without MOVE (RFC 6851) the handled messages are copied and deleted – and with
    UIDPLUS only those are expunged, not a message the user had marked deleted."""
    server = Dovecot(certificate, capabilities="IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE "
                                              "UIDPLUS NAMESPACE SPECIAL-USE")
    try:
        cafile = certificate[0]
        with server.client(cafile) as client:
            assert not client.has_capability("MOVE")
            client.append("INBOX", _message("privat@kita.example", "Alt").as_bytes(),
                          flags=(b"\\Deleted",))
        server.seed(cafile, box)
        server.configure(ws, cafile)
        monkeypatch.setenv("FORMTOOL_IMAP_PASSWORD", PASSWORD)
        result = invoke(ws, "mail", "fetch")
        assert "3 mit Formular/Anhang" in " ".join(result.output.split()), result.output
        with server.client(cafile) as client:
            # spam, the broken message and the user's own deleted one stay
            assert client.select_folder("INBOX")[b"EXISTS"] == 3
            assert client.select_folder("formtool/erledigt")[b"EXISTS"] == 8
    finally:
        server.stop()


@pytest.mark.parametrize(("mode", "says"), [
    ("dribble-greeting", "antwortet nicht rechtzeitig: Anmeldung ohne vollständige Antwort"),
    ("dribble-fetch", "antwortet nicht rechtzeitig: E-Mails abrufen"),
    ("stall-fetch", "antwortet nicht rechtzeitig: E-Mails abrufen"),
    ("garbage", "antwortet unverständlich (Suche nach neuen E-Mails)"),
    ("refuse", "Ordner „INBOX“ im Postfach lässt sich nicht öffnen"),
])
def test_a_misbehaving_server_ends_the_run_with_a_reason(
        mode: str, says: str, ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that dribbles (a byte now and then, so that no single read times out),
    stalls, talks nonsense or refuses: a German reason within the deadline, never a hang
    or a traceback, and nothing recorded as handled."""
    import time

    from badimap import BadImap

    with BadImap(mode) as server:
        configure_imap(ws, server.port, security="none", timeout=2)
        monkeypatch.setenv("FORMTOOL_IMAP_PASSWORD", "ascii-passwort")
        start = time.monotonic()
        result = invoke(ws, "mail", "fetch")
        elapsed = time.monotonic() - start
    assert result.exit_code == 1, result.output
    assert says in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and "Interner Fehler" not in result.output
    assert elapsed < 8, elapsed  # the deadline (2 s), not forever
    with Store(ws / ".formtool" / "state.db") as store:
        assert store.execute("SELECT COUNT(*) FROM inbound").fetchone()[0] == 0


def test_a_server_with_inbox_dot_folders(
        ws: Path, box: list[EmailMessage | bytes],  # noqa: F811
        certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders as Courier and many shared hosts have them ("INBOX.Sent", "." between
    levels): "formtool/erledigt" becomes INBOX.formtool.erledigt, nothing is refused."""
    server = Dovecot(certificate, separator=".", prefix="INBOX.")
    try:
        cafile = certificate[0]
        server.seed(cafile, box)
        server.configure(ws, cafile)
        monkeypatch.setenv("FORMTOOL_IMAP_PASSWORD", PASSWORD)
        result = invoke(ws, "mail", "fetch")
        assert "3 mit Formular/Anhang" in " ".join(result.output.split()), result.output
        with server.client(cafile) as client:
            assert client.select_folder("INBOX")[b"EXISTS"] == 2
            assert client.select_folder("INBOX.formtool.erledigt")[b"EXISTS"] == 8
            assert not client.folder_exists("formtool/erledigt")
    finally:
        server.stop()
