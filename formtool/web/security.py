"""The page's guard: a local server is reachable by every web page the user visits.

An ASGI middleware in front of every route:
- ``Host`` must be ``127.0.0.1:PORT`` or ``localhost:PORT`` (DNS rebinding);
- the start token (``?token=``, ≥ 128 bit, printed by ``formtool web``) is exchanged for
  an ``HttpOnly; SameSite=Strict`` cookie and dropped from the address by a redirect;
  without the cookie: 403 and a page that says how to open formtool, no data;
- a POST needs the page's own ``Origin`` (``null`` or a foreign one: 403) and, checked
  by the handler when it reads the form (``checked_form``), the CSRF token;
- every answer carries CSP, nosniff, ``Referrer-Policy: same-origin``, no-store.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

COOKIE = "formtool_sitzung"
# Inline styles are allowed (a mail's HTML part in the preview has them); inline scripts
# never are.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; "
       "frame-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
FORBIDDEN = """<!doctype html><html lang="de"><head><meta charset="utf-8">
<title>formtool – kein Zugang</title></head><body><main>
<h1>Kein Zugang</h1><p>{why}</p>
<p>Öffnen Sie formtool über den Link, den <code>formtool web</code> im Fenster anzeigt
(er beginnt mit <code>http://127.0.0.1:</code> und enthält <code>?token=</code>), oder
starten Sie <code>formtool web</code> neu.</p></main></body></html>"""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Keys:
    """The secrets of one server run: start token, session cookie, CSRF token."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(24)  # 192 bit
        self.session = secrets.token_urlsafe(32)
        self.csrf = secrets.token_urlsafe(32)

    def csrf_ok(self, value: str) -> bool:
        return hmac.compare_digest(value.encode(), self.csrf.encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _cookie(scope: Scope) -> str:
    raw = _header(scope, b"cookie") or ""
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == COOKIE:
            return value
    return ""


class Guard:
    """The middleware; ``port`` is filled in once the server has bound its socket."""

    def __init__(self, app: App, keys: Keys) -> None:
        self.app = app
        self.keys = keys
        self.port = 0

    def _origins(self) -> set[str]:
        return {f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"}

    def _hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in HEADERS if h[0] not in names]
            await send(message)

        host = _header(scope, b"host") or ""
        if host not in self._hosts():
            await _refuse(with_headers, "Diese Adresse gehört nicht zu formtool "
                          "(unbekannter Host).")
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        token = query.pop("token", None)
        if token is not None and scope["method"] == "GET":
            if not hmac.compare_digest(token.encode(), self.keys.token.encode()):
                await _refuse(with_headers, "Der Link ist nicht (mehr) gültig.")
                return
            target = scope.get("path", "/") + (f"?{urlencode(query)}" if query else "")
            await with_headers({"type": "http.response.start", "status": 303, "headers": [
                (b"location", target.encode()),
                (b"set-cookie", f"{COOKIE}={self.keys.session}; HttpOnly; SameSite=Strict; "
                                f"Path=/".encode())]})
            await with_headers({"type": "http.response.body", "body": b""})
            return
        if not hmac.compare_digest(_cookie(scope).encode(), self.keys.session.encode()):
            await _refuse(with_headers, "Diese Seite ist nur im Browser erreichbar, in dem "
                          "formtool gestartet wurde.")
            return
        if scope["method"] not in ("GET", "HEAD"):
            origin = _header(scope, b"origin")
            if origin not in self._origins():
                await _refuse(with_headers, "Die Anfrage kam nicht von der Seite von formtool "
                              "(fremder Ursprung); nichts wurde geändert.")
                return
        await self.app(scope, receive, with_headers)


async def _refuse(send: Send, why: str) -> None:
    from markupsafe import escape

    body = FORBIDDEN.format(why=escape(why)).encode()
    await send({"type": "http.response.start", "status": 403, "headers": [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
