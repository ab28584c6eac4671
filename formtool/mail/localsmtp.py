"""The demo's mail server on this machine (aiosmtpd), plain and small.

It listens on a free loopback port, takes every message and keeps it (with
``store_dir``, each as an ``.eml`` file). Nothing leaves the machine. (The tests'
peer with TLS, AUTH and delays is ``tests/smtpserver.py``.)
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...] = ()

    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=default)


class Mailbox:
    """The aiosmtpd handler: accepts everything and keeps it."""

    def __init__(self, store_dir: Path | None = None) -> None:
        self.store_dir = store_dir
        self.received: list[Received] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        item = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos),
                        bytes(envelope.original_content or b""), tuple(envelope.mail_options))
        with self.lock:
            self.received.append(item)
            number = len(self.received)
        if self.store_dir is not None:
            self.store_dir.mkdir(parents=True, exist_ok=True)
            (self.store_dir / f"{number:05d}.eml").write_bytes(item.data)
        return f"250 2.0.0 Ok: queued as {number}"


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# aiosmtpd warns about its own deprecated attribute on every AUTH; keep its errors only.
logging.getLogger("mail.log").setLevel(logging.ERROR)


class DemoSmtpServer:
    """``with DemoSmtpServer(Mailbox(folder)) as server:``; ``server.port`` is where it is."""

    def __init__(self, handler: Mailbox) -> None:
        self.handler = handler
        self.port = free_port()
        self.controller = Controller(handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> DemoSmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
