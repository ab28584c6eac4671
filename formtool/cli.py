"""The command line: parse, call the library, print. No PDF, SMTP or SQL here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from formtool import __version__, formdef, layout, workspace
from formtool.errors import FormDefinitionError, FormtoolError
from formtool.workspace import Workspace


class _Failure(click.ClickException):
    """A FormtoolError as the user sees it: one German message, exit 1."""

    def show(self, file: Any = None) -> None:
        click.secho(f"Fehler: {self.format_message()}", err=True, fg="red")


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FormtoolError as exc:
            raise _Failure(str(exc)) from None


class _State:
    def __init__(self, workspace_dir: Path | None) -> None:
        self.workspace_dir = workspace_dir
        self._workspace: Workspace | None = None

    def workspace(self) -> Workspace:
        if self._workspace is None:
            if self.workspace_dir is not None:
                self._workspace = workspace.load(self.workspace_dir)
            else:
                self._workspace = workspace.find()
        return self._workspace

    def optional_workspace(self) -> Workspace | None:
        try:
            return self.workspace()
        except FormtoolError:
            return None


pass_state = click.make_pass_decorator(_State)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--workspace", "workspace_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Arbeitsordner (sonst: der aktuelle Ordner oder der nächste darüber mit "
                   "formtool.toml).")
@click.version_option(__version__, prog_name="formtool")
@click.pass_context
def cli(ctx: click.Context, workspace_dir: Path | None) -> None:
    """formtool: ausfüllbare PDF-Formulare erzeugen, Rückläufe einlesen, Rundmails senden.

    \b
    Example:
        formtool init buendnis
        cd buendnis
        formtool forms generate buendnispartner
    """
    ctx.obj = _State(workspace_dir)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Neuen Arbeitsordner mit Beispiel-Formularen, -Vorlagen und -Kontakten anlegen.

    Vorhandene Dateien werden nie überschrieben.

    \b
    Example:
        formtool init buendnis
    """
    created = workspace.init(directory)
    if not created:
        click.echo(f"{directory}: alles schon vorhanden, nichts geändert.")
        return
    click.echo(f"Arbeitsordner {directory} angelegt:")
    for path in created:
        click.echo(f"  {path.relative_to(directory)}")
    click.echo(f"Weiter mit: cd {directory} && formtool forms list")


@cli.group(cls=_Group)
def forms() -> None:
    """Formular-Definitionen (forms/*.toml) prüfen und als PDF erzeugen.

    \b
    Example:
        formtool forms list
        formtool forms generate buendnispartner -o beitritt.pdf
    """


@forms.command("list")
@pass_state
def forms_list(state: _State) -> None:
    """Alle Formulare des Arbeitsordners mit ihren Feldern zeigen.

    \b
    Example:
        formtool forms list
    """
    ws = state.workspace()
    paths = formdef.definitions(ws.forms_dir)
    if not paths:
        click.echo(f"Keine Formulare in {ws.forms_dir}.")
        return
    for path in paths:
        try:
            form = formdef.load(path)
        except FormDefinitionError:
            click.echo(f"{path.stem}: fehlerhaft – Details mit: formtool forms check {path.stem}")
            continue
        click.echo(f"{form.id} (Version {form.version}): {form.title}")
        for field in form.fields():
            mark = "*" if field.required else " "
            click.echo(f"   {mark} {field.name:<28} {field.type:<10} {field.label}")


@forms.command("check")
@click.argument("form", required=False)
@pass_state
def forms_check(state: _State, form: str | None) -> None:
    """Formular-Definition prüfen; jeder Fehler mit Datei, Zeile und Feld.

    Ohne FORM werden alle Formulare des Arbeitsordners geprüft.

    \b
    Example:
        formtool forms check buendnispartner
        formtool forms check forms/neu.toml
    """
    if form is None:
        paths = formdef.definitions(state.workspace().forms_dir)
    else:
        paths = [formdef.find_definition(_forms_dir(state), form)]
    failed = []
    for path in paths:
        try:
            definition = formdef.load(path)
        except FormDefinitionError as exc:
            click.echo(str(exc), err=True)
            failed.append(path)
            continue
        pages = len(layout.paginate(layout.blocks(definition)))
        count = sum(1 for _ in definition.fields())
        click.echo(f"{path.name}: in Ordnung ({count} Felder, {pages} Seite(n))")
    if failed:
        raise _Failure(f"{len(failed)} von {len(paths)} Formular-Definition(en) fehlerhaft.")


@forms.command("generate")
@click.argument("form")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Ziel-PDF (Standard: FORMULAR.pdf im aktuellen Ordner).")
@pass_state
def forms_generate(state: _State, form: str, output: Path | None) -> None:
    """Ein leeres, ausfüllbares PDF-Formular erzeugen.

    FORM ist der Name eines Formulars im Ordner forms/ oder der Pfad zu einer .toml-Datei.

    \b
    Example:
        formtool forms generate buendnispartner
        formtool forms generate regionalgruppe -o Regionalgruppe_gruenden.pdf
    """
    definition = formdef.load(formdef.find_definition(_forms_dir(state), form))
    ws = state.optional_workspace()
    alliance = ws.alliance_name if ws else workspace.DEFAULT_ALLIANCE
    out = layout.write_blank(definition, output or Path(f"{definition.id}.pdf"),
                             alliance=alliance)
    click.echo(f"Formular „{definition.title}“ geschrieben: {out}")


def _forms_dir(state: _State) -> Path:
    ws = state.optional_workspace()
    return ws.forms_dir if ws else workspace.shipped_forms_dir()
