"""E-mail addresses: what is valid, how servers take it, when two spellings are one.

A neutral home: contact lists, the journal, the store and the commands all ask here.
"""

from __future__ import annotations

import re

# Deliberately plain: an ASCII local part, a domain with a dot, no spaces or brackets.
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def ascii_email(address: str) -> str | None:
    """The address as mail servers take it, or None when it is not a valid address.

    A domain with umlauts is written in its IDNA form (info@kita-müller.de ->
    info@xn--kita-mller-feb.de; IDNA 2008, as DENIC registers them: ß stays ß,
    where Python's own codec would make a different domain of it). Umlauts before
    the @ would need SMTPUTF8, which providers do not reliably offer: not valid here.
    """
    local, at, domain = address.strip().rpartition("@")
    if not at or not local.isascii():
        return None
    if not domain.isascii():
        import idna  # only for umlaut domains

        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None
    candidate = f"{local}@{domain}"
    if len(candidate) > 254 or not EMAIL_RE.match(candidate) or ".." in candidate:
        return None
    return candidate


def is_valid_email(address: str) -> bool:
    return ascii_email(address) is not None


def normalise(address: str) -> str:
    """The one spelling of a mailbox that the journal, opt-outs and `forget` compare:
    the IDNA form of the domain, lower case. (Local parts are case-sensitive in theory,
    never in practice at the providers our recipients use.)"""
    return (ascii_email(address) or address.strip()).lower()


def same_address(a: str, b: str) -> bool:
    """Whether two spellings name one mailbox (case, umlaut domain or its IDNA form)."""
    return normalise(a) == normalise(b)
