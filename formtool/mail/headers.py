"""Header values built from data, encoded and folded here, never by the ``email`` package.

Python's ``email`` package decodes an RFC 2047 encoded word found in a value it is
given and folds the decoded text again: on Python 3.11 an encoded word holding
CR LF becomes real header lines (CVE-2024-6923, fixed only in later patch
releases), and in 3.10–3.12 it loses the space between two encoded words
(reminder subjects read "Bündnisfür"). So every header whose text comes from
contacts, templates or settings is written here, the same on every patch level:

- control characters (NUL, VT, CR, LF, U+2028 …) become spaces, runs of white
  space one space: a value is always one line of literal text;
- text that is not plain ASCII words (umlauts, ``=?``, commas, quotes, brackets,
  over-long words) is written as a run of UTF-8 encoded words (RFC 2047 §4.2
  "Q", with the restricted set of §5(3), so the same words serve a Subject and a
  display name); decoders join adjacent encoded words without the white space
  between them (§6.2), so splitting a text over several words and lines loses
  nothing and adds nothing;
- lines are folded before 78 characters (RFC 5322 2.1.1).

The result is a ``Folded`` value: the ``email`` package stores it as it is and
writes ``fold()`` verbatim (``EmailPolicy._fold`` asks the value to fold itself).
"""

from __future__ import annotations

import base64
import re
import unicodedata
from typing import Any, NamedTuple

MAX_LINE = 78
MAX_ENCODED_NAME = 900  # a display name's encoded word: its line stays below 998
_ATOMS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+( [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_PRINTABLE_WORDS = re.compile(r"^[\x21-\x7e]+( [\x21-\x7e]+)*$")
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_EW_OPEN, _EW_CLOSE = "=?utf-8?q?", "?="
_EW_ROOM = 75 - len(_EW_OPEN) - len(_EW_CLOSE)  # RFC 2047 §2: an encoded word <= 75


def clean(text: str) -> str:
    """One line of literal text: control and line-separator characters become spaces,
    white space runs one space, no space at either end."""
    out = []
    for char in text:
        category = unicodedata.category(char)
        out.append(" " if category in ("Cc", "Zl", "Zp") or char.isspace() else char)
    return " ".join("".join(out).split())


def _q_chars(text: str) -> list[str]:
    """Each character's Q encoding (one unit: an encoded word never splits it)."""
    units = []
    for char in text:
        encoded = []
        for byte in char.encode("utf-8"):
            if byte == 0x20:
                encoded.append("_")
            elif byte in _Q_LITERAL:
                encoded.append(chr(byte))
            else:
                encoded.append(f"={byte:02X}")
        units.append("".join(encoded))
    return units


def encoded_words(text: str) -> list[str]:
    """``text`` as encoded words of at most 75 characters each."""
    words: list[str] = []
    current = ""
    for unit in _q_chars(text):
        if current and len(current) + len(unit) > _EW_ROOM:
            words.append(_EW_OPEN + current + _EW_CLOSE)
            current = ""
        current += unit
    if current or not words:
        words.append(_EW_OPEN + current + _EW_CLOSE)
    return words


def _fold(name: str, tokens: list[str], linesep: str) -> str:
    """``Name: token token …`` with a line break before a token that would pass 78."""
    lines = [f"{name}:"]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > MAX_LINE and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + token
    return linesep.join(lines) + linesep


class Address(NamedTuple):
    """The recipient part of an address header (what ``Built`` sends RCPT TO for).
    Not ``email.headerregistry.Address``, which parses its input again (0.25 ms)."""

    addr_spec: str


class Folded(str):
    """A header value that the ``email`` package writes as we folded it.

    ``str()`` is the text as a reader sees it; ``fold()`` the header as sent.
    """

    name: str
    tokens: list[str]
    addresses: tuple[Address, ...]

    def __new__(cls, name: str, shown: str, tokens: list[str],
                addresses: tuple[Address, ...] = ()) -> Folded:
        value = super().__new__(cls, shown)
        value.name = name
        value.tokens = tokens
        value.addresses = addresses
        return value

    def fold(self, *, policy: Any) -> str:
        return _fold(self.name, self.tokens, policy.linesep)


def _words(text: str, plain: re.Pattern[str]) -> list[str]:
    if plain.match(text) and "=?" not in text and all(
            len(word) <= MAX_LINE - 12 for word in text.split(" ")):
        return text.split(" ")
    return encoded_words(text)


def text(name: str, value: str) -> Folded:
    """An unstructured header (Subject): the decoded header equals ``clean(value)``."""
    shown = clean(value)
    return Folded(name, shown, _words(shown, _PRINTABLE_WORDS) if shown else [])


def _quoted(text: str) -> list[str]:
    """A quoted-string (RFC 5322 3.2.4) as one token: folding inside it is allowed, but
    the legacy parser of Python (email.utils.getaddresses on a folded value) and
    clients like it then lose the name."""
    return ['"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"']


def _display_name(text: str) -> list[str]:
    """The tokens of a display name that every reader decodes to ``text`` exactly.

    Plain words stay plain; other printable ASCII becomes a quoted-string; anything
    else (umlauts, encoded-word look-alikes) ONE encoded word. Not several: where
    RFC 2047 §6.2 has readers join adjacent encoded words, Python 3.11's parser keeps
    the space between them in a display name, so no split reads the same everywhere.
    The name is shortened beforehand (shown_name) so that its line stays below the 998
    of RFC 5322 2.1.1.
    """
    if _ATOMS.match(text) and "=?" not in text:
        return text.split(" ")
    if _PRINTABLE_WORDS.match(text) and "=?" not in text:
        return _quoted(text)
    return [_one_word(text)]


def _one_word(text: str) -> str:
    """One encoded word: Q (readable in the source), or B where Q would be too long
    (names mostly outside Latin script)."""
    q = "=?utf-8?q?" + "".join(_q_chars(text)) + "?="
    if len(q) <= MAX_ENCODED_NAME:
        return q
    b = "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="
    return min(q, b, key=len)


def shown_name(display_name: str) -> str:
    """The display name as it will arrive: one clean line, shortened only where its one
    encoded word would pass MAX_ENCODED_NAME (some hundred characters)."""
    text = clean(display_name)
    while text and len(_one_word(text)) > MAX_ENCODED_NAME:
        text = text[:-max(1, len(text) // 10)].rstrip()
    return text


def mailbox(name: str, display_name: str, addr_spec: str) -> Folded:
    """``Name <addr>`` for From/To/Reply-To: the display name arrives as its literal text,
    one name, however many commas, quotes or encoded-word look-alikes it holds.
    ``addr_spec`` must be a checked ASCII address (addresses.ascii_email)."""
    if not re.fullmatch(r"[\x21-\x7e]+@[\x21-\x7e]+", addr_spec) or any(
            c in addr_spec for c in "<>,;\"\\()[]"):
        raise ValueError(f"keine gültige Adresse: {addr_spec!r}")
    shown = shown_name(display_name)
    address = Address(addr_spec)
    if not shown:
        return Folded(name, addr_spec, [addr_spec], (address,))
    tokens = [*_display_name(shown), f"<{addr_spec}>"]
    return Folded(name, f"{shown} <{addr_spec}>", tokens, (address,))


def mailboxes(name: str, addr_specs: list[str]) -> Folded:
    """A list of bare addresses (Cc)."""
    for spec in addr_specs:
        mailbox(name, "", spec)  # the same check
    tokens = [f"{spec}," for spec in addr_specs[:-1]] + addr_specs[-1:]
    return Folded(name, ", ".join(addr_specs), tokens,
                  tuple(Address(s) for s in addr_specs))
