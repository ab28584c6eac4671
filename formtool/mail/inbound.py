"""A message from the mailbox -> what it is: a returned form, an opt-out, a bounce, an
auto-reply, a reply, or something else. Every message is untrusted input: sizes are
capped, parsing never raises, attachment names are only ever used after
``safe_filename`` (the caller decides the folder).
"""

from __future__ import annotations

import email
import email.policy
import enum
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr, parsedate_to_datetime

MAX_MESSAGE = 40 * 1024 * 1024  # bytes: bigger messages are reported, not read
MAX_ATTACHMENT = 30 * 1024 * 1024
SIGNATURE_IMAGE = 40 * 1024  # inline images smaller than this are logos, not scans


class Kind(enum.Enum):
    FORM = "Rücklauf"  # has attachments: imported (PDFs) or answered (anything else)
    OPTOUT = "Abmeldung"
    BOUNCE = "unzustellbar"
    AUTOREPLY = "automatische Antwort"
    REPLY = "Antwort"
    OTHER = "anderes"
    TOO_BIG = "zu groß"


@dataclass(frozen=True)
class Bounced:
    """One recipient a delivery report says did not get a message."""

    recipient: str  # may be "" for a provider's free-text report
    status: str  # "5.1.1", or ""
    diagnostic: str
    original_id: str  # Message-ID of the message that bounced, when the report has it


@dataclass
class Inbound:
    kind: Kind
    key: str  # Message-ID, else a hash of the bytes: what a second run recognises
    sender: str = ""
    subject: str = ""
    refs: list[str] = field(default_factory=list)  # In-Reply-To and References ids
    attachments: list[tuple[str, bytes]] = field(default_factory=list)  # (name as sent, data)
    bounces: list[Bounced] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)  # addresses named in a free-text bounce
    snippet: str = ""  # the first lines of the text, for the coordinator
    date: str = ""  # its Date, ISO 8601, when readable
    forwarded: list[str] = field(default_factory=list)  # senders of the forwarded original(s)
    oversized: list[str] = field(default_factory=list)  # attachments over MAX_ATTACHMENT


_ID = re.compile(r"<[^<>\s]+>")
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_OPTOUT = ("abmelden", "abmeldung", "bitte abmelden", "unsubscribe", "austragen",
           "bitte austragen", "abbestellen", "keine e-mails mehr", "keine mails mehr")
_AUTO_SUBJECTS = ("abwesenheitsnotiz", "automatische antwort", "out of office", "auto-reply",
                  "autoreply", "automatic reply", "abwesend", "urlaubsbenachrichtigung",
                  "autoresponder")
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail delivery", "maildelivery")
_BOUNCE_SUBJECTS = ("unzustellbar", "nicht zustellbar", "undeliverable", "undelivered",
                    "delivery status notification", "mail delivery failed",
                    "returned mail", "delivery failure", "zustellung fehlgeschlagen",
                    "fehler bei der zustellung", "failure notice")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|wg|fw|fwd|antw)\s*:\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class Big:
    """A message over MAX_MESSAGE: only its head was read."""

    head: bytes
    size: int


def head_of(data: bytes) -> bytes:
    """The header block of a message's first bytes."""
    end = min((i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0),
              default=len(data))
    return data[:end] + b"\r\n\r\n"


def too_big(big: Big) -> Inbound:
    """Who sent a message too big to read, and what it is called."""
    msg = _parse(big.head[:256 * 1024])
    key = (_first_id(_header(msg, "Message-ID"))
           or "sha256:" + hashlib.sha256(big.head).hexdigest())
    sender = printable(parseaddr(_header(msg, "From"))[1]).strip().lower()
    found = Inbound(Kind.TOO_BIG, key, sender,
                    " ".join(printable(_header(msg, "Subject")).split()))
    found.date = _date(msg)
    found.oversized = [f"die E-Mail mit {big.size // (1024 * 1024)} MB"]
    return found


def classify(data: bytes | Big) -> Inbound:
    """What the message in ``data`` is (never raises for a malformed message)."""
    if isinstance(data, Big):
        return too_big(data)
    if len(data) > MAX_MESSAGE:
        return too_big(Big(head_of(data[:256 * 1024]), len(data)))
    msg = _parse(data)
    message_id = _first_id(_header(msg, "Message-ID"))
    key = message_id or "sha256:" + hashlib.sha256(data).hexdigest()
    sender = printable(parseaddr(_header(msg, "From"))[1]).strip().lower()
    subject = " ".join(printable(_header(msg, "Subject")).split())
    refs = _ID.findall(_header(msg, "In-Reply-To") + " " + _header(msg, "References"))
    found = Inbound(Kind.OTHER, key, sender, subject, refs)
    found.snippet = _snippet(msg)
    found.date = _date(msg)
    if _is_bounce(msg, sender, subject):
        found.kind = Kind.BOUNCE
        found.bounces = _delivery_status(msg)
        if not found.bounces:  # a provider's own wording: the original may still be inside
            original = _original_id(msg)
            text = _all_text(msg)
            found.candidates = [a.lower() for a in _ADDRESS.findall(text)
                                if a.lower() != sender]
            found.bounces = [Bounced("", "", _first_line(text), original)]
        return found
    if _is_auto_reply(msg, subject):
        found.kind = Kind.AUTOREPLY
        return found
    if _is_optout(subject, found.snippet):
        found.kind = Kind.OPTOUT
        return found
    found.attachments = _attachments(msg, found.oversized)
    found.forwarded, inner_refs = _forwarded(msg, sender, inline=bool(_FORWARD.match(subject)))
    found.refs += [r for r in inner_refs if r not in found.refs]
    found.kind = (Kind.FORM if found.attachments else Kind.TOO_BIG if found.oversized
                  else Kind.REPLY if refs else Kind.OTHER)
    return found


class _RawHeaders(email.policy.Compat32):
    """compat32, but a header is handed out as the text it is (raw 8-bit bytes as
    surrogate escapes), for ``_header`` to decode."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_POLICY = _RawHeaders()


def _parse(data: bytes) -> Message:
    """The message's structure. Headers stay raw text until asked for, and only those
    asked for are decoded (``_header``) – the default policy builds a parsed header
    object on every access, three times the work for what is read here."""
    return email.message_from_bytes(data, policy=_POLICY)


def _unescaped(value: str) -> str:
    """Raw 8-bit header bytes (against the standard, but common) as UTF-8, else Latin-1."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return value
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decoded(value: str) -> str:
    """RFC 2047 encoded words (=?utf-8?q?…?=) as text; the raw value if they are broken."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return value


def printable(text: str) -> str:
    """Text from the internet as a terminal or a table may show it: control and format
    characters (escape sequences, bidi overrides, zero-width) become spaces; line breaks
    stay."""
    return "".join(c if c == "\n" or unicodedata.category(c) not in ("Cc", "Cf")
                   else " " for c in text)


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a malformed header is no header
        return ""
    return "" if value is None else _decoded(_unescaped(str(value)))


def _date(msg: Message) -> str:
    try:
        when = parsedate_to_datetime(_header(msg, "Date"))
    except (TypeError, ValueError, IndexError):
        return ""
    return when.isoformat(timespec="seconds") if when.tzinfo else ""


_FORWARD = re.compile(r"^\s*((re|aw)\s*:\s*)*(wg|fw|fwd)\s*:", re.IGNORECASE)
_FORWARD_FROM = re.compile(r"^\s*[>*]*\s*(?:von|from)\s*:\*?\s*(.+)$", re.I | re.M)


def _forwarded(msg: Message, sender: str, *, inline: bool) -> tuple[list[str], list[str]]:
    """Who wrote the message that was forwarded (and what it answered): the From of an
    attached original (message/rfc822), else (``inline``: the subject says WG:/Fwd:) the
    "Von:"/"From:" line a mail program writes above an inline forward."""
    senders: list[str] = []
    refs: list[str] = []
    for part in msg.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            senders.append(parseaddr(_header(inner, "From"))[1].strip().lower())
            refs += _ID.findall(_header(inner, "In-Reply-To") + " "
                                + _header(inner, "References"))
    if inline and not any(senders):
        for part in msg.walk():
            if part.get_content_type() == "text/plain" and not _is_attachment(part):
                for line in _FORWARD_FROM.findall(_text(part)[:20000]):
                    senders += [a.lower() for a in _ADDRESS.findall(line)]
                break
    return [s for s in dict.fromkeys(senders) if s and s != sender], refs


def _first_id(text: str) -> str:
    match = _ID.search(text)
    return match.group(0) if match else ""


def _is_bounce(msg: Message, sender: str, subject: str) -> bool:
    if msg.get_content_type() == "multipart/report":
        return True
    lowered = subject.lower()
    return (any(s in sender for s in _BOUNCE_SENDERS)
            and any(s in lowered for s in _BOUNCE_SUBJECTS)) or (
        sender.startswith(("mailer-daemon@", "postmaster@")))


def _is_auto_reply(msg: Message, subject: str) -> bool:
    auto = _header(msg, "Auto-Submitted").strip().lower()
    if auto and auto != "no":
        return True
    if _header(msg, "X-Autoreply") or _header(msg, "X-Autorespond"):
        return True
    if _header(msg, "Precedence").strip().lower() in ("auto_reply", "auto-reply"):
        return True
    plain = _REPLY_PREFIX.sub("", subject).lower()
    return plain.startswith(_AUTO_SUBJECTS)


def _is_optout(subject: str, snippet: str) -> bool:
    first = next((line for line in snippet.splitlines() if line.strip()), "")
    for text in (_REPLY_PREFIX.sub("", subject), first):
        words = re.sub(r"[^\wäöüß\- ]", " ", text.lower()).split()
        phrase = " ".join(words)
        if phrase in _OPTOUT or (words and words[0] in ("abmelden", "unsubscribe")
                                 and len(words) <= 4):
            return True
    return False


def _delivery_status(msg: Message) -> list[Bounced]:
    """RFC 3464: the failed recipients of a delivery-status report."""
    original = _original_id(msg)
    out: list[Bounced] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = [b for b in payload if isinstance(b, Message)] if isinstance(payload,
                                                                                list) else []
        for block in blocks[1:]:  # the first block is about the message, the rest per recipient
            action = str(block.get("Action", "")).strip().lower()
            status = str(block.get("Status", "")).strip()
            if action not in ("failed", "") or (status and not status.startswith("5")):
                continue  # delayed, relayed, delivered: not a bounce
            recipient = str(block.get("Final-Recipient", "") or block.get("Original-Recipient",
                                                                               ""))
            address = recipient.split(";", 1)[-1].strip().strip("<>").lower()
            diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
            diagnostic = diagnostic.split(";", 1)[-1].strip() if ";" in diagnostic else diagnostic
            out.append(Bounced(address, status, diagnostic[:300], original))
    return out


def _original_id(msg: Message) -> str:
    """The Message-ID of the message a report returns (its headers or the whole)."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found = _first_id(_header(inner, "Message-ID"))
                if found:
                    return found
        elif kind in ("text/rfc822-headers", "text/plain"):
            text = _text(part)
            match = re.search(r"^Message-ID:\s*(<[^<>\s]+>)", text, re.IGNORECASE | re.MULTILINE)
            if match:
                return match.group(1)
    return ""


def _text(part: Message) -> str:
    """A text part's content, decoded (its charset, else UTF-8, else Latin-1)."""
    try:
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset() or "utf-8"
    except Exception:  # an undecodable part has no text
        return ""
    if not isinstance(payload, bytes):
        return ""
    for encoding in (charset, "utf-8"):
        try:
            return payload.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _all_text(msg: Message) -> str:
    return "\n".join(_text(p) for p in msg.walk() if p.get_content_maintype() == "text")[:20000]


def _snippet(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not _is_attachment(part):
            text = _text(part)[:20000]
            lines = [" ".join(printable(line).split()) for line in text.splitlines()
                     if line.strip() and not line.startswith(">")]
            return "\n".join(line for line in lines[:6] if line)[:500]
    return ""


def _first_line(text: str) -> str:
    return next((" ".join(line.split()) for line in text.splitlines() if line.strip()), "")[:300]


def _is_attachment(part: Message) -> bool:
    return part.get_content_disposition() == "attachment" or bool(part.get_filename())


def _attachments(msg: Message, oversized: list[str]) -> list[tuple[str, bytes]]:
    """Files sent along (PDFs, scans, documents), without signature logos; one over
    MAX_ATTACHMENT is named in ``oversized``, not kept."""
    out: list[tuple[str, bytes]] = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_type() == "message/rfc822":
            continue
        try:
            name = _decoded(_unescaped(part.get_filename() or ""))
        except Exception:  # a malformed parameter: no name
            name = ""
        kind = part.get_content_type()
        if not (_is_attachment(part) or kind == "application/pdf"):
            continue
        try:
            data = part.get_payload(decode=True)
        except Exception:  # a broken transfer encoding: nothing to save
            continue
        if not isinstance(data, bytes) or not data:
            continue
        if len(data) > MAX_ATTACHMENT:
            oversized.append(f"{name or 'Anhang'} ({len(data) // (1024 * 1024)} MB)")
            continue
        if (kind.startswith("image/") and part.get_content_disposition() != "attachment"
                and len(data) < SIGNATURE_IMAGE):
            continue  # a logo in a signature
        out.append((name or ("anhang.pdf" if kind == "application/pdf" else "anhang"), data))
    return out
