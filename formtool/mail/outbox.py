"""SMTP sending: TLS, login, one connection for many messages, rate limits, journal.

Every (campaign, address) goes through the journal in ``state.db``: *sending*
just before the DATA command, *sent* with the server's reply and Message-ID
after its 250. A run that dies in between leaves *sending*, which the next run
reports as *unknown* and does not send again unless asked. 4xx replies are
retried with backoff and then left *pending* for the next run; a 5xx for a
recipient marks it *failed* and the run goes on; a refused login stops the run.

A wall stops the run: WALL_REFUSED recipients in a row refused with the same
reply code (550 sender not allowed, 552, 554 policy …), WALL_PENDING in a row
deferred with the same code, or WALL_CONNECTION timeouts or dropped connections
in a row. That is the server or the account, not the recipients: the refused
ones go back to *pending* with the rest, and a plain rerun sends them once the
cause is fixed. Every reply has a deadline for the whole reply (``timeout``),
not only for each read: a server that dribbles continuation lines is cut off.
"""

from __future__ import annotations

import contextlib
import smtplib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from formtool.errors import FormtoolError
from formtool.mail.contacts import Contact
from formtool.mail.oauth import Secret, SignInExpired
from formtool.mail.smtp import Built, Permanent, Session, Transient, dropped
from formtool.state.store import Journal, SendState
from formtool.workspace import MailSettings

if TYPE_CHECKING:
    from formtool.mail.sentcopy import SentCopies

WALL_REFUSED = 5  # recipients in a row refused with the same 5xx code
WALL_PENDING = 5  # recipients in a row deferred (after retries) with the same 4xx code
WALL_CONNECTION = 3  # timeouts or dropped connections in a row
STOP_GRACE = 5.0  # seconds the message under way gets after Ctrl-C


class OutboxError(FormtoolError):
    """The run cannot go on."""


class RateLimiter:
    """Sliding windows per minute, hour and day over every send in the journal."""

    WINDOWS = ((60.0, "Minute"), (3600.0, "Stunde"), (86400.0, "Tag"))

    def __init__(self, settings: MailSettings, history: list[float], *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limits = [(w, name, n) for (w, name), n in zip(
            self.WINDOWS, (settings.per_minute, settings.per_hour, settings.per_day),
            strict=True) if n > 0]
        keep = max((n for _, _, n in self.limits), default=0)
        self.history: deque[float] = deque(history[-keep:] if keep else [], maxlen=keep or 1)
        self.clock = clock
        self.sleep = sleep
        self.lock = threading.Lock()

    def wait(self, now: float) -> tuple[float, str]:
        worst, why = 0.0, ""
        for window, name, limit in self.limits:
            recent = [t for t in list(self.history)[-limit:] if t > now - window]
            if len(recent) >= limit:
                delay = recent[0] + window - now
                if delay > worst:
                    worst, why = delay, f"{limit} pro {name}"
        return worst, why

    def acquire(self, on_wait: Callable[[float, str], None], stop: threading.Event) -> bool:
        """Block until a send is allowed, then take the slot. False when stopped."""
        if not self.limits:
            return not stop.is_set()
        announced = False
        while not stop.is_set():
            with self.lock:
                now = self.clock()
                delay, why = self.wait(now)
                if delay <= 0:
                    self.history.append(now)
                    return True
            if not announced:  # once per wait, not every second
                on_wait(delay, why)
                announced = True
            self.sleep(min(delay, 1.0))
        return False


@dataclass(frozen=True)
class Job:
    """One message to send: the contact and how to build it (Message-ID, recipients, bytes)."""

    contact: Contact
    build: Callable[[], Built]


@dataclass
class Event:
    kind: str  # sent, failed, pending, unknown, wait, retry, reconnect, wall
    contact: Contact | None = None
    detail: str = ""
    seconds: float = 0.0  # for "wait": how long


@dataclass
class Summary:
    sent: int = 0
    failed: int = 0
    pending: int = 0
    unknown: int = 0
    not_sent_limit: int = 0
    failures: list[tuple[Contact, str]] = field(default_factory=list)
    unknowns: list[tuple[Contact, str]] = field(default_factory=list)
    wall: str = ""  # why the run stopped early, in German; empty when it did not
    interrupted: bool = False


def _code(reply: str) -> str:
    return reply.split(" ", 1)[0]


class Outbox:
    """Sends jobs of one campaign over ``settings.connections`` connections."""

    def __init__(self, settings: MailSettings, journal: Journal, campaign: str, *,
                 password: Secret, on_event: Callable[[Event], None] = lambda e: None,
                 retry_delays: tuple[float, ...] = (2.0, 10.0, 30.0),
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time,
                 stop_grace: float = STOP_GRACE, copies: SentCopies | None = None,
                 stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.copies = copies
        self.journal = journal
        self.campaign = campaign
        self.password = password
        self.on_event = on_event
        self.retry_delays = retry_delays
        self.sleep = sleep
        self.stop_grace = stop_grace
        # set from outside (the web page's "Abbrechen"): no new message starts, the one
        # under way is recorded – as Ctrl-C does, without cutting connections
        self.stop = stop or threading.Event()
        self.limiter = RateLimiter(settings, journal.sent_since(clock() - 86400.0),
                                   clock=clock, sleep=sleep)
        self.summary = Summary()
        self.lock = threading.Lock()
        self.fatal: BaseException | None = None
        self.sessions: list[Session] = []
        self._feed = threading.Lock()
        self._jobs: Iterator[Job] = iter(())
        self._limit: int | None = None
        self._taken = 0
        self._streak: list[tuple[str, Contact, str]] = []  # (kind, contact, reply)

    def run(self, jobs: Iterable[Job], *, limit: int | None = None) -> Summary:
        """Send every job; Ctrl-C stops after the messages under way are recorded.

        Each sending thread builds its next message while the server takes the
        current one, so building costs no time of its own, no second thread
        competes for the interpreter, and at most two messages per connection
        are in memory.
        """
        self._jobs, self._limit, self._taken = iter(jobs), limit, 0
        finished = [threading.Event() for _ in range(self.settings.connections)]
        for i, done in enumerate(finished):
            threading.Thread(target=self._worker, args=(done,), daemon=True,
                             name=f"smtp-{i}").start()
        try:
            _wait(finished)
        except BaseException:
            # Ctrl-C (the first press): no new message starts; the ones under way get
            # a few seconds for their reply, then their connections are cut (and they
            # are recorded as unknown). A second press cuts at once.
            self.stop.set()
            self.summary.interrupted = True
            with contextlib.suppress(BaseException):
                _wait(finished, timeout=self.stop_grace)
            for session in list(self.sessions):
                session.abort()
            _wait(finished)
            raise
        if self.fatal is not None:
            if isinstance(self.fatal, SignInExpired) and not self.summary.wall:
                # a stop like a wall: what went out is counted, the rest waits for the
                # next run after `mail login`
                self.summary.wall = str(self.fatal)
                return self.summary
            raise self.fatal
        self.summary.interrupted = self.stop.is_set() and not self.summary.wall
        return self.summary

    def _take(self) -> tuple[Contact, Built] | None:
        """The next message, built; None when there is none left (or the run stops).

        One thread at a time builds: jobs come from one iterator.
        """
        with self._feed:
            for job in self._jobs:
                if self.stop.is_set():
                    return None
                if self._limit is not None and self._taken >= self._limit:
                    self.summary.not_sent_limit += 1
                    continue
                try:
                    built = job.build()
                except FormtoolError as exc:  # e.g. over the size limit: this one fails
                    self._record(job.contact, SendState.FAILED, reply=str(exc))
                    self._count("failed", job.contact, str(exc))
                    continue
                self._taken += 1
                return job.contact, built
            return None

    def _worker(self, finished: threading.Event) -> None:
        session = Session(self.settings, self.password)
        with self.lock:
            self.sessions.append(session)
        ahead: list[tuple[Contact, Built] | None] = []
        trouble: list[BaseException] = []

        def build_ahead() -> None:  # while the server takes the message under way
            if not ahead and not trouble:
                try:
                    ahead.append(self._take())
                except BaseException as exc:  # not the connection's fault: raised below
                    trouble.append(exc)

        try:
            upcoming = self._take()
            while upcoming is not None and not self.stop.is_set():
                if not self.limiter.acquire(self._waiting, self.stop):
                    break
                self._send(session, *upcoming, while_waiting=build_ahead)
                if trouble:
                    raise trouble[0]
                upcoming = ahead.pop() if ahead else self._take()
        except BaseException as exc:  # stop everything; run() re-raises it in the main thread
            if self.fatal is None:
                self.fatal = exc
            self.stop.set()
        finally:
            session.close()
            finished.set()

    def _waiting(self, delay: float, why: str) -> None:
        self.on_event(Event("wait", detail=f"Grenze {why}", seconds=delay))

    def _record(self, contact: Contact, state: SendState, **values: Any) -> None:
        self.journal.mark(self.campaign, email=contact.email, key=contact.key, state=state,
                          **values)

    def _count(self, kind: str, contact: Contact, detail: str = "") -> None:
        with self.lock:
            setattr(self.summary, kind, getattr(self.summary, kind) + 1)
            if kind == "failed":
                self.summary.failures.append((contact, detail))
            elif kind == "unknown":
                self.summary.unknowns.append((contact, detail))
        self.on_event(Event(kind, contact, detail))
        self._watch_for_wall(kind, contact, detail)

    def _watch_for_wall(self, kind: str, contact: Contact, reply: str) -> None:
        """Stop at a wall: the same refusal (or lost connection) for recipient after
        recipient is the server's or the account's doing, not the recipients'."""
        if kind == "sent":
            with self.lock:
                self._streak.clear()
            return
        if kind in ("failed", "pending") and not _code(reply).isdigit():
            return  # our own failure (a message that cannot be built), not the server's
        if kind == "failed":
            what, limit = f"failed {_code(reply)}", WALL_REFUSED
        elif kind == "pending":
            what, limit = f"pending {_code(reply)}", WALL_PENDING
        else:  # unknown: the connection broke or timed out after DATA
            what, limit = "connection", WALL_CONNECTION
        with self.lock:
            if self._streak and self._streak[-1][0] != what:
                self._streak.clear()
            self._streak.append((what, contact, reply))
            if len(self._streak) < limit or self.summary.wall:
                return
            streak = list(self._streak)
            self.summary.wall = wall_message(what, len(streak), reply, self.settings.host)
        self.stop.set()
        if kind == "failed":  # not the recipients' fault: they go back to pending
            self.journal.release_wall(self.campaign, [c.email for _, c, _ in streak],
                                      reply=reply)
            with self.lock:
                refused = {c.email for _, c, _ in streak}
                self.summary.failures = [(c, r) for c, r in self.summary.failures
                                         if c.email not in refused]
                self.summary.failed -= len(refused)
                self.summary.pending += len(refused)
        self.on_event(Event("wall", contact, self.summary.wall))

    def _send(self, session: Session, contact: Contact, built: Built, *,
              while_waiting: Callable[[], None]) -> None:
        message_id = built.message_id
        data_started = False

        def journal_sending() -> None:
            nonlocal data_started
            self._record(contact, SendState.SENDING, message_id=message_id, attempt=True)
            data_started = True

        if self.copies is not None:
            self.copies.keep(built)  # before DATA: a kill after it still finds the copy
        delays = list(self.retry_delays)
        reconnects = 0
        while True:
            try:
                reply = session.send(self.settings.sender_email, built, journal_sending,
                                     while_waiting)
            except Transient as exc:
                if not delays or self.stop.is_set():
                    self._record(contact, SendState.PENDING, reply=exc.reply)
                    self._count("pending", contact, exc.reply)
                    return
                self.on_event(Event("retry", contact, f"{exc.reply}; neuer Versuch in "
                                                      f"{delays[0]:.0f} s"))
                self._pause(delays.pop(0))
                data_started = False
                continue
            except Permanent as exc:
                self._record(contact, SendState.FAILED, reply=exc.reply)
                self._count("failed", contact, exc.reply)
                return
            except (smtplib.SMTPServerDisconnected, OSError, ValueError) as exc:
                # ValueError: smtplib on a socket cut under it by abort()
                session.close()
                if data_started:
                    # The server may have taken it: never send it twice.
                    detail = f"Verbindung abgebrochen: {dropped(exc)}"
                    self._record(contact, SendState.UNKNOWN, message_id=message_id,
                                 reply=detail)
                    self._count("unknown", contact, detail)
                    return
                if self.stop.is_set():
                    return  # nothing went out for it: it stays to be sent
                reconnects += 1
                if reconnects > WALL_CONNECTION:
                    raise OutboxError(f"Verbindung zu {self.settings.host} bricht immer wieder "
                                      f"ab ({dropped(exc)}); bitte später erneut senden.",
                                      detail=f"{type(exc).__name__}: {exc}") from None
                self.on_event(Event("reconnect", contact, dropped(exc)))
                self._pause(min(2.0 ** reconnects, 10.0))
                continue
            self._record(contact, SendState.SENT, message_id=message_id, reply=reply,
                         sent_at=time.time())
            if self.copies is not None:
                self.copies.sent(built)
            self._count("sent", contact)
            return

    def _pause(self, seconds: float) -> None:
        """Sleep, but end early when the run stops (Ctrl-C, a wall)."""
        if self.sleep is time.sleep:
            self.stop.wait(seconds)
        else:
            self.sleep(seconds)


def wall_message(what: str, count: int, reply: str, host: str) -> str:
    """Why the run stopped at a wall, and what to check, in German."""
    code = _code(reply)
    if what == "connection":
        return (f"Angehalten: {count}-mal nacheinander brach die Verbindung zu {host} nach dem "
                f"Senden ab oder kam keine Antwort ({reply}). Bitte Internetverbindung und "
                "Störungsmeldungen des Anbieters prüfen; die betroffenen E-Mails sind als "
                "„unbekannt“ vermerkt (im Ordner „Gesendet“ nachsehen).")
    if code.startswith("552") or "5.3.4" in reply:
        check = "Die E-Mail ist dem Server zu groß: bitte kleinere Anhänge verwenden."
    elif code.startswith(("550", "553", "554", "530", "535")) or " 5.7." in reply:
        check = ("Der Server lehnt den Absender oder das Konto ab, nicht die Empfänger: "
                 "bitte prüfen, ob [sender] email zum Postfach passt und das Konto senden darf "
                 "(Sperre, Tageslimit, Richtlinie des Anbieters).")
    elif what.startswith("pending"):
        check = ("Der Server vertröstet jeden Empfänger (Versandgrenze des Anbieters oder "
                 "vorübergehende Störung): bitte später erneut senden.")
    else:
        check = "Das liegt am Server oder am Konto, nicht an den Empfängern."
    return (f"Angehalten: {count} Empfänger nacheinander abgewiesen mit „{reply}“. {check} "
            "Die übrigen sind zurückgestellt; ein neuer Aufruf von „mail send“ sendet sie, "
            "sobald die Ursache behoben ist.")


def _wait(events: list[threading.Event], timeout: float | None = None) -> None:
    """Wait for the sending threads (at most ``timeout`` seconds). Not Thread.join:
    Ctrl-C during a join can leave a running thread marked as ended (CPython's
    bpo-45274 fix releases its lock)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for event in events:
        while not event.wait(timeout=0.2):
            if deadline is not None and time.monotonic() > deadline:
                return
