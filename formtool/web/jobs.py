"""Long work in the background: one job at a time per server, its progress readable by
every tab (a reload shows it again), cancellable. The work itself is a use case run in
a thread; the run lock it takes is the CLI's, so a CLI send and a page send exclude
each other whichever starts first."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from formtool.errors import FormtoolError

log = logging.getLogger("formtool.web")


@dataclass
class Job:
    id: str
    title: str
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # e.g. gesendet, fehlgeschlagen
    lines: list[str] = field(default_factory=list)  # what happened, newest last (≤ 200)
    waiting_until: float = 0.0  # a provider limit: countdown
    result: list[str] = field(default_factory=list)  # the closing words, as the CLI's
    error: str = ""
    done: bool = False
    started: float = field(default_factory=time.time)
    cancel: threading.Event = field(default_factory=threading.Event)
    link: str = ""  # where the result is to be seen

    def count(self, what: str, by: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + by

    def say(self, line: str) -> None:
        self.lines.append(line)
        del self.lines[:-200]

    def snapshot(self) -> dict[str, object]:
        left = max(0.0, self.waiting_until - time.time())
        return {"id": self.id, "title": self.title, "total": self.total,
                "counts": dict(self.counts), "lines": self.lines[-20:],
                "waiting": round(left), "result": self.result, "error": self.error,
                "done": self.done, "cancelled": self.cancel.is_set(), "link": self.link}


class Jobs:
    """The server's jobs: the running one (at most one) and those finished."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.all: dict[str, Job] = {}
        self.running: Job | None = None
        self.keys: dict[str, str] = {}  # idempotency key of a confirmation -> its job

    def start(self, title: str, work: Callable[[Job], None], *, key: str = "",
              link: str = "") -> Job:
        """Start ``work`` in a thread, or return the job this key started already (a
        double click, a second tab, Back and resubmit). Refused while another runs."""
        with self._lock:
            if key and key in self.keys:
                return self.all[self.keys[key]]
            if self.running is not None and not self.running.done:
                raise FormtoolError(f"Es läuft schon: {self.running.title}. Bitte warten, "
                                    "bis es fertig ist (oder es abbrechen).")
            job = Job(secrets.token_urlsafe(8), title, link=link)
            self.all[job.id] = job
            self.running = job
            if key:
                self.keys[key] = job.id
        threading.Thread(target=self._run, args=(job, work), daemon=True,
                         name=f"job-{job.id}").start()
        return job

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        try:
            work(job)
        except FormtoolError as exc:
            job.error = str(exc)
        except Exception:  # never a traceback in the page: the details go to the log
            log.exception("job %s failed", job.title)
            job.error = ("Unerwarteter Fehler; die Einzelheiten stehen in "
                         ".formtool/web.log im Arbeitsordner.")
        finally:
            job.waiting_until = 0.0
            job.done = True

    def stop_all(self, wait: float = 30.0) -> None:
        """Cancel the running job and give it ``wait`` seconds to record what it did."""
        job = self.running
        if job is not None and not job.done:
            job.cancel.set()
            deadline = time.time() + wait
            while not job.done and time.time() < deadline:
                time.sleep(0.05)
