"""A message from the mailbox -> what it is: a returned form, an opt-out, a bounce, an
auto-reply, a reply, or something else. Every message is untrusted input: sizes, depth
and number of parts are capped, classifying never raises (a message it cannot read is
``Kind.UNREADABLE`` with the reason), attachment names are only ever used after
``safe_filename`` (the caller decides the folder).

This module says what a message *claims*; who it may change is decided in one place,
``usecases/evidence.py``.

Delivery reports are read here, not with Mailman's flufl.bounce: it finds the failed
addresses in many formats, but gives neither the status code nor the server's line, nor
the returned original's Message-ID – and that Message-ID is what proves which send a
report is about (one message per recipient). What it knows about formats is covered by
reading the structure first (RFC 3464 anywhere, X-Failed-Recipients), then a server's
own wording in many languages (tests/bouncecorpus.py: 43 families).
"""

from __future__ import annotations

import contextlib
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
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

MAX_MESSAGE = 40 * 1024 * 1024  # bytes: bigger messages are reported, not read
MAX_ATTACHMENT = 30 * 1024 * 1024
MAX_DEPTH = 20  # MIME nesting (multipart in multipart, message/rfc822 in message/rfc822)
MAX_PARTS = 1_000  # parts of one message, all levels
MAX_DECODED = 2 * MAX_MESSAGE  # bytes of attachments decoded from one message
SIGNATURE_IMAGE = 40 * 1024  # inline images smaller than this are logos, not scans


class Kind(enum.Enum):
    FORM = "Rücklauf"  # has attachments: imported (PDFs) or answered (anything else)
    OPTOUT = "Abmeldung"
    BOUNCE = "unzustellbar"
    AUTOREPLY = "automatische Antwort"
    REPLY = "Antwort"
    OTHER = "anderes"
    TOO_BIG = "zu groß"
    UNREADABLE = "unlesbar"
    NOTICE = "Zustellhinweis"  # a delay warning or a delivery notice: no bounce
    COMPLAINT = "Spam-Beschwerde"  # an abuse feedback report (RFC 5965): never mail again


class Optout(enum.Enum):
    """What a message says about being mailed again."""

    NO = "nein"
    CLEAR = "klar"  # a request to be removed, outside the quoted text
    UNCLEAR = "unklar"  # the words are there, but as a question, negated, or only in a subject


@dataclass(frozen=True)
class Bounced:
    """One recipient a delivery report says did not get a message."""

    recipient: str  # may be "" for a provider's free-text report
    status: str  # "5.1.1", or ""
    diagnostic: str
    original_id: str  # Message-ID of the message that bounced, when the report has it
    also: tuple[str, ...] = ()  # the same block's other addresses (Original-Recipient …)


@dataclass
class Inbound:
    kind: Kind
    key: str  # a hash of the bytes: what a second run recognises (never the Message-ID,
    #           which any stranger can copy)
    sender: str = ""
    subject: str = ""
    # the Message-IDs it answers, as evidence may use them: In-Reply-To, else the last
    # entry of References (the message replied to; earlier entries are older history)
    refs: list[str] = field(default_factory=list)
    message_id: str = ""
    attachments: list[tuple[str, bytes]] = field(default_factory=list)  # (name as sent, data)
    bounces: list[Bounced] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)  # addresses named in a free-text bounce
    snippet: str = ""  # the first lines of the text, for the coordinator
    date: str = ""  # its Date, ISO 8601, when readable
    forwarded: list[str] = field(default_factory=list)  # senders of the forwarded original(s)
    inner_refs: list[str] = field(default_factory=list)  # ids of attached originals (their
    #                       Message-ID, In-Reply-To, last References entry)
    oversized: list[str] = field(default_factory=list)  # attachments over MAX_ATTACHMENT
    optout: Optout = Optout.NO
    unverified: str = ""  # why the sender is not confirmed (Authentication-Results: fail)
    report: bool = False  # looks like a mail server's report (see server_report)
    reason: str = ""  # why it is UNREADABLE


_ID = re.compile(r"<[^<>\s]+>")
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
# How the common mail programs and providers begin an automatic reply's subject, by
# language (casefolded): de, en, fr, nl, it, es, pt, pl, tr, sv, no, da, fi, cs
_AUTO_SUBJECTS = (
    "abwesenheitsnotiz", "abwesenheitsnachricht", "automatische antwort", "abwesend",
    "urlaubsbenachrichtigung", "nicht im büro", "autoresponder", "autoantwort",
    "out of office", "out of the office", "auto-reply", "auto reply", "autoreply",
    "automatic reply", "auto response", "auto-response", "autoresponse", "vacation reply",
    "away from", "on vacation", "on leave",
    "réponse automatique", "reponse automatique", "message d'absence", "absent du bureau",
    "absence du bureau", "absence",
    "automatisch antwoord", "afwezig", "niet aanwezig", "afwezigheidsbericht",
    "risposta automatica", "fuori sede", "fuori ufficio", "fuori dall'ufficio", "assente",
    "respuesta automática", "respuesta automatica", "fuera de la oficina", "ausente",
    "resposta automática", "resposta automatica", "fora do escritório",
    "odpowiedź automatyczna", "automatyczna odpowiedź", "poza biurem", "nieobecność",
    "otomatik yanıt", "otomatik cevap", "ofis dışında",
    "automatiskt svar", "frånvaro", "frånvarande", "ej på kontoret", "inte på kontoret",
    "automatisk svar", "fravær", "fraværende", "ikke på kontoret", "ikke tilstede",
    "automaattinen vastaus", "poissa toimistolta", "poissaolo",
    "automatická odpověď", "mimo kancelář",
)
# an out-of-office text (with X-Auto-Response-Suppress, which Outlook/Exchange set)
_AWAY = re.compile(r"\b(abwesen\w*|nicht im (büro|haus)|urlaub|out of (the )?office|away|"
                   r"vacation|on leave|wieder (im büro|erreichbar|da)|zurück am|back on)\b",
                   re.IGNORECASE)
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail delivery", "maildelivery")
_BOUNCE_SUBJECTS = ("unzustellbar", "nicht zustellbar", "undeliverable", "undelivered",
                    "delivery status notification", "mail delivery failed",
                    "returned mail", "delivery failure", "zustellung fehlgeschlagen",
                    "fehler bei der zustellung", "failure notice")
# reply and forward prefixes of the common clients (de, en, nl, sv/da/no, fi, pl, fr, it)
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|wg|fw|fwd|antw|sv|vs|odp|réf|ref|r|rif|auto)"
                           r"\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


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


def identity(data: bytes | Big) -> str:
    """What a second run recognises a message by: a hash of its bytes (of a message too
    big to read, of its head and size). Never its Message-ID: anybody can send a
    message with the Message-ID of somebody else's return."""
    if isinstance(data, Big):
        return "sha256-kopf:" + hashlib.sha256(data.head + str(data.size).encode()).hexdigest()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def too_big(big: Big) -> Inbound:
    """Who sent a message too big to read, and what it is called."""
    found = Inbound(Kind.TOO_BIG, identity(big))
    try:
        msg = _parse(big.head[:256 * 1024])
    except RecursionError:
        return found
    _head(found, msg)
    found.oversized = [f"die E-Mail mit {big.size // (1024 * 1024)} MB"]
    return found


def _head(found: Inbound, msg: Message) -> None:
    """Sender, subject, date, ids: what the header says, as text that is safe to show."""
    found.message_id = _first_id(_header(msg, "Message-ID"))
    found.sender = printable(parseaddr(_header(msg, "From"))[1]).strip().lower()
    found.subject = " ".join(printable(_header(msg, "Subject")).split())
    found.date = _date(msg)
    replied = _ID.findall(_header(msg, "In-Reply-To"))[:1]
    references = _ID.findall(_header(msg, "References"))[-1:]
    found.refs = list(dict.fromkeys(replied + references))
    found.unverified = _unverified(msg)


def classify(data: bytes | Big) -> Inbound:
    """What the message in ``data`` is (never raises: a message that cannot be read is
    UNREADABLE with the reason)."""
    if isinstance(data, Big):
        return too_big(data)
    if len(data) > MAX_MESSAGE:
        return too_big(Big(head_of(data[:256 * 1024]), len(data)))
    found = Inbound(Kind.OTHER, identity(data))
    try:
        msg = _parse(data)
    except RecursionError:  # the parser recurses once per level
        return _unreadable(found, data, f"mehr als {MAX_DEPTH} Ebenen ineinander verschachtelt")
    try:
        _head(found, msg)
        problem = _structure(msg)
        if problem:
            return _unreadable(found, data, problem)
        _what(found, msg)
    except Exception as exc:  # one odd message must not stop the mailbox: named, kept
        return _unreadable(found, data, f"unerwarteter Aufbau ({type(exc).__name__})")
    return found


def _unreadable(found: Inbound, data: bytes, reason: str) -> Inbound:
    """A message formtool cannot take apart: who sent it (from its head alone), why."""
    if not found.sender and not found.subject:
        with contextlib.suppress(Exception):  # not even the head: shown without sender
            _head(found, _parse(head_of(data[:256 * 1024])))
    found.kind, found.reason = Kind.UNREADABLE, reason
    found.attachments, found.bounces, found.snippet = [], [], ""
    return found


def _structure(msg: Message) -> str:
    """Why the message is too deep or has too many parts to be read (or "").
    Walked with an explicit stack: ``Message.walk`` recurses once per level."""
    stack = [(msg, 1)]
    parts = 0
    while stack:
        part, depth = stack.pop()
        parts += 1
        if depth > MAX_DEPTH:
            return f"mehr als {MAX_DEPTH} Ebenen ineinander verschachtelt"
        if parts > MAX_PARTS:
            return f"mehr als {MAX_PARTS} Teile"
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((p, depth + 1) for p in payload if isinstance(p, Message))
    return ""


def _what(found: Inbound, msg: Message) -> None:
    sender, subject = found.sender, found.subject
    found.snippet = _snippet(msg)
    found.report = server_report(msg, sender)
    if msg.get_content_type() == "multipart/report" and str(
            msg.get_param("report-type", "") or "").lower() == "disposition-notification":
        found.kind = Kind.NOTICE  # a read receipt (RFC 8098): read, not answered
        return
    if _is_complaint(msg):
        found.kind = Kind.COMPLAINT
        found.bounces = _complaint(msg)
        return
    if _is_bounce(msg, sender, subject):
        found.kind = Kind.BOUNCE
        report = _report_text(msg)
        found.bounces = _delivery_status(msg)
        if not found.bounces and (_has_status_part(msg) or (
                _DELAY.search(f"{subject}\n{report}") and not _PERMANENT.search(report))):
            found.kind = Kind.NOTICE  # delayed, delivered, relayed: it did not fail
            return
        ours = {sender, *(a.lower() for _, a in getaddresses([_header(msg, "To")]))}
        found.candidates = [a for a in dict.fromkeys(a.lower().strip(".")
                                                      for a in _ADDRESS.findall(report))
                            if a not in ours and a.partition("@")[0] not in _MTA_NAMES]
        if not found.bounces:  # a mail server's own wording: the original may be inside
            status, diagnostic = _diagnostic(report, found.candidates)
            found.bounces = [Bounced("", status, diagnostic, _original_id(msg))]
        else:  # a DSN without a diagnostic: the server's line from the text, if any
            found.bounces = [b if b.diagnostic else Bounced(
                b.recipient, b.status or _diagnostic(report, [b.recipient])[0],
                _diagnostic(report, [b.recipient])[1], b.original_id, b.also)
                for b in found.bounces]
        return
    if _is_auto_reply(msg, subject):
        found.kind = Kind.AUTOREPLY
        return
    found.attachments = _attachments(msg, found.oversized)
    found.forwarded, found.inner_refs = _forwarded(msg, sender,
                                                   inline=bool(_FORWARD.match(subject)))
    found.optout = optout_of(subject, _own_text(msg), form=bool(found.attachments))
    if found.attachments:
        found.kind = Kind.FORM
    elif found.optout is Optout.CLEAR:
        found.kind = Kind.OPTOUT
    else:
        found.kind = (Kind.TOO_BIG if found.oversized else Kind.REPLY if found.refs
                      else Kind.OTHER)


# a text report that the server still tries (Postfix, Exim, Sendmail, Exchange, German)
_DELAY = re.compile(r"\b(delayed|will (retry|be retried|continue to try|keep trying)|"
                    r"warning only|still (being )?(retried|undelivered|trying)|"
                    r"verz(ö|oe)gert|wird (weiter|erneut) versucht|noch nicht zugestellt)\b",
                    re.IGNORECASE)


# a report that gave up: no delay warning, whatever else it says
_PERMANENT = re.compile(r"permanent|given up|gave up|not going to try|endg(ü|ue)ltig|"
                        r"dauerhaft|(?<![\d.])5\.\d{1,3}\.\d{1,3}|(?<![\d.])5\d\d[ -]",
                        re.IGNORECASE)


def _has_status_part(msg: Message) -> bool:
    return any(p.get_content_type() in ("message/delivery-status",
                                        "message/global-delivery-status") for p in msg.walk())


def server_report(msg: Message, sender: str) -> bool:
    """Whether the message looks like a mail server's report: it has a delivery-status
    part, or comes from an MTA's address (MAILER-DAEMON, postmaster, or none), or has
    the empty envelope sender (``Return-Path: <>``, RFC 5321 4.5.5)."""
    if _has_status_part(msg):
        return True
    if _header(msg, "Return-Path").strip() == "<>":
        return True
    name, address = parseaddr(_header(msg, "From"))
    local = (address or name).lower().partition("@")[0]
    return not address or local in ("mailer-daemon", "postmaster")


def _unverified(msg: Message) -> str:
    """Why the sender's address may be forged: an Authentication-Results header
    (RFC 8601) in which DMARC or SPF failed; "" when none says so."""
    try:
        results = msg.get_all("Authentication-Results") or []
    except Exception:  # a malformed header says nothing
        return ""
    for value in results:
        text = _decoded(_unescaped(str(value))).lower()
        for method in ("dmarc", "spf"):
            if re.search(rf"\b{method}\s*=\s*(fail|softfail)\b", text):
                return f"{method.upper()} fehlgeschlagen"
    return ""


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
    """Who the forwarded message claims to be from, and the ids of an attached original
    (message/rfc822: its Message-ID, In-Reply-To and last References entry – what
    evidence may use). The claimed senders – the From of an attached original, or
    (``inline``: the subject says WG:/Fwd:) the "Von:"/"From:" line above an inline
    forward – are only shown, never evidence: anybody can write them."""
    senders: list[str] = []
    refs: list[str] = []
    for part in msg.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            senders.append(parseaddr(_header(inner, "From"))[1].strip().lower())
            refs += (_ID.findall(_header(inner, "Message-ID"))[:1]
                     + _ID.findall(_header(inner, "In-Reply-To"))[:1]
                     + _ID.findall(_header(inner, "References"))[-1:])
    if inline and not any(senders):
        for part in msg.walk():
            if part.get_content_type() == "text/plain" and not _is_attachment(part):
                for line in _FORWARD_FROM.findall(_text(part)[:20000]):
                    senders += [a.lower() for a in _ADDRESS.findall(line)]
                break
    return ([s for s in dict.fromkeys(senders) if s and s != sender],
            list(dict.fromkeys(refs)))


def _first_id(text: str) -> str:
    match = _ID.search(text)
    return match.group(0) if match else ""


# the local parts and names mail servers send their reports under
_MTA_NAMES = ("mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster", "mdaemon",
              "mail-daemon", "maildaemon", "mailadmin", "mail-admin", "bounce", "bounces",
              "nobody", "noreply-dmarc-support")
_PLAIN_MTA_NAMES = {re.sub(r"[^a-z]", "", n) for n in _MTA_NAMES}
_MTA_DISPLAY = re.compile(r"mailer.?daemon|postmaster|mail delivery|delivery subsystem|"
                          r"mail administrator|mail system|system administrator|"
                          r"content.?filter|\bmta\b|e-?mail.?server",
                          re.IGNORECASE)
# what a report says when delivery failed, in the languages such reports come in
_FAILURE = re.compile("|".join((
    r"could not be delivered", r"couldn't be delivered", r"undeliver", r"not (been )?delivered",
    r"did not reach", r"could not reach", r"unable to deliver", r"wasn't delivered",
    r"could not deliver", r"fatal (delivery )?errors?", r"delivery errors?",
    r"delivery (to the following recipients? )?(has )?failed", r"permanent(ly)? (error|fail)",
    r"failed permanently", r"was not relayed", r"delivery failure", r"failure notice",
    r"returned mail", r"user unknown", r"unknown user", r"no such (user|mailbox|recipient)",
    r"mailbox (is )?(unavailable|full|not found|disabled)", r"recipient address rejected",
    r"does not exist", r"address rejected", r"not listed in", r"delivery status notification",
    r"unzustellbar", r"nicht zugestellt", r"konnte nicht zugestellt", r"zustellung fehlgeschlagen",
    r"nicht zustellbar", r"non recapitabile", r"impossibile recapitare", r"non remis",
    r"n'a pas pu (être|etre) (remis|distribu)", r"échec de (la )?remise", r"no se pudo entregar",
    r"no se puede entregar", r"kan niet worden (afgeleverd|bezorgd)", r"onbestelbaar",
    r"nie (może zostać|została) dostarczona", r"nedoručiteln", r"teslim edilemedi",
    r"kunde inte levereras", r"kunne ikke leveres", r"ei voitu toimittaa",
    r"не (может быть |удалось )?доставлен", r"недоставлен",
    r"送信できませんでした", r"配信できませんでした", r"届きませんでした", r"配送",
    r"エラー", r"退信", r"退回", r"无法投递", r"无法送达", r"未能送达", r"投递失败", r"發送失敗",
    r"無法傳遞", r"전달되지", r"배달 실패",
)), re.IGNORECASE)


def _is_mta(msg: Message, sender: str) -> bool:
    """Whether the sender is a mail server, by its address, its name or none at all."""
    name, address = parseaddr(_header(msg, "From"))
    local = re.sub(r"[^a-z]", "", (address or "").lower().partition("@")[0])
    return (not address or local in _PLAIN_MTA_NAMES or local.startswith((
        "mailerdaemon", "postmaster")) or bool(_MTA_DISPLAY.search(name)))


def _null_sender(msg: Message) -> bool:
    """The envelope sender of a report is empty (RFC 5321 4.5.5): Return-Path <>."""
    path = _header(msg, "Return-Path").strip().lower()
    return path in ("<>", "", "<mailer-daemon>") if msg.get("Return-Path") is not None \
        else False


def _is_bounce(msg: Message, sender: str, subject: str) -> bool:
    """A delivery report: by its structure first (RFC 3464 anywhere, Exim's
    X-Failed-Recipients), then as a mail server's wording – sent by a server (its
    address, its name, or the empty envelope sender) and saying delivery failed, in its
    subject or text, in any of the common languages. A read receipt or an abuse report
    (multipart/report of another type) is none; a person writing from postmaster@ about
    something else is none."""
    if msg.get_content_type() == "multipart/report":
        kind = str(msg.get_param("report-type", "delivery-status") or "").lower()
        return kind in ("delivery-status", "global-delivery-status")
    if _header(msg, "X-Failed-Recipients").strip() or _has_status_part(msg):
        return True
    if not (_is_mta(msg, sender) or _null_sender(msg)):
        return False
    if _is_auto_reply_header(msg):
        return False
    report = _report_text(msg)
    return bool(_FAILURE.search(subject) or _FAILURE.search(report)
                or _DELAY.search(subject) or _DELAY.search(report[:3000]))


# where a text report ends and the returned original begins
_ORIGINAL_START = re.compile(
    r"^[\s>|-]*(-*\s*(below this line is a copy|this is a copy of the message|"
    r"the header of the original message|original message (headers? )?follows|"
    r"original message|copy of the original|returned message|headers of the original|"
    r"enclosed (are|is) the original|original (message )?headers|"
    r"ursprüngliche nachricht|urspr(ue|ü)nglicher nachrichtenkopf|kopf der nachricht|"
    r"message original|message d'origine|messaggio originale|mensaje original)\b"
    r"[^\n]{0,40}$|content-type:\s*message/rfc822|return-path:|received:\s|message-id:\s)",
    re.IGNORECASE | re.MULTILINE)


def _report_text(msg: Message) -> str:
    """The report's own words: its text parts (not the returned original), each up to
    where a copy of the original begins; at most 20,000 characters."""
    texts = []
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            break  # the returned original and everything after it
        broken = part.is_multipart() is False and part.get_content_maintype() == "multipart"
        if broken or (part.get_content_maintype() == "text" and part.get_content_type()
                      != "text/rfc822-headers"):  # a multipart without a boundary: its text
            text = _text(part)[:20000] if not broken else str(part.get_payload())[:20000]
            if part.get_content_type() == "text/html":
                text = re.sub(r"<[^>]*>", " ", text)
            match = _ORIGINAL_START.search(text)
            texts.append(text[:match.start()] if match else text)
    return "\n".join(texts)[:20000]


_SMTP_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_SMTP_REPLY = re.compile(r"(?<![\d.])[45]\d\d(?:[ -]|$)")
_REASON_WORDS = re.compile(r"unknown|not exist|no such|unavailable|disabled|rejected|"
                           r"denied|refused|quota|full|size|too large|not listed|invalid|"
                           r"blocked|spam|expired|timed? ?out|not found|not recognized|"
                           r"unbekannt|nicht erkannt|"
                           r"existiert nicht|voll|abgelehnt|gesperrt|ungültig", re.IGNORECASE)


def _diagnostic(report: str, recipients: list[str]) -> tuple[str, str]:
    """(status code, the server's line) from a report's text: the first line that
    carries an SMTP reply or status code, else one that gives a reason; the status
    code is the one written in it ("" when none is)."""
    lines = [" ".join(printable(line).split()) for line in report.splitlines()]
    lines = [line for line in lines if line]
    at = next((i for i, line in enumerate(lines) if _SMTP_STATUS.search(line)
               or _SMTP_REPLY.search(line)), None)
    chosen = lines[at] if at is not None else ""
    if at is not None and not _SMTP_STATUS.search(chosen):
        # the status code may follow on the next lines (qmail's "(#5.5.0)")
        more = next((line for line in lines[at + 1:at + 3] if _SMTP_STATUS.search(line)), "")
        chosen = f"{chosen} {more}".strip()
    if not chosen:
        wanted = [r for r in recipients if r]
        chosen = next((line for line in lines if _REASON_WORDS.search(line)
                       and not line.endswith(":")), "")
        if not chosen and wanted:
            chosen = next((line for line in lines if any(w in line.lower() for w in wanted)),
                          "")
        chosen = chosen or (lines[0] if lines else "")
    status = _SMTP_STATUS.search(chosen)
    return (status.group(1) if status else ""), chosen[:300]


def _is_complaint(msg: Message) -> bool:
    """An abuse feedback report (ARF, RFC 5965): somebody marked the mail as spam."""
    return msg.get_content_type() == "multipart/report" and str(
        msg.get_param("report-type", "") or "").lower() == "feedback-report"


def _complaint(msg: Message) -> list[Bounced]:
    """Whom an abuse report is about: the returned original (its Message-ID) and the
    report's Original-Rcpt-To."""
    original = _original_id(msg)
    recipients = []
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            blocks = payload if isinstance(payload, list) else [part]
            for block in blocks:
                if isinstance(block, Message):
                    recipients += _addresses_of(_header(block, "Original-Rcpt-To"))
            if not recipients:
                text = _text(part)
                recipients += [a.lower() for a in re.findall(
                    r"^Original-Rcpt-To:\s*<?([^>\s]+@[^>\s]+)>?", text, re.I | re.M)]
    return [Bounced(r, "", "als Spam gemeldet", original) for r in recipients] or [
        Bounced("", "", "als Spam gemeldet", original)]


def _is_auto_reply_header(msg: Message) -> bool:
    """An autoresponder's own header (a vacation program, not a mail server: servers
    set Auto-Submitted: auto-replied on their reports too, so that one is not it)."""
    return any(_header(msg, h).strip() for h in ("X-Autoreply", "X-Autorespond",
                                                 "X-Autoresponse", "X-Autorespond-Message"))


def _is_auto_reply(msg: Message, subject: str) -> bool:
    """RFC 3834 (``Auto-Submitted`` other than ``no``), the autoresponders' own headers,
    ``Precedence: bulk|junk|list|auto_reply``, Outlook's ``X-Auto-Response-Suppress`` on
    an out-of-office text, or a subject as the common clients write it in 14 languages."""
    auto = _header(msg, "Auto-Submitted").strip().lower()
    if (auto and auto != "no") or _is_auto_reply_header(msg):
        return True
    if _header(msg, "Precedence").strip().lower() in ("bulk", "junk", "list", "auto_reply",
                                                       "auto-reply"):
        return True
    if _header(msg, "X-Auto-Response-Suppress").strip() and _AWAY.search(
            _own_text(msg)[:2000]):
        return True
    plain = _REPLY_PREFIX.sub("", subject).casefold().lstrip(" [(")
    return plain.startswith(_AUTO_SUBJECTS)


# Opt-outs as people write them (German and English), matched in lower case with
# umlauts folded (ä -> ae …). Each is a request; whether it is meant is decided by its
# sentence (optout_of): a question or a negation makes it unclear.
_OPTOUT_PATTERNS = re.compile("|".join((
    r"\babmelde\w*", r"\babmeldung\w*", r"\babzumelden\b", r"\babbestell\w*",
    r"\baustrag\w*", r"\bauszutragen\b", r"\btragen sie (mich|uns)\b.*\baus\b",
    r"\b(streichen|entfernen|loeschen|nehmen)\b.*\b(verteiler|liste|adressliste)\b",
    r"\b(verteiler|liste|adressliste)\b.*\b(streichen|entfernen|loeschen|nehmen)\b",
    r"\bkeine (weiteren?|erneuten?) (e-?mails?|mails?|nachrichten|zusendungen|anschreiben"
    r"|einladungen|informationen|infos|post)\b",
    r"\bkeine (e-?mails?|mails?|nachrichten|zusendungen|anschreiben|einladungen|post) mehr\b",
    r"\bnicht mehr (an)?(schreiben|kontaktieren|anmailen|mailen|zuschicken)\b",
    r"\bwiderspr(uch|eche)\w*",
    r"\bunsubscribe\w*", r"\bopt(ed)?[ -]?out\b", r"\bremove (me|us|my|our)\b",
    r"\btake (me|us) off\b", r"\b(no|stop) (more |further )?(e-?mails?|mails?|messages)\b",
    r"\bdo not (contact|e-?mail|write)\b",
)))
# words that turn a request around in its sentence ("nicht abmelden", "auf keinen Fall")
_NEGATION = re.compile(r"\b(nicht|nie|niemals|auf keinen fall|keinesfalls|bloss nicht"
                       r"|not|never|no way|don't|dont)\b")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
# where the quoted original starts in a reply (Outlook, Thunderbird, Apple Mail, Gmail)
_QUOTE_START = re.compile(
    r"^\s*(-{2,}\s*(urspr(ü|ue)ngliche nachricht|original message|weitergeleitete nachricht"
    r"|forwarded message)|(am|on) .{4,120}(schrieb|wrote)|(von|from)\s*:\s*\S+@)",
    re.IGNORECASE)


def _fold(text: str) -> str:
    return (text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
            .replace("ß", "ss"))


def _own_text(msg: Message) -> str:
    """The first plain-text part: what the sender wrote, with what it quotes."""
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not _is_attachment(part):
            return _text(part)[:20000]
    return ""


def _unquoted(text: str) -> str:
    """What the sender wrote in a reply: up to the quoted original, without quoted
    (">") lines; at most 4,000 characters."""
    lines = []
    for line in text.splitlines():
        if _QUOTE_START.match(line):
            break
        if not line.lstrip().startswith(">"):
            lines.append(line)
    return "\n".join(lines)[:4000]


def _request(text: str) -> Optout:
    """Whether ``text`` asks not to be mailed again, sentence by sentence: one clear
    request is CLEAR; a request only as a question or negated ("Abmelden? Auf keinen
    Fall!") is UNCLEAR."""
    verdict = Optout.NO
    for sentence in _SENTENCE.findall(_fold(printable(text))):
        match = _OPTOUT_PATTERNS.search(sentence)
        if match is None:
            continue
        rest = sentence[:match.start()] + " " + sentence[match.end():]
        if sentence.rstrip().endswith("?") or _NEGATION.search(rest):
            verdict = Optout.UNCLEAR
            continue
        return Optout.CLEAR
    return verdict


def optout_of(subject: str, body: str, *, form: bool = False) -> Optout:
    """Whether a message asks to be removed: what its text says decides; a subject like
    "Abmelden" alone is a request when the text says nothing against it, but not when
    a form comes with it (a reused subject: the form is a return first)."""
    own = _request(_unquoted(body))
    if own is not Optout.NO:
        return own
    titled = _request(_REPLY_PREFIX.sub("", subject))
    if titled is Optout.CLEAR and form:
        return Optout.UNCLEAR
    return titled


def _addresses_of(value: str) -> list[str]:
    """The addresses of a DSN field ("rfc822; a@b.example") or a header list."""
    out = []
    for item in value.split(","):
        address = item.split(";", 1)[-1].strip().strip("<>").strip().lower()
        if "@" in address:
            out.append(printable(address).strip())
    return out


def _delivery_status(msg: Message) -> list[Bounced]:
    """RFC 3464: the failed recipients of a delivery-status report, every per-recipient
    block (``Final-Recipient``, with ``Original-Recipient`` and ``X-Actual-Recipient``
    as the block's other names), and ``X-Failed-Recipients`` (Exim). Only failures:
    ``Action: failed`` (a 4.x.x status too: the server gave up retrying), or no action
    and a 5.x.x status; delayed, delivered, relayed, expanded are no bounce."""
    original = _original_id(msg)
    out: list[Bounced] = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status",
                                            "message/global-delivery-status"):
            continue
        payload = part.get_payload()
        blocks = [b for b in payload if isinstance(b, Message)] if isinstance(payload,
                                                                                list) else []
        for block in blocks[1:]:  # the first block is about the message, the rest per recipient
            action = _header(block, "Action").strip().lower()
            status = _header(block, "Status").strip().split(" ")[0]
            if not (action == "failed" or (not action and status.startswith("5"))):
                continue
            names = [a for field_name in ("Final-Recipient", "Original-Recipient",
                                          "X-Actual-Recipient")
                     for a in _addresses_of(_header(block, field_name))]
            names = list(dict.fromkeys(names))
            diagnostic = " ".join(printable(_header(block, "Diagnostic-Code")).split())
            diagnostic = diagnostic.split(";", 1)[-1].strip() if ";" in diagnostic else diagnostic
            out.append(Bounced(names[0] if names else "", status, diagnostic[:300], original,
                               tuple(names[1:])))
    known = {b.recipient for b in out}
    for address in _addresses_of(_header(msg, "X-Failed-Recipients")):
        if address not in known:
            out.append(Bounced(address, "", "", original))
    return out


_QUOTED_ID = re.compile(r"^[ \t>|]*Message-I[Dd]:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)


def _original_id(msg: Message) -> str:
    """The Message-ID of the message a report returns: of the original attached
    (message/rfc822, message/partial …), of its headers (text/rfc822-headers) or of a
    copy in the text (also indented or quoted); else what the report itself says it
    answers (In-Reply-To, References: Exchange and others set them)."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind.startswith("message/") and kind not in (
                "message/delivery-status", "message/global-delivery-status",
                "message/feedback-report", "message/disposition-notification"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found = _first_id(_header(inner, "Message-ID"))
                if found:
                    return found
            elif isinstance(payload, str):
                match = _QUOTED_ID.search(payload[:200_000])
                if match:
                    return match.group(1)
        elif kind in ("text/rfc822-headers", "text/plain", "message/global-headers"):
            match = _QUOTED_ID.search(_text(part)[:200_000])
            if match:
                return match.group(1)
    own = _ID.findall(_header(msg, "In-Reply-To"))[:1] + _ID.findall(
        _header(msg, "References"))[-1:]
    return own[0] if own else ""


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
