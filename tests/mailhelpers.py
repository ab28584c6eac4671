"""Test peers for mail: certificates, an in-memory keyring, an SMTP server that misbehaves."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

import keyring.backend
from aiosmtpd.smtp import SMTP, Envelope, Session
from smtpserver import Mailbox

USER, PASSWORD = "koordination@buendnis.example", "Geheim-Passw0rt-äöü"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "formtool test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


class MemoryKeyring(keyring.backend.KeyringBackend):
    """Never the real OS keyring in tests."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)


class FaultyMailbox(Mailbox):
    """A mailbox that answers chosen recipients with errors or drops the connection.

    ``refuse``: address -> reply at RCPT (e.g. "550 5.1.1 …");
    ``defer``: address -> how many times DATA gets "451 4.3.0 …" before it is taken;
    ``drop``: addresses whose RCPT closes the connection (once each);
    ``hold``: addresses whose message is stored, but the 250 comes only after
    ``hold_seconds`` (a window to kill the client in).
    """

    def __init__(self) -> None:
        super().__init__()
        self.refuse: dict[str, str] = {}
        self.defer: dict[str, int] = {}
        self.drop: set[str] = set()
        self.peers: set[object] = set()
        self.hold: set[str] = set()
        self.hold_seconds = 0.0

    @property
    def connections(self) -> int:
        """How many client connections sent mail (each has its own client port)."""
        return len(self.peers)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        self.peers.add(session.peer)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.drop:
            self.drop.discard(address)
            server.transport.close()  # type: ignore[union-attr]
            return "421 4.4.2 Verbindung getrennt"
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> Any:
        for rcpt in envelope.rcpt_tos:
            if self.defer.get(rcpt, 0) > 0:
                self.defer[rcpt] -= 1
                return "451 4.3.0 Bitte später erneut versuchen"
        reply = await super().handle_DATA(server, session, envelope)
        if self.hold & set(envelope.rcpt_tos):
            await asyncio.sleep(self.hold_seconds)
        return reply
