"""click in German: the help's headings and hints, usage errors and failures.

click writes its own words in English (``Usage:``, ``Options:``, ``Show this
message and exit.``, ``Error: No such option …``). They are marked for gettext,
but a catalogue would be chosen by the machine's locale, and formtool speaks
German everywhere; so the command classes here put German in their place. A
message this module does not know stays as click wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import click

SECTIONS = {"Options": "Optionen", "Commands": "Befehle",
            "Positional arguments": "Argumente", "Arguments": "Argumente"}
HELP_OPTION = "Diese Hilfe zeigen."
# click's messages (parser, types, core) -> German; the groups carry names and values
# Patterns as text: compiled (and cached by re) when a message is shown, not at start.
MESSAGES = [(f"(?i){pattern}", german) for pattern, german in (
    (r"^Got unexpected extra arguments? \((.*)\)$", r"zu viele Argumente: \1"),
    (r"^Option '(.+)' requires an argument\.$", r"die Option „\1“ braucht einen Wert."),
    (r"^Option '(.+)' requires (\d+) arguments\.$", r"die Option „\1“ braucht \2 Werte."),
    (r"^Option '(.+)' does not take a value\.$", r"die Option „\1“ nimmt keinen Wert."),
    (r"^'(.*)' is not a valid integer(?: range)?\.$", r"„\1“ ist keine ganze Zahl."),
    (r"^'(.*)' is not a valid float(?: range)?\.$", r"„\1“ ist keine Zahl."),
    (r"^(.+) is not in the range x>=(.+)\.$", r"\1 ist zu klein (mindestens \2)."),
    (r"^(.+) is not in the range x<=(.+)\.$", r"\1 ist zu groß (höchstens \2)."),
    (r"^'(.*)' is not one of (.*)\.$", r"„\1“ ist keine der Möglichkeiten \2."),
    (r"^'(.*)' is not ('.*')\.$", r"„\1“ ist nicht \2."),
    (r"^(?:file|directory|path) '(.*)' does not exist\.$", r"„\1“ gibt es nicht."),
    (r"^(?:file|directory|path) '(.*)' is a file\.$", r"„\1“ ist eine Datei, kein Ordner."),
    (r"^(?:file|directory|path) '(.*)' is a directory\.$", r"„\1“ ist ein Ordner, keine Datei."),
    (r"^(?:file|directory|path) '(.*)' is not readable\.$", r"„\1“ ist nicht lesbar."),
    (r"^(?:file|directory|path) '(.*)' is not writable\.$", r"„\1“ ist nicht beschreibbar."),
    (r"^Missing command\.$", r"Befehl fehlt."),
)]
EXTRAS = [(pattern, german) for pattern, german in (
    (r"\bdefault: ", "Standard: "), (r"\brequired\b", "Pflicht"), (r"\bx>=(\S+)", r"ab \1"),
    (r"\bx<=(\S+)", r"bis \1"), (r"\benv var: ", "Umgebungsvariable: "),
)]


def message(text: str) -> str:
    """One of click's English messages in German (unchanged when unknown)."""
    for pattern, german in MESSAGES:
        if re.match(pattern, text):
            return re.sub(pattern, german, text)
    return text


def _quoted(hint: str) -> str:
    return "„" + hint.replace("'", "").replace('"', "") + "“"


def _did_you_mean(possibilities: Sequence[str] | None) -> str:
    if not possibilities:
        return ""
    return " Meinten Sie " + " oder ".join(_quoted(p) for p in sorted(possibilities)) + "?"


def usage_error(exc: click.UsageError) -> str:
    """The German sentence for a usage error."""
    if isinstance(exc, click.NoSuchOption):
        return f"Unbekannte Option {_quoted(exc.option_name)}.{_did_you_mean(exc.possibilities)}"
    if isinstance(exc, click.exceptions.NoSuchCommand):
        return (f"Unbekannter Befehl {_quoted(exc.command_name)}."
                f"{_did_you_mean(exc.possibilities)}")
    if isinstance(exc, click.BadParameter):
        hint = _param_hint(exc)
        if isinstance(exc, click.MissingParameter):
            kind = exc.param_type or (exc.param.param_type_name if exc.param else "")
            what = {"argument": "das Argument", "option": "die Option"}.get(kind, "die Angabe")
            return f"Es fehlt {what} {hint}".rstrip() + "."
        return f"Ungültiger Wert für {hint}: {message(exc.message)}" if hint else (
            f"Ungültiger Wert: {message(exc.message)}")
    text = message(exc.message)
    return text[:1].upper() + text[1:]


def _param_hint(exc: click.BadParameter) -> str:
    if exc.param_hint is not None:
        hints = [exc.param_hint] if isinstance(exc.param_hint, str) else exc.param_hint
        return " / ".join(_quoted(h) for h in hints)
    if exc.param is not None and exc.ctx is not None:
        return _quoted(exc.param.get_error_hint(exc.ctx))
    return ""


def _say_error(text: str) -> None:
    click.secho(f"Fehler: {text}", err=True, fg="red")


class Failure(click.ClickException):
    """A failure as the user sees it: one German message, exit 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        _say_error(self.format_message())


class UsageError(click.UsageError):
    """A usage error as formtool shows it: usage line, where help is, the German reason."""

    def __init__(self, original: click.UsageError) -> None:
        super().__init__(usage_error(original), original.ctx)

    def show(self, file: IO[Any] | None = None) -> None:
        if self.ctx is not None:
            click.echo(self.ctx.get_usage(), err=True)
            help_option = self.ctx.help_option_names[-1] if self.ctx.help_option_names else ""
            if help_option:
                click.echo(f"Hilfe: {self.ctx.command_path} {help_option}", err=True)
            click.echo(err=True)
        _say_error(self.format_message())


class Formatter(click.HelpFormatter):
    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, "Aufruf: " if prefix is None else prefix)

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        with super().section(SECTIONS.get(name, name)):
            yield

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30,
                 col_spacing: int = 2) -> None:
        super().write_dl([(term, _extras(text)) for term, text in rows], col_max, col_spacing)


def _extras(text: str) -> str:
    """The bracketed hints click adds to an option's help: [default: …; required]."""
    match = re.search(r"\[([^\[\]]*)\]$", text)
    if match is None:
        return text
    extras = match.group(1)
    for pattern, german in EXTRAS:
        extras = re.sub(pattern, german, extras)
    return f"{text[:match.start()]}[{extras}]"


class Context(click.Context):
    formatter_class = Formatter


class _German:
    """German help for a command or group: headings, the help option, [OPTIONEN]."""

    context_class: type[click.Context] = Context

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("options_metavar", "[OPTIONEN]")
        super().__init__(*args, **kwargs)

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option: click.Option | None = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = HELP_OPTION
        return option


class Command(_German, click.Command):
    """A command whose help is German (its usage errors are translated by its group)."""


class Group(_German, click.Group):
    """A group whose help and usage errors are German; its subcommands and subgroups too."""

    command_class = Command
    group_class = type

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("subcommand_metavar", "BEFEHL [ARGUMENTE]...")
        super().__init__(*args, **kwargs)

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _german(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a subcommand's arguments, or one raised by a command
            raise _german(exc) from None


def _german(exc: click.UsageError) -> click.UsageError:
    if isinstance(exc, UsageError | click.exceptions.NoArgsIsHelpError):
        return exc  # already German; or the (German) help of a group called without command
    return UsageError(exc)
