"""Signing in without a password (issue 24), against real local servers: the tests'
OpenID provider over HTTPS (private CA), aiosmtpd taking XOAUTH2 only with a token the
provider issued and that is still valid, Dovecot with its oauth2 passdb asking the
provider's introspection endpoint. No protocol is mocked; only the OS keyring is
in memory (as everywhere in the tests)."""

from __future__ import annotations

import stat
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from helpers import invoke
from imapserver import Dovecot, configure_imap
from mailhelpers import MemoryKeyring
from oidcprovider import CLIENT_ID, Provider
from smtpserver import LocalSmtpServer, OAuthMailbox

from formtool import workspace
from formtool.usecases import signin

USER = "koordination@buendnis.example"
CONTACTS = 40  # the shipped contacts/fachberatungen.csv


@pytest.fixture(autouse=True)
def fresh_sources() -> Iterator[None]:
    signin.forget_sources()
    yield
    signin.forget_sources()


@pytest.fixture
def provider(certificate: tuple[Path, Path]) -> Iterator[Provider]:
    with Provider(certificate) as running:
        yield running


def configure(ws: Path, provider: Provider, certificate: tuple[Path, Path], port: int,
              *, auth: str = "oauth2", extra_oauth: str = "", smtp: str = "") -> None:
    cert = certificate[0]
    (ws / "formtool.toml").write_text(f"""
[sender]
name = "Bündnis Kita-Qualität Thüringen – Koordination"
email = "{USER}"

[smtp]
host = "127.0.0.1"
port = {port}
security = "starttls"
user = "{USER}"
auth = "{auth}"
ca_file = "{cert}"
timeout = 10
{smtp}

[limits]
per_minute = 0
per_hour = 0

[oauth]
provider = "oidc"
client_id = "{CLIENT_ID}"
issuer = "{provider.issuer}"
scopes = ["smtp", "imap", "offline_access"]
ca_file = "{cert}"
{extra_oauth}
""", encoding="utf-8")


def smtp_server(provider: Provider, certificate: tuple[Path, Path], *,
                exclude: tuple[str, ...] = ("OAUTHBEARER",), **kwargs: object
                ) -> LocalSmtpServer:
    handler = OAuthMailbox(provider, **kwargs)  # type: ignore[arg-type]
    return LocalSmtpServer(handler, security="starttls", certfile=certificate[0],
                           keyfile=certificate[1], oauth_only=True, exclude=exclude)


def login(ws: Path) -> str:
    result = invoke(ws, "mail", "login")
    assert result.exit_code == 0, result.output
    return result.output


def recipients(server: LocalSmtpServer) -> Counter[str]:
    return Counter(r for item in server.handler.received for r in item.rcpt_tos)


def no_secret_anywhere(ws: Path, provider: Provider, *outputs: str) -> None:
    """No byte of any token in any file of the workspace (state.db and its WAL too)
    or in what the commands printed."""
    tokens = provider.secrets_issued()
    assert tokens
    for path in ws.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for token in tokens:
                assert token.encode() not in data, path
                assert token[:40].encode() not in data, path
    for text in outputs:
        for token in tokens:
            assert token[:40] not in text


# -- settings ---------------------------------------------------------------------------

@pytest.mark.parametrize(("oauth", "said"), [
    ('provider = "oidc"\nissuer = "https://id.example"\nscopes = ["smtp"]',
     "[oauth] client_id fehlt"),
    ('provider = "oidc"\nclient_id = "x"\nissuer = "http://id.example"\nscopes = ["smtp"]',
     "https-Adresse"),
    ('provider = "oidc"\nclient_id = "x"\nissuer = "https://id.example"', "scopes fehlt"),
    ('provider = "google"\nclient_id = "x"', "provider = 'google'"),
    ('client_id = "x"\nissuer = "https://id.example"', "nur für provider = \"oidc\""),
    ('client_id = "x"\ntenant = "buendnis onmicrosoft"', "tenant"),
    ('client_id = "x"\nclient_secret = "y"', "client_secret ist unbekannt"),
    ('client_id = "x"\ntoken_store = "cloud"', "token_store"),
])
def test_oauth_settings_are_checked_before_anything(ws: Path, oauth: str, said: str) -> None:
    config = ws / "formtool.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'auth = "password"', 'auth = "oauth2"') + f"\n[oauth]\n{oauth}\n", encoding="utf-8")
    result = invoke(ws, "status")
    assert result.exit_code != 0
    assert said in result.output


def test_init_writes_the_oauth_block_commented_out(ws: Path) -> None:
    text = (ws / "formtool.toml").read_text(encoding="utf-8")
    assert "# [oauth]" in text and 'auth = "password"' in text
    assert workspace.load(ws).mail_settings().auth == "password"
    assert invoke(ws, "status").exit_code == 0


def test_microsoft_preset(ws: Path) -> None:
    config = ws / "formtool.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('auth = "password"',
                      'auth = "oauth2"') + '\n[oauth]\nclient_id = "abc"\n'
                      'tenant = "buendnis.onmicrosoft.com"\n', encoding="utf-8")
    settings = workspace.load(ws).oauth_settings()
    assert settings.authority == "https://login.microsoftonline.com/buendnis.onmicrosoft.com"
    assert "https://outlook.office.com/SMTP.Send" in settings.all_scopes
    assert "offline_access" in settings.all_scopes
    from formtool.mail.oauth import Client

    ends = Client(settings).endpoints()
    assert ends.device.endswith("/buendnis.onmicrosoft.com/oauth2/v2.0/devicecode")


# -- device login ------------------------------------------------------------------------

def test_device_login_waits_honours_slow_down_and_tests_smtp(
        ws: Path, provider: Provider, certificate: tuple[Path, Path],
        memory_keyring: MemoryKeyring) -> None:
    provider.device_script = ["pending", "slow_down", "pending", "approve"]
    with smtp_server(provider, certificate) as server:
        configure(ws, provider, certificate, server.port)
        output = login(ws)
        assert server.handler.auths == [(USER, True)]
    assert "WDJB-MJHT" in output and f"{provider.issuer}/geraet" in output
    assert "Warte auf die Anmeldung" in output
    assert "Angemeldet bei 127.0.0.1" in output and "Schlüsselbund" in output
    gaps = [b - a for a, b in zip(provider.polls, provider.polls[1:], strict=False)]
    assert gaps[0] >= 0.9  # the interval
    assert gaps[1] >= 5.9  # slow_down: five seconds more from then on
    assert gaps[2] >= 5.9
    # stored in parts, each within the Windows Credential Manager's 2,560 bytes (UTF-16)
    entries = {k: v for k, v in memory_keyring.passwords.items() if k[1].startswith("oauth:")}
    assert len(entries) >= 3  # 1,500 characters: a head and two parts
    for value in entries.values():
        assert len(value.encode("utf-16-le")) <= 2560
    no_secret_anywhere(ws, provider, output)


@pytest.mark.parametrize(("script", "said"), [
    (["pending", "deny"], "im Browser abgelehnt"),
    (["expire"], "Code ist abgelaufen"),
])
def test_device_login_declined_or_expired(ws: Path, provider: Provider,
                                          certificate: tuple[Path, Path],
                                          memory_keyring: MemoryKeyring,
                                          script: list[str], said: str) -> None:
    provider.device_script = script
    configure(ws, provider, certificate, 2525)
    result = invoke(ws, "mail", "login")
    assert result.exit_code != 0
    assert said in result.output and "formtool mail login" in result.output
    assert not [k for k in memory_keyring.passwords if k[1].startswith("oauth:")]


def test_wrong_client_id_names_the_setting(ws: Path, provider: Provider,
                                           certificate: tuple[Path, Path]) -> None:
    configure(ws, provider, certificate, 2525)
    config = ws / "formtool.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(CLIENT_ID, "tippfehler"),
                      encoding="utf-8")
    result = invoke(ws, "mail", "login")
    assert result.exit_code != 0
    assert "client_id" in result.output


def test_a_wrong_issuer_address_is_named(ws: Path, provider: Provider,
                                         certificate: tuple[Path, Path]) -> None:
    configure(ws, provider, certificate, 2525)
    config = ws / "formtool.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        f'issuer = "{provider.issuer}"', f'issuer = "{provider.issuer}/falsch"'),
        encoding="utf-8")
    result = invoke(ws, "mail", "login")
    assert result.exit_code != 0
    assert "Fehler 404" in result.output and "[oauth] issuer" in result.output


def test_untrusted_provider_certificate_is_refused(ws: Path, provider: Provider,
                                                   certificate: tuple[Path, Path]) -> None:
    configure(ws, provider, certificate, 2525)
    config = ws / "formtool.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text("".join(text.rsplit(f'ca_file = "{certificate[0]}"', 1)),
                      encoding="utf-8")  # the provider's own CA left out
    result = invoke(ws, "mail", "login")
    assert result.exit_code != 0
    assert "nicht sicher" in result.output and "ca_file" in result.output


def test_browser_login_with_pkce(ws: Path, provider: Provider,
                                 certificate: tuple[Path, Path]) -> None:
    """The authorization code flow: the "browser" follows the provider's redirect to
    formtool's one-shot server on 127.0.0.1."""
    import ssl

    context = ssl.create_default_context(cafile=str(certificate[0]))
    opened: list[str] = []

    def browser(url: str) -> None:
        opened.append(url)
        threading.Thread(target=lambda: urllib.request.urlopen(url, context=context,
                                                               timeout=10).read(),
                         daemon=True).start()

    with smtp_server(provider, certificate) as server:
        configure(ws, provider, certificate, server.port)
        done = signin.browser_login(workspace.load(ws), browser, wait=20)
        assert server.handler.auths == [(USER, True)]
    assert done.stored_in == "Schlüsselbund"
    assert "code_challenge=" in opened[0] and "code_challenge_method=S256" in opened[0]
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in opened[0]


# -- sending with tokens ------------------------------------------------------------------

def test_a_send_that_outlives_several_access_tokens(ws: Path, provider: Provider,
                                                    certificate: tuple[Path, Path]) -> None:
    with smtp_server(provider, certificate) as server:
        configure(ws, provider, certificate, server.port)
        login(ws)
        provider.access_lifetime = 1.5
        server.handler.after_message = lambda n: __import__("time").sleep(0.12)
        signin.forget_sources()  # a new process, as a user runs it
        result = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes")
        assert result.exit_code == 0, result.output
        counts = recipients(server)
        auths = list(server.handler.auths)
    assert len(counts) == CONTACTS and set(counts.values()) == {1}  # every message once
    assert all(ok for _, ok in auths)  # every AUTH with a valid token
    assert len(auths) >= 4  # reconnected with fresh tokens
    assert server.handler.expired_uses == 0  # never a token that ran out under way
    assert provider.refreshes >= 3
    no_secret_anywhere(ws, provider, result.output)


def test_revoked_sign_in_stops_cleanly_and_resumes_exactly(
        ws: Path, provider: Provider, certificate: tuple[Path, Path]) -> None:
    with smtp_server(provider, certificate) as server:
        configure(ws, provider, certificate, server.port)
        login(ws)
        provider.access_lifetime = 1.0

        def after(count: int) -> None:
            import time

            if count == 8:
                provider.revoke_all()  # the admin, or a password change
            time.sleep(0.1)

        server.handler.after_message = after
        signin.forget_sources()
        stopped = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes")
        assert stopped.exit_code != 0
        assert "Die Anmeldung bei 127.0.0.1 ist abgelaufen" in stopped.output
        assert "formtool mail login" in stopped.output
        first = sum(recipients(server).values())
        assert 8 <= first < CONTACTS
        assert f"Fertig: {first} gesendet" in stopped.output
        status = invoke(ws, "status")
        assert f"gesendet {first}" in status.output
        server.handler.after_message = None
        signin.forget_sources()
        login(ws)
        resumed = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes")
        assert resumed.exit_code == 0, resumed.output
        counts = recipients(server)
    assert len(counts) == CONTACTS and set(counts.values()) == {1}
    assert f"{CONTACTS - first} gesendet" in resumed.output
    no_secret_anywhere(ws, provider, stopped.output, resumed.output)


def test_oauthbearer_where_the_server_offers_only_that(
        ws: Path, provider: Provider, certificate: tuple[Path, Path]) -> None:
    with smtp_server(provider, certificate, exclude=("XOAUTH2",)) as server:
        configure(ws, provider, certificate, server.port)
        login(ws)
        signin.forget_sources()
        result = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes", "--limit", "3")
        assert result.exit_code == 0, result.output
        assert sum(recipients(server).values()) == 3
        assert server.handler.auths and all(ok for _, ok in server.handler.auths)


def test_rotated_refresh_token_is_stored_at_once(ws: Path, provider: Provider,
                                                 certificate: tuple[Path, Path]) -> None:
    with smtp_server(provider, certificate) as server:
        configure(ws, provider, certificate, server.port)
        login(ws)
        loaded = workspace.load(ws)
        first = signin.bearer(loaded).store.read()
        signin.bearer(loaded).token(renew=True)
        second = signin.bearer(loaded).store.read()
        assert second != first and second in provider.refresh and first not in provider.refresh
        # a second process (a fresh source) reads the rotated one and goes on
        signin.forget_sources()
        assert signin.bearer(workspace.load(ws)).token(renew=True)


def test_password_refused_by_microsoft_names_the_cause(
        ws: Path, provider: Provider, certificate: tuple[Path, Path],
        memory_keyring: MemoryKeyring) -> None:
    from smtpserver import Mailbox

    class Refusing(Mailbox):
        async def auth_PLAIN(self, server: object, args: list[str]) -> object:
            from aiosmtpd.smtp import AuthResult

            return AuthResult(success=False, handled=False, message=(
                "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."))

        auth_LOGIN = auth_PLAIN

    with LocalSmtpServer(Refusing(), security="starttls", certfile=certificate[0],
                         keyfile=certificate[1], auth=(USER, "pw")) as server:
        configure(ws, provider, certificate, server.port, auth="password")
        memory_keyring.set_password("formtool", f"{USER}@127.0.0.1", "pw")
        result = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes")
    assert result.exit_code != 0
    assert "keine Passwörter mehr" in result.output and "5.7.139" in result.output
    assert 'auth = "oauth2"' in result.output and "Microsoft 365" in result.output


def test_authenticated_smtp_switched_off_with_oauth(ws: Path, provider: Provider,
                                                    certificate: tuple[Path, Path]) -> None:
    with smtp_server(provider, certificate, refuse_reply=(
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
            "disabled for the Tenant.")) as server:
        configure(ws, provider, certificate, server.port)
        result = invoke(ws, "mail", "login")
    assert result.exit_code != 0
    assert "Authentifiziertes SMTP" in result.output


# -- the mailbox --------------------------------------------------------------------------

def test_fetch_over_imap_with_oauth(ws: Path, provider: Provider,
                                    certificate: tuple[Path, Path]) -> None:
    from email.message import EmailMessage

    dovecot = Dovecot(certificate, oauth_introspection=f"{provider.issuer}/introspect")
    try:
        reply = EmailMessage()
        reply["From"] = "fb1@example.org"
        reply["To"] = USER
        reply["Subject"] = "Abmelden"
        reply.set_content("Bitte abmelden.")
        dovecot.seed(certificate[0], [reply])
        with smtp_server(provider, certificate) as server:
            configure(ws, provider, certificate, server.port)
            configure_imap(ws, dovecot.ssl_port, cafile=certificate[0])
            output = login(ws)
            assert "Anmeldung am Postfach 127.0.0.1 erfolgreich" in output
        provider.access_lifetime = 1.0
        signin.forget_sources()  # a new process: it refreshes first
        result = invoke(ws, "mail", "fetch")
        assert result.exit_code == 0, result.output
        assert "fb1@example.org" in result.output
        assert any(ok for _, ok in provider.checks)  # Dovecot asked the provider
        no_secret_anywhere(ws, provider, output, result.output)
    finally:
        dovecot.stop()


# -- where the sign-in is kept -------------------------------------------------------------

def test_without_keyring_only_with_consent_to_a_private_file(
        ws: Path, provider: Provider, certificate: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    monkeypatch.setenv(signin.TOKEN_DIR_ENV, str(tmp_path / "home" / "anmeldungen"))
    try:
        with smtp_server(provider, certificate) as server:
            configure(ws, provider, certificate, server.port)
            refused = invoke(ws, "mail", "login")  # no terminal: no question, no file
            assert refused.exit_code != 0
            assert 'token_store = "file"' in refused.output
            assert not (tmp_path / "home").exists()
            configure(ws, provider, certificate, server.port,
                      extra_oauth='token_store = "file"')
            output = login(ws)
            files = list((tmp_path / "home" / "anmeldungen").iterdir())
            assert len(files) == 1
            assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
            assert "nur für Sie lesbar" in output
            signin.forget_sources()
            sent = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes", "--limit", "2")
            assert sent.exit_code == 0, sent.output
            out = invoke(ws, "mail", "logout")
            assert "Anmeldung (OAuth)" in out.output and not files[0].exists()
    finally:
        keyring.set_keyring(previous)
    no_secret_anywhere(ws, provider, output, sent.output)


def test_logout_removes_every_part(ws: Path, provider: Provider,
                                   certificate: tuple[Path, Path],
                                   memory_keyring: MemoryKeyring) -> None:
    with smtp_server(provider, certificate) as server:
        configure(ws, provider, certificate, server.port)
        login(ws)
    assert [k for k in memory_keyring.passwords if k[1].startswith("oauth:")]
    result = invoke(ws, "mail", "logout")
    assert result.exit_code == 0 and "Entfernt" in result.output
    assert not [k for k in memory_keyring.passwords if k[1].startswith("oauth:")]
    again = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes")
    assert again.exit_code != 0 and "formtool mail login" in again.output


def test_a_store_killed_while_writing_keeps_the_last_complete_token(
        memory_keyring: MemoryKeyring) -> None:
    store = signin.Store("oauth:test")
    store.write("A" * 2500)
    original = memory_keyring.set_password
    calls = [0]

    def dies_on_the_third(service: str, name: str, value: str) -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt  # the process dies between two parts
        original(service, name, value)

    memory_keyring.set_password = dies_on_the_third  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        store.write("B" * 2500)
    memory_keyring.set_password = original  # type: ignore[method-assign]
    assert store.read() == "A" * 2500
    store.write("C" * 10)
    assert store.read() == "C" * 10
