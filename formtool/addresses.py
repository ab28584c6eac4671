"""E-mail addresses: what is valid, how servers take it, when two spellings are one.

A neutral home: contact lists, the journal, the store and the commands all ask here.
"""

from __future__ import annotations

import re
import unicodedata

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


def _char_name(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'ohne Namen')}"


def shown(address: str) -> str:
    """An address as a person can read it: an invisible character as [U+200B]."""
    return "".join(f"[U+{ord(c):04X}]" if unicodedata.category(c) in ("Cf", "Cc", "Zs",
                                                                       "Zl", "Zp")
                   and c != " " else c for c in address)


def why_invalid(address: str) -> str:
    """Why ``address`` is no valid address when a character says it, in German: an
    invisible one, a full-width one (from Asian keyboards or copied text), an umlaut
    before the @; "" when it is something else (then the address alone is shown)."""
    text = address.strip()
    for position, char in enumerate(text, 1):
        if unicodedata.category(char) in ("Cf", "Cc", "Zs", "Zl", "Zp"):
            return (f"unsichtbares Zeichen {_char_name(char)} an Stelle {position} – bitte "
                    "die Adresse neu eintippen")
        plain = unicodedata.normalize("NFKC", char)
        if plain != char and plain.isascii():
            return (f"Zeichen „{char}“ ({_char_name(char)}) an Stelle {position} ist eine "
                    f"breite Form von „{plain}“ – bitte mit normaler Tastatur eintippen")
    if not text.rpartition("@")[0].isascii():
        return "Umlaute vor dem @"
    return ""
