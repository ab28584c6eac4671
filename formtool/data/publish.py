"""Public lists for a website: entries in groups, as HTML, Markdown, CSV and JSON.

Everything here is about writing values that came from the internet into a web page
safely: every value escaped for its format, links only ``http(s)``, no script, no
external resource, and the same bytes for the same data (no dates, a stable order).
Sorted as a German reader expects (DIN 5007, variant 1: Ä as A, ß as ss, case ignored).
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from formtool.data.tables import neutralise


@dataclass(frozen=True)
class Entry:
    """One line of a public list: its title, an optional link, and labelled details."""

    title: str
    link: str = ""  # a checked http(s) address, or ""
    details: tuple[tuple[str, str], ...] = ()  # (label, value), in display order

    def detail(self, label: str) -> str:
        return next((v for k, v in self.details if k == label), "")


def shown(entry: Entry, group: str) -> list[tuple[str, str]]:
    """The details worth showing under ``group``: not empty, not the group itself, not
    a repeat of the one before (a town that is its own Landkreis)."""
    out: list[tuple[str, str]] = []
    for label, value in entry.details:
        if value and value != group and (not out or out[-1][1] != value):
            out.append((label, value))
    return out


@dataclass
class Listing:
    """A public list: a heading, a CSS class stem, and entries in named groups."""

    title: str
    css: str  # e.g. "formtool-partner": the classes are css, css__gruppe, css__eintrag …
    groups: list[tuple[str, list[Entry]]] = field(default_factory=list)
    columns: tuple[str, ...] = ()  # the detail labels, for CSV and JSON

    @property
    def entries(self) -> list[Entry]:
        return [e for _, group in self.groups for e in group]


def din_key(text: str) -> str:
    """DIN 5007-1 sort key: umlauts as their base letter, ß as ss, case and accents
    ignored; ties keep a stable order by the text itself."""
    folded = text.casefold().replace("ß", "ss")
    base = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in base if not unicodedata.combining(c)) + "\x00" + text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean(text: str) -> str:
    """One line of plain text: control characters and line breaks become spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


def safe_url(text: str) -> str:
    """An address to link to, or "" when it is not a plain web address: only http and
    https (``javascript:``, ``data:``, ``file:`` are dropped); a bare ``www.x.de`` or
    ``x.de`` becomes ``https://…``; no spaces, quotes or control characters."""
    text = text.strip()
    if not text or _CONTROL.search(text):
        return ""
    # characters that could end an attribute or a tag: written percent-encoded (RFC 3986
    # 2.1), never dropped with the address – the address stays what the partner wrote
    text = "".join(f"%{ord(c):02X}" if c in " \"'<>`\\" else c for c in text)
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", text):
        text = "https://" + text.removeprefix("//")
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    host = parts.hostname or ""
    if (parts.scheme.lower() not in ("http", "https") or parts.username
            or not re.fullmatch(r"[\w-]+(\.[\w-]+)+", host)):
        return ""
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, parts.query,
                       parts.fragment))


# -- HTML ---------------------------------------------------------------------------

def to_html(listing: Listing) -> str:
    """A fragment for a WordPress "Custom HTML" block: a <div> with headings and lists,
    every value escaped, classes to style (``formtool-partner__eintrag`` …), no script,
    no style, nothing loaded from elsewhere."""
    c = listing.css
    out = [f'<div class="{c}">']
    for group, entries in listing.groups:
        out.append(f'  <h3 class="{c}__gruppe">{html.escape(group)}</h3>')
        out.append(f'  <ul class="{c}__liste">')
        for entry in entries:
            title = html.escape(entry.title)
            if entry.link:
                title = (f'<a class="{c}__link" href="{html.escape(entry.link, quote=True)}" '
                         f'rel="nofollow noopener">{title}</a>')
            parts = [f'<span class="{c}__name">{title}</span>']
            for label, value in shown(entry, group):
                parts.append(f'<span class="{c}__{_css_name(label)}">'
                             f"{html.escape(value)}</span>")
            out.append(f'    <li class="{c}__eintrag">' + " · ".join(parts) + "</li>")
        out.append("  </ul>")
    out.append("</div>")
    return "\n".join(out) + "\n"


def _css_name(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", din_key(label).split("\x00")[0]).strip("-") or "feld"


# -- Markdown -------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"[\\`*_{}\[\]()#+\-.!|~]")


def _md(text: str) -> str:
    """Literal text in Markdown: markup characters backslash-escaped, and <, >, & as
    HTML entities (Markdown passes raw HTML through)."""
    escaped = html.escape(text, quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", escaped)


def to_markdown(listing: Listing) -> str:
    out = [f"# {_md(listing.title)}", ""]
    for group, entries in listing.groups:
        out += [f"## {_md(group)}", ""]
        for entry in entries:
            title = _md(entry.title)
            if entry.link:
                link = entry.link.replace("(", "%28").replace(")", "%29")
                title = f"[{title}](<{link}>)"
            details = " · ".join(_md(v) for _, v in shown(entry, group))
            out.append(f"- {title}" + (f" – {details}" if details else ""))
        out.append("")
    return "\n".join(out)


# -- CSV and JSON (TablePress imports both) ---------------------------------------------

def _cell(value: str) -> str:
    """A table cell for TablePress, which renders a cell's HTML (and so would run a
    partner's ``<script>``): every value HTML-escaped, shown as the characters typed."""
    return html.escape(value, quote=True)


def to_csv(listing: Listing) -> str:
    """Name, the details (the group is one of them), the website; in the groups' order.
    Every cell HTML-escaped (TablePress) and formula-guarded (a spreadsheet)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["Name", *listing.columns, "Website"])
    for entry in listing.entries:
        row = [entry.title, *(entry.detail(c) for c in listing.columns), entry.link]
        writer.writerow([neutralise(_cell(v)) for v in row])
    return buffer.getvalue()


def to_json(listing: Listing) -> str:
    """The entries for TablePress's JSON import, every value HTML-escaped."""
    data = {
        "titel": _cell(listing.title),
        "eintraege": [
            {"Name": _cell(entry.title),
             **{c: _cell(entry.detail(c)) for c in listing.columns},
             "Website": _cell(entry.link)}
            for entry in listing.entries],
    }
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def from_json(text: str) -> list[dict[str, str]]:
    """The entries of a list written by :func:`to_json` (for ``--diff``), as text."""
    data = json.loads(text)
    entries = data.get("eintraege", []) if isinstance(data, dict) else []
    return [{k: html.unescape(v) if isinstance(v, str) else v for k, v in e.items()}
            for e in entries if isinstance(e, dict)]
