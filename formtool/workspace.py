"""Find the workspace, load ``formtool.toml``, create new workspaces."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formtool.errors import WorkspaceError

CONFIG_NAME = "formtool.toml"
DEFAULT_ALLIANCE = "Bündnis für Qualität in der Kindertagesbetreuung Thüringen"

CONFIG_TEMPLATE = f"""\
# formtool – Einstellungen dieses Arbeitsordners.
# Hier steht NIE ein Passwort: das SMTP-Passwort liegt im Schlüsselbund des
# Betriebssystems („formtool mail login“) oder in FORMTOOL_SMTP_PASSWORD.

[buendnis]
# Name, der oben auf jeder Seite der Formulare steht.
name = "{DEFAULT_ALLIANCE}"

[sender]
# Absender der Rundmails. Ohne email sendet formtool nichts.
name = "{DEFAULT_ALLIANCE}"
email = ""            # z. B. "info@buendnis-kita-thueringen.de"
reply_to = ""         # Antworten an diese Adresse (leer: an email)
unsubscribe = ""      # Adresse für Abmeldungen (List-Unsubscribe; leer: email)

[smtp]
host = ""             # z. B. "smtp.ionos.de", "smtp.office365.com", "smtp.gmail.com"
port = 587            # 587 mit starttls, 465 mit ssl
security = "starttls" # starttls | ssl | none (none nur für einen Server auf diesem Rechner)
user = ""             # Anmeldename, meist die E-Mail-Adresse
auth = "password"     # password | oauth2 (Microsoft 365: Anmeldung über den Browser,
                      # dazu den Abschnitt [oauth] unten ausfüllen)
ca_file = ""          # eigene Zertifizierungsstelle (PEM), nur bei eigenen Servern nötig
connections = 1       # gleichzeitige Verbindungen, nur wenn der Anbieter es erlaubt
max_per_connection = 100  # danach wird neu verbunden
timeout = 60          # Sekunden

[limits]
# Wie viele E-Mails höchstens gesendet werden (0 = keine Grenze). Eine Voreinstellung
# setzt die Werte des Anbieters; einzelne Werte hier gehen ihr vor.
#   preset = "ionos"       # 500 pro Stunde (Verträge älter als 30 Tage)
#   preset = "ionos-neu"   # 50 pro Stunde (erste Woche)
#   preset = "m365"        # 30 pro Minute, 10.000 pro Tag (Microsoft 365 / Exchange Online)
#   preset = "gmail"       # 500 pro Tag (Google Workspace: "workspace", 2.000 pro Tag)
#   preset = "hosting-de"  # 120 pro Minute
# Ohne Angaben: 20 pro Minute, 300 pro Stunde, keine Tagesgrenze.
# per_minute = 20
# per_hour = 300
# per_day = 0
max_size_mb = 20      # größte E-Mail samt Anhängen
# reminder_days = 7   # eine Erinnerung früher als so viele Tage nach der Einladung: Hinweis

# [imap]
# Das Postfach, in dem die Antworten ankommen („formtool mail fetch“ holt Rückläufe,
# Abmeldungen und Unzustellbares ab). Passwort: „formtool mail login“ prüft das Postfach
# mit dem Versand-Passwort und fragt nur, wenn es ein anderes ist.
#   IONOS: imap.ionos.de · Strato: imap.strato.de · web.de: imap.web.de, GMX:
#   imap.gmx.net (IMAP erst in den Einstellungen erlauben) · Telekom:
#   secureimap.t-online.de · Gmail: imap.gmail.com (App-Passwort) · Microsoft 365:
#   outlook.office365.com – jeweils Port 993 mit security = "ssl".
# host = ""
# port = 993
# security = "ssl"              # ssl | starttls | none (none nur auf diesem Rechner)
# user = ""                     # leer: wie [smtp] user
# folder = "INBOX"
# done_folder = "formtool/erledigt"
# sent_copy = true              # jede gesendete E-Mail in „Gesendet“ ablegen; bei Gmail
#                               # und Microsoft 365 aus (die legen selbst eine Kopie ab)
# sent_folder = ""              # leer: der Ordner „Gesendet“/„Sent“ des Postfachs
# auth = "oauth2"               # leer: wie [smtp] auth

# [oauth]
# Anmeldung ohne Passwort (OAuth 2.0), z. B. für Microsoft 365, wo Passwörter für den
# Versand ab Ende Dezember 2026 abgelehnt werden. Dazu [smtp] auth = "oauth2" setzen;
# die IT registriert formtool einmal als App (Anleitung, Abschnitt „Microsoft 365“).
# Die Anmeldung selbst: „formtool mail login“; sie liegt danach im Schlüsselbund.
# provider = "microsoft"        # microsoft | oidc (ein eigener Anmeldedienst)
# client_id = ""                # Anwendungs-ID (Client-ID) der App-Registrierung
# tenant = "organizations"      # nur microsoft: Verzeichnis-ID (Tenant) oder Domain
# issuer = ""                   # nur oidc: https-Adresse des Anmeldedienstes
# scopes = []                   # nur oidc: die Berechtigungen für SMTP und IMAP
# ca_file = ""                  # nur oidc: eigene Zertifizierungsstelle (PEM)
# token_store = "keyring"       # keyring | file (nur ohne Schlüsselbund: eine Datei,
#                               # nur für Sie lesbar, außerhalb dieses Ordners)
"""


@dataclass(frozen=True)
class Workspace:
    """A formtool workspace: a folder with ``formtool.toml``."""

    root: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def forms_dir(self) -> Path:
        return self.root / "forms"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def contacts_dir(self) -> Path:
        return self.root / "contacts"

    @property
    def state_dir(self) -> Path:
        return self.root / ".formtool"

    @property
    def state_db(self) -> Path:
        return self.state_dir / "state.db"

    def mail_settings(self) -> MailSettings:
        return mail_settings(self.config)

    def imap_settings(self) -> ImapSettings:
        return imap_settings(self.config)

    def oauth_settings(self) -> OAuthSettings:
        return oauth_settings(self.config)

    @property
    def alliance_name(self) -> str:
        section = self.config.get("buendnis", {})
        name = section.get("name") if isinstance(section, dict) else None
        return name if isinstance(name, str) and name.strip() else DEFAULT_ALLIANCE


PRESETS: dict[str, dict[str, int]] = {
    "ionos": {"per_minute": 0, "per_hour": 500, "per_day": 0},
    "ionos-neu": {"per_minute": 0, "per_hour": 50, "per_day": 0},
    "m365": {"per_minute": 30, "per_hour": 0, "per_day": 10_000},
    "gmail": {"per_minute": 20, "per_hour": 0, "per_day": 500},
    "workspace": {"per_minute": 20, "per_hour": 0, "per_day": 2_000},
    "hosting-de": {"per_minute": 120, "per_hour": 0, "per_day": 0},
}
SECURITY = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class MailSettings:
    """[sender], [smtp] and [limits] of formtool.toml, checked."""

    sender_name: str = ""
    sender_email: str = ""
    reply_to: str = ""
    unsubscribe: str = ""
    host: str = ""
    port: int = 587
    security: str = "starttls"
    user: str = ""
    auth: str = "password"  # "password" | "oauth2"
    ca_file: str = ""
    connections: int = 1
    max_per_connection: int = 100
    timeout: float = 60.0
    per_minute: int = 20
    per_hour: int = 300
    per_day: int = 0
    max_size_mb: float = 20.0
    reminder_days: int = 7  # a reminder sooner than this after its campaign is named


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name, {})
    if not isinstance(value, dict):
        raise WorkspaceError(f"{CONFIG_NAME}: [{name}] muss ein Abschnitt sein.")
    return value


_KIND_NAMES = {str: "Text", bool: "true oder false"}


def _typed(section: dict[str, Any], where: str, key: str, kind: type, default: Any, *,
           positive: bool = False) -> Any:
    value = section.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WorkspaceError(f"{CONFIG_NAME}: [{where}] {key} = {value!r} – erwartet "
                             f"{_KIND_NAMES.get(kind, 'eine Zahl')}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise WorkspaceError(f"{CONFIG_NAME}: [{where}] {key} = {value!r} – erwartet eine "
                             "endliche Zahl.")
    if isinstance(value, (int, float)) and value < 0:
        raise WorkspaceError(f"{CONFIG_NAME}: [{where}] {key} darf nicht negativ sein.")
    if positive and isinstance(value, (int, float)) and value <= 0:
        raise WorkspaceError(f"{CONFIG_NAME}: [{where}] {key} muss größer als 0 sein.")
    return value


# Every section and key formtool.toml may hold: anything else is a typo that would
# otherwise be ignored silently (a limit believed set, a setting believed changed).
SCHEMA: dict[str, set[str]] = {
    "buendnis": {"name"},
    "sender": {"name", "email", "reply_to", "unsubscribe"},
    "smtp": {"host", "port", "security", "user", "auth", "ca_file", "connections",
             "max_per_connection", "timeout"},
    "limits": {"preset", "per_minute", "per_hour", "per_day", "max_size_mb", "reminder_days"},
    "imap": {"host", "port", "security", "user", "ca_file", "folder", "done_folder", "timeout",
             "sent_copy", "sent_folder", "auth"},
    "oauth": {"provider", "client_id", "tenant", "issuer", "scopes", "ca_file", "token_store"},
}


def _suggest(word: str, choices: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" – meinten Sie „{close[0]}“?" if close else ""


def _commented_header(text: str, section: str, key: str) -> tuple[int, str] | None:
    """Where ``key`` of ``section`` stands under a commented-out header of the section
    it belongs to ("# [imap]" above "host = …"): (line number, that section)."""
    import re

    current = ""
    commented = ""
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            current, commented = header.group(1).strip(), ""
            continue
        hidden = re.match(r"^\s*#+\s*\[([^\]]+)\]\s*$", line)
        if hidden:
            commented = hidden.group(1).strip()
            continue
        if current == section and commented in SCHEMA and key in SCHEMA[commented] and \
                re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number, commented
    return None


def check_config(config: dict[str, Any], path: Path, text: str = "") -> None:
    """Unknown sections and keys, and passwords, stop every command with one German line."""
    for section, value in config.items():
        if section.lower() in ("password", "passwort"):
            raise WorkspaceError(_password_hint(path, section))
        if section not in SCHEMA:
            raise WorkspaceError(f"{path}: unbekannter Abschnitt [{section}]"
                                 f"{_suggest(section, set(SCHEMA))} (bekannt: "
                                 f"{', '.join(f'[{s}]' for s in SCHEMA)}).")
        if not isinstance(value, dict):
            raise WorkspaceError(f"{path}: [{section}] muss ein Abschnitt sein.")
        for key in value:
            if "password" in key.lower() or "passwort" in key.lower():
                raise WorkspaceError(_password_hint(path, f"[{section}] {key}"))
            if key not in SCHEMA[section]:
                hidden = _commented_header(text, section, key)
                if hidden is not None:
                    raise WorkspaceError(
                        f"{path}, Zeile {hidden[0]}: {key} gehört zu [{hidden[1]}] – die Zeile "
                        f"„[{hidden[1]}]“ darüber ist noch auskommentiert: bitte dort das # "
                        "am Anfang entfernen.")
                raise WorkspaceError(f"{path}: [{section}] {key} ist unbekannt"
                                     f"{_suggest(key, SCHEMA[section])} (erlaubt: "
                                     f"{', '.join(sorted(SCHEMA[section]))}).")


def _password_hint(path: Path, where: str) -> str:
    return (f"{path}: {where} – ein Passwort gehört nie in diese Datei (sie wird kopiert, "
            "gesichert, weitergegeben). Bitte die Zeile löschen und das Passwort mit "
            "„formtool mail login“ im Schlüsselbund speichern (auf Servern: "
            "FORMTOOL_SMTP_PASSWORD).")


def mail_settings(config: dict[str, Any]) -> MailSettings:
    """The mail settings from a loaded formtool.toml; WorkspaceError names a bad key."""
    sender, smtp, limits = (_section(config, n) for n in ("sender", "smtp", "limits"))
    preset_name = limits.get("preset", "")
    if preset_name and preset_name not in PRESETS:
        raise WorkspaceError(f"{CONFIG_NAME}: [limits] preset = {preset_name!r} ist unbekannt "
                             f"(bekannt: {', '.join(PRESETS)}).")
    preset = PRESETS.get(preset_name, {})
    d = MailSettings()
    security = _typed(smtp, "smtp", "security", str, d.security)
    if security not in SECURITY:
        raise WorkspaceError(f"{CONFIG_NAME}: [smtp] security = {security!r} – erlaubt: "
                             f"{', '.join(SECURITY)}.")
    auth = _auth(smtp, "smtp", d.auth)
    return MailSettings(
        sender_name=_typed(sender, "sender", "name", str, DEFAULT_ALLIANCE),
        sender_email=_typed(sender, "sender", "email", str, "").strip(),
        reply_to=_typed(sender, "sender", "reply_to", str, "").strip(),
        unsubscribe=_typed(sender, "sender", "unsubscribe", str, "").strip(),
        host=_typed(smtp, "smtp", "host", str, "").strip(),
        port=_port(_typed(smtp, "smtp", "port", int, 465 if security == "ssl" else d.port)),
        security=security,
        user=_typed(smtp, "smtp", "user", str, "").strip(),
        auth=auth,
        ca_file=_typed(smtp, "smtp", "ca_file", str, "").strip(),
        connections=_typed(smtp, "smtp", "connections", int, d.connections, positive=True),
        max_per_connection=_typed(smtp, "smtp", "max_per_connection", int,
                                  d.max_per_connection, positive=True),
        timeout=_typed(smtp, "smtp", "timeout", float, d.timeout, positive=True),
        per_minute=_typed(limits, "limits", "per_minute", int,
                          preset.get("per_minute", d.per_minute)),
        per_hour=_typed(limits, "limits", "per_hour", int, preset.get("per_hour", d.per_hour)),
        per_day=_typed(limits, "limits", "per_day", int, preset.get("per_day", d.per_day)),
        max_size_mb=_typed(limits, "limits", "max_size_mb", float, d.max_size_mb,
                           positive=True),
        reminder_days=_typed(limits, "limits", "reminder_days", int, d.reminder_days),
    )


@dataclass(frozen=True)
class ImapSettings:
    """[imap] of formtool.toml, checked: the mailbox that replies come back to."""

    host: str = ""
    port: int = 993
    security: str = "ssl"
    user: str = ""  # default: the SMTP user
    ca_file: str = ""
    folder: str = "INBOX"
    done_folder: str = "formtool/erledigt"
    timeout: float = 60.0
    sent_copy: bool = False  # append what formtool sends to the Sent folder
    sent_folder: str = ""  # empty: found by the \Sent flag or the usual names
    auth: str = "password"  # default: as [smtp]


# Providers that file a copy of every message sent through their SMTP server
# themselves: a second copy from formtool would be a duplicate.
FILES_OWN_SENT_COPY = ("imap.gmail.com", "imap.googlemail.com", "outlook.office365.com",
                       "outlook.office.com", "imap-mail.outlook.com")


def imap_settings(config: dict[str, Any]) -> ImapSettings:
    """The IMAP settings; WorkspaceError names a bad key."""
    imap, smtp = _section(config, "imap"), _section(config, "smtp")
    d = ImapSettings()
    security = _typed(imap, "imap", "security", str, d.security)
    if security not in SECURITY:
        raise WorkspaceError(f"{CONFIG_NAME}: [imap] security = {security!r} – erlaubt: "
                             f"{', '.join(SECURITY)}.")
    port = _typed(imap, "imap", "port", int, 993 if security == "ssl" else 143)
    if not 1 <= port <= 65535:
        raise WorkspaceError(f"{CONFIG_NAME}: [imap] port = {port} – erlaubt sind 1 bis 65535 "
                             "(üblich: 993 mit ssl, 143 mit starttls).")
    host = _typed(imap, "imap", "host", str, "").strip()
    return ImapSettings(
        host=host, port=port, security=security,
        user=(_typed(imap, "imap", "user", str, "").strip()
              or _typed(smtp, "smtp", "user", str, "").strip()),
        ca_file=_typed(imap, "imap", "ca_file", str, "").strip(),
        folder=_typed(imap, "imap", "folder", str, d.folder).strip() or d.folder,
        done_folder=_typed(imap, "imap", "done_folder", str, d.done_folder).strip()
        or d.done_folder,
        timeout=_typed(imap, "imap", "timeout", float, d.timeout, positive=True),
        sent_copy=_typed(imap, "imap", "sent_copy", bool, bool(host) and host.lower()
                         not in FILES_OWN_SENT_COPY),
        sent_folder=_typed(imap, "imap", "sent_folder", str, "").strip(),
        auth=_auth(imap, "imap", _auth(smtp, "smtp", d.auth)))


AUTH = ("password", "oauth2")


def _auth(section: dict[str, Any], where: str, default: str) -> str:
    auth = str(_typed(section, where, "auth", str, default)).strip().lower()
    if auth not in AUTH:
        raise WorkspaceError(f"{CONFIG_NAME}: [{where}] auth = {auth!r} – erlaubt: "
                             "\"password\" (Passwort) oder \"oauth2\" (Anmeldung über den "
                             "Browser, z. B. Microsoft 365).")
    return auth


# Microsoft's identity platform: the device code and the tokens for Exchange Online's
# SMTP and IMAP (delegated permissions of a public client app registration).
MICROSOFT_LOGIN = "https://login.microsoftonline.com"
MICROSOFT_SCOPES = ("https://outlook.office.com/SMTP.Send",
                    "https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access")
OAUTH_PROVIDERS = ("microsoft", "oidc")
TOKEN_STORES = ("keyring", "file")


@dataclass(frozen=True)
class OAuthSettings:
    """[oauth] of formtool.toml, checked: who signs formtool in (OAuth 2.0)."""

    provider: str = "microsoft"
    client_id: str = ""
    tenant: str = "organizations"
    issuer: str = ""
    scopes: tuple[str, ...] = ()
    ca_file: str = ""
    token_store: str = "keyring"

    @property
    def authority(self) -> str:
        """The address that names the sign-in (and its stored tokens)."""
        if self.provider == "microsoft":
            return f"{MICROSOFT_LOGIN}/{self.tenant}"
        return self.issuer.rstrip("/")

    @property
    def all_scopes(self) -> tuple[str, ...]:
        return MICROSOFT_SCOPES if self.provider == "microsoft" else self.scopes


def uses_oauth(config: dict[str, Any]) -> bool:
    return mail_settings(config).auth == "oauth2" or imap_settings(config).auth == "oauth2"


def oauth_settings(config: dict[str, Any]) -> OAuthSettings:
    """The sign-in settings; WorkspaceError names a missing or bad value – checked
    whenever [smtp] or [imap] auth is "oauth2", before anything is sent."""
    section = _section(config, "oauth")
    d = OAuthSettings()
    provider = _typed(section, "oauth", "provider", str, d.provider).strip().lower()
    if provider not in OAUTH_PROVIDERS:
        raise WorkspaceError(f"{CONFIG_NAME}: [oauth] provider = {provider!r} – erlaubt: "
                             "\"microsoft\" (Microsoft 365) oder \"oidc\" (ein eigener "
                             "Anmeldedienst).")
    client_id = _typed(section, "oauth", "client_id", str, "").strip()
    tenant = _typed(section, "oauth", "tenant", str, d.tenant).strip() or d.tenant
    issuer = _typed(section, "oauth", "issuer", str, "").strip()
    scopes = section.get("scopes", [])
    if not isinstance(scopes, list) or not all(isinstance(x, str) and x.strip()
                                               for x in scopes):
        raise WorkspaceError(f"{CONFIG_NAME}: [oauth] scopes = {scopes!r} – erwartet eine "
                             "Liste von Texten, z. B. [\"smtp\", \"offline_access\"].")
    store = _typed(section, "oauth", "token_store", str, d.token_store).strip().lower()
    if store not in TOKEN_STORES:
        raise WorkspaceError(f"{CONFIG_NAME}: [oauth] token_store = {store!r} – erlaubt: "
                             "\"keyring\" (Schlüsselbund) oder \"file\".")
    import re

    if not client_id:
        raise WorkspaceError(f"{CONFIG_NAME}: [oauth] client_id fehlt – die Anwendungs-ID "
                             "(Client-ID) der App-Registrierung; die IT findet sie im Entra "
                             "Admin Center unter „App-Registrierungen“ (Anleitung, Abschnitt "
                             "„Microsoft 365“).")
    if provider == "microsoft":
        if not re.fullmatch(r"[A-Za-z0-9.-]+", tenant):
            raise WorkspaceError(f"{CONFIG_NAME}: [oauth] tenant = {tenant!r} – erwartet die "
                                 "Verzeichnis-ID (Tenant-ID), eine Domain wie "
                                 "\"buendnis.onmicrosoft.com\" oder \"organizations\".")
        if issuer or scopes:
            raise WorkspaceError(f"{CONFIG_NAME}: [oauth] issuer und scopes gelten nur für "
                                 "provider = \"oidc\"; bei Microsoft bitte löschen.")
    else:
        if not issuer.lower().startswith("https://") or len(issuer) <= len("https://"):
            raise WorkspaceError(f"{CONFIG_NAME}: [oauth] issuer = {issuer!r} – erwartet die "
                                 "https-Adresse des Anmeldedienstes (unverschlüsselt sendet "
                                 "formtool keine Anmeldung).")
        if not scopes:
            raise WorkspaceError(f"{CONFIG_NAME}: [oauth] scopes fehlt – die Berechtigungen "
                                 "für SMTP und IMAP beim Anmeldedienst, z. B. "
                                 "[\"smtp\", \"imap\", \"offline_access\"].")
    return OAuthSettings(provider=provider, client_id=client_id, tenant=tenant,
                         issuer=issuer, scopes=tuple(s.strip() for s in scopes),
                         ca_file=_typed(section, "oauth", "ca_file", str, "").strip(),
                         token_store=store)


def _port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise WorkspaceError(f"{CONFIG_NAME}: [smtp] port = {port} – erlaubt sind 1 bis 65535 "
                             "(üblich: 587 oder 465).")
    return port


def load(root: Path) -> Workspace:
    """Load the workspace at ``root`` (which must hold ``formtool.toml``), checked."""
    path = root / CONFIG_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WorkspaceError(
            f"{root}: kein formtool-Arbeitsordner ({CONFIG_NAME} fehlt)."
        ) from None
    except OSError as exc:
        raise WorkspaceError(f"{path}: kann nicht gelesen werden: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise WorkspaceError(f"{path}, Zeile {line}: die Datei ist nicht als UTF-8 gespeichert "
                             "(wohl als „ANSI“/Windows-1252). Bitte im Editor mit "
                             "„Speichern unter …“ die Codierung UTF-8 wählen.") from None
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorkspaceError(_toml_problem(path, str(exc))) from None
    check_config(config, path, text)
    mail_settings(config)  # every value in range, for every command (not only mail)
    if "oauth" in config or uses_oauth(config):
        oauth_settings(config)
    return Workspace(root=root.resolve(), config=config)


def _toml_problem(path: Path, message: str) -> str:
    """tomllib's English message as a German line naming where (and the usual cause)."""
    import re

    where = re.search(r"\(at line (\d+), column (\d+)\)", message)
    at = f", Zeile {where.group(1)}, Spalte {where.group(2)}" if where else ""
    return (f"{path}{at}: die Einstellungen sind nicht lesbar. Häufige Ursachen: ein Text ohne "
            "Anführungszeichen (email = \"info@…\"), ein fehlendes Anführungszeichen am "
            "Zeilenende, ein Schlüssel doppelt.")


def find(start: Path | None = None) -> Workspace:
    """Find the workspace at ``start`` or the nearest folder above it, like git."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_NAME).is_file():
            return load(candidate)
    raise WorkspaceError(
        f"Kein formtool-Arbeitsordner gefunden (in {here} und darüber gibt es keine "
        f"{CONFIG_NAME}). Legen Sie einen an mit: formtool init ORDNER"
    )


SHIPPED = ("forms", "templates", "contacts")  # what `init` copies into a new workspace


def _examples() -> Path:
    """Where the shipped forms, templates and contacts are: in an installed wheel
    ``formtool/examples/`` (the build puts the repository's top-level folders there),
    in a source checkout the repository's top level itself."""
    from importlib import resources

    packaged = Path(str(resources.files("formtool") / "examples"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent


def shipped_forms_dir() -> Path:
    """The forms shipped with formtool, used by name outside any workspace."""
    return _examples() / "forms"


def init(root: Path) -> list[Path]:
    """Create a workspace at ``root``; never overwrite. Returns the files created."""
    import shutil

    created: list[Path] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        config = root / CONFIG_NAME
        if not config.exists():
            config.write_text(CONFIG_TEMPLATE, encoding="utf-8")
            created.append(config)
        examples = _examples()
        for source in sorted(p for folder in SHIPPED for p in (examples / folder).rglob("*")):
            if not source.is_file() or "__pycache__" in source.parts:
                continue
            target = root / source.relative_to(examples)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            created.append(target)
    except OSError as exc:
        raise WorkspaceError(
            f"{root}: Arbeitsordner kann nicht angelegt werden: {exc.strerror or exc}"
        ) from None
    return created
