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

__all__ = ["LocalSmtpServer", "Mailbox", "OAuthMailbox", "Received"]


class OAuthMailbox(Mailbox):
    """A mailbox that takes AUTH XOAUTH2 only, with an access token the tests' provider
    issued and that is still valid – at AUTH and again at every MAIL FROM (a token that
    ran out under an open connection is refused: 451, and counted)."""

    def __init__(self, provider: Any, *, after_message: Any = None,
                 refuse_reply: str = "") -> None:
        super().__init__()
        self.provider = provider
        self.auths: list[tuple[str, bool]] = []  # (user, accepted)
        self.expired_uses = 0
        self.after_message = after_message  # called with the count after each message
        self.refuse_reply = refuse_reply  # e.g. Microsoft's "535 5.7.139 …" for everyone

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        import base64
        import json

        if self.refuse_reply:
            return AuthResult(success=False, handled=False, message=self.refuse_reply)
        blob = args[1] if len(args) > 1 else ""
        if not blob:
            raw = await server.challenge_auth("")
            blob = base64.b64encode(raw if isinstance(raw, bytes) else b"").decode()
        text = base64.b64decode(blob).decode()
        fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        ok = self.provider.valid(token) and user == self.provider.user
        self.auths.append((user, ok))
        if ok:
            return AuthResult(success=True, auth_data=token)
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False,
                          message="535 5.7.3 Authentication unsuccessful")

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        """RFC 7628: "n,a=USER,^Ahost=…^Aport=…^Aauth=Bearer TOKEN^A^A"."""
        import base64

        text = base64.b64decode(args[1] if len(args) > 1 else "").decode()
        head, _, rest = text.partition("\x01")
        user = head.split("a=", 1)[1].rstrip(",").replace("=2C", ",").replace("=3D", "=") \
            if "a=" in head else ""
        fields = dict(part.split("=", 1) for part in rest.split("\x01") if "=" in part)
        token = fields.get("auth", "").removeprefix("Bearer ")
        ok = self.provider.valid(token) and user == self.provider.user and \
            fields.get("host") == "127.0.0.1"
        self.auths.append((user, ok))
        if ok:
            return AuthResult(success=True, auth_data=token)
        return AuthResult(success=False, handled=False,
                          message="535 5.7.3 Authentication unsuccessful")

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if not self.provider.valid(str(session.auth_data or "")):
            self.expired_uses += 1
            return "451 4.7.0 Token expired"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if self.after_message is not None:
            self.after_message(len(self.received))
        return reply


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
                 offer_auth: bool = True, oauth_only: bool = False,
                 exclude: tuple[str, ...] = ("OAUTHBEARER",)) -> None:
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
        if oauth_only:  # the handler's auth_XOAUTH2, no password mechanism
            kwargs.update(auth_required=True, auth_require_tls=security == "starttls",
                          auth_exclude_mechanism=["PLAIN", "LOGIN", *exclude],
                          authenticator=_Authenticator("", "\x00never"))
        if not offer_auth:  # aiosmtpd hides AUTH only before TLS, when TLS is required for it
            kwargs.update(auth_require_tls=True)
        self.controller = _Controller(self.handler, delay, **kwargs)

    def __enter__(self) -> LocalSmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
