"""SMTP sending: TLS, login, one connection for many messages, rate limits, journal.

Every (campaign, contact) goes through the journal in ``state.db``: *sending*
just before the DATA command, *sent* with the server's reply and Message-ID
after its 250. A run that dies in between leaves *sending*, which the next run
reports as *unknown* and does not send again unless asked. 4xx replies are
retried with backoff and then left *pending* for the next run; a 5xx for a
recipient marks it *failed* and the run goes on; a refused login stops the run.
"""

from __future__ import annotations

import base64
import contextlib
import smtplib
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

from formtool.contacts import Contact
from formtool.errors import FormtoolError
from formtool.store import Journal
from formtool.workspace import MailSettings

PASSWORD_ENV = "FORMTOOL_SMTP_PASSWORD"
KEYRING_SERVICE = "formtool"
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class OutboxError(FormtoolError):
    """The run cannot go on (login refused, server unreachable, TLS problem)."""


class _Transient(Exception):
    """A 4xx reply: try again later."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class _Permanent(Exception):
    """A 5xx reply for this message or recipient."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"


def keyring_account(settings: MailSettings) -> str:
    return f"{settings.user}@{settings.host}"


def password_for(settings: MailSettings) -> str | None:
    """The SMTP password: FORMTOOL_SMTP_PASSWORD, else the OS keyring."""
    import os

    import keyring
    import keyring.errors

    if not settings.user:
        return None
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    try:
        stored = keyring.get_password(KEYRING_SERVICE, keyring_account(settings))
    except keyring.errors.KeyringError as exc:
        raise OutboxError(f"Schlüsselbund nicht erreichbar ({exc}). Auf Servern ohne "
                          f"Schlüsselbund: Passwort in {PASSWORD_ENV} setzen.") from None
    if stored is None:
        raise OutboxError(f"Kein Passwort für {settings.user} gespeichert: bitte zuerst "
                          f"„formtool mail login“ (oder {PASSWORD_ENV} setzen).")
    return stored


def store_password(settings: MailSettings, password: str) -> None:
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, keyring_account(settings), password)
    except keyring.errors.KeyringError as exc:
        raise OutboxError(f"Passwort konnte nicht im Schlüsselbund gespeichert werden ({exc}); "
                          f"auf Servern {PASSWORD_ENV} setzen.") from None


def check_settings(settings: MailSettings) -> None:
    if not settings.sender_email:
        raise OutboxError("Kein Absender eingestellt: bitte in formtool.toml unter [sender] "
                          "die email eintragen.")
    if not settings.host:
        raise OutboxError("Kein Mailserver eingestellt: bitte in formtool.toml unter [smtp] "
                          "host (und port, user) eintragen.")
    if settings.security == "none" and settings.user and settings.host not in LOOPBACK:
        raise OutboxError(f"[smtp] security = \"none\" würde das Passwort unverschlüsselt an "
                          f"{settings.host} senden; bitte starttls oder ssl verwenden.")


def domain_mismatch(settings: MailSettings) -> str | None:
    """A warning when the sender's domain is not the mailbox's: receiving servers check
    (SPF, DKIM, DMARC) that the From domain may be sent from this account."""
    if "@" not in settings.user or "@" not in settings.sender_email:
        return None  # a login name, not an address: nothing to compare
    sender = settings.sender_email.rpartition("@")[2].lower()
    mailbox = settings.user.rpartition("@")[2].lower()
    if sender == mailbox or sender.endswith(f".{mailbox}") or mailbox.endswith(f".{sender}"):
        return None
    return (f"Absender {settings.sender_email}, Postfach {settings.user}: verschiedene "
            "Domains. Viele Mailserver (SPF, DKIM, DMARC) sortieren solche E-Mails als Spam "
            "aus oder weisen sie ab. Am sichersten sendet ein Postfach der Absender-Domain.")


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """smtplib's login, but UTF-8 for non-ASCII credentials (smtplib encodes them as ASCII).

    RFC 4616: AUTH PLAIN carries UTF-8. German passwords often hold umlauts.
    """
    if (user + password).isascii():
        smtp.login(user, password)
        return
    mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" in mechanisms:
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        code, reply = smtp.docmd("AUTH", f"PLAIN {token}")
    elif "LOGIN" in mechanisms:
        code, reply = smtp.docmd("AUTH", "LOGIN " + base64.b64encode(user.encode()).decode())
        if code == 334:
            code, reply = smtp.docmd(base64.b64encode(password.encode()).decode())
    else:
        raise smtplib.SMTPException("der Server bietet weder AUTH PLAIN noch AUTH LOGIN an")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


class Session:
    """One SMTP connection, opened lazily, reused, renewed after max_per_connection."""

    def __init__(self, settings: MailSettings, password: str | None) -> None:
        self.settings = settings
        self.password = password
        self.smtp: smtplib.SMTP | None = None
        self.sent_on_connection = 0

    def _tls(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.settings.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise OutboxError(f"[smtp] ca_file {self.settings.ca_file}: nicht lesbar ({exc}).") \
                from None

    def connect(self) -> None:
        s = self.settings
        where = f"{s.host}:{s.port}"
        try:
            if s.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                                      context=self._tls())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            # Commands are small writes that wait for a reply: without this, Nagle's
            # algorithm and delayed ACKs stall some of them for tens of milliseconds.
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    smtp.close()
                    raise OutboxError(f"{where} bietet kein STARTTLS an; unverschlüsselt sendet "
                                      "formtool nicht (security = \"ssl\" versuchen?).")
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if s.user:
                _login(smtp, s.user, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise OutboxError(f"Anmeldung bei {where} als {s.user} abgelehnt "
                              f"({_reply(exc.smtp_code, exc.smtp_error)}). Passwort neu "
                              "speichern mit: formtool mail login") from None
        except ssl.SSLCertVerificationError as exc:
            raise OutboxError(f"{where}: Zertifikat nicht vertrauenswürdig ({exc.verify_message})."
                              " Bei einem eigenen Server: [smtp] ca_file setzen.") from None
        except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
            raise OutboxError(f"Mailserver {where} nicht erreichbar: {exc}") from None
        self.smtp = smtp
        self.sent_on_connection = 0

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.smtp.quit()
            with contextlib.suppress(OSError):
                self.smtp.close()
            self.smtp = None

    def send(self, sender: str, built: Built, before_data: Callable[[], None],
             while_waiting: Callable[[], None] = lambda: None) -> str:
        """MAIL, RCPT, (journal), DATA. Returns the server's reply to DATA.

        ``while_waiting`` runs once the message is out and the server is taking it
        (the longest wait of the exchange): the caller builds its next message then.
        """
        if self.smtp is not None and self.sent_on_connection >= self.settings.max_per_connection:
            self.close()
        if self.smtp is None:
            self.connect()
        smtp = self.smtp
        assert smtp is not None
        # RFC 1870: a server that cannot take the size says so before the upload
        options = [f"SIZE={len(built.data)}"] if smtp.has_extn("size") else []
        code, text = smtp.mail(sender, options)
        self._check(smtp, code, text)
        for recipient in built.recipients:
            code, text = smtp.rcpt(recipient)
            self._check(smtp, code, text)
        before_data()
        # smtplib's data(), with room for while_waiting between the message and the reply
        code, text = smtp.docmd("DATA")
        if code == 354:
            smtp.send(built.wire)
            while_waiting()
            code, text = smtp.getreply()
        self._check(smtp, code, text)
        self.sent_on_connection += 1
        return _reply(code, text)

    @staticmethod
    def _check(smtp: smtplib.SMTP, code: int, text: bytes) -> None:
        if 200 <= code < 400:
            return
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.rset()
        if code == 421 or code == -1:
            raise smtplib.SMTPServerDisconnected(_reply(code, text))
        if 400 <= code < 500:
            raise _Transient(_reply(code, text))
        raise _Permanent(_reply(code, text))


class RateLimiter:
    """Sliding windows per minute, hour and day over every send in the journal."""

    WINDOWS = ((60.0, "Minute"), (3600.0, "Stunde"), (86400.0, "Tag"))

    def __init__(self, settings: MailSettings, history: list[float], *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limits = [(w, name, n) for (w, name), n in zip(
            self.WINDOWS, (settings.per_minute, settings.per_hour, settings.per_day),
            strict=True) if n > 0]
        keep = max((n for _, _, n in self.limits), default=0)
        self.history: deque[float] = deque(history[-keep:] if keep else [], maxlen=keep or 1)
        self.clock = clock
        self.sleep = sleep
        self.lock = threading.Lock()

    def wait(self, now: float) -> tuple[float, str]:
        worst, why = 0.0, ""
        for window, name, limit in self.limits:
            recent = [t for t in list(self.history)[-limit:] if t > now - window]
            if len(recent) >= limit:
                delay = recent[0] + window - now
                if delay > worst:
                    worst, why = delay, f"{limit} pro {name}"
        return worst, why

    def acquire(self, on_wait: Callable[[float, str], None], stop: threading.Event) -> bool:
        """Block until a send is allowed, then take the slot. False when stopped."""
        if not self.limits:
            return not stop.is_set()
        announced = False
        while not stop.is_set():
            with self.lock:
                now = self.clock()
                delay, why = self.wait(now)
                if delay <= 0:
                    self.history.append(now)
                    return True
            if not announced:  # once per wait, not every second
                on_wait(delay, why)
                announced = True
            self.sleep(min(delay, 1.0))
        return False


@dataclass(frozen=True)
class Job:
    """One message to send: the contact and how to build it (Message-ID, recipients, bytes)."""

    contact: Contact
    build: Callable[[], Built]


@dataclass(frozen=True)
class Built:
    message_id: str
    recipients: list[str]
    data: bytes  # the message
    wire: bytes  # as DATA carries it: a leading dot doubled (RFC 5321 4.5.2), CRLF.CRLF

    @classmethod
    def of(cls, message: EmailMessage, data: bytes) -> Built:
        recipients = [a.addr_spec for h in ("To", "Cc") if message[h]
                      for a in message[h].addresses]
        return cls(str(message["Message-ID"]), recipients, data, _stuffed(data))


def _stuffed(data: bytes) -> bytes:
    """RFC 5321 4.5.2: a dot that starts a line is doubled; the end is CRLF.CRLF.
    (smtplib's data() does the same with a regular expression, half as fast.)"""
    wire = (b"." if data.startswith(b".") else b"") + data.replace(b"\n.", b"\n..")
    return wire + (b".\r\n" if wire.endswith(b"\r\n") else b"\r\n.\r\n")


@dataclass
class Event:
    kind: str  # sent, failed, pending, unknown, wait, retry, reconnect
    contact: Contact | None = None
    detail: str = ""


@dataclass
class Summary:
    sent: int = 0
    failed: int = 0
    pending: int = 0
    unknown: int = 0
    already_sent: int = 0
    already_unknown: int = 0
    previously_failed: int = 0
    opted_out: int = 0
    not_sent_limit: int = 0
    failures: list[tuple[Contact, str]] = field(default_factory=list)


class Outbox:
    """Sends jobs of one campaign over ``settings.connections`` connections."""

    def __init__(self, settings: MailSettings, journal: Journal, campaign: str, *,
                 password: str | None, on_event: Callable[[Event], None] = lambda e: None,
                 retry_delays: tuple[float, ...] = (2.0, 10.0, 30.0),
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.journal = journal
        self.campaign = campaign
        self.password = password
        self.on_event = on_event
        self.retry_delays = retry_delays
        self.sleep = sleep
        self.stop = threading.Event()
        self.limiter = RateLimiter(settings, journal.sent_since(clock() - 86400.0),
                                   clock=clock, sleep=sleep)
        self.summary = Summary()
        self.lock = threading.Lock()
        self.fatal: BaseException | None = None
        self._feed = threading.Lock()
        self._jobs: Iterator[Job] = iter(())
        self._limit: int | None = None
        self._taken = 0

    def plan(self, contacts: Iterable[Contact], *, resend_unknown: bool = False
             ) -> Iterator[Contact]:
        """The contacts that still need this campaign; counts the others in the summary."""
        for contact in contacts:
            record = self.journal.get(self.campaign, contact.key)
            if contact.opted_out:
                self.journal.add_optout(contact.email, "Kontaktliste")
            if contact.opted_out or self.journal.is_opted_out(contact.email):
                self.summary.opted_out += 1
            elif record is None or record.state == "pending":
                self._remember(contact)
                yield contact
            elif record.state == "sent":
                self.summary.already_sent += 1
            elif record.state in ("unknown", "sending") and not resend_unknown:
                # "sending" is left by a run that died mid-message: as unknown as it gets
                self.summary.already_unknown += 1
            elif record.state == "failed" and record.email.lower() == contact.email.lower():
                self.summary.previously_failed += 1  # same address: it would fail again
            else:
                self._remember(contact)
                yield contact

    def _remember(self, contact: Contact) -> None:
        """Name, organisation and address for `formtool status --offen`."""
        self.journal.remember_contact(contact.key, contact.email, contact.display_name,
                                      contact.get("organisation"), contact.address)

    def run(self, jobs: Iterable[Job], *, limit: int | None = None) -> Summary:
        """Send every job; Ctrl-C stops after the messages under way are recorded.

        Each sending thread builds its next message while the server takes the
        current one, so building costs no time of its own, no second thread
        competes for the interpreter, and at most two messages per connection
        are in memory.
        """
        self._jobs, self._limit, self._taken = iter(jobs), limit, 0
        finished = [threading.Event() for _ in range(self.settings.connections)]
        for i, done in enumerate(finished):
            threading.Thread(target=self._worker, args=(done,), daemon=True,
                             name=f"smtp-{i}").start()
        try:
            _wait(finished)
        except BaseException:
            self.stop.set()  # Ctrl-C: the threads finish the message under way and end
            _wait(finished)
            raise
        if self.fatal is not None:
            raise self.fatal
        return self.summary

    def _take(self) -> tuple[Contact, Built] | None:
        """The next message, built; None when there is none left (or the run stops).

        One thread at a time builds: jobs come from one iterator, and personal
        forms are written to one database.
        """
        with self._feed:
            for job in self._jobs:
                if self.stop.is_set():
                    return None
                if self._limit is not None and self._taken >= self._limit:
                    self.summary.not_sent_limit += 1
                    continue
                try:
                    built = job.build()
                except FormtoolError as exc:  # e.g. over the size limit: this one fails
                    self.journal.mark(self.campaign, job.contact.key, job.contact.email,
                                      "failed", reply=str(exc))
                    self._count("failed", job.contact, str(exc))
                    continue
                self._taken += 1
                return job.contact, built
            return None

    def _worker(self, finished: threading.Event) -> None:
        session = Session(self.settings, self.password)
        ahead: list[tuple[Contact, Built] | None] = []
        trouble: list[BaseException] = []

        def build_ahead() -> None:  # while the server takes the message under way
            if not ahead and not trouble:
                try:
                    ahead.append(self._take())
                except BaseException as exc:  # not the connection's fault: raised below
                    trouble.append(exc)

        try:
            upcoming = self._take()
            while upcoming is not None and not self.stop.is_set():
                if not self.limiter.acquire(self._waiting, self.stop):
                    break
                self._send(session, *upcoming, while_waiting=build_ahead)
                if trouble:
                    raise trouble[0]
                upcoming = ahead.pop() if ahead else self._take()
        except BaseException as exc:  # stop everything; run() re-raises it in the main thread
            self.fatal = exc
            self.stop.set()
        finally:
            session.close()
            finished.set()

    def _waiting(self, delay: float, why: str) -> None:
        self.on_event(Event("wait", detail=f"{delay:.0f} s (Grenze {why})"))

    def _count(self, kind: str, contact: Contact, detail: str = "") -> None:
        with self.lock:
            setattr(self.summary, kind, getattr(self.summary, kind) + 1)
            if kind == "failed":
                self.summary.failures.append((contact, detail))
        self.on_event(Event(kind, contact, detail))

    def _send(self, session: Session, contact: Contact, built: Built, *,
              while_waiting: Callable[[], None]) -> None:
        message_id = built.message_id
        data_started = False

        def journal_sending() -> None:
            nonlocal data_started
            self.journal.mark(self.campaign, contact.key, contact.email, "sending",
                              message_id=message_id, attempt=True)
            data_started = True

        delays = list(self.retry_delays)
        reconnects = 0
        while True:
            try:
                reply = session.send(self.settings.sender_email, built, journal_sending,
                                     while_waiting)
            except _Transient as exc:
                if not delays or self.stop.is_set():
                    self.journal.mark(self.campaign, contact.key, contact.email, "pending",
                                      reply=exc.reply)
                    self._count("pending", contact, exc.reply)
                    return
                self.on_event(Event("retry", contact, f"{exc.reply}; neuer Versuch in "
                                                      f"{delays[0]:.0f} s"))
                self.sleep(delays.pop(0))
                data_started = False
                continue
            except _Permanent as exc:
                self.journal.mark(self.campaign, contact.key, contact.email, "failed",
                                  reply=exc.reply)
                self._count("failed", contact, exc.reply)
                return
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                session.close()
                if data_started:
                    # The server may have taken it: never send it twice.
                    self.journal.mark(self.campaign, contact.key, contact.email, "unknown",
                                      message_id=message_id,
                                      reply=f"Verbindung abgebrochen: {exc}")
                    self._count("unknown", contact, str(exc))
                    return
                reconnects += 1
                if reconnects > 3:
                    raise OutboxError(f"Verbindung zu {self.settings.host} bricht immer wieder "
                                      f"ab ({exc}); bitte später erneut senden.") from None
                self.on_event(Event("reconnect", contact, str(exc)))
                self.sleep(min(2.0 ** reconnects, 10.0))
                continue
            self.journal.mark(self.campaign, contact.key, contact.email, "sent",
                              message_id=message_id, reply=reply, sent_at=time.time())
            self._count("sent", contact)
            return


def _wait(events: list[threading.Event]) -> None:
    """Wait for the sending threads. Not Thread.join: Ctrl-C during a join can leave
    a running thread marked as ended (CPython's bpo-45274 fix releases its lock)."""
    for event in events:
        while not event.wait(timeout=0.2):
            pass
