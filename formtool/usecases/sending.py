"""Use case: send a template to a contact list, journaled (``formtool mail send``).

``prepare`` checks everything that can be checked without sending – settings,
template, every contact's message, who already got it, who opted out – while
holding the workspace's send lock, so that what it counts is what ``send``
does. The CLI shows the plan, asks, and calls ``SendPlan.send``; the demo, the
tests and the benchmarks call the same two steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from formtool.addresses import normalise
from formtool.errors import FormtoolError
from formtool.mail import smtp
from formtool.mail.contacts import Contact, Skipped
from formtool.mail.oauth import Secret
from formtool.mail.outbox import Event, Outbox, Summary
from formtool.mail.sentcopy import CopyReport, SentCopies
from formtool.state.runlock import RunLock
from formtool.state.store import Journal, Send, SendState, Store
from formtool.usecases import credentials, mailing, settling
from formtool.usecases.gaps import Gaps
from formtool.usecases.settling import Settled
from formtool.workspace import ImapSettings, Workspace


class SendingError(FormtoolError):
    """The run cannot start."""


@dataclass
class Before:
    """What the journal says before the run, for this campaign and list."""

    already_sent: int = 0
    opted_out: int = 0
    answered: int = 0  # answered a campaign before: left out (--auch-beantwortete)
    unknown: list[Contact] = field(default_factory=list)  # not resent (--resend-unknown)
    failed: list[tuple[Contact, str]] = field(default_factory=list)  # not retried
    crashed: list[Send] = field(default_factory=list)  # left 'sending' by a run that died
    settled: Settled | None = None  # --resend-unknown: what the Sent folder proved first


@dataclass
class Result:
    """A finished run: this run's summary and what stood before it."""

    summary: Summary
    before: Before
    skipped: list[Skipped]
    copies: CopyReport | None = None  # [imap] sent_copy: what became of the copies

    @property
    def trouble(self) -> int:
        """Contacts that did not get their mail and were not meant to be skipped."""
        s = self.summary
        return (missing(self.skipped) + s.failed + s.pending + s.unknown
                + len(self.before.unknown) + len(self.before.failed))

    def described(self) -> list[str]:
        """The run's result in German, as both front ends show it: the count line,
        then one line per refused recipient."""
        summary = self.summary
        parts = [f"{summary.sent} gesendet"]
        for label, value in (("fehlgeschlagen", summary.failed),
                             ("zurückgestellt (später erneut)", summary.pending),
                             ("Zustand unbekannt", summary.unknown + len(self.before.unknown)),
                             ("schon vorher gesendet", self.before.already_sent),
                             ("abgemeldet", self.before.opted_out),
                             ("wegen --limit nicht gesendet", summary.not_sent_limit)):
            if value:
                parts.append(f"{value} {label}")
        lines = ["Fertig: " + ", ".join(parts) + "."]
        for contact, reply in summary.failures:
            lines.append(f"fehlgeschlagen: Zeile {contact.row} ({named(contact)}): {reply}")
        return lines

    def trouble_words(self) -> str:
        """Who did not get the mail, by why, in German (for the run's last line)."""
        s = self.summary
        return trouble_words(skipped=missing(self.skipped),
                             failed=s.failed + len(self.before.failed),
                             pending=s.pending, unknown=s.unknown + len(self.before.unknown))


def named(contact: Contact) -> str:
    """"Jana Köhler <jana@…>", or the address alone."""
    name = contact.display_name
    return f"{name} <{contact.email}>" if name else contact.email


def missing(skipped: list[Skipped]) -> int:
    """Skipped rows whose person gets no mail (a repeated address is no such row)."""
    return sum(1 for s in skipped if not s.duplicate)


def trouble_words(*, skipped: int, failed: int, pending: int, unknown: int) -> str:
    """Contacts without the mail, named by their state: never one reason for all."""
    parts = []
    if unknown:
        parts.append(f"{unknown} mit unbekanntem Zustand (erneut senden nur mit "
                     "--resend-unknown)")
    if failed:
        parts.append(f"{failed} abgewiesen (erneut mit --retry-failed)")
    if pending:
        parts.append(f"{pending} zurückgestellt (ein neuer Aufruf sendet sie)")
    if skipped:
        parts.append(f"{skipped} Zeile(n) der Kontaktliste übersprungen")
    return "; ".join(parts)


class SendPlan:
    """A checked mail run; holds the send lock and state.db until ``close``."""

    def __init__(self, ws: Workspace, run: mailing.Mailing, store: Store, lock: RunLock,
                 *, only_unanswered: str | None, resend_unknown: bool,
                 retry_failed: bool, include_answered: bool = False) -> None:
        self.workspace = ws
        self.mailing = run
        self.store = store
        self.lock = lock
        self.journal = Journal(store)
        self.campaign = run.campaign
        # a template that says "Erinnerung-an: AKTION" reminds only who has not answered
        self.only_unanswered = only_unanswered or run.template.reminder_of or None
        self.include_answered = include_answered
        self.before = Before()
        self.problems: list[str] = []
        self.first: EmailMessage | None = None
        self.count = 0
        self._selected: set[str] = set()
        self.gaps = Gaps(run.template, run.personal.form if run.personal else None)
        self._changed = False
        self.before.crashed = self.journal.crashed_to_unknown(self.campaign)
        self._changed = bool(self.before.crashed)
        imap = ws.imap_settings()
        self.copies = SentCopies(imap, self.journal, ws.state_dir) if imap.sent_copy else None
        if resend_unknown and imap.host:
            self.before.settled = self._settle(imap)
            self._changed |= bool(self.before.settled.sent)
        self._select(resend_unknown=resend_unknown, retry_failed=retry_failed)

    def _settle(self, imap: ImapSettings) -> Settled:
        """Before resending what nobody knows went out: look in the Sent folder."""
        return settling.guarded(self.journal, lambda: settling.by_mailbox(
            imap, credentials.mailbox_secret(self.workspace), self.journal,
            self.campaign), self.campaign)

    @property
    def skipped(self) -> list[Skipped]:
        return self.mailing.contacts.skipped

    @property
    def warnings(self) -> list[str]:
        out = [self.lock.note] if self.lock.note else []
        mismatch = smtp.domain_mismatch(self.mailing.settings)
        found = (self._too_soon(), self._same_text())
        return (out + [w for w in (mismatch, *found) if w] + self.mailing.contacts.notes
                + self.gaps.warnings())

    def described(self, limit: int | None = None) -> list[str]:
        """The confirmation in German, as both front ends show it: the first line is
        the heading, each further one an item (the CLI indents them)."""
        run, before = self.mailing, self.before
        lines = [f"Aktion „{run.campaign}“, Vorlage {run.template.path.name}, "
                 f"Kontakte {run.contacts.path.name}:"]
        if self.only_unanswered:
            lines.append(f"nur wer „{self.only_unanswered}“ bekam und noch nicht geantwortet "
                         "hat")
        described = run.contacts.described()  # (the notes come among the warnings)
        if run.contacts.passed_over:
            lines.append(described[0])
        if run.contacts.mapping:
            lines.append(described[1])
        lines.append(f"zu senden: {self.count}" + (f" (davon jetzt höchstens {limit})"
                                                     if limit else ""))
        for label, value in (("schon gesendet", before.already_sent),
                             ("abgemeldet", before.opted_out),
                             ("haben schon geantwortet, auch in einer früheren Aktion "
                              "(trotzdem senden: --auch-beantwortete)", before.answered),
                             ("früher abgewiesen (erneut mit --retry-failed)",
                              len(before.failed))):
            if value:
                lines.append(f"{label}: {value}")
        if before.crashed:
            lines.append(f"Achtung: {len(before.crashed)} E-Mail(s) eines abgebrochenen Laufs "
                         "waren gerade in Zustellung; ob sie ankamen, ist unbekannt.")
        return lines

    def wait_words(self) -> str:
        """How long the provider limits make this run wait, in words ("" when not)."""
        settings = self.mailing.settings
        for per, count, unit in ((settings.per_day, 86400, "Tag"),
                                 (settings.per_hour, 3600, "Stunde"),
                                 (settings.per_minute, 60, "Minute")):
            if per and self.count > per:
                seconds = (self.count - 1) // per * count
                hours = seconds / 3600
                span = (f"etwa {seconds // 60} Minuten" if hours < 2 else
                        f"etwa {hours:.0f} Stunden" if hours < 48 else
                        f"etwa {hours / 24:.0f} Tage")
                return (f"Ihr Anbieter erlaubt höchstens {per} E-Mails pro {unit} "
                        f"([limits]): der Versand dauert {span}.")
        return ""

    def _same_text(self) -> str:
        """The same text sent before under another campaign name (a template copied to a
        new name): how many of those selected got it then, and when."""
        this = self.mailing.template.path
        try:
            text = this.read_bytes()
        except OSError:
            return ""
        for campaign, name in self.journal.templates().items():
            other = self.workspace.root / "templates" / f"{name}.md.j2"
            if campaign == self.campaign or other.resolve() == this.resolve():
                continue
            try:
                if not other.is_file() or other.read_bytes() != text:
                    continue
            except OSError:
                continue
            got = [s for s in self.journal.sends(campaign) if s.state is SendState.SENT
                   and s.email in self._selected]
            if got:
                import datetime as dt

                when = dt.datetime.fromtimestamp(max(s.sent_at or 0 for s in got))
                return (f"{len(got)} von ihnen haben denselben Text schon mit „{campaign}“ "
                        f"bekommen (zuletzt am {when:%d.%m.%Y}) – die Vorlage ist eine Kopie "
                        f"von „{name}“")
        return ""

    def _too_soon(self) -> str:
        """A reminder sooner than [limits] reminder_days after the campaign it reminds of."""
        import time

        if self.only_unanswered is None:
            return ""
        last = self.journal.last_sent(self.only_unanswered)
        days = self.mailing.settings.reminder_days
        if last is None or time.time() - last >= days * 86400:
            return ""
        hours = max(1, int((time.time() - last) // 3600))
        ago = (f"{hours} Stunde{'n' if hours > 1 else ''}" if hours < 48
               else f"{hours // 24} Tagen")
        return (f"„{self.only_unanswered}“ ging erst vor {ago} hinaus – eine Erinnerung so "
                f"bald? (Üblich: frühestens nach {days} Tagen; [limits] reminder_days)")

    def _candidates(self) -> Iterator[Contact]:
        if self.only_unanswered is None:
            yield from self.mailing.contacts
            return
        known = self.journal.campaigns()
        if self.only_unanswered not in known:
            raise SendingError(f"Aktion „{self.only_unanswered}“ gibt es nicht (vorhanden: "
                               f"{', '.join(known) or 'keine'}).")
        wanted = {normalise(r.email) for r in self.journal.unanswered(self.only_unanswered)}
        yield from (c for c in self.mailing.contacts if normalise(c.email) in wanted)

    def _select(self, *, resend_unknown: bool, retry_failed: bool) -> None:
        """One pass over the list: who gets the mail, who not and why; every message
        that would go is rendered, so a problem stops the run before the first one."""
        before = self.before
        answered = set() if self.include_answered else self.journal.answered_addresses()
        seen: list[Contact] = []  # remembered for `status --offen`, 500 per transaction
        for contact in self._candidates():
            if len(seen) >= 500:
                self._remember(seen)
            if contact.opted_out:
                self._changed |= self.journal.add_optout(contact.email, "Kontaktliste")
            if contact.opted_out or self.journal.is_opted_out(contact.email):
                before.opted_out += 1
                continue
            record = self.journal.get(self.campaign, contact.email)
            state = record.state if record else None
            if state is SendState.SENT:
                before.already_sent += 1
                continue
            if normalise(contact.email) in answered:  # in this campaign or any other
                before.answered += 1
                continue
            if state in (SendState.UNKNOWN, SendState.SENDING) and not resend_unknown:
                before.unknown.append(contact)
                continue
            if state is SendState.FAILED and not retry_failed:
                before.failed.append((contact, record.reply if record else ""))
                continue
            problem = self.mailing.problem(contact)
            if problem is not None:
                self.problems.append(problem)
                continue
            self.count += 1
            self.gaps.add(contact)
            self._selected.add(normalise(contact.email))
            seen.append(contact)
            if self.first is None:
                self.first = self.mailing.message(contact)
        self._remember(seen)

    def _remember(self, contacts: list[Contact]) -> None:
        self.store.remember_contacts([(c.key, c.email, c.display_name, c.get("organisation"),
                                       c.address) for c in contacts])
        contacts.clear()

    def check_login(self, password: Secret) -> None:
        """Connect, log in and leave: a wrong setting, port or password is named (a
        German SmtpError) before anybody is asked to confirm the run."""
        smtp.check_settings(self.mailing.settings)
        session = smtp.Session(self.mailing.settings, password)
        try:
            session.connect()
        finally:
            session.close()
        if self.copies is not None:
            self.copies.check(self._imap_password())

    def _imap_password(self) -> Secret:
        assert self.copies is not None
        return credentials.mailbox_secret(self.workspace)

    def copies_waiting(self) -> int:
        """Copies for the Sent folder that an earlier run could not append."""
        return self.copies.pending() if self.copies is not None else 0

    def append_waiting_copies(self) -> CopyReport | None:
        """Append what earlier runs left (when nothing is to be sent now)."""
        if self.copies is None or not self.copies.pending():
            return None
        self.copies.start(self._imap_password())
        return self.copies.finish()

    def send(self, password: Secret, *, limit: int | None = None,
             on_event: Callable[[Event], None] = lambda event: None,
             **outbox_options: object) -> Result:
        """Send to everyone selected (at most ``limit``); never twice, whatever happens."""
        if self.problems:
            raise SendingError(f"{len(self.problems)} E-Mail(s) lassen sich nicht erstellen; "
                               "gesendet wurde nichts.")
        copies = self.copies
        if copies is not None:  # the mailbox is checked before the first message goes
            copies.start(self._imap_password())
        self.journal.campaign(self.campaign, self.mailing.template.name)
        self._changed = True
        outbox = Outbox(self.mailing.settings, self.journal, self.campaign, password=password,
                        on_event=on_event, copies=copies,
                        **outbox_options)  # type: ignore[arg-type]
        chosen = (c for c in self.mailing.contacts if normalise(c.email) in self._selected)
        try:
            summary = outbox.run(self.mailing.jobs(chosen), limit=limit)
        except BaseException:
            if copies is not None:
                copies.finish(interrupted=True)
            raise
        report = copies.finish() if copies is not None else None
        return Result(summary, self.before, list(self.skipped), report)

    def close(self) -> None:
        try:
            self.journal.drop_if_empty(self.campaign)
            if self._changed:
                self.store.checkpoint()
        finally:
            self.store.close()
            self.lock.release()

    def __enter__(self) -> SendPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare(ws: Workspace, template: str, *, contacts_file: Path | None = None,
            campaign: str | None = None, attach_form: str | None = None,
            only_unanswered: str | None = None, resend_unknown: bool = False,
            retry_failed: bool = False, include_answered: bool = False,
            sheet: str | None = None) -> SendPlan:
    """Check settings, take the send lock, select and render: a plan to show and send."""
    smtp.check_settings(ws.mail_settings())
    lock = RunLock(ws.state_dir, "mail send")
    lock.acquire()
    try:
        store = Store(ws.state_db)
    except BaseException:
        lock.release()
        raise
    try:
        run = mailing.open_mailing(ws, template, contacts_file, campaign, store=store,
                                   attach_form=attach_form, sheet=sheet)
        return SendPlan(ws, run, store, lock, only_unanswered=only_unanswered,
                        resend_unknown=resend_unknown, retry_failed=retry_failed,
                        include_answered=include_answered)
    except BaseException:
        store.close()
        lock.release()
        raise


def send(ws: Workspace, template: str, *, password: Secret, limit: int | None = None,
         on_event: Callable[[Event], None] = lambda event: None, **options: object) -> Result:
    """prepare + send without asking: for the demo, scripts and tests."""
    with prepare(ws, template, **options) as plan:  # type: ignore[arg-type]
        return plan.send(password, limit=limit, on_event=on_event)


@dataclass
class Preview:
    """What ``preview`` wrote: one .eml per contact, nothing sent."""

    target: Path
    written: list[Path]
    skipped: list[Skipped]
    contacts: list[str] = field(default_factory=list)  # the list used, its columns, notes
    warnings: list[str] = field(default_factory=list)  # rows less personal than meant


def preview(ws: Workspace, template: str, *, contacts_file: Path | None = None,
            to: str | None = None, out_dir: Path | None = None,
            attach_form: str | None = None, campaign: str | None = None,
            sheet: str | None = None) -> Preview:
    """`formtool mail preview`: the messages as .eml files (for ``to`` only, an id or an
    address, when given), exactly as `send` with the same options would build them –
    with ``attach_form`` each with the contact's own form (made now, the same one the
    send then attaches). The folder holds this preview only: older .eml files go."""
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(Store(ws.state_db)) if attach_form else None
        run = mailing.open_mailing(ws, template, contacts_file, campaign, store=store,
                                   attach_form=attach_form, sheet=sheet)
        wanted = {(to or "").strip().lower(), normalise(to or "")} - {""}
        selected = (c for c in run.contacts
                    if not wanted or wanted & {c.key.lower(), normalise(c.email)})
        target = out_dir or ws.root / "vorschau" / run.template.name
        if target.is_dir():
            for old in target.glob("*.eml"):  # a fresh preview, not beside the last one
                old.unlink()
        gaps = Gaps(run.template, run.personal.form if run.personal else None)
        written = list(run.preview(target, _counted(selected, gaps)))
        if store is not None:
            store.checkpoint()
    return Preview(target, written, list(run.contacts.skipped), run.contacts.described(),
                   gaps.warnings())


def _counted(contacts: Iterable[Contact], gaps: Gaps) -> Iterator[Contact]:
    for contact in contacts:
        gaps.add(contact)
        yield contact


def opt_out(ws: Workspace, addresses: list[str], source: str = "manuell") -> int:
    """Addresses never mailed again, in any campaign; returns how many were new."""
    with Store(ws.state_db) as store:
        journal = Journal(store)
        new = sum(journal.add_optout(a, source) for a in addresses)
        store.checkpoint()
    return new
