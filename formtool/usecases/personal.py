"""Use case: personal, pre-filled forms (``formtool forms generate FORM --contacts``).

Each contact gets the blank form plus one incremental update with their data and
a hidden response id (``pdf/fill.py`` writes it); ``state.db`` records which id
went to whom, so the import can match every return to its sender.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from formtool import atomic
from formtool.data.filenames import safe_filename
from formtool.mail import contacts as contact_lists
from formtool.mail.contacts import Contact, Skipped
from formtool.pdf import formdef, layout
from formtool.pdf.fill import Personaliser, new_response_id
from formtool.pdf.formdef import FormDefinition
from formtool.state.store import Store
from formtool.workspace import Workspace


def prefill_values(form: FormDefinition, contact: Contact) -> dict[str, str]:
    """The form's ``prefill`` mapping applied to one contact (choices by label or value)."""
    values: dict[str, str] = {}
    for field in form.fields():
        if not field.prefill:
            continue
        value = contact.get(field.prefill).strip()
        if field.options:
            match = next((o.value for o in field.options
                          if value.lower() in (o.label.lower(), o.value.lower())), None)
            if match is None:
                continue
            value = match
        if value:
            values[field.name] = value
    return values


def personal_file_name(form: FormDefinition, contact: Contact) -> str:
    """E.g. ``Buendnispartner_Diakonie-Gotha_FB-00012.pdf``: readable, safe everywhere."""
    parts = [form.id.capitalize(), contact.get("organisation") or contact.display_name,
             contact.key]
    text = "_".join(safe_filename(p, ascii_only=True, max_length=48).replace(" ", "-")
                    for p in parts if p)
    return safe_filename(text, suffix=".pdf", max_length=100, ascii_only=True)


class PersonalForms:
    """Issues personal forms of one definition: response ids in state.db, files on disk."""

    def __init__(self, form: FormDefinition, blank: bytes, store: Store, out_dir: Path,
                 campaign: str) -> None:
        self.form = form
        self.filler = Personaliser(form, blank)
        self.store = store
        self.out_dir = out_dir
        self.campaign = campaign
        self.cut: list[str] = []  # "FB-00003: E-Mail", values too long even when drawn small
        self._labels = {f.name: f.label for f in form.fields()}

    def path_for(self, contact: Contact) -> Path:
        """The contact's form for this campaign: reused when issued before, else made."""
        issued = self.store.issued(self.form.id, contact.key, self.campaign)
        if issued is not None and Path(issued.file).is_file():
            return Path(issued.file)
        response_id = issued.response_id if issued else new_response_id()
        path = self.out_dir / personal_file_name(self.form, contact)
        self.write(contact, response_id, path)
        return path

    def write(self, contact: Contact, response_id: str, path: Path) -> None:
        filled = self.filler.fill_reporting(prefill_values(self.form, contact), response_id)
        self.cut.extend(f"{contact.key}: {self._labels.get(name, name)}" for name in filled.cut)
        atomic.write_bytes(path, filled.data, fsync=False)  # regenerable: no fsync per file
        self.store.remember_contact(key=contact.key, email=contact.email,
                                    name=contact.display_name,
                                    organisation=contact.get("organisation"),
                                    address=contact.address)
        self.store.issue(response_id=response_id, form_id=self.form.id, contact_key=contact.key,
                         campaign=self.campaign, file=str(path))

    def issue_all(self, contacts: Iterable[Contact]) -> Iterator[tuple[Contact, Path]]:
        """A personal form for each contact, in one transaction per 500 (fast, and safe)."""
        batch: list[Contact] = []
        for contact in contacts:
            batch.append(contact)
            if len(batch) == 500:
                yield from self._issue_batch(batch)
                batch = []
        yield from self._issue_batch(batch)

    def _issue_batch(self, batch: list[Contact]) -> Iterator[tuple[Contact, Path]]:
        with self.store.transaction():
            done = [(contact, self.path_for(contact)) for contact in batch]
        yield from done


@dataclass
class Issued:
    """What ``issue_forms`` made."""

    title: str
    campaign: str
    target: Path
    count: int = 0
    skipped: list[Skipped] = dataclasses.field(default_factory=list)
    cut: list[str] = dataclasses.field(default_factory=list)  # values too long for their field


def issue_forms(ws: Workspace, form: str, contacts_file: Path, *, sheet: str | None = None,
                out_dir: Path | None = None,
                campaign: str | None = None) -> Issued:
    """A personal form for every valid contact of the list; bad rows are in ``skipped``."""
    definition = formdef.load(formdef.find_definition(ws.forms_dir, form))
    contact_list = contact_lists.read(contacts_file, sheet)
    name = campaign or definition.id
    target = out_dir or ws.root / "formulare" / name
    blank = layout.render(definition, alliance=ws.alliance_name)
    result = Issued(definition.title, name, target)
    with Store(ws.state_db) as store:
        personal = PersonalForms(definition, blank, store, target, name)
        for _ in personal.issue_all(contact_list):
            result.count += 1
        result.cut = personal.cut
    result.skipped = list(contact_list.skipped)
    return result
