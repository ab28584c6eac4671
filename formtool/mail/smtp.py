"""One SMTP connection: TLS verified (no plain fallback), AUTH, deadlines, replies sorted.

Every reply must arrive whole within ``timeout`` seconds: smtplib only limits each
read from the socket, so a server that keeps sending ``220-`` continuation lines,
or dribbles one byte a second, would hold a run forever. A watchdog thread closes
a connection whose reply is overdue; the waiting read then ends at once.
"""

from __future__ import annotations

import base64
import contextlib
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from formtool.errors import FormtoolError, os_reason
from formtool.mail.oauth import Bearer, Secret, oauthbearer, xoauth2
from formtool.workspace import MailSettings

LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class SmtpError(FormtoolError):
    """The run cannot go on (login refused, server unreachable, TLS problem)."""


class Transient(Exception):
    """A 4xx reply: try again later."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class Permanent(Exception):
    """A 5xx reply for this message or recipient."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"


def check_settings(settings: MailSettings) -> None:
    if not settings.sender_email:
        raise SmtpError("Kein Absender eingestellt: bitte in formtool.toml unter [sender] "
                          "die email eintragen.")
    if not settings.host:
        raise SmtpError("Kein Mailserver eingestellt: bitte in formtool.toml unter [smtp] "
                          "host (und port, user) eintragen.")
    # the two well-known ports speak only one way (RFC 8314: 465 implicit TLS, RFC 6409:
    # 587 STARTTLS): a mismatch would wait for the server's timeout before saying so
    if settings.port == 465 and settings.security == "starttls":
        raise SmtpError("[smtp] Port 465 spricht sofort TLS: bitte security = \"ssl\" "
                        "(oder Port 587 mit \"starttls\").")
    if settings.port == 587 and settings.security == "ssl":
        raise SmtpError("[smtp] Port 587 beginnt unverschlüsselt und schaltet mit STARTTLS "
                        "um: bitte security = \"starttls\" (oder Port 465 mit \"ssl\").")
    if settings.security == "none" and settings.user and settings.host not in LOOPBACK:
        raise SmtpError(f"[smtp] security = \"none\" würde das Passwort unverschlüsselt an "
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


GREETING_SECONDS = 10.0  # a server's 220 greeting comes at once (RFC 5321 4.5.3.2.1: 5 min
#                          is the limit for a client's patience, not what servers take)


def connect_problem(s: MailSettings, exc: BaseException) -> str:
    """What a failed connection means, in German, with what to check."""
    where = f"{s.host}:{s.port}"
    pairing = "Üblich sind Port 587 mit security = \"starttls\" oder 465 mit \"ssl\"."
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"{where}: Zertifikat nicht vertrauenswürdig ({_certificate(exc)}). Stimmt "
                "der Servername? Bei einem eigenen Server: [smtp] ca_file setzen.")
    if isinstance(exc, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(exc):
        return (f"{where} spricht am Anfang kein TLS: security = \"ssl\" passt nicht zu "
                f"diesem Port. {pairing}")
    if isinstance(exc, socket.gaierror):
        return (f"Mailserver „{s.host}“ nicht gefunden (der Name ist unbekannt). Bitte [smtp] "
                "host in formtool.toml und die Internetverbindung prüfen.")
    if isinstance(exc, ConnectionRefusedError):
        return (f"Unter {where} nimmt kein Mailserver Verbindungen an (abgelehnt). Bitte host "
                f"und port prüfen. {pairing}")
    if isinstance(exc, (TimeoutError, socket.timeout)) or "innerhalb von" in str(exc):
        hint = (" Bei Port 465 security = \"ssl\" verwenden." if s.port == 465
                and s.security != "ssl" else f" {pairing}")
        return (f"{where} antwortet nicht rechtzeitig (Grenze {s.timeout:g} s): Firewall, "
                f"falscher Port oder Störung beim Anbieter?{hint}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        hint = (" Vielleicht erwartet der Server sofort TLS: dann security = \"ssl\" (üblich "
                "auf Port 465)." if s.security != "ssl" else f" {pairing}")
        return f"{where} hat die Verbindung ohne Antwort beendet.{hint}"
    if isinstance(exc, ssl.SSLError):
        return f"{where}: die verschlüsselte Verbindung kam nicht zustande. {pairing}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{where} hat die Verbindung abgelehnt ({_reply(exc.smtp_code, exc.smtp_error)})."
    if isinstance(exc, ConnectionResetError):
        return f"{where} hat die Verbindung zurückgesetzt. {pairing}"
    if isinstance(exc, OSError) and exc.errno in (101, 113, 10051, 10065):
        return (f"Mailserver {where} nicht erreichbar (kein Weg dorthin): Internetverbindung "
                "oder Firewall prüfen.")
    return (f"Mailserver {where} nicht erreichbar ({type(exc).__name__}). Bitte host, port "
            f"und die Internetverbindung prüfen. {pairing}")


def dropped(exc: BaseException) -> str:
    """Why a connection broke off while sending, in German."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "der Server hat die Verbindung beendet"
    if isinstance(exc, (TimeoutError, socket.timeout)) or "innerhalb von" in str(exc):
        return "keine Antwort in der vorgesehenen Zeit"
    if isinstance(exc, ssl.SSLError):
        return "Fehler der verschlüsselten Verbindung"
    if isinstance(exc, OSError):
        return os_reason(exc)
    return "Verbindung unterbrochen"


_CERTIFICATE = (  # OpenSSL's verify messages -> German
    ("self-signed", "selbst ausgestellt"),
    ("expired", "abgelaufen"),
    ("not yet valid", "noch nicht gültig"),
    ("hostname mismatch", "für einen anderen Servernamen ausgestellt"),
    ("ip address mismatch", "für eine andere Adresse ausgestellt"),
    ("unable to get local issuer", "Aussteller unbekannt"),
    ("revoked", "widerrufen"),
)


def _certificate(exc: ssl.SSLCertVerificationError) -> str:
    message = (exc.verify_message or "").lower()
    return next((german for english, german in _CERTIFICATE if english in message),
                "nicht überprüfbar")


GUIDE_OAUTH = "docs/anleitung.md, Abschnitt „Microsoft 365 (Anmeldung ohne Passwort)“"


def login_refused(s: MailSettings, reply: str) -> str:
    """Why the server refused the login, in German: Microsoft's switched-off passwords
    (5.7.139, 5.7.30) and Authenticated SMTP named as such."""
    where = f"{s.host}:{s.port}"
    microsoft = "5.7.139" in reply or "5.7.30" in reply or "office365" in s.host.lower() \
        or "outlook" in s.host.lower()
    if s.auth == "oauth2":
        if "5.7.139" in reply or "smtpclientauthentication" in reply.lower():
            return (f"{where} nimmt die Anmeldung von {s.user} an, aber der Versand über SMTP "
                    "ist für dieses Postfach ausgeschaltet. Die IT schaltet ihn ein: "
                    "Microsoft 365 Admin Center → Benutzer → E-Mail → „E-Mail-Apps "
                    f"verwalten“ → „Authentifiziertes SMTP“ ({reply}).")
        return (f"Anmeldung bei {where} als {s.user} abgelehnt ({reply}). Prüfen: ist "
                "[smtp] user die Adresse des Kontos, mit dem Sie sich angemeldet haben, und "
                "hat die App die Berechtigung SMTP.Send? Danach „formtool mail login“.")
    if microsoft and ("5.7.139" in reply or "5.7.30" in reply):
        return (f"{where} nimmt für {s.user} keine Passwörter mehr an ({reply}): Microsoft "
                "365 hat die Anmeldung mit Passwort (Basic Authentication) abgeschaltet. "
                "Abhilfe: Anmeldung ohne Passwort mit [smtp] auth = \"oauth2\" und dem "
                f"Abschnitt [oauth] – siehe {GUIDE_OAUTH}.")
    return (f"Anmeldung bei {where} als {s.user} abgelehnt ({reply}). Benutzername und "
            "Passwort prüfen; Passwort neu speichern mit: formtool mail login")


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


class _Watchdog:
    """Closes connections whose reply is overdue (one daemon thread for all)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deadlines: dict[_DeadlineMixin, float] = {}
        self.thread: threading.Thread | None = None

    def watch(self, smtp: _DeadlineMixin, deadline: float) -> None:
        with self.lock:
            self.deadlines[smtp] = deadline
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, daemon=True,
                                               name="smtp-watchdog")
                self.thread.start()

    def unwatch(self, smtp: _DeadlineMixin) -> None:
        with self.lock:
            self.deadlines.pop(smtp, None)

    def _run(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self.lock:
                overdue = [smtp for smtp, deadline in self.deadlines.items() if deadline < now]
                for smtp in overdue:
                    del self.deadlines[smtp]
            for smtp in overdue:
                smtp.timed_out = True
                smtp.cut()


_WATCHDOG = _Watchdog()


class _DeadlineMixin(smtplib.SMTP):
    """smtplib with a deadline for each whole reply, and a way to cut the connection."""

    reply_timeout = 60.0
    timed_out = False

    def getreply(self) -> tuple[int, bytes]:
        _WATCHDOG.watch(self, time.monotonic() + self.reply_timeout)
        try:
            return super().getreply()
        except smtplib.SMTPServerDisconnected:
            if self.timed_out:
                raise smtplib.SMTPServerDisconnected(
                    f"keine vollständige Antwort innerhalb von {self.reply_timeout:g} s") from None
            raise
        finally:
            _WATCHDOG.unwatch(self)

    def connect(self, host: str = "localhost", port: int = 0,
                source_address: Any = None) -> tuple[int, bytes]:
        self._host = host  # smtplib sets it only in __init__; STARTTLS checks it
        return super().connect(host, port, source_address)

    def cut(self) -> None:
        """Shut the socket down under any thread waiting on it (not SSLSocket.shutdown,
        which unhooks the TLS object from under a running read)."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _SMTP(_DeadlineMixin, smtplib.SMTP):
    pass


class _SMTPS(_DeadlineMixin, smtplib.SMTP_SSL):
    pass


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


def _oauth_login(smtp: smtplib.SMTP, user: str, bearer: Bearer, host: str, port: int) -> None:
    """AUTH XOAUTH2 (Microsoft, Google), else OAUTHBEARER (RFC 7628), with the access
    token; a refused token is renewed once (the server's clock may see it expired)."""
    mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
    if "XOAUTH2" not in mechanisms and "OAUTHBEARER" not in mechanisms:
        raise SmtpError(f"{host}:{port}: der Server bietet keine Anmeldung mit OAuth an "
                        "(XOAUTH2/OAUTHBEARER); für ihn [smtp] auth = \"password\".")
    code, reply = 0, b""
    for renew in (False, True):
        token = bearer.token(renew=renew)
        if "XOAUTH2" in mechanisms:
            initial = xoauth2(user, token)
            mechanism = "XOAUTH2"
        else:
            initial = oauthbearer(user, token, host, port)
            mechanism = "OAUTHBEARER"
        code, reply = smtp.docmd("AUTH", f"{mechanism} "
                                 + base64.b64encode(initial.encode()).decode())
        if code == 334:  # the error as JSON; the client answers with an empty line
            code, reply = smtp.docmd("")
        if code == 235:
            return
        if not 500 <= code < 600 or b"5.7.139" in reply:
            break  # not the token's fault: renewing would not help
    raise smtplib.SMTPAuthenticationError(code, reply)


class Session:
    """One SMTP connection, opened lazily, reused, renewed after max_per_connection
    (and, with OAuth, before the access token runs out)."""

    def __init__(self, settings: MailSettings, password: Secret) -> None:
        self.settings = settings
        self.password = password
        self.smtp: _DeadlineMixin | None = None
        self.sent_on_connection = 0

    def _tls(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.settings.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise SmtpError(f"[smtp] ca_file {self.settings.ca_file}: nicht lesbar ({exc}).") \
                from None

    def connect(self) -> None:
        s = self.settings
        where = f"{s.host}:{s.port}"
        smtp: _DeadlineMixin
        try:
            if s.security == "ssl":
                smtp = _SMTPS(timeout=s.timeout, context=self._tls())
            else:
                smtp = _SMTP(timeout=s.timeout)
            # a server greets at once; one that stays silent waits for TLS (security =
            # "starttls" on an implicit-TLS port): say so after seconds, not a minute
            smtp.reply_timeout = min(s.timeout, GREETING_SECONDS)
            self.smtp = smtp  # from here on, abort() can cut it
            try:
                smtp.connect(s.host, s.port)
            except smtplib.SMTPServerDisconnected:
                if not smtp.timed_out or s.security != "starttls":
                    raise  # the usual words: a disconnect, or a plain server's silence
                raise SmtpError(
                    f"{where} hat sich nach {smtp.reply_timeout:g} s nicht gemeldet (keine "
                    "Begrüßung). Vielleicht erwartet der Server sofort TLS: dann security = "
                    "\"ssl\" (üblich auf Port 465); sonst Firewall oder falscher Port?"
                    ) from None
            smtp.reply_timeout = s.timeout
            # Commands are small writes that wait for a reply: without this, Nagle's
            # algorithm and delayed ACKs stall some of them for tens of milliseconds.
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SmtpError(f"{where} bietet kein STARTTLS an; unverschlüsselt sendet "
                                    "formtool nicht (security = \"ssl\" versuchen?).")
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if s.user:
                if not smtp.has_extn("auth"):
                    raise SmtpError(f"{where} bietet keine Anmeldung (AUTH) an: ist das der "
                                    "Mailserver für den Versand (SMTP-Ausgangsserver) Ihres "
                                    "Anbieters, mit dem richtigen Port? Ein Server ohne "
                                    "Anmeldung braucht in formtool.toml user = \"\".")
                if s.auth == "oauth2":
                    if self.password is None or isinstance(self.password, str):
                        raise SmtpError("[smtp] auth = \"oauth2\", aber keine Anmeldung "
                                        "vorhanden: bitte „formtool mail login“ ausführen.")
                    _oauth_login(smtp, s.user, self.password, s.host, s.port)
                else:
                    _login(smtp, s.user, self.password if isinstance(self.password, str)
                           else "")
        except FormtoolError:  # SmtpError, or the sign-in (OAuthError) that cannot go on
            self.close()
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            raise SmtpError(login_refused(s, _reply(exc.smtp_code, exc.smtp_error))
                            ) from None
        except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
            self.close()
            raise SmtpError(connect_problem(s, exc), detail=f"{type(exc).__name__}: {exc}"
                            ) from None
        self.sent_on_connection = 0

    def abort(self) -> None:
        """Cut the connection from another thread (Ctrl-C): a waiting read ends at once."""
        smtp = self.smtp
        if smtp is not None:
            smtp.cut()

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            if smtp.sock is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError, ValueError):
                    smtp.quit()
            with contextlib.suppress(OSError):
                smtp.close()

    def send(self, sender: str, built: Built, before_data: Callable[[], None],
             while_waiting: Callable[[], None] = lambda: None) -> str:
        """MAIL, RCPT, (journal), DATA. Returns the server's reply to DATA.

        ``while_waiting`` runs once the message is out and the server is taking it
        (the longest wait of the exchange): the caller builds its next message then.
        """
        if self.smtp is not None and (
                self.sent_on_connection >= self.settings.max_per_connection
                or (self.settings.auth == "oauth2" and not isinstance(self.password, str)
                    and self.password is not None and self.password.expiring())):
            self.close()  # a new connection, with a fresh access token
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
            raise Transient(_reply(code, text))
        raise Permanent(_reply(code, text))


