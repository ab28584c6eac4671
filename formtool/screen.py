"""What the terminal shows of a status report: at most 80 columns, whatever the values.

Front end only (the CLI prints these lines). A table of eight counts or six contact
details does not fit a console window, so each campaign is a small block of labelled
counts and each person a block of their details; the full width goes to ``--csv`` and
``--xlsx``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from formtool.usecases.status import Report, View

WIDTH = 80
INDENT = 2


def _fit(text: str, width: int = WIDTH) -> str:
    """One line, cut with "…" when it is longer than ``width``."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _wrapped(text: str, indent: int) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), WIDTH, initial_indent=" " * indent,
                         subsequent_indent=" " * indent, break_long_words=True,
                         break_on_hyphens=False) or []


def campaign_lines(row: Sequence[str | int]) -> list[str]:
    """One campaign: its name, then what happened, as labelled counts."""
    name, sent, failed, pending, unknown, answered, unanswered, opted_out = row
    pad = " " * INDENT
    return [
        _fit(str(name)),
        f"{pad}gesendet {sent} · beantwortet {answered} · offen {unanswered} · "
        f"abgemeldet {opted_out}",
        f"{pad}nicht zugestellt: fehlgeschlagen {failed} · zurückgestellt {pending} · "
        f"unbekannt {unknown}",
    ]


def _person(key: str, title: str, details: list[str]) -> list[str]:
    head = f"{key}  " if key else ""
    lines = [head + _fit(title, WIDTH - len(head))]
    for detail in details:
        if detail.strip():
            lines.extend(_wrapped(detail, INDENT + 2))
    return lines


def report_lines(report: Report) -> list[str]:
    """The whole report, a block per campaign or person, blank lines between."""
    blocks: list[list[str]] = []
    for row in report.rows:
        cells = [str(c) for c in row]
        if report.view is View.SUMMARY:
            blocks.append(campaign_lines(row))
        elif report.view is View.OPEN:
            key, name, organisation, address, email, sent_at = cells
            blocks.append(_person(key, " – ".join(p for p in (name, organisation) if p), [
                email, " · ".join(p for p in (address, f"gesendet am {sent_at}") if p)]))
        else:
            key, name, organisation, email, state, reply, tried_at = cells
            blocks.append(_person(key, " – ".join(p for p in (name, organisation) if p), [
                email, f"{state}, versucht am {tried_at}: {reply}"]))
    lines: list[str] = []
    for block in blocks:
        if lines:
            lines.append("")
        lines.extend(block)
    return lines
