"""Use case: the mail templates in ``templates/`` – read, edited (saved atomically, kept
only when they load and render), and shown as the first recipients will see them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from formtool import atomic
from formtool.errors import FormtoolError
from formtool.mail.template import ComposeError, load_template
from formtool.usecases import mailing
from formtool.workspace import Workspace

SUFFIX = ".md.j2"
MAX_TEMPLATE = 200_000  # characters: a letter, not a book


class TemplateError(FormtoolError):
    """A template that cannot be found or kept."""


def names(ws: Workspace) -> list[str]:
    if not ws.templates_dir.is_dir():
        return []
    return sorted(p.name.removesuffix(SUFFIX) for p in ws.templates_dir.glob(f"*{SUFFIX}")
                  if p.is_file())


def path_of(ws: Workspace, name: str) -> Path:
    """A template by name; never a path outside templates/."""
    if name not in names(ws):
        raise TemplateError(f"Keine Vorlage „{name}“ in templates/ (vorhanden: "
                            f"{', '.join(names(ws)) or 'keine'}).")
    return ws.templates_dir / f"{name}{SUFFIX}"


def text_of(ws: Workspace, name: str) -> str:
    return path_of(ws, name).read_text(encoding="utf-8")


def save(ws: Workspace, name: str, text: str, contacts_file: Path | None = None) -> None:
    """Keep the new text if it loads – and, when a contact list is at hand, renders for
    every contact (an unknown ``{{ name }}`` is named with its line); otherwise the
    file stays as it was."""
    path = path_of(ws, name)
    if len(text) > MAX_TEMPLATE:
        raise TemplateError(f"Die Vorlage ist zu lang ({len(text)} Zeichen; höchstens "
                            f"{MAX_TEMPLATE}).")
    probe = path.with_name(f".{path.name}.neu")
    atomic.write_bytes(probe, text.replace("\r\n", "\n").encode("utf-8"))
    try:
        load_template(probe)
        if contacts_file is not None or len(list(ws.contacts_dir.glob("*.csv"))) == 1:
            run = mailing.open_mailing(ws, str(probe), contacts_file, name)
            problem = next(filter(None, map(run.problem, run.contacts)), None)
            if problem is not None:
                raise ComposeError(problem)
    except ComposeError as exc:
        probe.unlink(missing_ok=True)
        said = str(exc).replace(str(probe), path.name).replace(probe.name, path.name)
        raise TemplateError(f"Nicht gespeichert: {said}") from None
    except BaseException:
        probe.unlink(missing_ok=True)
        raise
    probe.replace(path)


@dataclass
class Sample:
    """One message as its recipient will see it."""

    to: str
    subject: str
    text: str
    html: str
    attachments: list[str] = field(default_factory=list)


def samples(ws: Workspace, name: str, contacts_file: Path | None = None, *,
            count: int = 3) -> tuple[list[Sample], list[str]]:
    """The first ``count`` messages of the list (no personal forms are made), and what
    the list tells (which file, the column mapping)."""
    run = mailing.open_mailing(ws, name, contacts_file, None)
    out = []
    for contact in itertools.islice(run.contacts, count):
        message = run.message(contact)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        out.append(Sample(str(message["To"]), str(message["Subject"]),
                          text.get_content() if text is not None else "",
                          html.get_content() if html is not None else "",
                          [part.get_filename() or "Anhang"
                           for part in message.iter_attachments()]))
    return out, run.contacts.described()
