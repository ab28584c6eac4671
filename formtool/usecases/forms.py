"""Use cases of ``formtool forms``: list the definitions, check them, make a blank form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from formtool.errors import FormDefinitionError
from formtool.pdf import formdef
from formtool.pdf.formdef import FormDefinition
from formtool.workspace import DEFAULT_ALLIANCE, Workspace, shipped_forms_dir


def forms_dir(ws: Workspace | None) -> Path:
    """The workspace's forms, or the shipped ones outside a workspace."""
    return ws.forms_dir if ws else shipped_forms_dir()


@dataclass(frozen=True)
class Listed:
    path: Path
    form: FormDefinition | None  # None: the definition has errors (see check)


def list_forms(ws: Workspace) -> list[Listed]:
    out = []
    for path in formdef.definitions(ws.forms_dir):
        try:
            out.append(Listed(path, formdef.load(path)))
        except FormDefinitionError:
            out.append(Listed(path, None))
    return out


@dataclass(frozen=True)
class Checked:
    path: Path
    error: str = ""  # every problem, one per line; empty when the definition is fine
    fields: int = 0
    pages: int = 0


def check(forms: Path, name: str | None = None) -> list[Checked]:
    """Check one definition (a name in forms/ or a path), or all of them."""
    from formtool.pdf import layout  # reportlab: only when a layout is measured

    paths = formdef.definitions(forms) if name is None else [
        formdef.find_definition(forms, name)]
    out = []
    for path in paths:
        try:
            definition = formdef.load(path)
        except FormDefinitionError as exc:
            out.append(Checked(path, str(exc)))
            continue
        pages = len(layout.paginate(layout.blocks(definition)))
        out.append(Checked(path, "", sum(1 for _ in definition.fields()), pages))
    return out


def generate_blank(ws: Workspace | None, name: str, output: Path | None) -> tuple[Path, str]:
    """One blank fillable PDF; returns where it was written and the form's title."""
    from formtool.pdf import layout

    definition = formdef.load(formdef.find_definition(forms_dir(ws), name))
    alliance = ws.alliance_name if ws else DEFAULT_ALLIANCE
    out = layout.write_blank(definition, output or Path(f"{definition.id}.pdf"),
                             alliance=alliance)
    return out, definition.title


def blank_pdf(ws: Workspace, name: str) -> tuple[str, bytes]:
    """A form's blank PDF, made now: (file name, bytes) – for a download."""
    from formtool.data.filenames import safe_filename
    from formtool.pdf import layout

    definition = formdef.load(formdef.find_definition(ws.forms_dir, name))
    data = layout.render(definition, alliance=ws.alliance_name)
    return safe_filename(definition.file_name, suffix=".pdf"), data
