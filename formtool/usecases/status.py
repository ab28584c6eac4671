"""Use case: where each campaign stands (``formtool status``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from formtool.errors import FormtoolError
from formtool.state import runlock
from formtool.state.store import CampaignStatus, Journal, SendState, Store
from formtool.state.store import present as store_present
from formtool.workspace import Workspace

SUMMARY_HEADER = ["Aktion", "gesendet", "fehlgeschlagen", "zurückgestellt", "unbekannt",
                  "beantwortet", "offen", "abgemeldet", "davon per E-Mail beantwortet",
                  "unzustellbar"]
OPEN_HEADER = ["ID", "Name", "Organisation", "Anschrift", "E-Mail", "gesendet am"]
ERRORS_HEADER = ["ID", "Name", "Organisation", "E-Mail", "Zustand", "Antwort des Servers",
                 "versucht am"]
REPLIES_HEADER = ["ID", "Name", "Organisation", "E-Mail", "eingegangen am", "Betreff",
                  "Anfang der Nachricht"]
UNDELIVERED = {SendState.FAILED: "fehlgeschlagen", SendState.PENDING: "zurückgestellt",
               SendState.UNKNOWN: "unbekannt", SendState.SENDING: "wird gerade gesendet"}


class View(enum.Enum):
    SUMMARY = "summary"  # one row per campaign
    OPEN = "open"  # who got it and has not answered
    ERRORS = "errors"  # whom it did not reach
    REPLIES = "replies"  # who answered by mail, without the form, and what they wrote


class StatusError(FormtoolError):
    """No such campaign."""


@dataclass
class Report:
    view: View
    header: list[str]
    rows: list[list[str | int]]
    mailbox: dict[str, int] = field(default_factory=dict)  # mail fetch: handled, by kind
    mailbox_last: str = ""  # when mail fetch last handled a message (ISO 8601)

    @property
    def empty_message(self) -> str:
        return {View.OPEN: "Alle haben geantwortet.",
                View.ERRORS: "Keine E-Mail ohne Zustellung.",
                View.REPLIES: "Keine Antworten ohne Formular (formtool mail fetch holt sie "
                              "aus dem Postfach).",
                View.SUMMARY: "Noch nichts gesendet."}[self.view]


def summary_row(s: CampaignStatus) -> list[str | int]:
    return [s.campaign, s.sent, s.failed, s.pending, s.unknown, s.answered, s.unanswered,
            s.opted_out, s.by_mail, s.undeliverable]


def _advice(state: SendState, reply: str) -> str:
    if state is SendState.UNKNOWN:
        return (f"{reply} – ob sie ankam, ist unbekannt: bitte im Ordner „Gesendet“ "
                "nachsehen, erneut senden nur mit --resend-unknown")
    return reply


def report(ws: Workspace, campaign: str | None = None, view: View = View.SUMMARY) -> Report:
    """The campaigns (or one), as a table of plain values."""
    if not store_present(ws.state_db):  # nothing sent yet; looking creates nothing
        if campaign:
            raise StatusError(f"Aktion „{campaign}“ gibt es nicht (vorhanden: keine).")
        header = {View.OPEN: OPEN_HEADER, View.REPLIES: REPLIES_HEADER,
                  View.ERRORS: ERRORS_HEADER}.get(view, SUMMARY_HEADER)
        return Report(view, header, [])
    live = runlock.active(ws.state_dir)  # a run is sending: its 'sending' rows are live
    with Store(ws.state_db) as store:
        journal = Journal(store)
        known = journal.campaigns()
        if campaign and campaign not in known:
            raise StatusError(f"Aktion „{campaign}“ gibt es nicht (vorhanden: "
                              f"{', '.join(known) or 'keine'}).")
        names = [campaign] if campaign else known
        if view is View.OPEN:
            return Report(view, OPEN_HEADER, [
                [r.key, r.name, r.organisation, r.address, r.email, r.sent_at[:10]]
                for name in names for r in journal.unanswered(name)])
        if view is View.REPLIES:
            return Report(view, REPLIES_HEADER, [
                [r.key, r.name, r.organisation, r.email, r.received_at[:10], r.subject,
                 r.snippet] for name in names for r in journal.replies(name)])
        if view is View.ERRORS:
            return Report(view, ERRORS_HEADER, [
                [r.key, r.name, r.organisation, r.email, UNDELIVERED[r.state],
                 _advice(r.state, r.reply), r.sent_at[:10]]
                for name in names for r in journal.undelivered(name, live=live)])
        mailbox, last = journal.mailbox_counts()
        return Report(view, SUMMARY_HEADER,
                      [summary_row(journal.status(name, live=live)) for name in names],
                      mailbox, last)


def write_workbook(table: Report, path: Path) -> int:
    """The report as an Excel workbook: counts as numbers, dates as dates, the rest
    (ids, addresses, server replies) as text; returns the rows."""
    from formtool.data import workbook

    kinds = {"gesendet am": workbook.Kind.DATE, "versucht am": workbook.Kind.DATE,
             "eingegangen am": workbook.Kind.DATE}
    if table.view is View.SUMMARY:
        kinds.update((h, workbook.Kind.NUMBER) for h in table.header[1:])
    return workbook.write_workbook(path, table.header, table.rows,
                                   [kinds.get(h, workbook.Kind.TEXT) for h in table.header],
                                   sheet={View.SUMMARY: "Stand", View.OPEN: "Offen",
                                          View.ERRORS: "Nicht zugestellt",
                                          View.REPLIES: "Antworten"}[table.view])


def write_csv(table: Report, path: Path) -> int:
    """The report as a CSV file (German Excel: UTF-8 with BOM, ``;``); returns the rows."""
    from formtool.data.tables import write_csv as write

    write(path, table.header, table.rows)
    return len(table.rows)


BY_HAND = "hand"  # answers.kind of an answer marked by hand (phone, letter, a Word file)


def mark_answered(ws: Workspace, campaign: str, addresses: list[str], *, note: str = "",
                  undo: bool = False) -> list[str]:
    """Record (``undo``: take back) that these addresses answered ``campaign`` by other
    means – a phone call, a letter, a file formtool cannot read: no reminder goes to
    them. Returns the addresses that campaign never mailed (nothing is recorded for
    those)."""
    with Store(ws.state_db) as store:
        journal = Journal(store)
        if campaign not in journal.campaigns():
            raise StatusError(f"Aktion „{campaign}“ gibt es nicht (vorhanden: "
                              f"{', '.join(journal.campaigns()) or 'keine'}).")
        unknown = [a for a in addresses if journal.get(campaign, a) is None]
        with store.transaction():
            for address in addresses:
                if address in unknown:
                    continue
                if undo:
                    journal.unmark_answer(email=address, campaign=campaign, kind=BY_HAND)
                else:
                    journal.record_answer(email=address, campaign=campaign, message_id="",
                                          subject="von Hand vermerkt", kind=BY_HAND,
                                          snippet=note)
        store.checkpoint()
    return unknown


def next_steps(table: Report) -> list[str]:
    """What to do next, in words, from the summary (the web page's overview)."""
    if table.view is not View.SUMMARY:
        return []
    if not table.rows:
        return ["Noch nichts gesendet. Prüfen Sie die Kontaktliste, sehen Sie sich die "
                "Vorlage an (Vorschau) und senden Sie die Einladung."]
    at = {name: i for i, name in enumerate(table.header)}
    steps = []
    for row in table.rows:
        name, open_, failed, unknown, undelivered = (
            row[0], row[at["offen"]], row[at["fehlgeschlagen"]], row[at["unbekannt"]],
            row[at["unzustellbar"]])
        if isinstance(unknown, int) and unknown:
            steps.append(f"„{name}“: bei {unknown} E-Mail(s) ist unbekannt, ob sie ankamen – "
                         "bitte im Ordner „Gesendet“ nachsehen.")
        if isinstance(failed, int) and isinstance(undelivered, int) and failed + undelivered:
            steps.append(f"„{name}“: {failed + undelivered} Adresse(n) nicht erreicht – "
                         "Adressen prüfen (formtool status AKTION --fehler).")
        if isinstance(open_, int) and open_:
            steps.append(f"„{name}“: {open_} haben noch nicht geantwortet – Postfach "
                         "abrufen, dann eine Erinnerung nur an sie senden.")
    return steps or ["Alle haben geantwortet. Die Antworten stehen unter „Antworten“."]
