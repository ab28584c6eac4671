"""OAuth 2.0 sign-in for sending and the mailbox (Microsoft 365, any OpenID Connect
provider): the device code flow (RFC 8628), the authorization code flow with PKCE on a
loopback redirect (RFC 7636, RFC 8252), refresh; and the SASL strings XOAUTH2 and
OAUTHBEARER (RFC 7628) that SMTP and IMAP log in with.

Authlib speaks the protocol (requests is its HTTP client); this module only chooses
the endpoints and names in German what went wrong. Tokens pass through here and are
never written, logged or put into a message.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from formtool.errors import FormtoolError
from formtool.workspace import MICROSOFT_LOGIN, OAuthSettings

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TIMEOUT = 30.0  # seconds for one request to the sign-in service
LOGIN_HINT = "bitte „formtool mail login“ ausführen"


class OAuthError(FormtoolError):
    """The sign-in cannot go on: the German text says why and what to do."""


class SignInExpired(OAuthError):
    """The stored sign-in is no longer accepted (revoked, expired, password changed):
    a new `formtool mail login` is needed. Nothing was sent with it."""


class Bearer(Protocol):
    """Where a connection gets its access token (instead of a password)."""

    def token(self, *, renew: bool = False) -> str:
        """A valid access token; ``renew``: a fresh one even if the last seems valid
        (a server refused it). SignInExpired when no new one can be had."""
        ...

    def expiring(self) -> bool:
        """True when the token runs out soon: reconnect with a fresh one first."""
        ...


Secret = str | Bearer | None  # a password, a token source, or nothing (no login)


@dataclass(frozen=True)
class Endpoints:
    token: str
    device: str
    authorize: str


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint gave: an access token (short-lived) and, usually, a
    refresh token (long-lived; rotated by many providers on every refresh)."""

    access_token: str
    expires_at: float  # time.time()
    lifetime: float  # seconds the access token was issued for
    refresh_token: str | None

    def __repr__(self) -> str:  # never a token in a traceback or --debug output
        return f"Tokens(expires_at={self.expires_at:.0f}, lifetime={self.lifetime:.0f})"


@dataclass(frozen=True)
class DeviceCode:
    """The code the user types at the address shown (RFC 8628 §3.2)."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_at: float  # time.monotonic()
    interval: float

    def __repr__(self) -> str:
        return f"DeviceCode(user_code={self.user_code!r})"


def service_name(settings: OAuthSettings) -> str:
    """The sign-in service as a user knows it."""
    if settings.provider == "microsoft":
        return "Microsoft"
    return urlsplit(settings.issuer).hostname or settings.issuer


def expired_message(settings: OAuthSettings) -> str:
    return (f"Die Anmeldung bei {service_name(settings)} ist abgelaufen – {LOGIN_HINT}. "
            "Danach geht es genau dort weiter, wo es aufgehört hat.")


class Client:
    """One provider's sign-in; thread-safe for refreshing from several connections."""

    def __init__(self, settings: OAuthSettings, *, timeout: float = TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        self._endpoints: Endpoints | None = None
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------
    def _verify(self) -> str | bool:
        return self.settings.ca_file or True

    def _session(self, **kwargs: Any) -> Any:
        from authlib.integrations.requests_client import OAuth2Session

        session = OAuth2Session(self.settings.client_id,
                                scope=" ".join(self.settings.all_scopes),
                                token_endpoint_auth_method="none", **kwargs)
        session.verify = self._verify()
        session.trust_env = False  # no proxy or .netrc credentials from the environment
        return session

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """``call`` with the network's and the service's errors in German."""
        import requests
        from authlib.integrations.base_client.errors import OAuthError as AuthlibError

        host = urlsplit(self.endpoints().token if what != "discovery"
                        else self.settings.issuer).hostname
        try:
            return call()
        except AuthlibError as exc:
            raise self._refused(str(exc.error or ""), str(exc.description or "")) from None
        except requests.exceptions.SSLError as exc:
            hint = ("; bei einem eigenen Anmeldedienst [oauth] ca_file setzen"
                    if self.settings.provider == "oidc" else "")
            raise OAuthError(f"Die Verbindung zum Anmeldedienst {host} ist nicht sicher "
                             f"(Zertifikat nicht bestätigt){hint}.",
                             detail=str(exc)) from None
        except requests.exceptions.Timeout:
            raise OAuthError(f"Der Anmeldedienst {host} antwortet nicht (nach "
                             f"{self.timeout:g} s); bitte später erneut versuchen.") from None
        except requests.exceptions.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise OAuthError(f"Der Anmeldedienst {host} antwortet mit Fehler {status} "
                             f"({what}); stimmt die Adresse ([oauth] issuer)?",
                             detail=str(exc)) from None
        except requests.exceptions.JSONDecodeError as exc:
            raise OAuthError(f"Der Anmeldedienst {host} antwortet nicht wie erwartet "
                             f"({what}); stimmt die Adresse?", detail=str(exc)) from None
        except requests.exceptions.RequestException as exc:
            raise OAuthError(f"Der Anmeldedienst {host} ist nicht erreichbar: Internet-"
                             "Verbindung prüfen (oder Firewall/Proxy).",
                             detail=f"{type(exc).__name__}: {exc}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise OAuthError(f"Der Anmeldedienst {host} antwortet nicht wie erwartet "
                             f"({what}); stimmt die Adresse?",
                             detail=f"{type(exc).__name__}: {exc}") from None

    def endpoints(self) -> Endpoints:
        """Microsoft's fixed addresses, else the provider's discovery document."""
        if self._endpoints is not None:
            return self._endpoints
        s = self.settings
        if s.provider == "microsoft":
            base = f"{MICROSOFT_LOGIN}/{s.tenant}/oauth2/v2.0"
            self._endpoints = Endpoints(token=f"{base}/token", device=f"{base}/devicecode",
                                        authorize=f"{base}/authorize")
            return self._endpoints
        import requests

        def discover() -> Endpoints:
            reply = requests.get(s.issuer.rstrip("/") + "/.well-known/openid-configuration",
                                 timeout=self.timeout, verify=self._verify())
            reply.raise_for_status()
            doc = reply.json()
            if not isinstance(doc, dict) or not isinstance(doc.get("token_endpoint"), str):
                raise ValueError("no token_endpoint")
            found = Endpoints(token=doc["token_endpoint"],
                              device=str(doc.get("device_authorization_endpoint", "")),
                              authorize=str(doc.get("authorization_endpoint", "")))
            for address in (found.token, found.device, found.authorize):
                if address and not address.startswith("https://"):
                    raise ValueError(f"endpoint not https: {address}")
            return found

        self._endpoints = self._call("discovery", discover)
        return self._endpoints

    def _refused(self, error: str, description: str) -> OAuthError:
        """The provider's error code (and Microsoft's AADSTS number) as what to do."""
        name = service_name(self.settings)
        code = description.split(":", 1)[0].strip() if description.startswith("AADSTS") \
            else ""
        said = f" (Antwort: {error}{' ' + code if code else ''})"
        if code in ("AADSTS65001", "AADSTS65004") or error == "consent_required":
            return OAuthError("Die Berechtigungen für formtool sind noch nicht freigegeben: "
                              "die IT erteilt im Entra Admin Center bei der App-Registrierung "
                              "unter „API-Berechtigungen“ die „Administratorzustimmung“ (SMTP."
                              "Send, IMAP.AccessAsUser.All, offline_access)" + said + ".")
        if code in ("AADSTS700016", "AADSTS90002", "AADSTS90023") or \
                (error in ("invalid_client", "unauthorized_client") and not code):
            return OAuthError(f"{name} kennt diese Anwendung nicht: [oauth] client_id"
                              f"{' und tenant' if self.settings.provider == 'microsoft' else ''}"
                              " in formtool.toml prüfen (die IT hat sie bei der App-"
                              "Registrierung)" + said + ".")
        if code in ("AADSTS7000218", "AADSTS7000215") or error == "unauthorized_client":
            return OAuthError("Die App-Registrierung erlaubt diese Anmeldung nicht: im Entra "
                              "Admin Center unter „Authentifizierung“ die Einstellung "
                              "„Öffentliche Clientflows zulassen“ auf „Ja“ stellen" + said + ".")
        if code in ("AADSTS50020", "AADSTS50034", "AADSTS500200"):
            return OAuthError("Dieses Konto gehört nicht zu dem Verzeichnis in [oauth] tenant: "
                              "mit dem Konto der Organisation anmelden oder tenant prüfen"
                              + said + ".")
        if error in ("access_denied", "authorization_declined"):
            return OAuthError("Die Anmeldung wurde im Browser abgelehnt. Für einen neuen "
                              f"Versuch: {LOGIN_HINT}.")
        if error in ("expired_token", "code_expired"):
            return OAuthError(f"Der Code ist abgelaufen, bevor die Anmeldung fertig war. "
                              f"Für einen neuen Code: {LOGIN_HINT}.")
        if error in ("invalid_grant", "interaction_required", "login_required"):
            return SignInExpired(expired_message(self.settings), detail=error)
        if error == "invalid_scope":
            return OAuthError(f"{name} gewährt die erbetenen Berechtigungen nicht: [oauth] "
                              "scopes prüfen" + said + ".")
        return OAuthError(f"{name} hat die Anmeldung abgelehnt{said}.",
                          detail=description[:300])

    # -- flows ------------------------------------------------------------------------
    def start_device(self) -> DeviceCode:
        """Ask for a device code: the user types it at the address shown."""
        endpoint = self.endpoints().device
        if not endpoint:
            raise OAuthError(f"{service_name(self.settings)} bietet keine Anmeldung mit Code "
                             "an (device authorization): „formtool mail login --browser“.")
        session = self._session()

        def ask() -> DeviceCode:
            reply = session.post(endpoint, data={"client_id": self.settings.client_id,
                                                 "scope": " ".join(self.settings.all_scopes)},
                                 timeout=self.timeout, withhold_token=True)
            body = reply.json()
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            if "error" in body:
                raise self._refused(str(body["error"]), str(body.get("error_description", "")))
            uri = str(body.get("verification_uri") or body.get("verification_url") or "")
            if not uri.startswith("https://"):
                raise ValueError("verification_uri missing or not https")
            return DeviceCode(
                device_code=str(body["device_code"]), user_code=str(body["user_code"]),
                verification_uri=uri,
                verification_uri_complete=str(body.get("verification_uri_complete", "")),
                expires_at=time.monotonic() + float(body.get("expires_in", 900)),
                interval=max(1.0, float(body.get("interval", 5))))

        result: DeviceCode = self._call("Code", ask)
        return result

    def wait_device(self, code: DeviceCode, on_wait: Callable[[float], None],
                    sleep: Callable[[float], None] = time.sleep) -> Tokens:
        """Poll until the user signed in (RFC 8628 §3.4–3.5): ``authorization_pending``
        waits the interval, ``slow_down`` adds five seconds to it; ``on_wait`` gets
        the seconds left before the code expires."""
        session = self._session()
        interval = code.interval
        token_url = self.endpoints().token
        while True:
            left = code.expires_at - time.monotonic()
            if left <= 0:
                raise self._refused("expired_token", "")
            on_wait(left)
            sleep(min(interval, left))
            reply = self._call("Anmeldung", lambda: session.post(
                token_url, data={"grant_type": DEVICE_GRANT, "device_code": code.device_code,
                                 "client_id": self.settings.client_id},
                timeout=self.timeout, withhold_token=True))
            body = self._call("Anmeldung", reply.json)
            if not isinstance(body, dict):
                raise self._refused("invalid_response", "")
            error = str(body.get("error", ""))
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5.0
                continue
            if error:
                raise self._refused(error, str(body.get("error_description", "")))
            return self._tokens(body)

    def browser(self, open_url: Callable[[str], object], *, wait: float = 300.0) -> Tokens:
        """Authorization code with PKCE: the system browser signs in, the provider sends
        it back to a one-shot server on 127.0.0.1 (RFC 8252 §7.3)."""
        from formtool.mail import loopback

        endpoint = self.endpoints().authorize
        if not endpoint:
            raise OAuthError(f"{service_name(self.settings)} bietet keine Anmeldung im "
                             "Browser an: „formtool mail login“ (mit Code).")
        verifier = secrets.token_urlsafe(64)
        with loopback.Catcher() as catcher:
            session = self._session(redirect_uri=catcher.redirect_uri,
                                    code_challenge_method="S256")
            url, state = session.create_authorization_url(endpoint, code_verifier=verifier)
            open_url(url)
            params = catcher.wait(wait)
        if params is None:
            raise OAuthError(f"Im Browser wurde die Anmeldung nicht in {wait / 60:.0f} Minuten "
                             f"abgeschlossen. Für einen neuen Versuch: {LOGIN_HINT}.")
        if params.get("state") != state:
            raise OAuthError("Die Antwort im Browser gehört nicht zu dieser Anmeldung "
                             f"(state stimmt nicht) – nichts gespeichert. {LOGIN_HINT}.")
        if "error" in params:
            raise self._refused(params["error"], params.get("error_description", ""))
        if "code" not in params:
            raise OAuthError("Der Anmeldedienst hat keinen Code zurückgegeben – "
                             f"{LOGIN_HINT}.")
        body = self._call("Anmeldung", lambda: session.fetch_token(
            self.endpoints().token, grant_type="authorization_code", code=params["code"],
            code_verifier=verifier, timeout=self.timeout))
        return self._tokens(dict(body))

    def refresh(self, refresh_token: str) -> Tokens:
        """A new access token (and perhaps a new refresh token). SignInExpired when the
        refresh token is no longer accepted."""
        session = self._session()
        with self._lock:
            body = self._call("Erneuerung", lambda: session.refresh_token(
                self.endpoints().token, refresh_token=refresh_token, timeout=self.timeout))
        tokens = self._tokens(dict(body))
        if tokens.refresh_token is None:  # not rotated: the old one stays valid
            tokens = Tokens(tokens.access_token, tokens.expires_at, tokens.lifetime,
                            refresh_token)
        return tokens

    def _tokens(self, body: dict[str, Any]) -> Tokens:
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise self._refused(str(body.get("error", "invalid_response")),
                                str(body.get("error_description", "")))
        lifetime = float(body.get("expires_in") or 3600)
        refresh = body.get("refresh_token")
        return Tokens(access_token=access, expires_at=time.time() + lifetime,
                      lifetime=lifetime,
                      refresh_token=refresh if isinstance(refresh, str) and refresh else None)


def xoauth2(user: str, token: str) -> str:
    """The XOAUTH2 initial response (Google's and Microsoft's SASL mechanism), unencoded."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def oauthbearer(user: str, token: str, host: str, port: int) -> str:
    """The OAUTHBEARER initial response (RFC 7628 §3.1), unencoded."""
    safe = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={safe},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"


def server_said(challenge: bytes | str) -> str:
    """The JSON a server sends after a refused XOAUTH2/OAUTHBEARER, decoded for --debug."""
    raw = challenge.encode() if isinstance(challenge, str) else challenge
    try:
        return base64.b64decode(raw, validate=False).decode("utf-8", "replace")[:300]
    except ValueError:
        return ""
