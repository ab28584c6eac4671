"""The command line: parse, call one use case (``formtool.usecases``), print.

No PDF, SMTP or SQL here. Nothing heavy is imported at start: each command
imports its use case, so ``--help`` and ``status`` answer about as fast as
Python starts (``bench/bench_startup.py``; ``tests/test_cli.py`` guards it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from formtool import __version__, clitext, workspace
from formtool.clitext import Failure
from formtool.errors import FormtoolError, os_reason
from formtool.workspace import Workspace

if TYPE_CHECKING:  # the use cases are imported by the commands that need them (fast start)
    from email.message import EmailMessage

    from formtool.usecases.importing import FileReport, Imported
    from formtool.usecases.sending import Before, Result, SendPlan
    from formtool.usecases.settling import Settled
    from formtool.usecases.types import Contact, CopyReport, Event, Secret, Skipped


class _Group(clitext.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FormtoolError as exc:
            detail = f"\nTechnische Meldung: {exc.detail}" if exc.detail and _debug(ctx) else ""
            raise Failure(str(exc) + detail) from None
        except OSError as exc:  # the last net: a file the library did not name itself
            raise Failure(_os_problem(exc)) from None
        except KeyboardInterrupt:
            # Everything done before was recorded; a new call carries on from there.
            raise Failure("Abgebrochen (Strg+C).") from None
        except click.exceptions.Abort:
            # Ctrl+C or the end of input at a question: click would say "Aborted!"
            raise Failure("Abgebrochen.") from None
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:
            if _debug(ctx):
                raise  # the traceback, for whoever looks into it
            raise Failure(f"Interner Fehler in formtool ({type(exc).__name__}). Was schon "
                          "erledigt war, ist gespeichert. Bitte den Befehl mit --debug "
                          "wiederholen (formtool --debug …) und die Ausgabe an die "
                          "Betreuer von formtool schicken.") from None


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug"))


def _os_problem(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno == 28:
        return f"{where}der Datenträger ist voll; bitte Platz schaffen und erneut versuchen."
    if exc.errno in (13, 30):
        return f"{where}keine Schreibrechte (schreibgeschützt)."
    return f"{where}{os_reason(exc)}."


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


def _confirm(question: str) -> bool:
    """Yes/no in German: j, ja (and y, yes) say yes; anything else, or Enter, says no."""
    answer = click.prompt(f"{question} [j/N]", default="", show_default=False)
    return str(answer).strip().lower() in {"j", "ja", "y", "yes"}


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr for long runs; nothing for a handful of items."""
    if total <= 20:
        yield lambda: None
        return
    bar: Any = click.progressbar(length=total, label=label, show_pos=True,
                                 file=sys.stderr)
    with bar:
        yield lambda: bar.update(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--workspace", "workspace_dir", metavar="ORDNER",
              type=click.Path(file_okay=False, path_type=Path),
              help="Arbeitsordner (sonst: der aktuelle Ordner oder der nächste darüber mit "
                   "formtool.toml).")
@click.option("--debug", is_flag=True,
              help="Bei Fehlern auch die technische Meldung zeigen (oft englisch).")
@click.version_option(__version__, prog_name="formtool", message="%(prog)s %(version)s",
                      help="Die Version zeigen.")
@click.pass_context
def cli(ctx: click.Context, workspace_dir: Path | None, debug: bool) -> None:
    """formtool: ausfüllbare PDF-Formulare erzeugen, Rückläufe einlesen, Rundmails senden.

    \b
    Beispiel:
        formtool init buendnis
        cd buendnis
        formtool forms generate buendnispartner
    """
    ctx.obj = _State(workspace_dir)


@cli.command()
@click.argument("directory", metavar="ORDNER", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Neuen Arbeitsordner mit Beispiel-Formularen, -Vorlagen und -Kontakten anlegen.

    Vorhandene Dateien werden nie überschrieben.

    \b
    Beispiel:
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
    Beispiel:
        formtool forms list
        formtool forms generate buendnispartner -o beitritt.pdf
    """


@forms.command("list")
@pass_state
def forms_list(state: _State) -> None:
    """Alle Formulare des Arbeitsordners mit ihren Feldern zeigen.

    \b
    Beispiel:
        formtool forms list
    """
    from formtool.usecases import forms as use

    ws = state.workspace()
    listed = use.list_forms(ws)
    if not listed:
        click.echo(f"Keine Formulare in {ws.forms_dir}.")
        return
    for item in listed:
        form = item.form
        if form is None:
            click.echo(f"{item.path.stem}: fehlerhaft – Details mit: formtool forms check "
                       f"{item.path.stem}")
            continue
        click.echo(f"{form.id} (Version {form.version}): {form.title}")
        for field in form.fields():
            mark = "*" if field.required else " "
            click.echo(f"   {mark} {field.name:<28} {field.type:<10} {field.label}")


@forms.command("check")
@click.argument("form", metavar="[FORMULAR]", required=False)
@pass_state
def forms_check(state: _State, form: str | None) -> None:
    """Formular-Definition prüfen; jeder Fehler mit Datei, Zeile und Feld.

    Ohne FORMULAR werden alle Formulare des Arbeitsordners geprüft.

    \b
    Beispiel:
        formtool forms check buendnispartner
        formtool forms check forms/neu.toml
    """
    from formtool.usecases import forms as use

    ws = state.workspace() if form is None else state.optional_workspace()
    checked = use.check(use.forms_dir(ws), form)
    failed = [c for c in checked if c.error]
    for item in checked:
        if item.error:
            click.echo(item.error, err=True)
        else:
            click.echo(f"{item.path.name}: in Ordnung ({item.fields} Felder, {item.pages} "
                       "Seite(n))")
    if failed:
        raise Failure(f"{len(failed)} von {len(checked)} Formular-Definition(en) fehlerhaft.")


@forms.command("generate")
@click.argument("form", metavar="FORMULAR")
@click.option("-o", "--output", metavar="DATEI", type=click.Path(dir_okay=False, path_type=Path),
              help="Ziel-PDF (Standard: FORMULAR.pdf im aktuellen Ordner).")
@click.option("--contacts", "contacts_file", metavar="DATEI",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Für jeden Kontakt dieser Liste (.csv oder .xlsx) ein vorausgefülltes "
                   "Formular.")
@click.option("--blatt", "sheet", metavar="NAME",
              help="Bei einer Excel-Arbeitsmappe: das Blatt (Standard: das erste).")
@click.option("--out-dir", metavar="ORDNER", type=click.Path(file_okay=False, path_type=Path),
              help="Ordner für die persönlichen Formulare (Standard: formulare/AKTION).")
@click.option("--campaign", metavar="AKTION",
              help="Aktion, zu der die Formulare gehören (Standard: FORMULAR).")
@pass_state
def forms_generate(state: _State, form: str, output: Path | None, contacts_file: Path | None,
                   sheet: str | None, out_dir: Path | None, campaign: str | None) -> None:
    """Ein leeres, ausfüllbares PDF-Formular erzeugen – oder eines je Kontakt.

    FORMULAR ist der Name eines Formulars in forms/ oder der Pfad zu einer .toml-Datei.
    Mit --contacts bekommt jeder Kontakt sein eigenes, mit seinen Daten vorausgefülltes
    Formular mit einer versteckten Rücklauf-Kennung; so ordnet der Import jede Antwort zu.

    \b
    Beispiel:
        formtool forms generate buendnispartner
        formtool forms generate regionalgruppe -o Regionalgruppe_gruenden.pdf
        formtool forms generate buendnispartner --contacts contacts/fachberatungen.csv
    """
    if contacts_file is None:
        if out_dir or campaign:
            raise click.UsageError("--out-dir und --campaign gehören zu --contacts.")
        from formtool.usecases import forms as use

        out, title = use.generate_blank(state.optional_workspace(), form, output)
        click.echo(f"Formular „{title}“ geschrieben: {out}")
        return
    if output:
        raise click.UsageError("-o gilt für ein leeres Formular; mit --contacts: --out-dir.")
    from formtool.usecases import personal

    issued = personal.issue_forms(state.workspace(), form, contacts_file, sheet=sheet,
                                  out_dir=out_dir, campaign=campaign)
    _show_skipped(issued.skipped, contacts_file.name)
    click.echo(f"{issued.count} persönliche Formulare „{issued.title}“ in {issued.target} "
               f"(Aktion „{issued.campaign}“).")
    if issued.cut:
        click.echo(f"Hinweis: {len(issued.cut)} vorausgefüllte Angabe(n) passen auch in kleiner "
                   "Schrift nicht ganz ins Feld (gespeichert ist der ganze Wert; sichtbar ist "
                   "nur der Anfang). Abhilfe: das Feld in forms/ breiter (width) oder mehrzeilig "
                   "(lines) machen.")
        for line in issued.cut[:20]:
            click.echo(f"  {line}")
        if len(issued.cut) > 20:
            click.echo(f"  … und {len(issued.cut) - 20} weitere")


@cli.command("import")
@click.argument("inputs", nargs=-1, required=True, metavar="PDF_ODER_ORDNER...",
                type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", metavar="DATEI", type=click.Path(dir_okay=False, path_type=Path),
              help="Eine Tabelle für alle Rückläufe (Standard: antworten/FORMULAR.csv im "
                   "Arbeitsordner, eine je Formular).")
@click.option("--form", "form", metavar="FORMULAR|raw",
              help="Formular erzwingen; „raw“ liest jedes PDF-Formular mit seinen Feldnamen.")
@click.option("--header", type=click.Choice(["labels", "names"]), default="labels",
              show_default=True, help="Spaltenköpfe: Beschriftungen oder Feldnamen.")
@click.option("--delimiter", metavar="ZEICHEN",
              default=";", show_default=True, help="Trennzeichen der Tabelle.")
@click.option("--encoding", metavar="KODIERUNG", default="utf-8-sig", show_default=True,
              help="Zeichenkodierung der Tabelle (utf-8-sig öffnet Excel richtig).")
@click.option("--update", is_flag=True,
              help="Eine zweite Rücksendung ersetzt die Zeile auch dann, wenn ihr Datum "
                   "nicht zeigt, welche neuer ist (eine neuere ersetzt sie ohnehin, eine "
                   "ältere nie).")
@click.option("--password", metavar="PASSWORT",
              default="", help="Passwort für geschützte PDF-Dateien.")
@click.option("--report", "report_path", metavar="DATEI",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Bericht je Datei zusätzlich als CSV schreiben.")
@pass_state
def import_(state: _State, inputs: tuple[Path, ...], output: Path | None, form: str | None,
            header: str, delimiter: str, encoding: str, update: bool, password: str,
            report_path: Path | None) -> None:
    """Ausgefüllte PDF-Formulare einlesen und an die Antwort-Tabelle anhängen.

    Jede Datei bekommt eine Antwort: importiert, bereits importiert, importiert mit
    Problemen oder fehlgeschlagen (mit Grund) – auch ein Foto, ein Scan oder eine
    Word-Datei im Ordner. Schon importierte Rückläufe werden erkannt und nicht doppelt
    übernommen.

    \b
    Beispiel:
        formtool import ~/Downloads/rueckläufe/
        formtool import antwort.pdf -o partner.csv
        formtool import fremdes-formular.pdf --form raw
    """
    from formtool.usecases import importing
    from formtool.usecases.types import Dialect

    ws = state.workspace()
    if len(delimiter) != 1:
        raise click.BadParameter("genau ein Zeichen", param_hint="--delimiter")
    try:
        "".encode(encoding)
    except LookupError:
        raise click.BadParameter(f"unbekannte Kodierung {encoding}",
                                 param_hint="--encoding") from None
    options = importing.ImportOptions(
        output=output, output_dir=ws.root / "antworten", form=form, labels=header == "labels",
        dialect=Dialect(delimiter, encoding), update=update, password=password)
    paths = importing.import_files(inputs)
    if not paths:
        raise Failure("Keine Dateien gefunden.")
    printer = _ImportPrinter(verbose=len(paths) <= 50)
    with _progress(len(paths), "Einlesen") as advance:
        def on_file(file_report: FileReport) -> None:
            advance()
            printer.add(file_report)

        result = importing.run_import(ws, paths, options, report_path=report_path,
                                      on_file=on_file)
    printer.finish(result)
    for table in result.tables:
        click.echo(f"Tabelle (CSV, für andere Programme): {table}")
    for book in result.workbooks:
        click.echo(f"Tabelle für Excel:                  {book}")
    for note in result.notes:
        click.echo(f"Hinweis: {note}")
    if result.failed:
        raise Failure(f"{result.failed} von {len(paths)} Datei(en) nicht übernommen "
                      "(siehe oben).")


class _ImportPrinter:
    """Per-file lines: all of them for a few files, else those that need a look (capped)."""

    CAP = 100

    def __init__(self, *, verbose: bool) -> None:
        self.verbose = verbose
        self.lines: list[str] = []
        self.more = 0

    def add(self, report: FileReport) -> None:
        if not self.verbose and report.status.value == "importiert":
            return
        if len(self.lines) >= self.CAP:
            self.more += 1
            return
        detail = report.reason or "; ".join(report.problems)
        line = f"{report.status.value:<26} {report.path.name}"
        self.lines.append(f"{line}: {detail}" if detail else line)

    def finish(self, result: Imported) -> None:
        for line in self.lines:
            click.echo(line)
        if self.more:
            click.echo(f"… und {self.more} weitere (alle Dateien: --report BERICHT.csv)")
        summary = ", ".join(f"{n} {s.value}" for s, n in result.counts.items())
        click.echo(f"{sum(result.counts.values())} Datei(en): {summary}")


@cli.group(cls=_Group)
def mail() -> None:
    """Rundmails aus Vorlagen (templates/*.md.j2) an eine Kontaktliste.

    \b
    Beispiel:
        formtool mail preview einladung-fachberatung
        formtool mail login
        formtool mail send einladung-fachberatung
    """


def _contacts_option(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--blatt", "sheet", metavar="NAME",
                           help="Bei einer Excel-Arbeitsmappe: das Blatt (Standard: das "
                                "erste).")(command)
    return click.option(
        "--contacts", "contacts_file", metavar="DATEI",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Kontaktliste (.csv oder Excel .xlsx). Standard: die eine Liste in "
             "contacts/.")(command)


def _show_skipped(skipped: list[Skipped], list_name: str) -> None:
    real = [s for s in skipped if not s.duplicate]
    if real:
        click.echo(f"{len(real)} Zeile(n) in {list_name} übersprungen:")
        for item in real:
            key = f" ({item.key})" if item.key else ""
            click.echo(f"  Zeile {item.row}{key}: {item.reason}")
    twice = [s for s in skipped if s.duplicate]
    if twice:
        click.echo(f"Hinweis: {len(twice)} Zeile(n) in {list_name} wiederholen eine Adresse "
                   "(sie bekommt die E-Mail einmal):")
        for item in twice:
            click.echo(f"  Zeile {item.row}: {item.reason}")


def _show_message(message: EmailMessage) -> None:
    click.echo("-" * 72)
    for header in ("From", "To", "Cc", "Reply-To", "Subject"):
        if message[header]:
            click.echo(f"{header}: {message[header]}")
    names = [part.get_filename() for part in message.iter_attachments()]
    if names:
        click.echo(f"Anhänge: {', '.join(n for n in names if n)}")
    body = message.get_body(("plain",))
    click.echo()
    click.echo(body.get_content().rstrip() if body is not None else "")
    click.echo("-" * 72)


@mail.command("preview")
@click.argument("template", metavar="VORLAGE")
@_contacts_option
@click.option("--to", "to", metavar="KONTAKT",
              help="Nur für diesen Kontakt (ID oder E-Mail-Adresse).")
@click.option("--out-dir", metavar="ORDNER", type=click.Path(file_okay=False, path_type=Path),
              help="Ordner für die .eml-Dateien (Standard: vorschau/VORLAGE).")
@click.option("--attach-form", metavar="FORMULAR",
              help="Wie beim Senden: jedem Kontakt sein persönliches Formular anhängen.")
@click.option("--campaign", metavar="AKTION", help="Name der Aktion (wie beim Senden).")
@pass_state
def mail_preview(state: _State, template: str, contacts_file: Path | None, sheet: str | None,
                 to: str | None,
                 out_dir: Path | None, attach_form: str | None, campaign: str | None) -> None:
    """E-Mails als .eml-Dateien erzeugen, ohne zu senden; die erste wird gezeigt.

    Die .eml-Dateien öffnen sich in Thunderbird oder Outlook; mit denselben Angaben
    wie beim Senden (--attach-form) sind sie genau das, was hinausginge.

    \b
    Beispiel:
        formtool mail preview einladung-fachberatung --attach-form buendnispartner
        formtool mail preview erinnerung --to FB-00012
    """
    from email import message_from_bytes
    from email.policy import SMTP

    from formtool.usecases import sending

    result = sending.preview(state.workspace(), template, contacts_file=contacts_file,
                             sheet=sheet, to=to,
                             out_dir=out_dir, attach_form=attach_form, campaign=campaign)
    from formtool.screen import item_lines

    for line in result.contacts:
        for shown in item_lines(line):
            click.echo(shown)
    _show_skipped(result.skipped, (contacts_file.name if contacts_file else "der Kontaktliste"))
    for warning in result.warnings:
        for shown in item_lines(f"Achtung: {warning}"):
            click.echo(shown)
    if not result.written:
        raise Failure(f"Kein Kontakt gefunden{f' für „{to}“' if to else ''}.")
    _show_message(message_from_bytes(result.written[0].read_bytes(), policy=SMTP))
    click.echo(f"{len(result.written)} E-Mail(s) als .eml in {result.target} – gesendet wurde "
               "nichts.")


@mail.command("send")
@click.argument("template", metavar="VORLAGE")
@_contacts_option
@click.option("--campaign", metavar="AKTION", help="Name der Aktion (Standard: Name der Vorlage).")
@click.option("--attach-form", metavar="FORMULAR",
              help="Jedem Kontakt sein persönliches, vorausgefülltes Formular anhängen.")
@click.option("--only-unanswered", metavar="AKTION",
              help="Nur an die, die AKTION bekamen und noch nicht geantwortet haben.")
@click.option("--limit", metavar="ANZAHL",
              type=click.IntRange(min=1), help="Höchstens so viele E-Mails senden.")
@click.option("--resend-unknown", is_flag=True,
              help="Auch E-Mails senden, deren Zustand nach einem Abbruch unbekannt ist "
                   "(vorher im Ordner „Gesendet“ nachsehen).")
@click.option("--retry-failed", is_flag=True,
              help="Auch an Adressen senden, die der Server früher abgewiesen hat.")
@click.option("--auch-beantwortete", "include_answered", is_flag=True,
              help="Auch an Kontakte senden, die schon geantwortet haben (in dieser oder "
                   "einer früheren Aktion: Formular, Antwort oder von Hand vermerkt).")
@click.option("--yes", is_flag=True, help="Nicht nachfragen.")
@pass_state
def mail_send(state: _State, template: str, contacts_file: Path | None, sheet: str | None,
              campaign: str | None,
              attach_form: str | None, only_unanswered: str | None, limit: int | None,
              resend_unknown: bool, retry_failed: bool, include_answered: bool,
              yes: bool) -> None:
    """E-Mails senden: zeigt erst Anzahl, übersprungene Zeilen und die erste E-Mail.

    Bereits gesendete E-Mails dieser Aktion werden nie noch einmal gesendet;
    abgemeldete Adressen bekommen nie eine E-Mail, und wer schon geantwortet hat
    (in irgendeiner Aktion), keine neue Einladung. Eine Vorlage mit der Kopfzeile
    „Erinnerung-an: AKTION“ geht nur an die, die AKTION nicht beantwortet haben. Es
    läuft immer nur ein Versand je Arbeitsordner.

    \b
    Beispiel:
        formtool mail send einladung-fachberatung --attach-form buendnispartner
        formtool mail send erinnerung --only-unanswered einladung-fachberatung \\
            --attach-form buendnispartner
        formtool mail send erinnerung --campaign erinnerung-2 --limit 50 --yes
    """
    from formtool.usecases import credentials, sending

    ws = state.workspace()
    with sending.prepare(ws, template, contacts_file=contacts_file, sheet=sheet,
                         campaign=campaign, attach_form=attach_form,
                         only_unanswered=only_unanswered,
                         resend_unknown=resend_unknown, retry_failed=retry_failed,
                         include_answered=include_answered) as plan:
        _show_skipped(plan.skipped, plan.mailing.contacts.path.name)
        if plan.problems:
            for problem in plan.problems[:20]:
                click.echo(f"  {problem}", err=True)
            more = (f" (die ersten 20 von {len(plan.problems)})"
                    if len(plan.problems) > 20 else "")
            raise Failure(f"{len(plan.problems)} E-Mail(s) lassen sich nicht erstellen{more}; "
                          "gesendet wurde nichts.")
        _show_plan(plan, limit)
        if plan.count == 0 or plan.first is None:
            _show_copies(plan.append_waiting_copies())
            _exit_for(plan.before, plan.skipped)
            return
        _show_message(plan.first)
        password = credentials.sending_secret(ws)
        total = min(plan.count, limit) if limit else plan.count
        if not yes:
            plan.check_login(password)  # settings, port, password: before the question
            if not _confirm(f"{total} E-Mail(s) jetzt senden?"):
                click.echo("Abgebrochen – gesendet wurde nichts.")
                raise click.exceptions.Exit(1)
        result = _send_with_progress(plan, password, total, limit)
    _show_summary(result)
    _show_copies(result.copies)
    if result.summary.wall:
        raise Failure(result.summary.wall)
    if result.trouble:
        raise Failure(f"{result.trouble} Kontakt(e) ohne E-Mail: {result.trouble_words()} "
                      "(siehe oben). Bereits gesendete gehen nie doppelt hinaus.")


def _named(contact: Contact) -> str:
    from formtool.usecases.sending import named

    return named(contact)


def _show_plan(plan: SendPlan, limit: int | None) -> None:
    before = plan.before
    from formtool.screen import item_lines

    heading, *items = plan.described(limit)
    click.echo(heading)
    for line in items:
        for shown in item_lines(line):
            click.echo(shown)
    if before.settled is not None:
        _show_settled(before.settled, "werden nicht erneut gesendet")
    _show_unknown([_named(c) for c in before.unknown])
    for warning in plan.warnings:
        click.echo(f"  Achtung: {warning}")
    if plan.wait_words():
        for shown in item_lines(plan.wait_words()):
            click.echo(shown)
    if plan.count == 0:
        click.echo("Nichts zu senden.")


def _show_settled(settled: Settled, then: str) -> None:
    """What the mailbox told about sends of unknown outcome."""
    if settled.sent:
        click.echo(f"  Im Ordner „Gesendet“ oder in einer Antwort gefunden, also angekommen "
                   f"({then}): {len(settled.sent)}")
    if settled.problem:
        from formtool.screen import item_lines

        for line in item_lines(f"Achtung: {settled.problem}"):
            click.echo(line)


def _show_unknown(names: list[str]) -> None:
    if not names:
        return
    click.echo(f"  Zustand unbekannt ({len(names)}; die Verbindung brach nach dem Senden ab – "
               "bitte im Ordner „Gesendet“ nachsehen; erneut senden nur mit "
               "--resend-unknown):")
    for name in names[:50]:
        click.echo(f"    {name}")
    if len(names) > 50:
        click.echo(f"    … und {len(names) - 50} weitere (alle: formtool status AKTION --fehler)")


def _show_copies(report: CopyReport | None) -> None:
    """[imap] sent_copy: where the copies went, and what still waits."""
    if report is None:
        return
    if report.appended or report.present:
        earlier = f" ({report.present} lagen schon dort)" if report.present else ""
        click.echo(f"Kopie im Ordner „{report.folder}“ abgelegt: {report.appended}{earlier}.")
    if report.waiting:
        why = f" Grund: {report.problem}" if report.problem else ""
        click.echo(f"Achtung: {report.waiting} Kopie(n) für den Ordner „Gesendet“ noch nicht "
                   f"abgelegt.{why} Das holt der nächste Aufruf von „formtool mail send“ nach "
                   "(auch ohne neue Empfänger); die E-Mails selbst sind gesendet.")


def _exit_for(before: Before, skipped: list[Skipped]) -> None:
    """Nothing to send: exit 1 still when somebody did not get the mail."""
    from formtool.usecases.sending import missing, trouble_words

    trouble = missing(skipped) + len(before.unknown) + len(before.failed)
    if trouble:
        words = trouble_words(skipped=missing(skipped), failed=len(before.failed), pending=0,
                              unknown=len(before.unknown))
        raise Failure(f"{trouble} Kontakt(e) ohne E-Mail: {words} (siehe oben).")


def _send_with_progress(plan: SendPlan, password: Secret, total: int, limit: int | None
                        ) -> Result:
    from formtool.screen import SendProgress

    progress = SendProgress(total, stream=sys.stderr)

    def on_event(event: Event) -> None:
        key = event.contact.key if event.contact else ""
        progress.event(event.kind, key=key, detail=event.detail, seconds=event.seconds)

    try:
        return plan.send(password, limit=limit, on_event=on_event)
    finally:
        progress.close()


def _show_summary(result: Result) -> None:
    heading, *failures = result.described()
    click.echo(heading)
    for line in failures:
        click.echo(f"  {line}")
    _show_unknown([_named(c) for c, _ in result.summary.unknowns]
                  + [_named(c) for c in result.before.unknown])


@mail.command("login")
@click.option("--imap", "for_imap", is_flag=True,
              help="Das Passwort des Postfachs ([imap]) statt des Versands ([smtp]).")
@click.option("--browser", is_flag=True,
              help="Mit auth = \"oauth2\": im Browser dieses Rechners anmelden statt mit "
                   "einem Code.")
@pass_state
def mail_login(state: _State, for_imap: bool, browser: bool) -> None:
    """Passwort im Schlüsselbund des Betriebssystems speichern und testen.

    Erst das für den Versand ([smtp]); ist unter [imap] ein Postfach eingetragen, wird
    es mit demselben Passwort geprüft und nur, wenn das nicht geht, nach dessen Passwort
    gefragt. --imap: nur das Postfach.

    Mit auth = "oauth2" (Microsoft 365): Anmeldung ohne Passwort – formtool zeigt eine
    Adresse und einen Code; dort (auf jedem Gerät) anmelden. --browser: stattdessen
    öffnet sich der Browser dieses Rechners.

    \b
    Beispiel:
        formtool mail login
        formtool mail login --imap
        formtool mail login --browser
    """
    from formtool.usecases import credentials

    ws = state.workspace()
    settings, box = ws.mail_settings(), ws.imap_settings()
    if settings.auth == "oauth2" or (box.host and box.auth == "oauth2"):
        _oauth_login(ws, browser)
        if settings.auth == "oauth2" and (not box.host or box.auth == "oauth2"):
            return
        if settings.auth == "oauth2":
            for_imap = True  # the mailbox alone still uses a password
    if for_imap:
        imap = state.workspace().imap_settings()
        password = _read_password(f"Postfach-Passwort für {imap.user} bei {imap.host}")
        credentials.imap_login(imap, password)
        click.echo(f"Anmeldung am Postfach {imap.host} erfolgreich; Passwort im "
                   "Schlüsselbund gespeichert.")
        return
    settings = state.workspace().mail_settings()
    credentials.check_settings(settings)
    if not settings.user:
        raise Failure("In formtool.toml ist unter [smtp] kein user eingetragen.")
    from_env = credentials.from_environment()
    if from_env is not None:
        password = from_env
        click.echo(f"{credentials.PASSWORD_ENV} ist gesetzt: formtool nimmt dieses Passwort "
                   "und fragt nicht (im Schlüsselbund wird nichts gespeichert).")
        credentials.login(settings, password, store=False)
        click.echo(f"Anmeldung bei {settings.host} mit dem Passwort aus "
                   f"{credentials.PASSWORD_ENV} erfolgreich.")
    else:
        password = _read_password(f"Passwort für {settings.user} bei {settings.host}")
        credentials.login(settings, password)
        click.echo(f"Anmeldung bei {settings.host} erfolgreich; Passwort im Schlüsselbund "
                   "gespeichert.")
    imap = state.workspace().imap_settings()
    if not imap.host or imap.auth == "oauth2":
        return
    if credentials.same_account(imap, settings):
        refused = credentials.mailbox_refuses(imap, password)
        if not refused:
            click.echo(f"Anmeldung am Postfach {imap.host} mit demselben Passwort erfolgreich.")
            return
        click.echo(f"Postfach {imap.host}: mit demselben Passwort nicht möglich ({refused}).")
    imap_password = _read_password(f"Postfach-Passwort für {imap.user} bei {imap.host}")
    credentials.imap_login(imap, imap_password)
    click.echo(f"Anmeldung am Postfach {imap.host} erfolgreich; Passwort im Schlüsselbund "
               "gespeichert.")


def _oauth_login(ws: Workspace, browser: bool) -> None:
    """The OAuth sign-in: a code to type at the provider's address (or the browser)."""
    from formtool.usecases import signin

    use_file: bool | None = None
    if ws.oauth_settings().token_store != "file" and not signin.keyring_usable():
        click.echo("Auf diesem Rechner gibt es keinen nutzbaren Schlüsselbund (z. B. ein "
                   "Server ohne Desktop-Sitzung).")
        if not sys.stdin.isatty():
            raise Failure("Die Anmeldung kann nicht geschützt gespeichert werden. Mit Ihrer "
                          "Zustimmung geht sie in eine Datei, die nur Sie lesen können: in "
                          "formtool.toml unter [oauth] token_store = \"file\" setzen.")
        if not _confirm(f"Die Anmeldung stattdessen in einer Datei unter "
                        f"{signin.token_dir()} speichern, die nur Sie lesen können?"):
            raise Failure("Abgebrochen – nichts gespeichert.")
        use_file = True
    if browser:
        import webbrowser

        def open_url(url: str) -> None:
            click.echo("Der Browser öffnet sich zur Anmeldung. Falls nicht, diese Adresse "
                       f"öffnen:\n  {url}")
            webbrowser.open(url)

        done = signin.browser_login(ws, open_url, use_file=use_file)
    else:
        client, code = signin.start_device(ws)
        click.echo(f"Bitte im Browser {code.verification_uri} öffnen und diesen Code "
                   f"eingeben:\n\n    {code.user_code}\n")
        click.echo("Das geht auf jedem Gerät, auch am Handy. Danach mit dem Konto anmelden, "
                   "das die Rundmails sendet.")
        done = signin.finish_device(ws, client, code, _waiting_line(), use_file=use_file)
    where = "im Schlüsselbund" if done.stored_in == "Schlüsselbund" else \
        f"in {done.stored_in} (nur für Sie lesbar)"
    click.echo(f"Angemeldet bei {done.service}; die Anmeldung ist {where} gespeichert.")
    if ws.mail_settings().auth == "oauth2" and ws.mail_settings().host:
        click.echo(f"Anmeldung beim Versand ({ws.mail_settings().host}) erfolgreich.")
    if done.mailbox_checked:
        click.echo(f"Anmeldung am Postfach {ws.imap_settings().host} erfolgreich.")


def _waiting_line() -> Callable[[float], None]:
    """Shows that the login waits, with the time left: in place on a terminal, else
    once a minute."""
    shown = [-1]
    tty = sys.stderr.isatty()

    def show(left: float) -> None:
        minutes, seconds = divmod(int(left), 60)
        if tty:
            click.echo(f"\rWarte auf die Anmeldung … noch {minutes}:{seconds:02d} min ",
                       nl=False, err=True)
        elif minutes != shown[0]:
            shown[0] = minutes
            click.echo(f"Warte auf die Anmeldung … noch {minutes}:{seconds:02d} min",
                       err=True)

    return show


@mail.command("logout")
@pass_state
def mail_logout(state: _State) -> None:
    """Die gespeicherte Anmeldung (OAuth) und die Passwörter dieses Arbeitsordners aus
    dem Schlüsselbund entfernen.

    \b
    Beispiel:
        formtool mail logout
    """
    from formtool.usecases import credentials, signin

    ws = state.workspace()
    removed = []
    if "oauth" in ws.config and signin.logout(ws):
        removed.append("die Anmeldung (OAuth)")
    if credentials.forget_passwords(ws.mail_settings(), ws.imap_settings()):
        removed.append("die Passwörter")
    if removed:
        click.echo(f"Entfernt: {' und '.join(removed)}. Neu anmelden mit: formtool mail login")
    else:
        click.echo("Es war nichts gespeichert.")


def _read_password(question: str) -> str:
    if sys.stdin.isatty():
        return str(click.prompt(question, hide_input=True))
    # piped in (a script): read the line; getpass would warn in English
    click.echo(f"{question}: (aus der Eingabe gelesen)")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise Failure("Kein Passwort eingegeben.")
    return password


@mail.command("fetch")
@click.option("--from", "source", metavar="PFAD",
              type=click.Path(exists=True, path_type=Path),
              help="Statt des Postfachs ([imap] in formtool.toml): eine mbox-Datei "
                   "(Thunderbird), ein Maildir oder ein Ordner mit .eml-Dateien.")
@click.option("--dry-run", is_flag=True, help="Nur zeigen, was geschähe; nichts ändern.")
@pass_state
def mail_fetch(state: _State, source: Path, dry_run: bool) -> None:
    """Postfach abrufen: Rückläufe, Abmeldungen, Unzustellbares aus exportierten E-Mails.

    Jede Nachricht wird einmal verarbeitet: ein zurückgeschicktes Formular wird unter
    ruecklaeufe/ gespeichert und eingelesen, „Abmelden“ meldet die Adresse ab, eine
    Unzustellbarkeits-Meldung markiert die Sendung, automatische Antworten zählen nicht,
    Antworten ohne Formular gelten als Antwort und werden zum Lesen aufgelistet.
    Verarbeitete E-Mails kommen im Postfach in den Ordner formtool/erledigt.

    \b
    Beispiel:
        formtool mail fetch
        formtool mail fetch --from ~/Thunderbird/Posteingang
        formtool mail fetch --from exportierte-mails/ --dry-run
    """
    from formtool import screen
    from formtool.usecases import credentials, fetching
    from formtool.usecases.types import Kind

    def show(handled: fetching.Handled) -> None:
        if dry_run or handled.look or handled.kind is not Kind.OTHER:
            for line in screen.message_lines(handled.kind.value, handled.sender,
                                             handled.subject, handled.note):
                click.echo(line)

    ws = state.workspace()
    if source is not None:
        result = fetching.fetch_from(ws, source, dry_run=dry_run, on_message=show)
    else:
        password = credentials.mailbox_secret(ws)
        result = fetching.fetch_imap(ws, password, dry_run=dry_run, on_message=show)
    for line in screen.fetch_summary(result.counts, result.earlier, dry_run=dry_run):
        click.echo(line)
    if result.settled is not None:
        _show_settled(result.settled, "als gesendet vermerkt, nie erneut gesendet")
    if result.imported is not None:
        summary = ", ".join(f"{n} {s.value}" for s, n in result.imported.counts.items())
        click.echo(f"Eingelesen: {summary}.")
        for book in result.imported.workbooks:
            shown = book.relative_to(ws.root) if book.is_relative_to(ws.root) else book
            click.echo(f"Tabelle für Excel: {shown}")
    for report in result.with_problems:
        for line in screen.item_lines(f"mit Problemen: {report.path.name}: "
                                      + "; ".join(report.problems)):
            click.echo(line)
    for report in result.not_imported:
        for line in screen.item_lines(f"nicht eingelesen: {report.path.name}: {report.reason}"):
            click.echo(line)
    for address, names in result.filed:
        for line in screen.item_lines(f"als Antwort von {address} vermerkt (keine Erinnerung), "
                                      f"bitte ansehen: {', '.join(names)}"):
            click.echo(line)
    if result.not_imported_total > len(result.not_imported):
        click.echo(f"  … und {result.not_imported_total - len(result.not_imported)} weitere "
                   "(alle in ruecklaeufe/)")
    if result.to_read:
        more = (f", die ersten {len(result.to_read)}; alle Antworten: formtool status AKTION "
                "--antworten" if result.to_read_total > len(result.to_read) else "")
        click.echo(f"Bitte lesen ({result.to_read_total}{more}):")
        for handled in result.to_read:
            click.echo("  " + screen.fit(f"{handled.sender or '?'} – {handled.subject}",
                                         screen.WIDTH - 2))
    if result.not_imported:
        n = result.not_imported_total
        raise Failure("1 Anhang nicht eingelesen (siehe oben); er liegt in ruecklaeufe/."
                      if n == 1 else f"{n} Anhänge nicht eingelesen (siehe oben); sie liegen "
                      "in ruecklaeufe/.")


@mail.command("optout")
@click.argument("addresses", metavar="ADRESSE...", nargs=-1, required=True)
@pass_state
def mail_optout(state: _State, addresses: tuple[str, ...]) -> None:
    """Adressen abmelden: sie bekommen nie wieder eine E-Mail, in keiner Aktion.

    \b
    Beispiel:
        formtool mail optout jana.koehler@jugendamt-greiz.example
    """
    from formtool.addresses import is_valid_email, shown, why_invalid
    from formtool.usecases import sending

    bad = [shown(a) + (f" ({why_invalid(a)})" if why_invalid(a) else "")
           for a in addresses if not is_valid_email(a.strip())]
    if bad:
        raise click.BadParameter(f"keine gültige E-Mail-Adresse: {', '.join(bad)}",
                                 param_hint="ADRESSE")
    new = sending.opt_out(state.workspace(), list(addresses))
    click.echo(f"{new} Adresse(n) abgemeldet" + (f", {len(addresses) - new} waren es schon"
                                                if len(addresses) > new else "") + ".")


@cli.command("status")
@click.argument("campaign", metavar="[AKTION]", required=False)
@click.option("--offen", is_flag=True, help="Wer noch nicht geantwortet hat (mit Anschrift).")
@click.option("--fehler", is_flag=True,
              help="Wen die E-Mail nicht erreicht hat, mit der Antwort des Mailservers.")
@click.option("--antworten", is_flag=True,
              help="Wer per E-Mail ohne Formular geantwortet hat, mit Betreff und Anfang.")
@click.option("--csv", "csv_path", metavar="DATEI", type=click.Path(dir_okay=False, path_type=Path),
              help="Die Liste (mit --offen, --fehler, --antworten) bzw. die Tabelle als "
                   "CSV-Datei.")
@click.option("--xlsx", "xlsx_path", metavar="DATEI",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Dasselbe als Excel-Arbeitsmappe (PLZ und Telefon bleiben, wie sie sind).")
@click.option("--beantwortet", "answered", metavar="ADRESSE", multiple=True,
              help="Von Hand als beantwortet vermerken (Anruf, Brief, eine unlesbare "
                   "Datei): keine Erinnerung. Mehrmals möglich.")
@click.option("--nicht-beantwortet", "unanswered", metavar="ADRESSE", multiple=True,
              help="Einen Vermerk von Hand zurücknehmen.")
@click.option("--notiz", metavar="NOTIZ", default="", help="Wozu der Vermerk (z. B. „Anruf“).")
@pass_state
def status_(state: _State, campaign: str | None, offen: bool, fehler: bool, antworten: bool,
            csv_path: Path | None, xlsx_path: Path | None, answered: tuple[str, ...],
            unanswered: tuple[str, ...], notiz: str) -> None:
    """Je Aktion: gesendet, fehlgeschlagen, unbekannt, beantwortet, offen, abgemeldet.

    \b
    Beispiel:
        formtool status
        formtool status einladung-fachberatung --offen
        formtool status einladung-fachberatung --offen --xlsx offen.xlsx
        formtool status einladung-fachberatung --fehler
        formtool status einladung-fachberatung --antworten
        formtool status einladung-fachberatung --beantwortet kita@example.de --notiz Anruf
    """
    if offen + fehler + antworten > 1:
        raise click.UsageError("nur eines von --offen, --fehler, --antworten.")
    from formtool.usecases import status as use

    if answered or unanswered:
        if campaign is None:
            raise click.UsageError("--beantwortet braucht die AKTION.")
        for addresses, undo in ((answered, False), (unanswered, True)):
            if addresses:
                unknown = use.mark_answered(state.workspace(), campaign, list(addresses),
                                            note=notiz, undo=undo)
                done = len(addresses) - len(unknown)
                click.echo(f"{done} Adresse(n) " + ("nicht mehr als beantwortet vermerkt."
                                                    if undo else "als beantwortet vermerkt "
                                                    "(keine Erinnerung)."))
                if unknown:
                    raise Failure(f"„{campaign}“ ging nicht an: {', '.join(unknown)} – "
                                  "nichts vermerkt.")

    view = (use.View.OPEN if offen else use.View.ERRORS if fehler
            else use.View.REPLIES if antworten else use.View.SUMMARY)
    report = use.report(state.workspace(), campaign, view)
    if csv_path is not None or xlsx_path is not None:
        if csv_path is not None:
            rows = use.write_csv(report, csv_path)
            click.echo(f"{rows} Zeile(n) geschrieben: {csv_path}")
        if xlsx_path is not None:
            rows = use.write_workbook(report, xlsx_path)
            click.echo(f"{rows} Zeile(n) geschrieben: {xlsx_path}")
        return
    if not report.rows:
        click.echo(report.empty_message)
        return
    from formtool import screen

    for line in screen.report_lines(report):
        click.echo(line)


@cli.command("website")
@click.option("--gruppieren", "group_by", type=click.Choice(["kreis", "landkreis"]),
              default="kreis", show_default=True,
              help="Die Partnerliste nach Kreis der Mitwirkung oder nach Landkreis ordnen.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Zeigen, wer neu ist, wer nicht mehr dabei ist und was sich geändert hat "
                   "(gegenüber der zuletzt geschriebenen Liste).")
@click.option("--ordner", "out_dir", metavar="ORDNER",
              type=click.Path(file_okay=False, path_type=Path),
              help="Wohin die Listen geschrieben werden (Standard: website/ im Arbeitsordner).")
@click.option("--freigeben", "approve", metavar="CODE", multiple=True,
              help="Einen wartenden Rücklauf (von einer Adresse, die nicht angeschrieben "
                   "wurde) auf die Liste lassen; den CODE nennt „formtool website“.")
@pass_state
def website_(state: _State, group_by: str, show_diff: bool, out_dir: Path | None,
             approve: tuple[str, ...]) -> None:
    """Partnerliste für die Website: aus den eingelesenen Rückläufen.

    Nur Organisationen, die der Nennung zugestimmt und eingewilligt haben; der
    jüngste Rücklauf zählt, eine Abmeldung oder „forget“ nimmt sie heraus. Keine
    Personendaten. Dazu die gegründeten Regionalgruppen. Als HTML (WordPress-Block
    „Individuelles HTML“), Markdown, CSV und JSON (TablePress).

    \b
    Beispiel:
        formtool website
        formtool website --gruppieren landkreis --diff
        formtool website --freigeben 3f2a9c1b
    """
    from formtool import screen
    from formtool.usecases import website

    ws = state.workspace()
    result = website.publish(ws, group_by=group_by, out_dir=out_dir, diff=show_diff,
                             approve_codes=list(approve))
    counts = ", ".join(f"{len(entries)} {group}" for group, entries in result.partners.groups)
    click.echo(f"Partnerliste: {len(result.partners.entries)} Organisation(en)"
               + (f" ({counts})" if counts else "") + ".")
    click.echo(f"Regionalgruppen: {len(result.groups.entries)}.")
    if result.changes is not None:
        c = result.changes
        if not (c.new or c.withdrawn or c.changed):
            click.echo("Gegenüber der letzten Liste: keine Änderung.")
        for label, names in (("Neu", c.new), ("Nicht mehr dabei", c.withdrawn),
                             ("Geändert", c.changed)):
            for name in names:
                for line in screen.item_lines(f"{label}: {name}"):
                    click.echo(line)
    if result.waiting:
        n = len(result.waiting)
        click.echo(("1 Rücklauf wartet" if n == 1 else f"{n} Rückläufe warten")
                   + " auf Freigabe (von Adressen, die nicht angeschrieben wurden; "
                   "noch nicht auf der Liste):")
        for waiting in result.waiting[:50]:
            for line in screen.item_lines(
                    f"{waiting.title or '(ohne Namen)'} – von {waiting.sender}: auf die Liste "
                    f"mit formtool website --freigeben {waiting.code}"):
                click.echo(line)
        if len(result.waiting) > 50:
            click.echo(f"  … und {len(result.waiting) - 50} weitere")
    folder = result.files[0].parent
    click.echo(f"Geschrieben in {folder}: partnerliste.html (für einen WordPress-Block "
               "„Individuelles HTML“), .md, .csv und .json (für TablePress); dasselbe für "
               "regionalgruppen.")


@cli.command("demo")
@click.option("--dir", "directory", metavar="ORDNER",
              type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-workspace"), show_default=True,
              help="Ordner für die Demo (ein früherer Demo-Ordner wird ersetzt).")
@click.option("--web", "then_web", is_flag=True,
              help="Danach den Demo-Ordner im Browser öffnen (wie formtool web).")
def demo_(directory: Path, then_web: bool) -> None:
    """Die ganze Runde vorführen: Formulare, Einladungen, Rückläufe, Stand, Erinnerungen.

    Läuft ohne Konto und ohne Internet: ein eingebauter Mailserver auf diesem Rechner
    nimmt die E-Mails an und legt sie als .eml-Dateien ab.

    \b
    Beispiel:
        formtool demo
        formtool demo --dir /tmp/formtool-demo
    """
    from formtool import screen
    from formtool.usecases import demo, status

    result = demo.run(directory.resolve(), say=click.echo)
    for campaign in (result.invitation, result.reminder):
        click.echo()
        for line in screen.campaign_lines(status.summary_row(campaign)):
            click.echo(line)
    if then_web:
        from formtool.web.server import serve

        click.echo()
        serve(directory.resolve(), say=click.echo)


@cli.command("web")
@click.option("--port", metavar="PORT", type=click.IntRange(0, 65535), default=8765,
              help="Port auf diesem Rechner (Standard 8765; ist er belegt: der nächste "
                   "freie; 0: irgendeiner).")
@click.option("--no-browser", is_flag=True, help="Den Browser nicht selbst öffnen.")
@pass_state
def web_(state: _State, port: int, no_browser: bool) -> None:
    """Die Seite im Browser: alles, was die Befehle können, ohne Eingabefenster.

    Nur auf diesem Rechner erreichbar (127.0.0.1); die Adresse mit ihrem Schlüssel
    steht im Fenster. Beenden mit Strg+C oder „formtool beenden“ auf der Seite.

    \b
    Beispiel:
        formtool web
        formtool --workspace Bündnis web --port 8800
    """
    from formtool.web.server import serve

    serve(state.workspace().root, port=port, open_browser=not no_browser, say=click.echo)


@cli.command("forget")
@click.argument("address", metavar="ADRESSE")
@click.option("--delete-files", is_flag=True,
              help="Auch die gefundenen Dateien löschen bzw. die Zeilen aus den Tabellen.")
@pass_state
def forget_(state: _State, address: str, delete_files: bool) -> None:
    """Eine Person vergessen (DSGVO): aus state.db löschen, Dateien mit ihren Daten zeigen.

    Die Abmeldung bleibt als Prüfsumme (ohne Adresse), damit sie nie wieder eine
    E-Mail bekommt.

    \b
    Beispiel:
        formtool forget jana.koehler@jugendamt-greiz.example
        formtool forget jana.koehler@jugendamt-greiz.example --delete-files
    """
    from formtool.addresses import ascii_email
    from formtool.usecases import privacy

    if ascii_email(address) is None:
        raise click.BadParameter("keine gültige E-Mail-Adresse", param_hint="ADRESSE")
    ws = state.workspace()
    result = privacy.forget(ws, address, delete_files=delete_files)
    gone = result.removed
    if result.nobody:
        raise Failure(f"„{address}“ kommt in diesem Arbeitsordner nicht vor (weder in "
                      "state.db noch in einer Datei). Schreibweise prüfen? Die Adresse ist "
                      "vorsorglich abgemeldet.")
    click.echo(f"Aus state.db gelöscht: {gone.contacts} Kontakt(e), {gone.sends} Sendung(en), "
               f"{gone.responses} Rücklauf/Rückläufe, {gone.forms} persönliche(s) Formular(e)"
               + (f", {result.copies} wartende Kopie(n) für „Gesendet“" if result.copies else "")
               + ". Die Abmeldung bleibt als Prüfsumme.")
    if not result.findings:
        click.echo("Keine Dateien im Arbeitsordner enthalten noch Daten dieser Person.")
        return
    for finding in result.findings:
        click.echo(f"  {finding.path.relative_to(ws.root)}: "
                   f"{finding.what(deleted=delete_files)}")
    if not delete_files:
        click.echo("Mit --delete-files werden diese Dateien gelöscht und die Zeilen aus den "
                   "Tabellen entfernt.")
    if result.left:
        for line in result.left:
            click.echo(f"  nicht gelöscht: {line}", err=True)
        raise Failure(f"{len(result.left)} Datei(en) konnten nicht bereinigt werden (siehe "
                      "oben); bitte von Hand löschen.")
