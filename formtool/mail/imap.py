"""The coordinator's mailbox over IMAP: TLS verified (no plain fallback), German errors,
messages fetched in batches, never marked as read, handled ones moved away.

Uses IMAPClient: it parses IMAP's responses (FETCH items, UIDs, folder names in
modified UTF-7) that imaplib leaves as raw bytes to every caller, and is well kept.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from formtool.errors import FormtoolError
from formtool.mail.inbound import MAX_MESSAGE, Big
from formtool.workspace import ImapSettings

BATCH = 50  # messages per FETCH: one round trip for many
# Where a Sent folder is usually found when the server does not flag it (RFC 6154 \Sent):
# the names of German and English mail programs and providers, compared case-insensitively.
SENT_NAMES = ("gesendet", "sent", "gesendete elemente", "gesendete objekte",
              "gesendete nachrichten", "sent items", "sent messages", "sent mail")


class ImapError(FormtoolError):
    """The mailbox cannot be reached or refuses."""


def _login(client: Any, user: str, password: str) -> None:
    """LOGIN carries ASCII only (imaplib refuses more); German passwords often hold
    umlauts, so AUTHENTICATE PLAIN (UTF-8, RFC 4616) is used where the server offers it."""
    if (user + password).isascii() or not client.has_capability("AUTH=PLAIN"):
        client.login(user, password)
    else:
        client.plain_login(user, password)


class Connection:
    """``with Connection(settings, password) as box:`` – logged in."""

    def __init__(self, settings: ImapSettings, password: str) -> None:
        self.settings = settings
        self.password = password
        self.client: Any = None

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file or None)

    def __enter__(self) -> Connection:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> Connection:
        """Connect and log in; ImapError says in German what went wrong."""
        from imapclient import IMAPClient
        from imapclient.exceptions import IMAPClientError, LoginError

        s = self.settings
        where = f"{s.host}:{s.port}"
        if not s.host:
            raise ImapError("Kein Postfach eingestellt: bitte in formtool.toml unter [imap] "
                            "host eintragen (oder --from mit exportierten E-Mails nutzen).")
        if s.security == "none" and s.host not in ("127.0.0.1", "localhost", "::1"):
            raise ImapError("[imap] security = \"none\" würde das Passwort unverschlüsselt "
                            "senden; das geht nur für einen Server auf diesem Rechner.")
        try:
            client = IMAPClient(s.host, port=s.port, ssl=s.security == "ssl",
                                ssl_context=self._context(), timeout=s.timeout)
            if s.security == "starttls":
                client.starttls(self._context())
            _login(client, s.user, self.password)
        except LoginError:
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
        except (IMAPClientError, OSError) as exc:
            raise ImapError(f"Postfach {where} nicht erreichbar ({type(exc).__name__}).",
                            detail=str(exc)) from None
        self.client = client
        return self

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except Exception:  # the server is gone or confused: just close the socket
                with contextlib.suppress(Exception):
                    self.client.shutdown()
            self.client = None

    def select(self, folder: str) -> int:
        """Open ``folder``; its UIDVALIDITY."""
        try:
            info = self.client.select_folder(folder)
        except Exception as exc:
            raise ImapError(f"Ordner „{folder}“ im Postfach nicht gefunden ([imap] folder).",
                            detail=str(exc)) from None
        return int(info.get(b"UIDVALIDITY", 0))

    def uids_after(self, last: int) -> list[int]:
        uids = self.client.search(["UID", f"{last + 1}:*"]) if last else self.client.search(
            ["ALL"])
        return sorted(u for u in uids if u > last)  # "n:*" returns the last one when none newer

    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes | Big]]:
        """Each message's bytes, in batches; of one over MAX_MESSAGE only its head.
        BODY.PEEK: nothing is marked as read."""
        for start in range(0, len(uids), BATCH):
            batch = uids[start:start + BATCH]
            sizes = {u: int(d.get(b"RFC822.SIZE", 0))
                     for u, d in self.client.fetch(batch, ["RFC822.SIZE"]).items()}
            small = [u for u in batch if sizes.get(u, 0) <= MAX_MESSAGE]
            big = [u for u in batch if u in sizes and u not in small]
            bodies = self.client.fetch(small, ["BODY.PEEK[]"]) if small else {}
            heads = self.client.fetch(big, ["BODY.PEEK[HEADER]"]) if big else {}
            for uid in batch:
                data = bodies.get(uid, {}).get(b"BODY[]")
                head = heads.get(uid, {}).get(b"BODY[HEADER]")
                if isinstance(data, bytes):
                    yield uid, data
                elif uid in sizes:  # too big, or gone meanwhile: its head, if any
                    yield uid, Big(head if isinstance(head, bytes) else b"", sizes[uid])

    def move(self, uids: list[int], folder: str) -> None:
        """Move handled messages out of the way (created if missing)."""
        if not self.client.folder_exists(folder):
            self.client.create_folder(folder)
        if self.client.has_capability("MOVE"):
            self.client.move(uids, folder)
        else:
            self.client.copy(uids, folder)
            self.client.delete_messages(uids)
            if self.client.has_capability("UIDPLUS"):
                self.client.expunge(uids)  # only these, not others marked deleted
            else:
                self.client.expunge()

    def sent_folder(self, configured: str = "") -> str:
        """The folder for copies of sent mail: ``configured``, else the one the server flags
        \\Sent, else one with a usual name (top level or under INBOX)."""
        folders = self.client.list_folders()
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
        return bool(self.client.search(["HEADER", "Message-ID", message_id]))

    def append(self, folder: str, data: bytes, when: datetime | None) -> None:
        """Put ``data`` into ``folder`` byte for byte, marked as read (it is one's own)."""
        import imaplib

        try:
            self.client.append(folder, data, flags=(b"\\Seen",), msg_time=when)
        except imaplib.IMAP4.abort:
            raise  # the connection broke: the caller says so
        except imaplib.IMAP4.error as exc:  # a NO or BAD
            raise ImapError(f"Der Server {self.settings.host} lehnte das Ablegen in „{folder}“ "
                            "ab (Postfach voll?).", detail=str(exc)) from None


def _listing(names: list[str]) -> str:
    shown = ", ".join(f"„{n}“" for n in names[:12])
    return shown + (f" und {len(names) - 12} weitere" if len(names) > 12 else "")
