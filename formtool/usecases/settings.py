"""Use case: the settings of formtool.toml as a form – provider presets, a rewrite that
keeps every comment (tomlkit), checked exactly as loading checks them; the password to
the OS keyring only, never into the file and never back into a page."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from formtool import atomic
from formtool.errors import FormtoolError
from formtool.usecases import credentials
from formtool.workspace import CONFIG_NAME, Workspace, check_config

# provider -> (smtp host, port, security, imap host, [limits] preset, auth)
PRESETS: dict[str, tuple[str, int, str, str, str, str]] = {
    "IONOS (1&1)": ("smtp.ionos.de", 587, "starttls", "imap.ionos.de", "ionos", "password"),
    "Strato": ("smtp.strato.de", 465, "ssl", "imap.strato.de", "", "password"),
    "GMX": ("mail.gmx.net", 587, "starttls", "imap.gmx.net", "", "password"),
    "web.de": ("smtp.web.de", 587, "starttls", "imap.web.de", "", "password"),
    "Telekom (t-online)": ("securesmtp.t-online.de", 465, "ssl", "secureimap.t-online.de", "",
                           "password"),
    "mailbox.org": ("smtp.mailbox.org", 465, "ssl", "imap.mailbox.org", "", "password"),
    "Posteo": ("posteo.de", 587, "starttls", "posteo.de", "", "password"),
    "Gmail / Google Workspace": ("smtp.gmail.com", 587, "starttls", "imap.gmail.com", "gmail",
                                 "password"),
    "Microsoft 365": ("smtp.office365.com", 587, "starttls", "outlook.office365.com", "m365",
                      "oauth2"),
}
FIELDS = {  # form field -> (section, key, kind)
    "sender_name": ("sender", "name", str), "sender_email": ("sender", "email", str),
    "reply_to": ("sender", "reply_to", str),
    "smtp_host": ("smtp", "host", str), "smtp_port": ("smtp", "port", int),
    "smtp_security": ("smtp", "security", str), "smtp_user": ("smtp", "user", str),
    "smtp_auth": ("smtp", "auth", str),
    "imap_host": ("imap", "host", str), "imap_port": ("imap", "port", int),
    "imap_security": ("imap", "security", str), "imap_user": ("imap", "user", str),
    "imap_folder": ("imap", "folder", str),
    "preset": ("limits", "preset", str),
}


class SettingsError(FormtoolError):
    """Settings that cannot be kept."""


@dataclass
class Current:
    values: dict[str, str]  # form field -> value as written (never a password)
    password_stored: bool  # for [smtp]; its value is never shown
    oauth: bool = False  # [smtp] or [imap] auth = "oauth2": a sign-in instead of a password
    signed_in: bool = False
    mailbox: bool = False  # an [imap] host is set


def current(ws: Workspace) -> Current:
    config = ws.config
    values = {}
    for field, (section, key, _) in FIELDS.items():
        value = config.get(section, {}).get(key, "")
        values[field] = "" if value is None else str(value)
    values["imap_security"] = values["imap_security"] or "ssl"  # the defaults formtool uses
    values["imap_port"] = values["imap_port"] or "993"
    mail = ws.mail_settings()
    stored = False
    if mail.user and mail.auth == "password":
        try:
            credentials.password_for(mail)
            stored = True
        except FormtoolError:
            stored = False
    box = ws.imap_settings()
    oauth = mail.auth == "oauth2" or (bool(box.host) and box.auth == "oauth2")
    signed = False
    if oauth:
        from formtool.usecases import signin

        try:
            signin.signed_in(ws)
            signed = True
        except FormtoolError:
            signed = False
    return Current(values, stored, oauth, signed, bool(box.host))


def apply_preset(values: dict[str, str], provider: str) -> dict[str, str]:
    """The provider's host, port, security (and limits, sign-in) over ``values``."""
    if provider not in PRESETS:
        raise SettingsError(f"Unbekannter Anbieter „{provider}“.")
    host, port, security, imap_host, preset, auth = PRESETS[provider]
    out = dict(values)
    out.update(smtp_host=host, smtp_port=str(port), smtp_security=security, smtp_auth=auth,
               imap_host=imap_host, imap_port="993", imap_security="ssl", preset=preset)
    if not out.get("imap_folder"):
        out["imap_folder"] = "INBOX"
    return out


def save(ws: Workspace, values: dict[str, str]) -> None:
    """Write the values into formtool.toml, keeping its comments and everything else;
    checked as loading checks it – on a problem the file stays as it was."""
    import tomlkit

    path = ws.root / CONFIG_NAME
    text = path.read_text(encoding="utf-8-sig")
    document = tomlkit.parse(text)
    no_mailbox = not values.get("imap_host", "").strip() and "imap" not in document
    for field, (section, key, kind) in FIELDS.items():
        if field not in values or (section == "imap" and no_mailbox):
            continue
        raw = values[field].strip()
        if any(ord(c) < 32 for c in raw):
            raise SettingsError(f"{key}: Steuerzeichen sind nicht erlaubt.")
        table: Any = document.get(section)
        if not raw and (table is None or key not in table):
            continue  # nothing to write, nothing written before
        if table is None:
            table = tomlkit.table()
            document[section] = table
        if kind is int:
            try:
                table[key] = int(raw)
            except ValueError:
                raise SettingsError(f"[{section}] {key}: eine Zahl bitte, nicht „{raw}“."
                                    ) from None
        elif key == "preset" and not raw:
            del table[key]
        else:
            table[key] = raw
    new = tomlkit.dumps(document)
    config = tomllib.loads(new)
    check_config(config, path, new)
    probe = Workspace(root=ws.root, config=config)
    probe.mail_settings()
    probe.imap_settings()
    atomic.write_bytes(path, new.encode("utf-8"))


def keep_password(ws: Workspace, password: str, *, test: bool = True) -> None:
    """The [smtp] password into the OS keyring – after a login that works (``test``)."""
    if not password:
        raise SettingsError("Bitte das Passwort eingeben.")
    settings = ws.mail_settings()
    if test:
        credentials.login(settings, password, store=True)
    else:
        credentials.store_password(settings, password)


def keep_mailbox_password(ws: Workspace, password: str) -> None:
    """The [imap] password into the OS keyring – after a login to the mailbox that works."""
    if not password:
        raise SettingsError("Bitte das Passwort eingeben.")
    box = ws.imap_settings()
    if not box.host:
        raise SettingsError("Kein Postfach eingetragen (oben unter „Postfach“).")
    credentials.imap_login(box, password)


def test_connection(ws: Workspace) -> list[str]:
    """Log in to the SMTP server and the mailbox (if set) with what is stored, and out
    again: a German line for each – success, or the cause-naming message of the CLI."""
    from formtool.mail import imap as mailbox
    from formtool.mail import smtp

    settings = ws.mail_settings()
    lines = []
    try:
        credentials.check_settings(settings)
        session = smtp.Session(settings, credentials.sending_secret(ws))
        try:
            session.connect()
        finally:
            session.close()
        lines.append(f"Versand: Anmeldung bei {settings.host} erfolgreich.")
    except FormtoolError as exc:
        lines.append(f"Versand: {exc}")
    box = ws.imap_settings()
    if box.host:
        try:
            with mailbox.Connection(box, credentials.mailbox_secret(ws)) as connection:
                connection.select(box.folder)
            lines.append(f"Postfach: Anmeldung bei {box.host} erfolgreich, Ordner "
                         f"„{box.folder}“ gefunden.")
        except FormtoolError as exc:
            lines.append(f"Postfach: {exc}")
    return lines
