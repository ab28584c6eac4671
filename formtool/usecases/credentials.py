"""The SMTP password: in the OS keyring, or in FORMTOOL_SMTP_PASSWORD on a server.

Never in formtool.toml, the journal, a log or any output.
"""

from __future__ import annotations

import os

from formtool.errors import FormtoolError
from formtool.workspace import MailSettings

PASSWORD_ENV = "FORMTOOL_SMTP_PASSWORD"
KEYRING_SERVICE = "formtool"


class CredentialsError(FormtoolError):
    """No password, or the keyring cannot be used."""


def keyring_account(settings: MailSettings) -> str:
    return f"{settings.user}@{settings.host}"


def password_for(settings: MailSettings) -> str | None:
    """The SMTP password: FORMTOOL_SMTP_PASSWORD, else the OS keyring; None without user."""
    if not settings.user:
        return None
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    import keyring  # slow to import: only when a password is needed
    import keyring.errors

    try:
        stored = keyring.get_password(KEYRING_SERVICE, keyring_account(settings))
    except keyring.errors.KeyringError as exc:
        raise CredentialsError(f"Schlüsselbund nicht erreichbar ({exc}). Auf Servern ohne "
                               f"Schlüsselbund: Passwort in {PASSWORD_ENV} setzen.") from None
    if stored is None:
        raise CredentialsError(f"Kein Passwort für {settings.user} gespeichert: bitte zuerst "
                               f"„formtool mail login“ (oder {PASSWORD_ENV} setzen).")
    return str(stored)


def store_password(settings: MailSettings, password: str) -> None:
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, keyring_account(settings), password)
    except keyring.errors.KeyringError as exc:
        raise CredentialsError(f"Passwort konnte nicht im Schlüsselbund gespeichert werden "
                               f"({exc}); auf Servern {PASSWORD_ENV} setzen.") from None


def login(settings: MailSettings, password: str) -> None:
    """`formtool mail login`: test the login, then keep the password in the keyring."""
    from formtool.mail import smtp

    smtp.check_settings(settings)
    if not settings.user:
        raise CredentialsError("In formtool.toml ist unter [smtp] kein user eingetragen.")
    session = smtp.Session(settings, password)
    try:
        session.connect()
    finally:
        session.close()
    store_password(settings, password)
