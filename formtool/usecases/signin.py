"""Signing in without a password (OAuth 2.0): `formtool mail login` with a code or the
browser, the stored sign-in, fresh access tokens for every connection, `mail logout`.

What is stored is the refresh token only, in the OS's protected store – never the
access token (it lives an hour, in memory), never in formtool.toml, state.db or any
file of the workspace (often a synced or shared folder). The Windows Credential
Manager holds at most 2,560 bytes per entry, which keyring fills with UTF-16 (about
1,280 characters); Microsoft's refresh tokens can be longer. So the token is split
into parts of at most ``PART`` characters, each its own entry, and a small head entry
names the complete set – written last, so that a run killed while storing leaves the
previous complete set readable. (Microsoft's msal-extensions would keep MSAL's whole
token cache; we keep one token and need no second cache format.)

Where no protected store exists (a headless Linux), the token goes to a file readable
only by the user, outside the workspace – only with consent: asked by `mail login` on
a terminal, or ``[oauth] token_store = "file"``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from formtool.errors import FormtoolError
from formtool.mail.oauth import (
    Client,
    DeviceCode,
    OAuthError,
    SignInExpired,
    Tokens,
    expired_message,
    service_name,
)
from formtool.workspace import OAuthSettings, Workspace

KEYRING_SERVICE = "formtool"
PART = 1000  # characters per keyring entry: within Windows' 2,560 bytes as UTF-16
MAX_PARTS = 32
TOKEN_DIR_ENV = "FORMTOOL_TOKEN_DIR"  # where the consented token file lives (tests, servers)


class SignInError(FormtoolError):
    """No sign-in stored, or it cannot be stored."""


def account(ws: Workspace) -> str:
    """The key of a sign-in: whose ([smtp] user, else [imap] user), at which provider,
    for which app registration."""
    settings = ws.oauth_settings()
    user = ws.mail_settings().user or ws.imap_settings().user
    return f"oauth:{user.lower()}|{settings.client_id}|{settings.authority}"


# -- where the refresh token is kept --------------------------------------------------

class NoKeyring(SignInError):
    """The OS has no usable protected store here."""


def _kr_get(name: str) -> str | None:
    import keyring
    import keyring.errors

    try:
        value = keyring.get_password(KEYRING_SERVICE, name)
    except keyring.errors.KeyringError as exc:
        raise NoKeyring(str(exc)) from None
    return None if value is None else str(value)


def _kr_set(name: str, value: str) -> None:
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, name, value)
    except keyring.errors.KeyringError as exc:
        raise NoKeyring(str(exc)) from None


def _kr_delete(name: str) -> None:
    import keyring
    import keyring.errors

    with contextlib.suppress(keyring.errors.KeyringError):
        keyring.delete_password(KEYRING_SERVICE, name)


def token_dir() -> Path:
    """Where a consented token file lives: the user's own settings folder."""
    override = os.environ.get(TOKEN_DIR_ENV)
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home())) / "formtool" / "anmeldungen"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "formtool" / "anmeldungen"


def _head(value: str | None) -> tuple[str, int, str] | None:
    """The keyring head "v1 GEN COUNT SHA" as (generation, parts, digest); None when
    absent or not one formtool wrote."""
    fields = (value or "").split(" ")
    if len(fields) != 4 or fields[0] != "v1" or fields[1] not in ("a", "b") or \
            not fields[2].isdigit() or not 0 < int(fields[2]) <= MAX_PARTS:
        return None
    return fields[1], int(fields[2]), fields[3]


class Store:
    """The refresh token of one account: keyring parts, or the consented file."""

    def __init__(self, name: str, *, use_file: bool = False) -> None:
        self.name = name
        self.use_file = use_file
        self.path = token_dir() / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".json")

    # keyring: head "v1 GEN COUNT SHA" and parts NAME#GEN.I
    def _read_keyring(self) -> str | None:
        head = _head(_kr_get(self.name))
        if head is None:
            return None
        generation, parts, digest = head
        chunks = [_kr_get(f"{self.name}#{generation}.{i}") for i in range(parts)]
        if any(c is None for c in chunks):
            return None
        token = "".join(c for c in chunks if c is not None)
        if hashlib.sha256(token.encode()).hexdigest()[:16] != digest:
            return None
        return token

    def _write_keyring(self, token: str) -> None:
        old = _head(_kr_get(self.name))
        generation = "b" if old is not None and old[0] == "a" else "a"
        chunks = [token[i:i + PART] for i in range(0, len(token), PART)] or [""]
        if len(chunks) > MAX_PARTS:
            raise SignInError("Die Anmeldung ist zu groß für den Schlüsselbund.")
        for i, chunk in enumerate(chunks):
            _kr_set(f"{self.name}#{generation}.{i}", chunk)
        digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        _kr_set(self.name, f"v1 {generation} {len(chunks)} {digest}")  # the switch
        if old is not None:
            for i in range(old[1]):
                _kr_delete(f"{self.name}#{old[0]}.{i}")

    def _clear_keyring(self) -> None:
        head = _kr_get(self.name)
        for generation in ("a", "b"):
            for i in range(MAX_PARTS):
                if _kr_get(f"{self.name}#{generation}.{i}") is None:
                    break
                _kr_delete(f"{self.name}#{generation}.{i}")
        if head is not None:
            _kr_delete(self.name)

    # the file: only the user may read it; replaced atomically
    def _read_file(self) -> str | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        token = data.get("refresh_token") if isinstance(data, dict) else None
        return token if isinstance(token, str) and token else None

    def _write_file(self, token: str) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"account": self.name, "refresh_token": token}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)

    def read(self) -> str | None:
        if not self.use_file:
            try:
                found = self._read_keyring()
            except NoKeyring:
                found = None
            if found is not None:
                return found
        return self._read_file()

    def write(self, token: str) -> None:
        if self.use_file:
            self._write_file(token)
        else:
            self._write_keyring(token)

    def clear(self) -> bool:
        """Remove every stored part; True when something was there."""
        had = False
        with contextlib.suppress(NoKeyring):
            had = _kr_get(self.name) is not None
            self._clear_keyring()
        if self.path.exists():
            had = True
            with contextlib.suppress(OSError):
                self.path.unlink()
        return had


def _store(ws: Workspace, *, use_file: bool | None = None) -> Store:
    settings = ws.oauth_settings()
    wanted = settings.token_store == "file" if use_file is None else use_file
    return Store(account(ws), use_file=wanted)


# -- access tokens for the connections -------------------------------------------------

class TokenSource:
    """Access tokens for SMTP and IMAP connections (mail.oauth.Bearer): refreshed when
    they run out, a rotated refresh token stored at once; thread-safe."""

    def __init__(self, client: Client, store: Store) -> None:
        self.client = client
        self.store = store
        self._tokens: Tokens | None = None
        self._lock = threading.Lock()
        self._failed: SignInExpired | None = None
        self.refreshes = 0

    def _margin(self) -> float:
        lifetime = self._tokens.lifetime if self._tokens is not None else 3600.0
        return min(300.0, lifetime / 4)

    def expiring(self) -> bool:
        tokens = self._tokens
        return tokens is None or tokens.expires_at - time.time() < self._margin()

    def token(self, *, renew: bool = False) -> str:
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if not renew and not self.expiring() and self._tokens is not None:
                return self._tokens.access_token
            self._tokens = self._refresh()
            return self._tokens.access_token

    def _refresh(self) -> Tokens:
        stored = self.store.read()
        if stored is None:
            self._failed = SignInExpired(
                f"Keine Anmeldung bei {service_name(self.client.settings)} gespeichert – "
                "bitte „formtool mail login“ ausführen.")
            raise self._failed
        try:
            tokens = self.client.refresh(stored)
        except SignInExpired as exc:
            # another formtool process may have rotated it a moment ago: its new one
            latest = self.store.read()
            if latest is None or latest == stored:
                self._failed = exc
                raise
            tokens = self.client.refresh(latest)
            stored = latest
        if tokens.refresh_token and tokens.refresh_token != stored:
            self.store.write(tokens.refresh_token)  # at once: the old one is dead now
        self.refreshes += 1
        return tokens


_SOURCES: dict[str, TokenSource] = {}
_SOURCES_LOCK = threading.Lock()


def bearer(ws: Workspace) -> TokenSource:
    """The process's one token source for this workspace's sign-in (SMTP, the Sent
    copies and the mailbox share it: a rotated refresh token has one owner)."""
    store = _store(ws)
    with _SOURCES_LOCK:
        source = _SOURCES.get(store.name)
        if source is None or source.client.settings != ws.oauth_settings():
            source = TokenSource(Client(ws.oauth_settings()), store)
            _SOURCES[store.name] = source
        return source


def signed_in(ws: Workspace) -> TokenSource:
    """The token source, after checking that a sign-in is stored at all (before any
    connection or question)."""
    source = bearer(ws)
    if source._tokens is None and source.store.read() is None:
        raise SignInError(f"Keine Anmeldung bei {service_name(ws.oauth_settings())} "
                          "gespeichert – bitte zuerst „formtool mail login“ ausführen (auf "
                          "der Seite von formtool: „Einstellungen“ → Anmelden).")
    return source


def forget_sources() -> None:
    """Drop the cached token sources (after a login or logout; tests)."""
    with _SOURCES_LOCK:
        _SOURCES.clear()


# -- login and logout --------------------------------------------------------------------

@dataclass(frozen=True)
class LoggedIn:
    service: str
    stored_in: str  # "Schlüsselbund" or the file's path
    mailbox_checked: bool


def start_device(ws: Workspace) -> tuple[Client, DeviceCode]:
    """`mail login`: a code to type at the provider's address."""
    client = Client(ws.oauth_settings())
    return client, client.start_device()


def finish_device(ws: Workspace, client: Client, code: DeviceCode,
                  on_wait: Callable[[float], None], *, use_file: bool | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> LoggedIn:
    tokens = client.wait_device(code, on_wait, sleep=sleep)
    return _keep(ws, client, tokens, use_file=use_file)


def browser_login(ws: Workspace, open_url: Callable[[str], object], *,
                  use_file: bool | None = None, wait: float = 300.0) -> LoggedIn:
    """`mail login --browser`: authorization code with PKCE through the system browser."""
    client = Client(ws.oauth_settings())
    tokens = client.browser(open_url, wait=wait)
    return _keep(ws, client, tokens, use_file=use_file)


def keyring_usable() -> bool:
    """Whether the OS's protected store can be used here (asked before a login)."""
    try:
        _kr_get("formtool-probe")
    except NoKeyring:
        return False
    return True


def _keep(ws: Workspace, client: Client, tokens: Tokens, *,
          use_file: bool | None) -> LoggedIn:
    """Store the refresh token, then test SMTP and (if set) the mailbox with it."""
    settings: OAuthSettings = ws.oauth_settings()
    if tokens.refresh_token is None:
        raise SignInError(f"{service_name(settings)} hat keine dauerhafte Anmeldung erteilt "
                          "(kein Refresh-Token): die Berechtigung offline_access fehlt "
                          "([oauth] scopes bzw. die App-Registrierung).")
    store = _store(ws, use_file=use_file)
    _inside_workspace(ws, store)
    try:
        store.write(tokens.refresh_token)
    except NoKeyring as exc:
        raise SignInError(
            "Auf diesem Rechner ist kein Schlüsselbund für die Anmeldung nutzbar. Mit "
            "Ihrer Zustimmung speichert formtool sie in einer Datei, die nur Sie lesen "
            f"können ({store.path}): „formtool mail login“ im Terminal fragt danach, "
            "oder in formtool.toml unter [oauth] token_store = \"file\" setzen.",
            detail=str(exc)) from None
    forget_sources()
    source = TokenSource(client, store)
    source._tokens = tokens  # the fresh access token: no refresh needed for the tests
    with _SOURCES_LOCK:
        _SOURCES[store.name] = source
    checked = _check_connections(ws, source)
    return LoggedIn(service=service_name(settings),
                    stored_in=str(store.path) if store.use_file else "Schlüsselbund",
                    mailbox_checked=checked)


def _inside_workspace(ws: Workspace, store: Store) -> None:
    if store.use_file and store.path.resolve().is_relative_to(ws.root):
        raise SignInError(f"{store.path} liegt im Arbeitsordner (oft ein geteilter "
                          "Ordner): dort speichert formtool keine Anmeldung.")


def _check_connections(ws: Workspace, source: TokenSource) -> bool:
    """Log in to SMTP (if it uses OAuth) and the mailbox (if set and using OAuth)."""
    from formtool.mail import imap, smtp

    settings = ws.mail_settings()
    if settings.auth == "oauth2" and settings.host:
        smtp.check_settings(settings)
        session = smtp.Session(settings, source)
        try:
            session.connect()
        finally:
            session.close()
    box = ws.imap_settings()
    if box.host and box.auth == "oauth2":
        with imap.Connection(box, source) as connection:
            connection.select(box.folder)
        return True
    return False


def logout(ws: Workspace) -> bool:
    """`mail logout`: remove the stored sign-in (keyring and file); True if one was there."""
    forget_sources()
    return _store(ws, use_file=False).clear()


__all__ = ["LoggedIn", "OAuthError", "SignInError", "SignInExpired", "TokenSource",
           "bearer", "browser_login", "expired_message", "finish_device", "keyring_usable",
           "logout", "start_device"]
