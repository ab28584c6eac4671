"""Rows that would go out less personal than the template means: the generic
"Sehr geehrte Damen und Herren," where the text greets by name, or a personal form
whose pre-filled fields stay empty. Usually a column the list names differently (or
not at all); said once, before the send question, with the count and an example."""

from __future__ import annotations

from collections import Counter

from formtool.mail.contacts import Contact
from formtool.mail.template import Template, salutation
from formtool.pdf.formdef import FormDefinition

GENERIC = "Sehr geehrte Damen und Herren,"
SHARE = 0.1  # warn when at least this share of the rows (and at least one) is affected


class Gaps:
    """Counts, row by row, what a template or personal form leaves impersonal."""

    def __init__(self, template: Template, form: FormDefinition | None) -> None:
        self.greets = "anrede_brief" in template.variables
        # required fields only: an empty "Titel" or "Telefon" is normal, an empty
        # "Organisation" in a personal form is a column the list names differently
        self.fields = [(f.label or f.name, f.prefill) for f in form.fields()
                       if f.prefill and f.required] if form is not None else []
        self.rows = 0
        self.generic = 0
        self.generic_example = ""
        self.empty: Counter[str] = Counter()
        self.empty_example: dict[str, str] = {}

    def add(self, contact: Contact) -> None:
        self.rows += 1
        if self.greets and salutation(contact) == GENERIC:
            self.generic += 1
            self.generic_example = self.generic_example or _named(contact)
        for label, column in self.fields:
            if not contact.get(column).strip():
                self.empty[label] += 1
                self.empty_example.setdefault(label, _named(contact))

    def _many(self, count: int) -> bool:
        return count > 0 and count >= max(1.0, SHARE * self.rows)

    def warnings(self) -> list[str]:
        out = []
        if self._many(self.generic):
            out.append(f"{self.generic} von {self.rows} E-Mails beginnen mit „{GENERIC}“, "
                       f"z. B. {self.generic_example} – fehlen in der Kontaktliste die "
                       "Spalten „anrede“ (Frau/Herr) und „nachname“?")
        many = [label for label, count in self.empty.items() if self._many(count)]
        if many:
            worst = max(many, key=lambda label: self.empty[label])
            shown = ", ".join(f"„{label}“ ({self.empty[label]})" for label in many)
            out.append(f"Im persönlichen Formular bleiben Felder leer: {shown} von "
                       f"{self.rows} Formularen, z. B. {self.empty_example[worst]} – "
                       "heißt die Spalte in der Kontaktliste anders?")
        return out


def _named(contact: Contact) -> str:
    return f"Zeile {contact.row} ({contact.email or contact.key})"
