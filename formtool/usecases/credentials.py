"""The SMTP password: in the OS keyring, or in FORMTOOL_SMTP_PASSWORD on a server.

Never in formtool.toml, the journal, a log or any output.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from formtool.errors import FormtoolError
from formtool.workspace import ImapSettings, MailSettings, Workspace

if TYPE_CHECKING:
    from formtool.mail.oauth import Secret

PASSWORD_ENV = "FORMTOOL_SMTP_PASSWORD"
IMAP_PASSWORD_ENV = "FORMTOOL_IMAP_PASSWORD"
KEYRING_SERVICE = "formtool"


class CredentialsError(FormtoolError):
    """No password, or the keyring cannot be used."""


def keyring_account(settings: MailSettings) -> str:
    return f"{settings.user}@{settings.host}"


def password_for(settings: MailSettings) -> str | None:
    """The SMTP password: FORMTOOL_SMTP_PASSWORD, else the OS keyring; None without user."""
    if not settings.user:
        return None
    return _password(PASSWORD_ENV, keyring_account(settings),
                     f"Kein Passwort für {settings.user} gespeichert: bitte zuerst „formtool "
                     f"mail login“ (oder {PASSWORD_ENV} setzen; auf der Seite von "
                     "formtool: „Einstellungen“ → Passwort).")


def store_password(settings: MailSettings, password: str) -> None:
    _keep(PASSWORD_ENV, keyring_account(settings), password)


def _password(env_name: str, account: str, missing: str) -> str:
    """The password in ``env_name``, else the keyring's for ``account``; ``missing``
    when there is none."""
    found = _stored(env_name, account)
    if found is None:
        raise CredentialsError(missing)
    return found


def _stored(env_name: str, account: str) -> str | None:
    """The password in ``env_name``, else the keyring's for ``account``, else None."""
    env = os.environ.get(env_name)
    if env:
        return env
    import keyring  # slow to import: only when a password is needed
    import keyring.errors

    try:
        stored = keyring.get_password(KEYRING_SERVICE, account)
    except keyring.errors.KeyringError as exc:
        raise CredentialsError(_no_keyring(exc, env_name), detail=str(exc)) from None
    return None if stored is None else str(stored)


def _keep(env_name: str, account: str, password: str) -> None:
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, account, password)
    except keyring.errors.KeyringError as exc:
        raise CredentialsError(_no_keyring(exc, env_name, storing=True),
                               detail=str(exc)) from None


def _no_keyring(exc: Exception, env_name: str, *, storing: bool = False) -> str:
    """Why the keyring failed and what to do, for this operating system, in German
    (keyring's own text, English, goes to --debug)."""
    import sys

    import keyring.errors

    what = ("Das Passwort kann nicht im Schlüsselbund gespeichert werden"
            if storing else "Der Schlüsselbund des Betriebssystems ist nicht erreichbar")
    if isinstance(exc, keyring.errors.NoKeyringError):
        what = "Auf diesem Rechner ist kein Schlüsselbund für Passwörter eingerichtet"
    if sys.platform == "win32":
        how = ("Unter Windows ist das die Anmeldeinformationsverwaltung; ist sie gesperrt "
               "(Firmenrechner), bitte die IT fragen")
    elif sys.platform == "darwin":
        how = "Unter macOS ist das der Schlüsselbund; bitte einmal am Mac anmelden und entsperren"
    else:
        how = ("Unter Linux braucht es einen laufenden Schlüsselbund-Dienst (GNOME-Schlüsselbund "
               "oder KWallet), wie ihn eine Desktop-Sitzung startet")
    return (f"{what}. {how}. Ohne Schlüsselbund (Server, Terminal): das Passwort in der "
            f"Umgebungsvariablen {env_name} setzen.")


def from_environment() -> str | None:
    """The sending password set in the environment (FORMTOOL_SMTP_PASSWORD), if any:
    then `mail login` tests it instead of asking, and stores nothing."""
    return os.environ.get(PASSWORD_ENV) or None


def check_settings(settings: MailSettings) -> None:
    """The [sender]/[smtp] settings complete and consistent, before anything is asked."""
    from formtool.mail import smtp

    smtp.check_settings(settings)


def login(settings: MailSettings, password: str, *, store: bool = True) -> None:
    """`formtool mail login`: test the login, then keep the password in the keyring
    (not one from the environment: ``store`` False)."""
    from formtool.mail import smtp

    smtp.check_settings(settings)
    if not settings.user:
        raise CredentialsError("In formtool.toml ist unter [smtp] kein user eingetragen.")
    session = smtp.Session(settings, password)
    try:
        session.connect()
    finally:
        session.close()
    if store:
        store_password(settings, password)


def _imap_account(settings: ImapSettings) -> str:
    return f"imap:{settings.user}@{settings.host}"


def same_account(imap: ImapSettings, smtp: MailSettings) -> bool:
    """The mailbox's login is the sending one's (as at most providers): one password."""
    return bool(imap.user) and imap.user.lower() == smtp.user.lower()


def imap_password(settings: ImapSettings, smtp: MailSettings | None = None) -> str:
    """The mailbox password: FORMTOOL_IMAP_PASSWORD, else the OS keyring's for the
    mailbox, else – the same account as [smtp] – the sending password."""
    found = _stored(IMAP_PASSWORD_ENV, _imap_account(settings))
    if found is None and smtp is not None and same_account(settings, smtp):
        found = _stored(PASSWORD_ENV, keyring_account(smtp))
    if found is None:
        raise CredentialsError(
            f"Kein Postfach-Passwort für {settings.user} gespeichert: bitte zuerst "
            f"„formtool mail login“ (oder {IMAP_PASSWORD_ENV} setzen; auf der Seite von "
            "formtool: „Einstellungen“ → Passwort für das Postfach).")
    return found


def check_imap(settings: ImapSettings, password: str) -> None:
    """Log in to the mailbox and open its folder; ImapError says what is wrong."""
    from formtool.mail import imap

    with imap.Connection(settings, password) as box:
        box.select(settings.folder)


def mailbox_refuses(settings: ImapSettings, password: str) -> str:
    """Why the mailbox does not take ``password`` (German), or "" when it does."""
    from formtool.mail.imap import ImapError

    try:
        check_imap(settings, password)
    except ImapError as exc:
        return str(exc)
    return ""


def imap_login(settings: ImapSettings, password: str) -> None:
    """`formtool mail login --imap`: test the mailbox login, then keep the password."""
    check_imap(settings, password)
    _keep(IMAP_PASSWORD_ENV, _imap_account(settings), password)


def sending_secret(ws: Workspace) -> Secret:
    """What the SMTP login needs: the password ([smtp] auth = "password"), or the
    sign-in's token source ("oauth2")."""
    settings = ws.mail_settings()
    if settings.auth == "oauth2":
        from formtool.usecases import signin

        return signin.signed_in(ws)
    return password_for(settings)


def mailbox_secret(ws: Workspace) -> Secret:
    """What the mailbox login needs: its password, or the (shared) token source."""
    imap = ws.imap_settings()
    if imap.auth == "oauth2":
        from formtool.usecases import signin

        return signin.signed_in(ws)
    return imap_password(imap, ws.mail_settings())


def forget_passwords(smtp: MailSettings, imap: ImapSettings) -> bool:
    """`mail logout`: remove the stored passwords of this workspace's accounts."""
    import keyring
    import keyring.errors

    removed = False
    accounts = [keyring_account(smtp)] if smtp.user else []
    if imap.user and imap.host:
        accounts.append(_imap_account(imap))
    for name in accounts:
        try:
            if keyring.get_password(KEYRING_SERVICE, name) is not None:
                keyring.delete_password(KEYRING_SERVICE, name)
                removed = True
        except keyring.errors.KeyringError:
            continue
    return removed
