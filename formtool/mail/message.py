"""Rendered template + contact -> the message as sent (``email.message.EmailMessage``).

multipart/mixed(alternative(text/plain, text/html), attachments): the headers built
from data come from ``headers.py`` (never folded by the ``email`` package), RFC 2231
file names, a Message-ID on the sender's domain, ``List-Unsubscribe``, the opt-out
footer. Building is on the sending threads' critical path; the caches below are
what a benchmark justified (see ``_CachingPolicy``).
"""

from __future__ import annotations

import datetime as dt
import functools
import mimetypes
import secrets
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage, Message, MIMEPart
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid
from io import BytesIO
from typing import Any, BinaryIO, ClassVar, Generic, TypeVar

import markdown

from formtool.addresses import ascii_email
from formtool.mail import headers
from formtool.mail.contacts import Contact
from formtool.mail.template import ComposeError, Rendered, Sender, wrapped

OPTOUT_FOOTER = ("Sie möchten keine E-Mails mehr von uns erhalten? Antworten Sie einfach mit "
                 "dem Betreff „Abmelden“ an {address} – wir schreiben Ihnen dann nicht mehr.")
K = TypeVar("K")
V = TypeVar("V")
_BOUNDARY = secrets.token_hex(16)  # see _multipart


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes

    @property
    def mime_type(self) -> tuple[str, str]:
        guessed = mimetypes.guess_type(self.filename)[0] or "application/octet-stream"
        main, _, sub = guessed.partition("/")
        return main, sub

    @functools.cached_property
    def part(self) -> MIMEPart:
        """The encoded MIME part, made and serialised once: the same file goes to many
        recipients."""
        part = MIMEPart(policy=POLICY)
        main, sub = self.mime_type
        part.set_content(self.data, maintype=main, subtype=sub, disposition="attachment",
                         filename=self.filename)  # RFC 2231 for umlauts
        _Generator.share(part)
        return part


def _html_document(body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\"></head>\n"
            "<body style=\"font-family: Arial, Helvetica, sans-serif; font-size: 15px; "
            "line-height: 1.5; color: #222;\">\n"
            f"{body}\n</body></html>\n")


def build(rendered: Rendered, contact: Contact, sender: Sender, *,
          attachments: Sequence[Attachment] = (), now: dt.datetime | None = None
          ) -> EmailMessage:
    """The finished message: mixed(alternative(plain, html), attachments)."""
    unsubscribe = sender.unsubscribe or sender.email
    footer = OPTOUT_FOOTER.format(address=unsubscribe)
    message = EmailMessage(policy=POLICY)
    try:
        message["From"] = headers.mailbox("From", sender.name, _checked(sender.email))
        message["To"] = headers.mailbox("To", contact.display_name, _checked(contact.email))
        if rendered.cc:
            message["Cc"] = headers.mailboxes("Cc", [_checked(a) for a in rendered.cc])
        reply_to = rendered.reply_to or sender.reply_to
        if reply_to:
            message["Reply-To"] = headers.mailbox("Reply-To", "", _checked(reply_to))
    except ValueError as exc:
        raise ComposeError(f"Zeile {contact.row} ({contact.key}): ungültige Adresse ({exc}).") \
            from None
    message["Subject"] = headers.text("Subject", rendered.subject)
    message["Date"] = format_datetime(now or dt.datetime.now().astimezone())
    message["Message-ID"] = make_msgid(domain=sender.domain)
    message["List-Unsubscribe"] = f"<mailto:{unsubscribe}?subject=Abmelden>"  # RFC 2369
    text = MIMEPart(policy=POLICY)
    text.set_content(f"{rendered.text}\n-- \n{wrapped(footer)}\n")
    html = MIMEPart(policy=POLICY)
    html.set_content(_html_document(f"{_markdown(rendered.html)}\n<hr>\n<small>"
                                    f"{_footer_html(unsubscribe)}</small>"), subtype="html")
    message["MIME-Version"] = "1.0"
    if attachments:
        _multipart(message, "mixed", [_multipart(MIMEPart(policy=POLICY), "alternative",
                                                 [text, html]),
                                      *(a.part for a in attachments)])
    else:
        _multipart(message, "alternative", [text, html])
    return message


def _checked(address: str) -> str:
    sendable = ascii_email(address)
    if sendable is None:
        raise ValueError(f"„{headers.clean(address)}“ ist keine gültige E-Mail-Adresse")
    return sendable


def _multipart(container: MIMEPart, subtype: str, parts: list[MIMEPart]) -> MIMEPart:
    # A boundary with 128 random bits drawn once per run cannot occur in the content,
    # so the generator need not search each message (attachments included) for one;
    # the same header in every message is parsed and folded once.
    container["Content-Type"] = f'multipart/{subtype}; boundary="=_{subtype}_{_BOUNDARY}"'
    for part in parts:
        container.attach(part)
    return container


_converters = threading.local()


def _markdown(text: str) -> str:
    """Markdown -> HTML; one converter per thread, reset for each text (setting one up
    costs more than converting a letter)."""
    converter = getattr(_converters, "markdown", None)
    if converter is None:
        converter = markdown.Markdown(extensions=["sane_lists"], output_format="html")
        _converters.markdown = converter
    return str(converter.reset().convert(text))


@functools.lru_cache(maxsize=8)
def _footer_html(unsubscribe: str) -> str:
    return str(markdown.markdown(OPTOUT_FOOTER.format(address=f"<{unsubscribe}>")))


class _Recurring(Generic[K, V]):
    """A cache for the values that recur: a key is kept from its second sighting on,
    so a unique one (a Subject, a Message-ID) costs a set entry, not a parse tree."""

    LIMIT = 4096

    def __init__(self) -> None:
        self.seen: set[K] = set()
        self.values: dict[K, V] = {}

    def get(self, key: K, make: Callable[[], V]) -> V:
        value = self.values.get(key)
        if value is None:
            value = make()
            if key in self.seen:
                if len(self.values) >= self.LIMIT:
                    self.values.clear()
                self.values[key] = value
            else:
                if len(self.seen) >= self.LIMIT:
                    self.seen.clear()
                self.seen.add(key)
        return value


class _CachingPolicy(EmailPolicy):
    """email.policy.SMTP that remembers parsed and folded headers.

    Most headers are the same in every message of a mailing (From, the parts'
    Content-Type, the attachment's headers); parsing them into header objects
    and folding them again is most of the cost of building a message. Header
    objects are immutable, so messages can share them. Same output, byte for byte.
    """

    _parsed: ClassVar[_Recurring[tuple[str, str], tuple[str, Any]]] = _Recurring()
    _folded: ClassVar[_Recurring[tuple[str, str], bytes]] = _Recurring()
    _max_counts: ClassVar[dict[str, int | None]] = {}

    def header_max_count(self, name: str) -> int | None:
        # asked on every header set; the registry makes a new class to answer each time
        key = name.lower()
        if key not in self._max_counts:
            self._max_counts[key] = super().header_max_count(name)
        return self._max_counts[key]

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if isinstance(value, headers.Folded):  # ours: stored and written as it is
            return name, value
        if not isinstance(value, str):  # Address objects and the like: parsed each time
            return super().header_store_parse(name, value)
        # raises on CR/LF: such a value is never stored
        return self._parsed.get((name, value), lambda: super(
            _CachingPolicy, self).header_store_parse(name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        return self._folded.get((name, str(value)), lambda: super(
            _CachingPolicy, self).fold_binary(name, value))


POLICY = _CachingPolicy(linesep="\r\n")  # the settings of email.policy.SMTP


class _Generator(BytesGenerator):
    """The email package's BytesGenerator; a part shared by many messages (an
    attachment) is written from the bytes it was serialised to once. Writing the
    ~1,100 base64 lines of a 60 kB PDF line by line is most of the cost otherwise.

    The generator serialises each subpart on its own (``_handle_multipart``), so
    the cached bytes are exactly what it would write again.
    """

    _shared: ClassVar[weakref.WeakKeyDictionary[Message, bytes]] = (
        weakref.WeakKeyDictionary())

    def __init__(self, outfp: BinaryIO, *args: Any, **kwargs: Any) -> None:
        super().__init__(outfp, *args, **kwargs)
        self._out = outfp

    @classmethod
    def share(cls, part: Message) -> None:
        """Serialise ``part`` now; later messages reuse the bytes. It must not change."""
        buffer = BytesIO()
        cls(buffer, mangle_from_=False, policy=POLICY).flatten(part)
        cls._shared[part] = buffer.getvalue()

    def flatten(self, msg: Message, unixfrom: bool = False, linesep: str | None = None
                ) -> None:
        cached = self._shared.get(msg)
        if cached is not None and not unixfrom and self.policy is POLICY and (
                linesep in (None, POLICY.linesep)):
            self._out.write(cached)
        else:
            super().flatten(msg, unixfrom, linesep)


def to_bytes(message: EmailMessage, contact: Contact, max_bytes: int) -> bytes:
    """The message as sent, checked against the size limit (base64 included)."""
    buffer = BytesIO()
    _Generator(buffer, mangle_from_=False, policy=POLICY).flatten(message)
    data = buffer.getvalue()
    if len(data) > max_bytes:
        raise ComposeError(f"Zeile {contact.row} ({contact.key}): die E-Mail ist "
                           f"{len(data) / 1024 / 1024:.1f} MB groß (Grenze "
                           f"{max_bytes / 1024 / 1024:.0f} MB); bitte kleinere Anhänge.")
    return data
