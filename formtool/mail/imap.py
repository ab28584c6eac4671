"""The coordinator's mailbox over IMAP: TLS verified (no plain fallback), German errors,
messages fetched in batches, never marked as read, handled ones moved away.

Uses IMAPClient: it parses IMAP's responses (FETCH items, UIDs, folder names in
modified UTF-7) that imaplib leaves as raw bytes to every caller, and is well kept.
"""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from formtool.errors import FormtoolError
from formtool.mail.inbound import MAX_MESSAGE, Big
from formtool.mail.oauth import Secret
from formtool.workspace import ImapSettings

T = TypeVar("T")
IMAPClientAbort = imaplib.IMAP4.abort  # IMAPClient's errors are imaplib's: a broken connection
BATCH = 50  # messages per FETCH: one round trip for many
# Where a Sent folder is usually found when the server does not flag it (RFC 6154 \Sent):
# the names of German and English mail programs and providers, compared case-insensitively.
SENT_NAMES = ("gesendet", "sent", "gesendete elemente", "gesendete objekte",
              "gesendete nachrichten", "sent items", "sent messages", "sent mail")


class ImapError(FormtoolError):
    """The mailbox cannot be reached or refuses."""


def _login(client: Any, user: str, password: str, *, token: bool = False) -> None:
    """LOGIN carries ASCII only (imaplib refuses more); German passwords often hold
    umlauts, so AUTHENTICATE PLAIN (UTF-8, RFC 4616) is used where the server offers it.
    With ``token`` the password is an OAuth access token: XOAUTH2, else OAUTHBEARER."""
    if token:
        if client.has_capability("AUTH=XOAUTH2") or not client.has_capability(
                "AUTH=OAUTHBEARER"):
            client.oauth2_login(user, password)
        else:
            client.oauthbearer_login(user, password)
        return
    if (user + password).isascii() or not client.has_capability("AUTH=PLAIN"):
        client.login(user, password)
    else:
        client.plain_login(user, password)


class Connection:
    """``with Connection(settings, password) as box:`` – logged in.

    Every command has a deadline for its whole answer (``timeout``; a FETCH of message
    bodies more by their size): a server that stalls, or dribbles a byte now and then so
    that no single read times out, is cut off with a German ImapError, as is one whose
    answer makes no sense.
    """

    MIN_RATE = 50_000  # bytes per second a FETCH is given at least

    def __init__(self, settings: ImapSettings, password: Secret) -> None:
        self.settings = settings
        self.password = password
        self._token = ""
        self.client: Any = None
        self.where = f"{settings.host}:{settings.port}"

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file or None)

    def __enter__(self) -> Connection:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _within(self, seconds: float, what: str, call: Callable[[], T]) -> T:
        """``call()``, in a helper thread so that its whole answer has a deadline; when it
        is overdue, the connection is cut (the thread then ends on the closed socket)."""
        outcome: list[T] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                outcome.append(call())
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)

        worker = threading.Thread(target=run, daemon=True, name="imap")
        worker.start()
        worker.join(seconds)
        if worker.is_alive():
            self._cut()
            raise ImapError(f"Postfach {self.where} antwortet nicht rechtzeitig: {what} ohne "
                            f"vollständige Antwort nach {seconds:.0f} s. Bitte später erneut "
                            "versuchen.")
        if failure:
            raise failure[0]
        return outcome[0]

    def _cut(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.socket().shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                client.socket().close()

    def _do(self, what: str, call: Callable[[], T], *, seconds: float | None = None) -> T:
        """A command after login: deadline, and a German ImapError for a broken
        connection or an answer that makes no sense (a refusal the caller expects is
        caught there, before this)."""
        from imapclient.exceptions import IMAPClientError

        if self.client is None:
            raise ImapError(f"Die Verbindung zum Postfach {self.where} ist nicht mehr offen.")
        try:
            return self._within(seconds or self.settings.timeout, what, call)
        except (imaplib.IMAP4.abort, OSError) as exc:
            if isinstance(exc, TimeoutError) or "timed out" in str(exc):
                raise ImapError(f"Postfach {self.where} antwortet nicht rechtzeitig: {what} "
                                f"ohne Antwort nach {self.settings.timeout:g} s. Bitte später "
                                "erneut versuchen.") from None
            if "unexpected response" in str(exc):
                raise ImapError(f"Postfach {self.where} antwortet unverständlich ({what}): "
                                "ist das ein IMAP-Server? host und port prüfen.",
                                detail=str(exc)) from None
            raise ImapError(f"Verbindung zum Postfach {self.where} abgebrochen ({what}); "
                            "bitte erneut versuchen.", detail=str(exc)) from None
        except IMAPClientError as exc:
            raise ImapError(f"Postfach {self.where} lehnt ab oder antwortet unverständlich "
                            f"({what}).", detail=str(exc)) from None
        except (ValueError, KeyError, IndexError, TypeError, UnicodeError) as exc:
            raise ImapError(f"Postfach {self.where} antwortet unverständlich ({what}).",
                            detail=f"{type(exc).__name__}: {exc}") from None

    def _connect(self) -> Any:
        from imapclient import IMAPClient

        s = self.settings
        client = IMAPClient(s.host, port=s.port, ssl=s.security == "ssl",
                            ssl_context=self._context(), timeout=s.timeout)
        try:
            if s.security == "starttls":
                client.starttls(self._context())
            if self._token:
                _login(client, s.user, self._token, token=True)
            else:
                _login(client, s.user, self.password if isinstance(self.password, str)
                       else "")
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        return client

    def open(self) -> Connection:
        """Connect and log in; ImapError says in German what went wrong."""
        from imapclient.exceptions import IMAPClientError, LoginError

        s = self.settings
        where = self.where
        if not s.host:
            raise ImapError("Kein Postfach eingestellt: bitte in formtool.toml unter [imap] "
                            "host eintragen (oder --from mit exportierten E-Mails nutzen).")
        if s.security == "none" and s.host not in ("127.0.0.1", "localhost", "::1"):
            raise ImapError("[imap] security = \"none\" würde das Passwort unverschlüsselt "
                            "senden; das geht nur für einen Server auf diesem Rechner.")
        if s.auth == "oauth2":
            if self.password is None or isinstance(self.password, str):
                raise ImapError("[imap] auth = \"oauth2\", aber keine Anmeldung vorhanden: "
                                "bitte „formtool mail login“ ausführen.")
            self._token = self.password.token()  # SignInExpired: a new login is needed
        try:
            # connecting, TLS and login together: a greeting dribbled byte by byte too
            self.client = self._within(s.timeout, "Anmeldung", self._connect)
        except LoginError:
            if self._token:
                raise ImapError(
                    f"Das Postfach {where} lehnt die Anmeldung von {s.user} ab (OAuth). "
                    "Prüfen: ist user die Adresse des angemeldeten Kontos, ist IMAP für das "
                    "Postfach eingeschaltet (Microsoft 365 Admin Center → Benutzer → E-Mail "
                    "→ E-Mail-Apps verwalten) und hat die App die Berechtigung "
                    "IMAP.AccessAsUser.All? Danach „formtool mail login“.") from None
            raise ImapError(f"Anmeldung am Postfach {where} als {s.user} abgelehnt: Benutzername "
                            "und Passwort prüfen (bei web.de/GMX: IMAP in den Einstellungen "
                            "erst erlauben; bei Gmail: App-Passwort).") from None
        except ssl.SSLCertVerificationError:
            raise ImapError(f"{where}: Zertifikat nicht vertrauenswürdig. Stimmt der "
                            "Servername? Bei einem eigenen Server: [imap] ca_file setzen.") \
                from None
        except ssl.SSLError:
            raise ImapError(f"{where}: die verschlüsselte Verbindung kam nicht zustande. "
                            "Üblich: Port 993 mit security = \"ssl\", 143 mit \"starttls\".") \
                from None
        except socket.gaierror:
            raise ImapError(f"Postfach-Server „{s.host}“ nicht gefunden.") from None
        except ConnectionRefusedError:
            raise ImapError(f"Unter {where} nimmt kein Postfach-Server Verbindungen an "
                            "(abgelehnt): host und port prüfen.") from None
        except TimeoutError:
            raise ImapError(f"{where} antwortet nicht rechtzeitig.") from None
        except (IMAPClientError, imaplib.IMAP4.abort, OSError, ValueError) as exc:
            raise ImapError(f"Postfach {where} nicht erreichbar oder antwortet unverständlich "
                            f"({type(exc).__name__}).", detail=str(exc)) from None
        return self

    def close(self) -> None:
        client = self.client
        if client is None:
            return
        try:
            self._within(min(self.settings.timeout, 10.0), "Abmelden", client.logout)
        except Exception:  # the server is gone or confused: just close the socket
            with contextlib.suppress(Exception):
                client.shutdown()
        finally:
            self.client = None

    def select(self, folder: str) -> int:
        """Open ``folder``; its UIDVALIDITY."""
        from imapclient.exceptions import IMAPClientError

        def call() -> Any:
            try:
                return self.client.select_folder(folder)
            except IMAPClientError as exc:
                if isinstance(exc, IMAPClientAbort):
                    raise
                raise ImapError(f"Ordner „{folder}“ im Postfach lässt sich nicht öffnen: gibt "
                                "es ihn? ([imap] folder prüfen)", detail=str(exc)) from None

        info = self._do(f"Ordner „{folder}“ öffnen", call)
        return int(info.get(b"UIDVALIDITY", 0))

    def uids_after(self, last: int) -> list[int]:
        criteria = ["UID", f"{last + 1}:*"] if last else ["ALL"]
        uids = self._do("Suche nach neuen E-Mails", lambda: self.client.search(criteria))
        return sorted(int(u) for u in uids if int(u) > last)  # "n:*" gives the last when none newer

    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes | Big]]:
        """Each message's bytes, in batches; of one over MAX_MESSAGE only its head.
        BODY.PEEK: nothing is marked as read."""
        for start in range(0, len(uids), BATCH):
            batch = uids[start:start + BATCH]
            answer = self._do("Größen abfragen", partial(self.client.fetch, batch,
                                                         ["RFC822.SIZE"]))
            sizes = {int(u): int(d.get(b"RFC822.SIZE", 0)) for u, d in answer.items()}
            small = [u for u in batch if sizes.get(u, 0) <= MAX_MESSAGE]
            big = [u for u in batch if u in sizes and u not in small]
            expected = sum(sizes.get(u, 0) for u in small)
            bodies = self._do("E-Mails abrufen", partial(self.client.fetch, small,
                                                         ["BODY.PEEK[]"]),
                              seconds=self.settings.timeout + expected / self.MIN_RATE
                              ) if small else {}
            heads = self._do("Kopfzeilen abrufen", partial(self.client.fetch, big,
                                                           ["BODY.PEEK[HEADER]"])
                             ) if big else {}
            for uid in batch:
                data = bodies.get(uid, {}).get(b"BODY[]")
                head = heads.get(uid, {}).get(b"BODY[HEADER]")
                if isinstance(data, bytes):
                    yield uid, data
                elif uid in sizes:  # too big, or gone meanwhile: its head, if any
                    yield uid, Big(head if isinstance(head, bytes) else b"", sizes[uid])

    def server_folder(self, name: str) -> str:
        """``name`` ("formtool/erledigt": "/" between levels) as this server spells it: its
        hierarchy delimiter, under its personal namespace's prefix ("INBOX." on Courier
        and many shared hosts), where those differ."""
        def ask() -> tuple[str, str]:
            if self.client.has_capability("NAMESPACE"):
                personal = self.client.namespace().personal
                if personal:
                    return _plain(personal[0][0]), _plain(personal[0][1])
            listed = self.client.list_folders("", "")
            return "", _plain(listed[0][1]) if listed else "/"

        prefix, delimiter = self._do("Ordnerstruktur abfragen", ask)
        spelled = name.replace("/", delimiter or "-") if delimiter != "/" else name
        if prefix and name.upper() != "INBOX" and not spelled.startswith(prefix):
            spelled = prefix + spelled
        return spelled

    def move(self, uids: list[int], folder: str) -> None:
        """Move handled messages out of the way (created if missing)."""
        client = self.client
        folder = self.server_folder(folder)

        def call() -> None:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            if client.has_capability("MOVE"):
                client.move(uids, folder)
            else:
                client.copy(uids, folder)
                client.delete_messages(uids)
                if client.has_capability("UIDPLUS"):
                    client.expunge(uids)  # only these, not others marked deleted
                else:
                    client.expunge()

        self._do(f"nach „{folder}“ verschieben", call,
                 seconds=self.settings.timeout + len(uids) / 100)

    def sent_folder(self, configured: str = "") -> str:
        """The folder for copies of sent mail: ``configured``, else the one the server flags
        \\Sent, else one with a usual name (top level or under INBOX)."""
        folders = self._do("Ordner auflisten", lambda: self.client.list_folders())
        names = [str(name) for _, _, name in folders]
        if configured:
            if configured not in names:
                raise ImapError(f"Ordner „{configured}“ ([imap] sent_folder) gibt es im Postfach "
                                f"nicht; vorhanden: {_listing(names)}.")
            return configured
        for flags, _, name in folders:
            if any(flag.lower() == b"\\sent" for flag in flags):
                return str(name)
        by_leaf: dict[str, str] = {}
        for _, delimiter, name in folders:
            sep = delimiter.decode() if isinstance(delimiter, bytes) else (delimiter or "/")
            leaf = str(name).rsplit(sep, 1)[-1].casefold()
            by_leaf.setdefault(leaf, str(name))
        for usual in SENT_NAMES:
            if usual in by_leaf:
                return by_leaf[usual]
        raise ImapError("Im Postfach ist kein Ordner für gesendete E-Mails zu finden; bitte "
                        "[imap] sent_folder setzen (vorhanden: " + _listing(names) + ") oder "
                        "sent_copy = false.")

    def has_message(self, message_id: str) -> bool:
        """Whether the selected folder already holds a message with this Message-ID."""
        found = self._do("Suche nach der Message-ID",
                         lambda: self.client.search(["HEADER", "Message-ID", message_id]))
        return bool(found)

    def append(self, folder: str, data: bytes, when: datetime | None) -> None:
        """Put ``data`` into ``folder`` byte for byte, marked as read (it is one's own)."""
        from imapclient.exceptions import IMAPClientError

        def call() -> None:
            try:
                self.client.append(folder, data, flags=(b"\\Seen",), msg_time=when)
            except IMAPClientError as exc:
                if isinstance(exc, IMAPClientAbort):
                    raise  # the connection broke: _do says so
                raise ImapError(f"Der Server {self.settings.host} lehnte das Ablegen in "
                                f"„{folder}“ ab (Postfach voll?).", detail=str(exc)) from None

        self._do(f"Ablegen in „{folder}“", call,
                 seconds=self.settings.timeout + len(data) / self.MIN_RATE)


def _plain(value: object) -> str:
    """A namespace prefix or delimiter as text (IMAPClient gives str, bytes or None)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value) if value is not None else ""


def _listing(names: list[str]) -> str:
    shown = ", ".join(f"„{n}“" for n in names[:12])
    return shown + (f" und {len(names) - 12} weitere" if len(names) > 12 else "")
