"""Sends of unknown outcome settled by the mailbox (issue 22): a provider that files
every accepted message in the Sent folder itself (as Microsoft 365 and Gmail do), a
sender killed at random moments between handing a message over and recording the 250,
then `mail send --resend-unknown` or `mail fetch`: every contact gets the mail exactly
once. Real SMTP (aiosmtpd) and IMAP (Dovecot) on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import invoke, kill_sends
from imapserver import PASSWORD as IMAP_PASSWORD
from imapserver import Dovecot
from mailhelpers import PASSWORD, USER, FaultyMailbox, MemoryKeyring
from smtpserver import LocalSmtpServer
from test_mail import configure

from formtool.state.store import Journal, SendState, Store
from formtool.usecases import credentials

CONTACTS = 40


class FilingProvider(FaultyMailbox):
    """Takes each message, files it in the Sent folder (as the provider does), then
    waits ``hold_seconds`` before its 250: a window in which the sender dies."""

    def __init__(self, dovecot: Dovecot, cafile: Path) -> None:
        super().__init__()
        self.dovecot, self.cafile = dovecot, cafile
        self.hold_seconds = 0.05

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> Any:
        reply = await super().handle_DATA(server, session, envelope)
        data = bytes(envelope.original_content or b"")

        def file() -> None:
            with self.dovecot.client(self.cafile) as client:
                client.append("Gesendet", data)

        await asyncio.get_running_loop().run_in_executor(None, file)
        await asyncio.sleep(self.hold_seconds)
        return reply


@pytest.fixture
def provider(ws: Path, certificate: tuple[Path, Path], memory_keyring: MemoryKeyring,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalSmtpServer, Dovecot]]:
    certfile, keyfile = certificate
    dovecot = Dovecot(certificate)
    try:
        with LocalSmtpServer(FilingProvider(dovecot, certfile), security="starttls",
                             certfile=certfile, keyfile=keyfile, auth=(USER, PASSWORD)) as smtp:
            configure(ws, smtp.port, ca_file=certfile)
            dovecot.configure(ws, certfile)
            config = ws / "formtool.toml"  # the provider files its own copies
            config.write_text(config.read_text(encoding="utf-8") + "sent_copy = false\n",
                              encoding="utf-8")
            memory_keyring.set_password("formtool", f"{USER}@127.0.0.1", PASSWORD)
            monkeypatch.setenv(credentials.IMAP_PASSWORD_ENV, IMAP_PASSWORD)
            yield smtp, dovecot
    finally:
        dovecot.stop()


def _states(ws: Path) -> Counter[str]:
    with Store(ws / ".formtool" / "state.db") as store:
        return Counter(s.state.value for s in Journal(store).sends("erinnerung"))


def _received(smtp: LocalSmtpServer) -> Counter[str]:
    return Counter(r for item in smtp.handler.received for r in item.rcpt_tos)


@pytest.mark.parametrize("seed", [20261202, 7])
def test_resend_unknown_asks_the_sent_folder_first(
        ws: Path, provider: tuple[LocalSmtpServer, Dovecot], seed: int) -> None:
    smtp, _ = provider
    # killed often inside the provider's hold, after it filed the message, before its 250
    assert kill_sends(ws, lambda: len(smtp.handler.received), seed=seed, most=5,
                      late=0.05) >= 3
    invoke(ws, "mail", "send", "erinnerung", "--yes")  # the rest; unknowns stay unknown
    unknown = _states(ws)["unknown"]
    assert unknown >= 2  # the kills landed between the provider's filing and its 250
    result = invoke(ws, "mail", "send", "erinnerung", "--yes", "--resend-unknown")
    assert "Traceback" not in result.output
    counts = _received(smtp)
    assert len(counts) == CONTACTS and set(counts.values()) == {1}, counts  # 0 duplicates
    assert _states(ws) == Counter({"sent": CONTACTS})
    assert f"Im Ordner „Gesendet“ oder in einer Antwort gefunden, also angekommen (werden " \
        f"nicht erneut gesendet): {unknown}" in " ".join(result.output.split())


def test_mail_fetch_settles_what_the_sent_folder_holds(
        ws: Path, provider: tuple[LocalSmtpServer, Dovecot]) -> None:
    """A message the provider took, but whose 250 the journal never saw: `mail fetch`
    finds it in the Sent folder and marks it sent; one the provider never took stays
    unknown (and only that one is sent again)."""
    smtp, _ = provider
    invoke(ws, "mail", "send", "erinnerung", "--yes", "--limit", "2")
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        took, never = list(journal.sends("erinnerung"))[:2]
        for send in (took, never):
            journal.mark("erinnerung", email=send.email, key=send.contact_key,
                         state=SendState.UNKNOWN, message_id=send.message_id)
        journal.mark("erinnerung", email=never.email, key=never.contact_key,
                     state=SendState.UNKNOWN, message_id="<nie-angenommen@buendnis.example>")
    result = invoke(ws, "mail", "fetch")
    assert "gefunden, also angekommen (als gesendet vermerkt, nie erneut gesendet): 1" in " ".join(
        result.output.split())
    assert _states(ws) == Counter({"sent": 1, "unknown": 1})
    again = invoke(ws, "mail", "send", "erinnerung", "--yes", "--resend-unknown", "--limit", "1")
    assert again.exit_code in (0, 1)
    counts = _received(smtp)
    assert counts[took.email] == 1 and counts[never.email] == 2  # only the unknown one again


def test_a_reply_naming_an_unknown_send_settles_it(ws: Path, tmp_path: Path) -> None:
    from test_fetch import _as_maildir, _message

    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign("einladung", "einladung-fachberatung")
        journal.mark("einladung", email="a@kita.example", key="K1", state=SendState.UNKNOWN,
                     message_id="<inv-a@buendnis.example>")
    reply = _message("a@kita.example", "AW: Einladung", "Gern dabei.",
                     In_Reply_To="<inv-a@buendnis.example>")
    result = invoke(ws, "mail", "fetch", "--from", str(_as_maildir([reply], tmp_path / "b")))
    assert "kam also an" in " ".join(result.output.split())
    with Store(ws / ".formtool" / "state.db") as store:
        [send] = Journal(store).sends("einladung")
    assert send.state is SendState.SENT and "Antwort" in send.reply
