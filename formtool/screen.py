"""What the terminal shows: status reports in 80 columns, whatever the values; the live
line of a send run.

Front end only (the CLI prints these lines). A table of eight counts or six contact
details does not fit a console window, so each campaign is a small block of labelled
counts and each person a block of their details; the full width goes to ``--csv`` and
``--xlsx``.
"""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from formtool.usecases.status import Report, View

if TYPE_CHECKING:
    from formtool.usecases.types import Kind

WIDTH = 80
INDENT = 2


def fit(text: str, width: int = WIDTH) -> str:
    """One line, cut with "…" when it is longer than ``width``."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _wrapped(text: str, indent: int) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), WIDTH, initial_indent=" " * indent,
                         subsequent_indent=" " * indent, break_long_words=True,
                         break_on_hyphens=False) or []


def item_lines(text: str) -> list[str]:
    """A list item: indented, continued further in."""
    return textwrap.wrap(" ".join(text.split()), WIDTH, initial_indent=" " * INDENT,
                         subsequent_indent=" " * (INDENT + 2), break_on_hyphens=False)


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def message_lines(kind: str, sender: str, subject: str, note: str) -> list[str]:
    """One message of ``mail fetch``: what it is, from whom, about what; then what
    formtool did with it, wrapped."""
    head = fit(f"{kind}: {sender or '(ohne Absender)'} – {subject or '(ohne Betreff)'}")
    return [head, *_wrapped(note, INDENT + 2)]


def _kind_counts(counts: Mapping[str, int]) -> list[str]:
    """``counts`` by inbound.Kind's value -> "3 mit Formular/Anhang", "1 Antwort" …,
    those that are not zero, in a fixed order."""
    return [_n(counts[kind], one, many) for kind, one, many in _KINDS if counts.get(kind)]


def fetch_summary(counts: Mapping[Kind, int], earlier: int, *, dry_run: bool) -> list[str]:
    """The counts of one ``mail fetch``, those that are not zero, in 80 columns."""
    text = ", ".join(_kind_counts({kind.value: n for kind, n in counts.items()}))
    text = text or "keine neuen E-Mails"
    if earlier:
        text += f"; {earlier} schon früher verarbeitet"
    prefix = "Probelauf, nichts geändert: " if dry_run else "Ergebnis: "
    return textwrap.wrap(prefix + text + ".", WIDTH, subsequent_indent=" " * INDENT,
                         break_on_hyphens=False)


def campaign_lines(row: Sequence[str | int]) -> list[str]:
    """One campaign: its name, then what happened, as labelled counts."""
    (name, sent, failed, pending, unknown, answered, unanswered, opted_out, by_mail,
     undeliverable) = row
    pad = " " * INDENT
    mail = f" · davon per E-Mail {by_mail}" if by_mail else ""
    return [
        fit(str(name)),
        f"{pad}gesendet {sent} · beantwortet {answered}{mail} · offen {unanswered} · "
        f"abgemeldet {opted_out}",
        f"{pad}fehlgeschlagen {failed} · unzustellbar {undeliverable} · "
        f"zurückgestellt {pending} · unbekannt {unknown}",
    ]


def _person(key: str, title: str, details: list[str]) -> list[str]:
    head = f"{key}  " if key else ""
    lines = [head + fit(title, WIDTH - len(head))]
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
        elif report.view is View.REPLIES:
            key, name, organisation, email, received, subject, snippet = cells
            who = " – ".join(p for p in (name, organisation) if p) or email
            blocks.append(_person(key, who, [
                f"{email} · am {received}: „{subject}“",
                *(f"| {line}" for line in snippet.splitlines())]))
        else:
            key, name, organisation, email, state, reply, tried_at = cells
            blocks.append(_person(key, " – ".join(p for p in (name, organisation) if p), [
                email, f"{state}, versucht am {tried_at}: {reply}"]))
    if report.view is View.SUMMARY and report.mailbox:
        blocks.append(mailbox_lines(report.mailbox, report.mailbox_last))
    lines: list[str] = []
    for block in blocks:
        if lines:
            lines.append("")
        lines.extend(block)
    return lines


# what ``mail fetch`` found, by inbound.Kind's value (not imported: `status` starts
# without the email package), as counted for the coordinator
_KINDS = (("Rücklauf", "mit Formular/Anhang", "mit Formular/Anhang"),
          ("Antwort", "Antwort", "Antworten"), ("Abmeldung", "Abmeldung", "Abmeldungen"),
          ("unzustellbar", "unzustellbar", "unzustellbar"),
          ("automatische Antwort", "automatische Antwort", "automatische Antworten"),
          ("Zustellhinweis", "Zustellhinweis", "Zustellhinweise"),
          ("Spam-Beschwerde", "Spam-Beschwerde", "Spam-Beschwerden"),
          ("anderes", "andere (nicht angefasst)", "andere (nicht angefasst)"),
          ("zu groß", "zu groß", "zu groß"), ("unlesbar", "unlesbar", "unlesbar"))


def mailbox_lines(counts: dict[str, int], last: str) -> list[str]:
    """What ``mail fetch`` has handled so far, and when last."""
    when = f", zuletzt am {last[8:10]}.{last[5:7]}.{last[:4]}" if len(last) >= 10 else ""
    return [fit(f"Postfach (formtool mail fetch{when})"),
            *_wrapped(" · ".join(_kind_counts(counts)), INDENT)]


class SendProgress:
    """The live state of a send run, on one line: sent / failed / left, and while a rate
    limit holds the run, a countdown. On a terminal the line is redrawn in place (a
    ticker redraws the countdown each second); elsewhere (a pipe, CI, a log file) plain
    lines at most every ``interval`` seconds or each tenth of the run, and a pause only
    when it is long enough to notice. Notes (a refusal, a reconnect) go on lines of
    their own above it. Thread-safe: the sending threads report here."""

    def __init__(self, total: int, *, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, interval: float = 10.0) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.interval = interval
        self.counts = {"sent": 0, "failed": 0, "pending": 0, "unknown": 0}
        self.wait_until = 0.0
        self.wait_why = ""
        self.lock = threading.Lock()
        self._shown = 0  # characters of the line on screen (terminal)
        self._last_line = clock()
        self._last_step = 0
        self._last_pause = -1e9
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        c = self.counts
        left = max(self.total - self.done, 0)
        text = f"Senden: {c['sent']} gesendet · {c['failed']} fehlgeschlagen · {left} offen"
        if c["pending"] or c["unknown"]:
            text += f" · {c['pending'] + c['unknown']} zurückgestellt/unbekannt"
        wait = self.wait_until - self.clock()
        if wait > 0.5:
            why = self.wait_why.removeprefix("Grenze ").replace(" pro ", "/")
            text += f" · Pause ({why}): {wait:.0f} s"
        return fit(text, WIDTH - 1)

    def event(self, kind: str, *, key: str = "", detail: str = "", seconds: float = 0.0) -> None:
        with self.lock:
            if kind in self.counts:
                self.counts[kind] += 1
                self.wait_until = 0.0
            if kind == "wait":
                self.wait_until = self.clock() + seconds
                self.wait_why = detail
                if self.tty:
                    self._start_ticker()
                elif seconds >= 5 and self.clock() - self._last_pause >= 30:
                    self._last_pause = self.clock()
                    self._write_line(f"Pause: {detail}, weiter in {seconds:.0f} s")
            if kind in ("failed", "retry", "reconnect", "unknown", "wall") and detail:
                self._note(f"{key}: {detail}" if key else detail)
            self._update()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self.lock:
            self.wait_until = 0.0  # the run is over: no pause left to show
            if self.tty:
                if self._shown:
                    self.stream.write("\r" + " " * self._shown + "\r")
                    self._shown = 0
            elif self.done:
                self._write_line(self.line())
            self.stream.flush()

    # -- drawing -------------------------------------------------------------------

    def _update(self) -> None:
        if self.tty:
            self._draw()
            return
        now = self.clock()
        step = self.done * 10 // max(self.total, 1)
        if step > self._last_step or now - self._last_line >= self.interval:
            self._last_step = step
            self._write_line(self.line())

    def _draw(self) -> None:
        text = self.line()
        self.stream.write("\r" + text + " " * max(self._shown - len(text), 0))
        self.stream.flush()
        self._shown = len(text)

    def _note(self, text: str) -> None:
        if self.tty and self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self._shown = 0
        self._write_line(fit(text, WIDTH * 2))

    def _write_line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last_line = self.clock()

    def _start_ticker(self) -> None:
        if self._ticker is not None:
            return

        def tick() -> None:
            while not self._stop.wait(1.0):
                with self.lock:
                    if self.wait_until > self.clock():
                        self._draw()

        self._ticker = threading.Thread(target=tick, name="formtool-progress", daemon=True)
        self._ticker.start()
