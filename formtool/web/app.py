"""The local web page: Starlette routes over the use cases (``formtool/usecases``).

Every handler reads, calls one use case, and renders a template (Jinja2, autoescaped:
every value is text). GET never changes anything; a change is a POST with the page's
Origin (``security.Guard``) and its CSRF token (``_form``), answered by a redirect
(POST-redirect-GET). Long work runs as a job (``jobs.py``) with its own page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from formtool import workspace
from formtool.errors import FormtoolError
from formtool.web.jobs import Jobs
from formtool.web.security import Guard, Keys

HERE = Path(__file__).parent
MAX_REQUEST = 200 * 1024 * 1024  # all files of one upload together
MAX_FILES = 2000
log = logging.getLogger("formtool.web")

NAV = [("/", "Übersicht"), ("/kontakte", "Kontakte"), ("/formulare", "Formulare"),
       ("/aktionen", "E-Mails"), ("/postfach", "Postfach"), ("/antworten", "Antworten"),
       ("/website", "Website"), ("/einstellungen", "Einstellungen"),
       ("/vergessen", "Vergessen")]


class Page:
    """What every handler needs: the workspace, the keys, the jobs, the templates."""

    def __init__(self, root: Path, keys: Keys, stop: Callable[[], None]) -> None:
        self.root = root
        self.keys = keys
        self.jobs = Jobs()
        self.stop = stop
        self.confirmations: dict[str, dict[str, Any]] = {}  # idempotency key -> request
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                      autoescape=True, undefined=jinja2.StrictUndefined)
        self.env.filters["link"] = _safe_link
        self.env.filters["short"] = _short

    def workspace(self) -> workspace.Workspace:
        return workspace.load(self.root)

    def warm(self) -> None:
        """Read the first contact list once in the background, so that its page opens at
        once even with 60,000 contacts (a later change is read again when shown)."""
        from formtool.usecases import contactlists

        try:
            ws = self.workspace()
            names = contactlists.lists(ws)
            if names:
                contactlists.view(ws, names[0], per_page=1)
        except Exception:  # the page says what is wrong when it is opened
            log.info("warming the contact list failed", exc_info=True)

    def render(self, request: Request, page_template: str, status: int = 200, **values: Any
               ) -> HTMLResponse:
        running = self.jobs.running
        html = self.env.get_template(page_template).render(
            nav=NAV, path=request.url.path, csrf=self.keys.csrf,
            running=running if running is not None and not running.done else None,
            message=request.query_params.get("meldung", ""), **values)
        return HTMLResponse(html, status_code=status)


CELL = 120  # characters of a table cell shown; the whole value is in the download


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= CELL else text[:CELL] + " …"


def _safe_link(url: str) -> str:
    """Only http(s) and mailto become links; anything else (javascript:, data:) is text."""
    return url if url.lower().startswith(("http://", "https://", "mailto:")) else ""


async def _form(page: Page, request: Request) -> FormData:
    """The POSTed form, after its CSRF token is checked (403 otherwise)."""
    try:  # a browser's form always says its length; without one, no bound: refused
        length = int(request.headers["content-length"])
    except (KeyError, ValueError):
        raise HTTPException(411, "Die Anfrage nennt ihre Länge nicht; bitte das Formular "
                                 "der Seite benutzen.") from None
    if length > MAX_REQUEST:
        raise HTTPException(413, f"Zu viel auf einmal ({length // 1024 // 1024} MB; höchstens "
                                 f"{MAX_REQUEST // 1024 // 1024} MB je Hochladen).")
    form = await request.form(max_files=MAX_FILES, max_fields=1000)
    token = form.get("csrf")
    if not isinstance(token, str) or not page.keys.csrf_ok(token):
        raise HTTPException(403, "Das Formular ist abgelaufen oder kam nicht von dieser Seite "
                                 "(fehlendes Sicherheitsmerkmal); nichts wurde geändert. Bitte "
                                 "die Seite neu laden.")
    return form


def _back(path: str, message: str = "") -> RedirectResponse:
    joint = "&" if "?" in path else "?"
    target = path + (f"{joint}meldung={quote(message)}" if message else "")
    return RedirectResponse(target, status_code=303)


def _int(value: str | None, default: int = 1) -> int:
    try:
        return max(1, int(value or default))
    except ValueError:
        return default


def build(root: Path, keys: Keys, stop: Callable[[], None]) -> tuple[Guard, Page]:
    """The app, wrapped in its guard; ``stop`` ends the server (the „Beenden“ button)."""
    page = Page(root, keys, stop)
    from formtool.web import views

    routes = [*views.routes(page),
              Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]

    async def failed(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return page.render(request, "fehler.html", status=exc.status_code, title="Fehler",
                               text=str(exc.detail))
        log.exception("request %s failed", request.url.path)
        return page.render(request, "fehler.html", status=500, title="Fehler",
                           text="Unerwarteter Fehler; die Einzelheiten stehen in "
                                ".formtool/web.log im Arbeitsordner.")

    async def formtool_error(request: Request, exc: Exception) -> Response:
        return page.render(request, "fehler.html", status=400, title="Das ging nicht",
                           text=str(exc))

    app = Starlette(routes=routes, exception_handlers={
        FormtoolError: formtool_error, HTTPException: failed, Exception: failed})
    return Guard(app, keys), page
