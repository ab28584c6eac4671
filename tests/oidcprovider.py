"""The tests' OpenID provider: a real HTTPS server on loopback (certificate of the tests'
private CA) with discovery, device authorization (RFC 8628), authorization code with
PKCE, token and refresh (rotating refresh tokens, access tokens that live seconds),
and introspection (RFC 7662) for Dovecot's oauth2 passdb.

What the "user" does in the browser is scripted: ``device_script`` says what each poll
of the token endpoint gets before the sign-in is approved ("pending", "slow_down",
"approve", "deny", "expire").
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

CLIENT_ID = "formtool-test-client"


@dataclass
class Issued:
    user: str
    expires_at: float


@dataclass
class Provider:
    certificate: tuple[Path, Path]
    user: str = "koordination@buendnis.example"
    access_lifetime: float = 3600.0
    device_script: list[str] = field(default_factory=lambda: ["pending", "approve"])
    interval: int = 1
    rotate: bool = True
    scopes_granted: str = "smtp imap offline_access"
    refresh_token_length: int = 1500  # longer than one Windows credential entry
    # what happened
    access: dict[str, Issued] = field(default_factory=dict)
    refresh: dict[str, str] = field(default_factory=dict)  # live refresh token -> user
    polls: list[float] = field(default_factory=list)
    refreshes: int = 0
    checks: list[tuple[str, bool]] = field(default_factory=list)  # (token, valid) at use
    ever: list[str] = field(default_factory=list)  # every token issued, revoked ones too
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._devices: dict[str, dict[str, Any]] = {}
        self._codes: dict[str, dict[str, str]] = {}
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any] | None = None, *,
                       location: str = "") -> None:
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._reply(200, provider.discovery())
                elif url.path == "/authorize":
                    status, location = provider.authorize(dict(parse_qsl(url.query)))
                    self._reply(status, location=location)
                else:
                    self._reply(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                path = urlsplit(self.path).path
                if path == "/device":
                    self._reply(*provider.device(form))
                elif path == "/token":
                    self._reply(*provider.token(form))
                elif path == "/introspect":
                    self._reply(200, provider.introspect(form.get("token", "")))
                else:
                    self._reply(404, {"error": "not_found"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.certificate[0]), str(self.certificate[1]))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.issuer = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Provider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- endpoints -------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "token_endpoint": f"{self.issuer}/token",
                "device_authorization_endpoint": f"{self.issuer}/device",
                "authorization_endpoint": f"{self.issuer}/authorize",
                "introspection_endpoint": f"{self.issuer}/introspect",
                "grant_types_supported": ["authorization_code", "refresh_token",
                                          "urn:ietf:params:oauth:grant-type:device_code"],
                "code_challenge_methods_supported": ["S256"]}

    def device(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != CLIENT_ID:
            return 400, {"error": "invalid_client"}
        device_code, user_code = secrets.token_urlsafe(24), "WDJB-MJHT"
        self._devices[device_code] = {"script": list(self.device_script), "last": 0.0}
        return 200, {"device_code": device_code, "user_code": user_code,
                     "verification_uri": f"{self.issuer}/geraet",
                     "expires_in": 600, "interval": self.interval}

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """The browser: the user is signed in already and agrees at once."""
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID or not redirect.startswith("http://127.0.0.1:"):
            return 400, ""
        code = secrets.token_urlsafe(16)
        self._codes[code] = {"challenge": query.get("code_challenge", ""),
                             "redirect": redirect}
        return 302, f"{redirect}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def _issue(self) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(self.refresh_token_length)[
            :self.refresh_token_length - 3]
        with self.lock:
            self.access[access] = Issued(self.user, time.time() + self.access_lifetime)
            self.refresh[refresh] = self.user
            self.ever += [access, refresh]
        return {"access_token": access, "token_type": "Bearer",
                "expires_in": self.access_lifetime, "refresh_token": refresh,
                "scope": self.scopes_granted}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != CLIENT_ID:
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            device = self._devices.get(form.get("device_code", ""))
            if device is None:
                return 400, {"error": "invalid_grant"}
            now = time.monotonic()
            self.polls.append(now)
            step = device["script"].pop(0) if len(device["script"]) > 1 else \
                device["script"][0]
            if step == "pending":
                return 400, {"error": "authorization_pending"}
            if step == "slow_down":
                return 400, {"error": "slow_down"}
            if step == "deny":
                return 400, {"error": "access_denied"}
            if step == "expire":
                return 400, {"error": "expired_token"}
            del self._devices[form["device_code"]]
            return 200, self._issue()
        if grant == "authorization_code":
            code = self._codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(
                hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if code is None or code["challenge"] != challenge or \
                    form.get("redirect_uri") != code["redirect"]:
                return 400, {"error": "invalid_grant"}
            return 200, self._issue()
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            with self.lock:
                user = self.refresh.get(refresh)
                if user is None:
                    return 400, {"error": "invalid_grant",
                                 "error_description": "refresh token revoked"}
                self.refreshes += 1
                if self.rotate:
                    del self.refresh[refresh]
            issued = self._issue()
            if not self.rotate:
                with self.lock:
                    del self.refresh[issued["refresh_token"]]
                del issued["refresh_token"]
            return 200, issued
        return 400, {"error": "unsupported_grant_type"}

    def introspect(self, token: str) -> dict[str, Any]:
        valid = self.valid(token)
        return {"active": True, "username": self.user} if valid else {"active": False}

    # -- for the servers and the tests -------------------------------------------------
    def valid(self, token: str) -> bool:
        with self.lock:
            issued = self.access.get(token)
            ok = issued is not None and issued.expires_at > time.time()
            self.checks.append((token, ok))
        return ok

    def revoke_all(self) -> None:
        """The admin (or a password change) revokes every refresh token."""
        with self.lock:
            self.refresh.clear()

    def secrets_issued(self) -> list[str]:
        with self.lock:
            return list(self.ever)
