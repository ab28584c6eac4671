"""The command line as a user meets it: help, init, finding the workspace."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from formtool.cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
        else:
            out.append((*prefix, name))
    return out


@pytest.mark.parametrize("path", _commands(cli), ids=lambda p: " ".join(p) or "formtool")
def test_every_command_has_german_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="formtool")
    assert result.exit_code == 0
    assert "Beispiel:" in result.output
    assert "formtool" in result.output.split("Beispiel:")[1]
    assert result.output.startswith(f"Aufruf: {' '.join(('formtool', *path))} [OPTIONEN]")
    assert "Optionen:" in result.output and "Diese Hilfe zeigen." in result.output
    for english in ("Usage", "Options", "Commands", "Show this", "default:", "required",
                    "FILE", "DIRECTORY", "TEXT", "INTEGER", "COMMAND", "[x>="):
        assert english not in result.output, english


@pytest.mark.parametrize(("args", "command", "reason"), [
    ("mail sned", "mail", "Unbekannter Befehl „sned“. Meinten Sie „send“?"),
    ("mail send --yse", "mail send", "Unbekannte Option „--yse“. Meinten Sie „--yes“?"),
    ("forms generate", "forms generate", "Es fehlt das Argument „FORMULAR“."),
    ("mail send x --limit abc", "mail send",
     "Ungültiger Wert für „--limit“: „abc“ ist keine ganze Zahl."),
    ("mail send x --limit 0", "mail send",
     "Ungültiger Wert für „--limit“: 0 ist zu klein (mindestens 1)."),
    ("import --header x a.pdf", "import",
     "Ungültiger Wert für „--header“: „x“ ist keine der Möglichkeiten 'labels', 'names'."),
    ("status a b", "status", "Zu viele Argumente: b"),
    ("forget keine-adresse", "forget",
     "Ungültiger Wert für „ADRESSE“: keine gültige E-Mail-Adresse"),
    ("--bogus", "", "Unbekannte Option „--bogus“."),
])
def test_usage_errors_in_german(args: str, command: str, reason: str) -> None:
    """click's own errors, as a German user reads them: usage, where help is, the reason."""
    result = CliRunner().invoke(cli, args.split(), prog_name="formtool")
    assert result.exit_code == 2
    path = f"formtool {command}".strip()
    assert result.output.startswith(f"Aufruf: {path} [OPTIONEN]"), result.output
    assert f"Hilfe: {path} --help" in result.output
    assert f"Fehler: {reason}\n" in result.output
    assert "Usage" not in result.output and "Error" not in result.output


def test_a_group_without_command_shows_its_help() -> None:
    result = CliRunner().invoke(cli, ["mail"], prog_name="formtool")
    assert result.exit_code == 2
    assert result.output.startswith("Aufruf: formtool mail [OPTIONEN] BEFEHL [ARGUMENTE]...")
    assert "Befehle:" in result.output and "Fehler" not in result.output


def test_init_creates_a_workspace_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "buendnis"
    result = CliRunner().invoke(cli, ["init", str(target)])
    assert result.exit_code == 0, result.output
    for name in ("formtool.toml", "forms/buendnispartner.toml", "forms/regionalgruppe.toml",
                 "forms/README.md", "contacts/fachberatungen.csv"):
        assert (target / name).is_file(), name
    config = (target / "formtool.toml").read_text(encoding="utf-8")
    assert not re.search(r"^\s*pass\w*\s*=", config, re.MULTILINE | re.IGNORECASE)
    (target / "forms" / "buendnispartner.toml").write_text("# meine Änderung\n", encoding="utf-8")
    again = CliRunner().invoke(cli, ["init", str(target)])
    assert again.exit_code == 0
    assert "nichts geändert" in again.output
    assert (target / "forms" / "buendnispartner.toml").read_text(encoding="utf-8") == (
        "# meine Änderung\n")


def test_commands_find_the_workspace_upwards(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    CliRunner().invoke(cli, ["init", str(tmp_path)])
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    result = CliRunner().invoke(cli, ["forms", "list"])
    assert result.exit_code == 0, result.output
    assert "buendnispartner (Version 1): Beitrittserklärung: Bündnispartner*in werden" in (
        result.output)
    assert "   * organisation " in result.output
    assert "     landkreis " in result.output


def test_no_workspace_is_a_plain_german_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["forms", "list"])
    assert result.exit_code == 1
    assert "Kein formtool-Arbeitsordner gefunden" in result.output
    assert "formtool init ORDNER" in result.output


def test_usage_error_exits_2() -> None:
    result = CliRunner().invoke(cli, ["forms", "generate"])
    assert result.exit_code == 2



def test_keys_under_a_commented_section_header_are_named(tmp_path: Path) -> None:
    """The [imap] keys uncommented, its header not: say so, not "[limits] host ist
    unbekannt" (issue 20)."""
    from helpers import invoke

    from formtool import workspace

    ws = tmp_path / "ws"
    workspace.init(ws)
    config = ws / "formtool.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace('# host = ""', 'host = "imap.ionos.de"').replace(
        "# port = 993", "port = 993")
    config.write_text(text, encoding="utf-8")
    line = text.splitlines().index('host = "imap.ionos.de"') + 1
    result = invoke(ws, "status")
    words = " ".join(result.output.split())
    assert result.exit_code == 1
    assert f"Zeile {line}: host gehört zu [imap]" in words
    assert "„[imap]“ darüber ist noch auskommentiert" in words and "[limits]" not in words
