"""The tests' SMTP peer: aiosmtpd on a free loopback port, with STARTTLS or implicit
TLS, AUTH, and a delay before every reply (a WAN round trip), on cue.

(The demo's embedded server, ``formtool.mail.localsmtp``, is plain and small.)
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import warnings
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from formtool.mail.localsmtp import Mailbox, Received, free_port

__all__ = ["LocalSmtpServer", "Mailbox", "Received"]


class _Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.user
              and auth_data.password == self.password)
        return AuthResult(success=ok, handled=False)  # aiosmtpd then answers 535


class _SlowSMTP(SMTP):
    """Waits before every reply, like a server one WAN round trip away."""

    delay = 0.0

    async def push(self, status: Any) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        await super().push(status)


class _Controller(Controller):
    def __init__(self, handler: Any, delay: float, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.delay = delay

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # With implicit TLS aiosmtpd warns of AUTH without TLS: it cannot see the socket's.
            warnings.simplefilter("ignore", UserWarning)
            server = _SlowSMTP(self.handler, **self.SMTP_kwargs)
        server.delay = self.delay
        return server


# aiosmtpd warns about its own deprecated attribute on every AUTH; keep its errors only.
logging.getLogger("mail.log").setLevel(logging.ERROR)


class LocalSmtpServer:
    """Start with ``with LocalSmtpServer(...) as server:``; ``server.port`` is where it is."""

    def __init__(self, handler: Any | None = None, *, security: str = "none",
                 certfile: Path | None = None, keyfile: Path | None = None,
                 auth: tuple[str, str] | None = None, delay: float = 0.0,
                 offer_auth: bool = True) -> None:
        """``offer_auth=False``: a plain server that does not offer AUTH at all (as a
        relay of a provider's network does)."""
        self.handler = handler if handler is not None else Mailbox()
        self.security = security
        self.port = free_port()
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self.port}
        if security != "none":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(certfile), str(keyfile))
            if security == "ssl":
                kwargs["ssl_context"] = context
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        if auth is not None:
            # aiosmtpd cannot tell an implicit-TLS connection is encrypted: only
            # STARTTLS can be required before AUTH.
            kwargs.update(authenticator=_Authenticator(*auth), auth_required=True,
                          auth_require_tls=security == "starttls")
        if not offer_auth:  # aiosmtpd hides AUTH only before TLS, when TLS is required for it
            kwargs.update(auth_require_tls=True)
        self.controller = _Controller(self.handler, delay, **kwargs)

    def __enter__(self) -> LocalSmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
