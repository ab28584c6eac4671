"""Sends of unknown outcome settled by the mailbox.

After a crash between the server's 250 and the journal's "sent", nobody knows whether a
message went out; resending risks a duplicate, not resending a gap. The mailbox usually
knows: Microsoft 365 and Gmail file every sent message in the Sent folder themselves,
formtool's own Sent copy may have been appended, and a bounce or a reply that names the
Message-ID proves it went out. ``mail fetch`` and ``mail send --resend-unknown`` ask
here first and resend only what the mailbox does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from formtool.errors import FormtoolError
from formtool.state.store import Journal, Send, SendState
from formtool.workspace import ImapSettings

if TYPE_CHECKING:
    from formtool.mail.imap import Connection
    from formtool.mail.oauth import Secret

IN_SENT = "gesendet (im Ordner „Gesendet“ gefunden)"
ANSWERED = "gesendet (eine Antwort oder Rückmeldung nennt sie)"


@dataclass
class Settled:
    """What the mailbox told about sends of unknown outcome."""

    sent: list[str] = field(default_factory=list)  # addresses now known to have got it
    left: int = 0  # still unknown
    problem: str = ""  # why the Sent folder could not be searched (German)


def in_folder(box: Connection, settings: ImapSettings, journal: Journal,
              campaign: str | None = None) -> Settled:
    """Look up every unknown send's Message-ID in the Sent folder of an open mailbox
    (IMAP SEARCH HEADER Message-ID); mark those found sent."""
    unknown = journal.unsettled(campaign)
    out = Settled(left=len(unknown))
    if not unknown:
        return out
    box.select(box.sent_folder(settings.sent_folder))
    for send in unknown:
        if box.has_message(send.message_id) and journal.settle_sent(send, IN_SENT):
            out.sent.append(send.email)
    out.left -= len(out.sent)
    return out


def guarded(journal: Journal, search: Callable[[], Settled],
            campaign: str | None = None) -> Settled:
    """``search`` (a look into the Sent folder); a mailbox that cannot be searched is said
    in ``problem`` and settles nothing – the sends stay unknown, nothing else stops."""
    try:
        return search()
    except FormtoolError as exc:
        return Settled(left=len(journal.unsettled(campaign)),
                       problem=f"Ordner „Gesendet“ nicht durchsucht: {exc}")


def by_mailbox(settings: ImapSettings, password: Secret, journal: Journal,
               campaign: str | None = None) -> Settled:
    """``in_folder`` over a connection of its own (``guarded``)."""
    from formtool.mail import imap

    if not journal.unsettled(campaign):
        return Settled()

    def search() -> Settled:
        with imap.Connection(settings, password) as box:
            return in_folder(box, settings, journal, campaign)

    return guarded(journal, search, campaign)


def by_evidence(journal: Journal, send: Send | None) -> bool:
    """A reply or a report that names a send's Message-ID proves it went out."""
    if send is None or send.state not in (SendState.UNKNOWN, SendState.SENDING):
        return False
    return journal.settle_sent(send, ANSWERED)
