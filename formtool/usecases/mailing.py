"""A mail run: template + contact list -> checked messages -> preview files or the outbox.

Every contact is rendered once before anything is sent (``check``), so a
missing variable or attachment stops the run before the first message.
Messages are built again, one at a time, while sending: memory stays flat.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from formtool import atomic
from formtool.data.filenames import safe_filename
from formtool.errors import os_reason
from formtool.mail import contacts
from formtool.mail.contacts import Contact, ContactList
from formtool.mail.message import Attachment, build, to_bytes
from formtool.mail.outbox import Job
from formtool.mail.smtp import Built
from formtool.mail.template import (
    ComposeError,
    Rendered,
    Sender,
    Template,
    context,
    load_template,
    render,
    template_path,
)
from formtool.pdf import formdef, layout
from formtool.state.store import Store
from formtool.usecases.personal import PersonalForms
from formtool.workspace import MailSettings, Workspace

FORM_PREFIX = "formular:"
ATTACH_DIR = "anhaenge"  # `Attach:` takes files from here, and from nowhere else


def attachment_path(ws: Workspace, value: str) -> Path:
    """A file named by ``Attach:`` (``Flyer.pdf`` or ``anhaenge/Flyer.pdf``), inside the
    workspace's anhaenge/ folder: a value from a contact row must never attach
    /etc/passwd or state.db. Absolute paths, ``..`` and links that lead out are refused."""
    base = (ws.root / ATTACH_DIR).resolve()
    relative = Path(value.replace("\\", "/"))
    if relative.parts[:1] == (ATTACH_DIR,):
        relative = Path(*relative.parts[1:]) if len(relative.parts) > 1 else Path()
    refused = ComposeError(f"Anhang „{value}“: angehängt werden nur Dateien aus dem Ordner "
                           f"{ATTACH_DIR}/ des Arbeitsordners (kein absoluter Pfad, kein "
                           "„..“, keine Verknüpfung nach draußen).")
    if relative.is_absolute() or relative.drive or ".." in relative.parts or not relative.parts:
        raise refused
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise refused
    return path


@dataclass
class Mailing:
    """One template sent to one contact list, in a workspace."""

    workspace: Workspace
    template: Template
    contacts: ContactList
    settings: MailSettings
    campaign: str
    personal: PersonalForms | None = None  # --attach-form: each contact's own form
    _files: dict[str, Attachment] = field(default_factory=dict)

    @property
    def sender(self) -> Sender:
        s = self.settings
        return Sender(s.sender_name, s.sender_email or "absender@beispiel.invalid",
                      s.reply_to, s.unsubscribe)

    @property
    def max_bytes(self) -> int:
        return int(self.settings.max_size_mb * 1024 * 1024)

    def _source(self) -> str:
        try:
            return str(self.contacts.path.relative_to(self.workspace.root))
        except ValueError:
            return str(self.contacts.path)

    def _personal(self, contact: Contact) -> Attachment:
        assert self.personal is not None
        path = self.personal.path_for(contact)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ComposeError(f"{path}: kann nicht gelesen werden ({os_reason(exc)}).") from None
        return Attachment(safe_filename(self.personal.form.file_name, suffix=".pdf"), data)

    def _attachments(self, rendered: Rendered, contact: Contact | None
                     ) -> list[Attachment]:
        """The template's attachments; with --attach-form the contact's own form
        takes the place of the blank one (and is added when the template has none)."""
        own = f"{FORM_PREFIX}{self.personal.form.id}" if self.personal else None
        out = []
        for value in rendered.attach:
            if value == own:
                continue
            out.append(self._attachment(value))
        if own is not None and contact is not None:
            out.append(self._personal(contact))
        return out

    def _attachment(self, value: str) -> Attachment:
        """``formular:NAME`` -> the blank form; anything else a file in the workspace."""
        cached = self._files.get(value)
        if cached is not None:
            return cached
        if value.startswith(FORM_PREFIX):
            name = value.removeprefix(FORM_PREFIX).strip()
            form = formdef.load(formdef.find_definition(self.workspace.forms_dir, name))
            data = layout.render(form, alliance=self.workspace.alliance_name)
            attachment = Attachment(safe_filename(form.file_name, suffix=".pdf"), data)
        else:
            path = attachment_path(self.workspace, value)
            try:
                attachment = Attachment(safe_filename(path.name), path.read_bytes())
            except FileNotFoundError:
                raise ComposeError(f"Anhang „{value}“: keine solche Datei im Ordner "
                                   f"{ATTACH_DIR}/ des Arbeitsordners.") from None
            except OSError as exc:
                raise ComposeError(f"Anhang „{value}“: kann nicht gelesen werden "
                                   f"({os_reason(exc)}).") from None
        self._files[value] = attachment
        return attachment

    def _variables(self, contact: Contact) -> dict[str, Any]:
        return context(contact, self.sender, {"kampagne": self.campaign})

    def message(self, contact: Contact) -> EmailMessage:
        rendered = render(self.template, contact, self._variables(contact),
                                  self._source())
        return build(rendered, contact, self.sender,
                             attachments=self._attachments(rendered, contact))

    def built(self, contact: Contact) -> Built:
        message = self.message(contact)
        return Built.of(message, to_bytes(message, contact, self.max_bytes))

    def problem(self, contact: Contact) -> str | None:
        """Render one contact as the run would (templates, attachments, size), or say why
        it cannot be sent. Personal forms are made later, while sending; the size is
        estimated (base64 adds a third) and checked exactly when the message is built."""
        try:
            rendered = render(self.template, contact, self._variables(contact),
                                      self._source())
            try:
                attachments = self._attachments(rendered, None)
            except ComposeError as exc:
                raise ComposeError(f"Zeile {contact.row} ({contact.key}): {exc}") from None
            size = (sum(len(a.data) for a in attachments) * 4 // 3 + len(rendered.text)
                    + len(rendered.html) * 2)
            if size > self.max_bytes:
                raise ComposeError(f"Zeile {contact.row} ({contact.key}): die E-Mail wird "
                                   f"etwa {size / 1024 / 1024:.1f} MB groß (Grenze "
                                   f"{self.settings.max_size_mb:g} MB); bitte kleinere "
                                   "Anhänge.")
        except ComposeError as exc:
            return str(exc)
        return None

    def jobs(self, selected: Iterable[Contact]) -> Iterator[Job]:
        for contact in selected:
            yield Job(contact, functools.partial(self.built, contact))

    def preview(self, out_dir: Path, selected: Iterable[Contact]) -> Iterator[Path]:
        """Write one .eml per contact (they open in Thunderbird and Outlook), numbered in
        the order of the list (1, 2, …) and named by the contact's id."""
        for number, contact in enumerate(selected, start=1):
            message = self.message(contact)
            data = to_bytes(message, contact, self.max_bytes)
            path = out_dir / safe_filename(f"{number:05d}_{contact.key}", suffix=".eml")
            atomic.write_bytes(path, data)
            yield path


def open_mailing(ws: Workspace, template: str, contacts_file: Path | None,
                 campaign: str | None, *, store: Store | None = None,
                 attach_form: str | None = None, sheet: str | None = None) -> Mailing:
    """A mailing; with ``attach_form`` (needs ``store``) each contact gets its own form;
    ``sheet``: the sheet of a workbook list (else its first)."""
    path = template_path(ws.templates_dir, template)
    loaded = load_template(path)
    name = campaign or loaded.name
    personal = None
    if attach_form is not None:
        assert store is not None
        form = formdef.load(formdef.find_definition(ws.forms_dir, attach_form))
        personal = PersonalForms(form, layout.render(form, alliance=ws.alliance_name), store,
                                 ws.root / "formulare" / name, name)
    chosen = contacts.read(contacts_file or default_contacts(ws), sheet)
    if contacts_file is None:
        chosen.passed_over = passed_over(ws, chosen.path)
    return Mailing(ws, loaded, chosen, ws.mail_settings(), name, personal)


def passed_over(ws: Workspace, chosen: Path) -> list[str]:
    """Other lists in contacts/ that were not read (a workbook, a second file): named, so
    that nobody believes the wrong list went out."""
    out = []
    for path in sorted(ws.contacts_dir.iterdir()):
        if path == chosen or not path.is_file() or path.name.startswith((".", "~$")):
            continue
        how = (" (eine Tabelle, die formtool nicht liest: bitte in Excel als .xlsx oder "
               "„CSV UTF-8“ speichern)"
               if path.suffix.lower() in (".xls", ".ods", ".numbers") else "")
        out.append(f"{path.name}{how}")
    return out


LIST_SUFFIXES = (".csv", ".xlsx", ".xlsm")


def default_contacts(ws: Workspace) -> Path:
    found = sorted(p for p in ws.contacts_dir.iterdir() if p.is_file()
                   and p.suffix.lower() in LIST_SUFFIXES
                   and not p.name.startswith((".", "~$"))) if ws.contacts_dir.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        others = sorted(p.name for p in ws.contacts_dir.glob("*") if p.is_file())
        raise contacts.ContactsError(
            f"In {ws.contacts_dir} ist keine Kontaktliste (.csv oder .xlsx)"
            + (f" (da sind: {', '.join(others)} – bitte in Excel als .xlsx oder „CSV "
               "UTF-8“ speichern)" if others else "") + ".")
    names = ", ".join(p.name for p in found)
    raise contacts.ContactsError(f"Bitte die Kontaktliste mit --contacts angeben "
                                 f"(in {ws.contacts_dir}: {names}).")
