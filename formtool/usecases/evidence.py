"""Evidence before state: whose state a message from the mailbox may change.

The mailbox is the one door through which anyone on the internet writes into a
campaign. So a message changes a contact's state only by evidence that ties it to that
contact, and this module is the one place that says what counts:

- the Message-ID of a send to that contact, where a reply names what it answers
  (In-Reply-To, else the *last* entry of References) or where a report returns the
  original (a bounce) – formtool sends one message per recipient, so it names one send;
- the contact's own address in ``From``;
- for a returned form: its response id, together with who sent it (``form``).

Never evidence: a "Von: …" line in the text, the From of an attached original, a name
or an organisation inside a form, any address a report merely mentions. A message
with no tie changes nobody's state and is listed to read. When the evidence disagrees
(A's mail carries B's form, A's reply names B's invitation), the sender's own state is
what changes and the other is named in the note – never silently applied.

Bounces: proven by the returned original's Message-ID; without it, a report may mark
at most one contact, only when it looks like a mail server's report, and then as
"nicht bestätigt"; a report naming several contacts and no Message-ID changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from formtool.addresses import is_valid_email, normalise
from formtool.mail.inbound import Bounced, Inbound
from formtool.state.store import Journal, Send

UNCONFIRMED = "nicht bestätigt"  # how status shows a bounce tied by address alone


class Proof(enum.Enum):
    """What ties a message to the send whose state it changes."""

    MESSAGE_ID = "Message-ID der Sendung"
    SENDER = "Absenderadresse"
    RESPONSE_ID = "Rücklauf-Kennung"
    ADDRESS = "nur die Adresse im Bericht"  # a bounce without its original: not confirmed
    NONE = "nichts"


@dataclass(frozen=True)
class Tie:
    """The send a message is about (None: nobody's), by what, and what to look at."""

    send: Send | None
    proof: Proof
    note: str = ""  # German, for the coordinator; "" when nothing is odd

    @property
    def look(self) -> bool:
        return self.send is None or bool(self.note)


NOBODY = Tie(None, Proof.NONE)


def _referenced(journal: Journal, ids: list[str]) -> Send | None:
    return next((s for s in map(journal.by_message_id, ids) if s is not None), None)


def _own(journal: Journal, sender: str) -> list[Send]:
    return journal.sends_to(sender) if is_valid_email(sender) else []


def answer(journal: Journal, found: Inbound) -> Tie:
    """Whose answer a reply (or a form without response id, or an opt-out's campaign)
    is: the sender's own send when formtool mailed the sender – the one the message
    names if it names one of theirs; else the send whose Message-ID it answers (its
    own In-Reply-To/References, or an attached original's); else nobody."""
    referenced = _referenced(journal, found.refs + found.inner_refs)
    own = _own(journal, found.sender)
    sender = normalise(found.sender) if found.sender else ""
    if referenced is not None and referenced.email == sender:
        return Tie(referenced, Proof.MESSAGE_ID)
    if own:
        chosen = next((s for s in own if referenced and s.campaign == referenced.campaign),
                      own[0])
        note = (f"bezieht sich auf die E-Mail an {referenced.email} – weitergeleitet? "
                f"Gezählt für {chosen.email}, nicht für {referenced.email}"
                if referenced is not None else "")
        return Tie(chosen, Proof.SENDER, note)
    if referenced is not None:
        return Tie(referenced, Proof.MESSAGE_ID,
                   f"kam von {found.sender or 'unbekannt'}, an die nichts verschickt wurde; "
                   f"gezählt für {referenced.email} (antwortet auf dessen E-Mail)")
    claimed = ", ".join(found.forwarded)
    return Tie(None, Proof.NONE,
               f"keiner Sendung zuzuordnen (nennt {claimed} – das belegt nichts)"
               if claimed else "keiner Sendung zuzuordnen")


def form(mail: Tie | None, *, sender: str, invited: str) -> tuple[bool, str]:
    """Whether a returned form with a response id issued to ``invited`` counts for that
    contact, and what to note. ``mail`` is the tie of the message it came with (None:
    imported from a file by hand, where the response id alone is evidence)."""
    if mail is None or not invited:
        return True, ""
    sender = normalise(sender) if sender else ""
    if sender == normalise(invited):
        return True, ""
    if mail.send is not None and mail.send.email == sender:  # a contact, with B's form
        return False, (f"Formular von {invited}, eingesandt von {sender} – "
                       f"weitergeleitet? Nicht für {invited} gezählt")
    return True, f"eingesandt von {sender or 'unbekannt'}, nicht von {invited}"


@dataclass(frozen=True)
class BounceTie:
    tie: Tie
    bounce: Bounced | None  # the block that is about the send


def bounce(journal: Journal, found: Inbound, *,
           effect: str = "als unzustellbar markiert") -> BounceTie:
    """The one send a report (a bounce, an abuse complaint) is about: the returned
    original's Message-ID (proven); else the one contact it names, when it looks like a
    server's report (not confirmed); else nobody. ``effect`` says in the note what was
    not done to anybody."""
    for block in found.bounces:
        send = journal.by_message_id(block.original_id)
        if send is not None:  # the block about that very address, else the first
            own = next((b for b in found.bounces
                        if send.email in (normalise(b.recipient), *map(normalise, b.also))
                        and b.recipient), block)
            return BounceTie(Tie(send, Proof.MESSAGE_ID), own)
    named: dict[str, tuple[Send, Bounced]] = {}
    for block in found.bounces:
        addresses = [block.recipient, *block.also] if block.recipient else found.candidates
        for address in addresses:
            sends = _own(journal, address)
            if sends and sends[0].email not in named:
                named[sends[0].email] = (sends[0], block)
    if len(named) == 1 and found.report:
        send, block = next(iter(named.values()))
        return BounceTie(Tie(send, Proof.ADDRESS, f"{UNCONFIRMED}: der Bericht nennt "
                             "nur die Adresse, nicht die verschickte E-Mail"), block)
    if len(named) > 1:
        return BounceTie(Tie(None, Proof.NONE, f"nennt {len(named)} Kontakte, aber keine "
                             f"verschickte E-Mail – niemand {effect}"), None)
    if named:
        return BounceTie(Tie(None, Proof.NONE, "sieht nicht aus wie der Bericht eines "
                             f"Mailservers – niemand {effect}"), None)
    return BounceTie(Tie(None, Proof.NONE, "keiner Sendung zuzuordnen"), None)
