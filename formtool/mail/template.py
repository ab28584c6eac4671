"""Mail templates: ``templates/*.md.j2`` -> the rendered parts for one contact.

A template is header lines (``Subject:``, optional ``Reply-To:``, ``Cc:``,
``Attach:``), a blank line and a Markdown body. Every part is a Jinja2 template
with ``StrictUndefined``: a missing variable is an error naming the contact's row
and the template's line, never an empty string. Contact values are literal text:
HTML-escaped, and Markdown-escaped in the body (``markdown_literal``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import markupsafe

from formtool.errors import FormtoolError, os_reason
from formtool.mail.contacts import Contact

HEADERS = {"subject": "Subject", "reply-to": "Reply-To", "cc": "Cc", "attach": "Attach",
           "erinnerung-an": "Erinnerung-an"}  # the campaign a reminder reminds of
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ComposeError(FormtoolError):
    """A template cannot be loaded, or cannot be rendered for one contact."""


@dataclass(frozen=True)
class Sender:
    name: str
    email: str
    reply_to: str = ""
    unsubscribe: str = ""  # opt-out address; the sender's when empty

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


@dataclass
class Template:
    name: str
    path: Path
    headers: list[tuple[str, int, jinja2.Template]]  # (header, line, template)
    text_body: jinja2.Template
    html_body: jinja2.Template
    reminder_of: str = ""  # "Erinnerung-an: AKTION": only those who have not answered it
    variables: frozenset[str] = frozenset()  # the names the text and headers use


_TEXT = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                           autoescape=False)
def markdown_literal(value: Any) -> Any:
    """A value as literal text inside Markdown: every character Markdown could read as
    markup (links, images, emphasis, headings, lists, code) is backslash-escaped;
    ``<`` and ``&`` are left to HTML escaping, which follows."""
    if isinstance(value, (jinja2.Undefined, markupsafe.Markup)):
        return value
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", str(value))


_MARKDOWN_SPECIAL = re.compile(r"[\\`*_{}\[\]()#+\-.!]")  # Python-Markdown's escapable set
# Values in the HTML part: escaped for Markdown (finalize), then for HTML (autoescape).
_HTML = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                           autoescape=True, finalize=markdown_literal)


_JINJA = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})", re.DOTALL)
_STRONG = re.compile(r"\*\*|__")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+", re.MULTILINE)
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")


def plain_source(body: str) -> str:
    """The template's own Markdown as a plain-text reader wants it: no ``**``, links
    as "text (address)", headings without ``#``. Only the template's text is changed,
    never a contact's value (a star in "Kolleg*innen" from the list stays), and no
    line moves, so Jinja's line numbers stay the file's."""
    parts = _JINJA.split(body)
    for i in range(0, len(parts), 2):  # the literal text between Jinja's tags
        text = _STRONG.sub("", parts[i])
        text = _LINK.sub(lambda m: m[1] if m[1] == m[2] else f"{m[1]} ({m[2]})", text)
        parts[i] = _ESCAPED.sub(r"\1", _HEADING.sub("", text))
    return "".join(parts)


def template_path(templates_dir: Path, name: str) -> Path:
    """TEMPLATE is a name in templates/ (with or without .md.j2) or a path."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    for path in (templates_dir / name, templates_dir / f"{name}.md.j2"):
        if path.is_file():
            return path
    known = ", ".join(p.name.removesuffix(".md.j2")
                      for p in sorted(templates_dir.glob("*.md.j2"))) or "keine"
    raise ComposeError(f"Unbekannte Vorlage „{name}“ (vorhanden in {templates_dir}: {known}).")


def load_template(path: Path) -> Template:
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ComposeError(f"{path}: Vorlage ist nicht als UTF-8 gespeichert (im Editor "
                           "„Speichern unter“ → Codierung UTF-8 wählen).") from None
    except OSError as exc:
        raise ComposeError(f"{path}: Vorlage kann nicht gelesen werden "
                           f"({os_reason(exc)}).") from None
    lines = source.splitlines()
    headers: list[tuple[str, int, jinja2.Template]] = []
    reminder_of = ""
    number = 0
    try:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                break
            key, sep, value = line.partition(":")
            header = HEADERS.get(key.strip().lower())
            if not sep or header is None:
                raise ComposeError(f"{path}:{number}: unbekannte Kopfzeile „{line.strip()}“ "
                                   f"(erlaubt: {', '.join(HEADERS.values())}; danach eine "
                                   "Leerzeile und der Text)")
            if header == "Erinnerung-an":
                reminder_of = value.strip()
                continue
            headers.append((header, number, _TEXT.from_string(value.strip())))
        else:
            raise ComposeError(f"{path}: keine Leerzeile zwischen Kopfzeilen und Text.")
        if not any(h == "Subject" for h, _, _ in headers):
            raise ComposeError(f"{path}: die Kopfzeile „Subject:“ (Betreff) fehlt.")
        # Pad with newlines so that Jinja's line numbers are the file's.
        body = "\n" * number + "\n".join(lines[number:]) + "\n"
        text_body, html_body = _TEXT.from_string(plain_source(body)), _HTML.from_string(body)
        used = jinja2.meta.find_undeclared_variables(_TEXT.parse("\n".join(lines)))
    except jinja2.TemplateSyntaxError as exc:
        raise ComposeError(f"{path}:{exc.lineno}: Fehler in der Vorlage: {_syntax(exc)}",
                           detail=str(exc.message)) from None
    name = path.name.removesuffix(".md.j2")
    return Template(name, path, headers, text_body, html_body, reminder_of, frozenset(used))


TEXT_WIDTH = 76  # plain-text lines a mail program shows without breaking them (RFC 5322 2.1.1
#                 recommends 78; a quote's "> " still fits)


def wrapped(text: str) -> str:
    """The plain-text part with lines of at most TEXT_WIDTH characters: long lines broken
    at spaces (a list item's continuation indented under its text); words longer than
    the width (an address, a link) are never split."""
    import textwrap

    out = []
    for line in text.split("\n"):
        if len(line) <= TEXT_WIDTH:
            out.append(line)
            continue
        item = re.match(r"^(\s*(?:[-*+]|\d+[.)])\s+|\s*>\s?|\s*)", line)
        lead = item.group(1) if item else ""
        hang = lead if lead.strip().startswith(">") else " " * len(lead)
        out.extend(textwrap.wrap(line, TEXT_WIDTH, initial_indent="", subsequent_indent=hang,
                                 break_long_words=False, break_on_hyphens=False)
                   or [line])
    return "\n".join(out)


def salutation(contact: Contact) -> str:
    """The German letter opening: "Sehr geehrte Frau Dr. Köhler," and so on."""
    surname = contact.get("nachname")
    title = contact.get("titel")
    name = " ".join(p for p in (title, surname) if p)
    kind = contact.get("anrede").strip().lower()
    if surname and kind == "frau":
        return f"Sehr geehrte Frau {name},"
    if surname and kind == "herr":
        return f"Sehr geehrter Herr {name},"
    return "Sehr geehrte Damen und Herren,"


def context(contact: Contact, sender: Sender, extra: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """The variables a template sees: every contact column, the sender, anrede_brief."""
    values: dict[str, Any] = {k: v for k, v in contact.columns.items() if IDENTIFIER.match(k)}
    values.update(kontakt=dict(contact.columns), anrede_brief=salutation(contact),
                  absender={"name": sender.name, "email": sender.email})
    values.update(extra or {})
    return values


def _template_line(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


@dataclass
class Rendered:
    subject: str
    text: str
    html: str
    reply_to: str = ""
    cc: list[str] = field(default_factory=list)
    attach: list[str] = field(default_factory=list)


def render(template: Template, contact: Contact, variables: dict[str, Any],
           source: str = "") -> Rendered:
    """Render every part for one contact; errors name the row and the template line."""
    where = f"{source}, Zeile {contact.row} ({contact.key})" if source else (
        f"Zeile {contact.row} ({contact.key})")
    out = Rendered(subject="", text="", html="")
    line: int | None = None
    try:
        for header, line, part in template.headers:  # noqa: B007 (line is read on error)
            value = " ".join(part.render(variables).split())  # CR/LF can never start a header
            if header == "Subject":
                out.subject = value
            elif header == "Reply-To":
                out.reply_to = value
            elif header == "Cc":
                out.cc.extend(a.strip() for a in value.split(",") if a.strip())
            elif value:
                out.attach.append(value)
        line = None  # the body's own line numbers come from Jinja
        out.text = wrapped(template.text_body.render(variables).strip()) + "\n"
        out.html = template.html_body.render(variables)
    except jinja2.UndefinedError as exc:
        line = line or _template_line(exc)
        at = f"{template.path.name}:{line}" if line else template.path.name
        raise ComposeError(f"{where}: Vorlage {at}: {_german_undefined(exc)}") from None
    except jinja2.TemplateError as exc:
        raise ComposeError(f"{where}: Vorlage {template.path.name}: lässt sich nicht ausfüllen "
                           f"({type(exc).__name__})", detail=str(exc)) from None
    return out


def _syntax(exc: jinja2.TemplateSyntaxError) -> str:
    """Jinja's (English) syntax message as a German hint."""
    message = (exc.message or "").lower()
    if "unexpected end of template" in message or "expected token" in message:
        return "ein {{ … }} oder {% … %} ist nicht richtig geschlossen"
    if "unexpected '}'" in message or "unexpected char" in message:
        return "ein Zeichen an dieser Stelle passt nicht (geschweifte Klammern doppelt: {{ }})"
    if "unknown tag" in message or "encountered unknown tag" in message:
        return "unbekannter Befehl in {% … %}"
    return "die Platzhalter {{ … }} oder Befehle {% … %} sind nicht richtig geschrieben"


def _german_undefined(exc: jinja2.UndefinedError) -> str:
    match = re.search(r"'([^']+)' is undefined", str(exc))
    if match:
        return f"unbekannte Variable „{match.group(1)}“ (keine solche Spalte in der Kontaktliste)"
    return "ein Platzhalter hat keinen Wert"
