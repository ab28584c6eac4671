"""The pages: each handler reads its request, calls use cases, renders a template.

Handlers are plain functions (Starlette runs them in its thread pool): the use cases
do blocking work (SQLite, files, SMTP) and stay as they are for the CLI.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from formtool.errors import FormtoolError
from formtool.usecases import (
    answers,
    contactlists,
    credentials,
    fetching,
    forms,
    personal,
    privacy,
    questions,
    sending,
    settings,
    signin,
    status,
    templates,
    website,
)
from formtool.web.app import Page, _back, _form, _int
from formtool.web.jobs import Job

PER_PAGE = 50
CONFIRM_TTL = 3600.0  # seconds a confirmation stays valid


def routes(page: Page) -> list[Route]:
    """Every route; a POST route's handler starts with ``_form`` (the CSRF check)."""

    def get(path: str, fn: Callable[[Request], Response]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await run_in_threadpool(fn, request)
        return Route(path, endpoint, methods=["GET", "HEAD"])

    def post(path: str, fn: Callable[[Request, Any], Response]) -> Route:
        async def endpoint(request: Request) -> Response:
            form = await _form(page, request)
            files = [(f.filename or "", await f.read()) for _, f in form.multi_items()
                     if isinstance(f, UploadFile) and f.filename]
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            return await run_in_threadpool(fn, request, (fields, files))
        return Route(path, endpoint, methods=["POST"])

    v = Views(page)
    return [
        get("/", v.overview),
        get("/kontakte", v.contacts),
        post("/kontakte/hochladen", v.contacts_upload),
        get("/formulare", v.forms),
        get("/formulare/{name}.pdf", v.form_pdf),
        post("/formulare/{name}/persoenlich", v.forms_personal),
        get("/aktionen", v.campaigns),
        get("/aktionen/{name}", v.campaign),
        post("/aktionen/{name}/speichern", v.template_save),
        post("/aktionen/{name}/pruefen", v.send_check),
        get("/aktionen/{name}/bestaetigen/{key}", v.send_confirm),
        post("/aktionen/{name}/senden", v.send_start),
        get("/antworten", v.answers),
        get("/antworten/datei/{filename}", v.answers_file),
        post("/antworten/hochladen", v.answers_upload),
        get("/postfach", v.mailbox),
        post("/postfach/abrufen", v.mailbox_fetch),
        post("/postfach/beantwortet", v.mark_answered),
        post("/postfach/entscheiden", v.decide),
        get("/website", v.website),
        get("/website/datei/{filename}", v.website_file),
        post("/website/schreiben", v.website_write),
        get("/einstellungen", v.settings),
        post("/einstellungen", v.settings_save),
        post("/einstellungen/passwort", v.settings_password),
        post("/einstellungen/testen", v.settings_test),
        post("/einstellungen/postfach-passwort", v.settings_mailbox_password),
        post("/einstellungen/anmelden", v.sign_in),
        get("/vergessen", v.forget),
        post("/vergessen", v.forget_now),
        get("/aufgaben/{id}.json", v.job_json),  # before the page: {id} takes dots too
        get("/aufgaben/{id}", v.job),
        post("/aufgaben/{id}/abbrechen", v.job_cancel),
        post("/beenden", v.quit),
    ]


Fields = tuple[dict[str, str], list[tuple[str, bytes]]]


class Views:
    def __init__(self, page: Page) -> None:
        self.page = page

    # -- overview -----------------------------------------------------------------------
    def overview(self, request: Request) -> Response:
        ws = self.page.workspace()
        table = status.report(ws)
        return self.page.render(request, "uebersicht.html", title="Übersicht",
                                report=table, steps=status.next_steps(table),
                                root=str(ws.root))

    # -- contacts -----------------------------------------------------------------------
    def contacts(self, request: Request) -> Response:
        ws = self.page.workspace()
        names = contactlists.lists(ws)
        chosen = request.query_params.get("liste") or (names[0] if names else "")
        shown = (contactlists.view(ws, chosen, page=_int(request.query_params.get("seite")),
                                   per_page=PER_PAGE) if chosen else None)
        return self.page.render(request, "kontakte.html", title="Kontakte", names=names,
                                chosen=chosen, view=shown,
                                limit_mb=contactlists.MAX_UPLOAD // 1024 // 1024)

    def contacts_upload(self, request: Request, sent: Fields) -> Response:
        _, files = sent
        if not files:
            return _back("/kontakte", "Bitte eine Datei wählen.")
        name = contactlists.save_upload(self.page.workspace(), *files[0])
        return _back(f"/kontakte?liste={quote(name)}", f"„{name}“ gespeichert.")

    # -- forms --------------------------------------------------------------------------
    def forms(self, request: Request) -> Response:
        ws = self.page.workspace()
        checked = {c.path: c for c in forms.check(ws.forms_dir)}
        listed = [(item, checked.get(item.path)) for item in forms.list_forms(ws)]
        return self.page.render(request, "formulare.html", title="Formulare", listed=listed,
                                lists=contactlists.lists(ws))

    def form_pdf(self, request: Request) -> Response:
        ws = self.page.workspace()
        name = request.path_params["name"]
        known = {item.form.id for item in forms.list_forms(ws) if item.form is not None}
        if name not in known:
            raise FormtoolError(f"Kein Formular „{name}“.")
        filename, data = forms.blank_pdf(ws, name)
        return Response(data, media_type="application/pdf", headers={
            "content-disposition": f"attachment; filename*=UTF-8''{_quoted(filename)}"})

    def forms_personal(self, request: Request, sent: Fields) -> Response:
        """A personal, pre-filled copy for every contact of a list (a job)."""
        fields, _ = sent
        ws = self.page.workspace()
        name = request.path_params["name"]
        path = contactlists.path_of(ws, fields.get("liste", ""))

        def work(job: Job) -> None:
            issued = personal.issue_forms(ws, name, path)
            job.count("erstellt", issued.count)
            job.result = [f"{issued.count} persönliche Formulare „{issued.title}“ in "
                          f"{issued.target.relative_to(ws.root)}/"]
            job.result += [f"Zeile {s.row}: {s.reason}" for s in issued.skipped[:50]]
            job.result += [f"zu lang für sein Feld: {c}" for c in issued.cut[:20]]

        job = self.page.jobs.start(f"Persönliche Formulare: {name}", work, link="/formulare")
        return _back(f"/aufgaben/{job.id}")

    # -- campaigns: templates, preview, send ------------------------------------------
    def campaigns(self, request: Request) -> Response:
        return self.page.render(request, "aktionen.html", title="E-Mails",
                                names=templates.names(self.page.workspace()))

    def campaign(self, request: Request) -> Response:
        ws = self.page.workspace()
        name = request.path_params["name"]
        text = templates.text_of(ws, name)
        lists = contactlists.lists(ws)
        chosen = request.query_params.get("liste") or (lists[0] if len(lists) == 1 else "")
        problem = ""
        samples: list[templates.Sample] = []
        described: list[str] = []
        if chosen:
            try:
                samples, described = templates.samples(
                    ws, name, contactlists.path_of(ws, chosen), count=3)
            except FormtoolError as exc:
                problem = str(exc)
        form_ids = [i.form.id for i in forms.list_forms(ws) if i.form is not None]
        campaigns = [str(row[0]) for row in status.report(ws).rows]
        return self.page.render(request, "aktion.html", title=f"E-Mail „{name}“", name=name,
                                text=text, lists=lists, chosen=chosen, samples=samples,
                                described=described, problem=problem, form_ids=form_ids,
                                campaigns=campaigns)

    def template_save(self, request: Request, sent: Fields) -> Response:
        fields, _ = sent
        ws = self.page.workspace()
        name = request.path_params["name"]
        chosen = fields.get("liste", "")
        contacts = contactlists.path_of(ws, chosen) if chosen else None
        templates.save(ws, name, fields.get("text", ""), contacts)
        return _back(f"/aktionen/{quote(name)}" + (f"?liste={quote(chosen)}" if chosen else ""),
                     "Vorlage gespeichert.")

    def _options(self, name: str, fields: dict[str, str]) -> dict[str, Any]:
        ws = self.page.workspace()
        chosen = fields.get("liste", "")
        return {"template": name,
                "contacts_file": contactlists.path_of(ws, chosen) if chosen else None,
                "attach_form": fields.get("formular") or None,
                "only_unanswered": fields.get("nur_offen") or None}

    def send_check(self, request: Request, sent: Fields) -> Response:
        """Prepare the run as the CLI does (lock, selection, rendering), keep what it
        found under a fresh idempotency key, release it, and show it by GET."""
        fields, _ = sent
        name = request.path_params["name"]
        options = self._options(name, fields)
        ws = self.page.workspace()
        template = options.pop("template")
        with sending.prepare(ws, template, **options) as plan:
            found = {"lines": plan.described(), "warnings": plan.warnings,
                     "wait": plan.wait_words(), "count": plan.count,
                     "skipped": [(s.row, s.reason) for s in plan.skipped],
                     "problems": plan.problems[:20], "unknown": len(plan.before.unknown),
                     "options": {**options, "template": template}, "made": time.time()}
        key = secrets.token_urlsafe(16)
        now = time.time()
        for old in [k for k, v in self.page.confirmations.items()
                    if now - v["made"] > CONFIRM_TTL and k not in self.page.jobs.keys]:
            del self.page.confirmations[old]  # expired ones go; those that sent stay known
        self.page.confirmations[key] = found
        return _back(f"/aktionen/{quote(name)}/bestaetigen/{key}")

    def send_confirm(self, request: Request) -> Response:
        name, key = request.path_params["name"], request.path_params["key"]
        found = self.page.confirmations.get(key)
        if found is None or time.time() - found["made"] > CONFIRM_TTL:
            raise FormtoolError("Diese Bestätigung ist abgelaufen; bitte erneut „Prüfen“.")
        job_id = self.page.jobs.keys.get(key)
        return self.page.render(request, "bestaetigen.html", title="Senden bestätigen",
                                name=name, key=key, found=found, job_id=job_id)

    def send_start(self, request: Request, sent: Fields) -> Response:
        """Start the send of a confirmation – once: the same key (a double click, a
        second tab, Back and resubmit) finds the job it started."""
        fields, _ = sent
        key = fields.get("schluessel", "")
        found = self.page.confirmations.get(key)
        if found is None:
            raise FormtoolError("Diese Bestätigung ist abgelaufen; bitte erneut „Prüfen“.")
        known = self.page.jobs.keys.get(key)
        if known is not None:
            return _back(f"/aufgaben/{known}")
        ws = self.page.workspace()
        options = dict(found["options"])
        template = options.pop("template")
        secret = credentials.sending_secret(ws)  # no password: said before anything starts

        def work(job: Job) -> None:
            job.say("Verbindung wird aufgebaut …")
            with sending.prepare(ws, template, **options) as plan:
                job.total = plan.count

                def on_event(event: Any) -> None:
                    kind = event.kind
                    if kind == "sent":
                        job.count("gesendet")
                    elif kind in ("failed", "pending", "unknown"):
                        job.count({"failed": "fehlgeschlagen", "pending": "zurückgestellt",
                                   "unknown": "unbekannt"}[kind])
                        if event.contact is not None:
                            job.say(f"{kind_words(kind)}: {event.contact.email}: "
                                    f"{event.detail}")
                    elif kind == "wait":
                        job.waiting_until = time.time() + event.seconds
                        job.say(f"Warten {event.seconds:.0f} s ({event.detail})")
                    elif kind in ("retry", "reconnect", "wall"):
                        job.say(event.detail)

                result = plan.send(secret, on_event=on_event, stop=job.cancel)
            job.result = result.described()
            if result.summary.wall:
                job.error = result.summary.wall
            elif job.cancel.is_set():
                job.result.append("Abgebrochen: die übrigen bekommen die E-Mail beim "
                                  "nächsten Senden (niemand doppelt).")

        job = self.page.jobs.start(f"Senden: {template}", work, key=key, link="/")
        return _back(f"/aufgaben/{job.id}")

    # -- answers ------------------------------------------------------------------------
    def answers(self, request: Request) -> Response:
        ws = self.page.workspace()
        names = answers.tables(ws)
        chosen = request.query_params.get("tabelle") or (names[0] if names else "")
        shown = (answers.view(ws, chosen, page=_int(request.query_params.get("seite")),
                              per_page=PER_PAGE) if chosen else None)
        return self.page.render(request, "antworten.html", title="Antworten", names=names,
                                chosen=chosen, view=shown)

    def answers_file(self, request: Request) -> Response:
        path = answers.download(self.page.workspace(), request.path_params["filename"])
        return FileResponse(path, filename=path.name)

    def answers_upload(self, request: Request, sent: Fields) -> Response:
        _, files = sent
        if not files:
            return _back("/antworten", "Bitte Dateien wählen.")
        ws = self.page.workspace()

        def work(job: Job) -> None:
            job.total = len(files)

            def answer(report: Any) -> None:
                job.count(report.status.value)
                reason = f": {report.reason}" if report.reason else ""
                job.say(f"{report.path.name}: {report.status.value}{reason}")

            imported = fetching.import_uploaded(ws, files, on_file=answer)
            job.result = ["Eingelesen: " + ", ".join(
                f"{n} {s.value}" for s, n in imported.counts.items()) + "."]

        job = self.page.jobs.start(f"Rückläufe einlesen ({len(files)} Dateien)", work,
                                   link="/antworten")
        return _back(f"/aufgaben/{job.id}")

    # -- mailbox ------------------------------------------------------------------------
    def mailbox(self, request: Request) -> Response:
        ws = self.page.workspace()
        imap = ws.imap_settings()
        table = status.report(ws)
        replies = status.report(ws, view=status.View.REPLIES)
        return self.page.render(request, "postfach.html", title="Postfach",
                                configured=bool(imap.host), host=imap.host,
                                questions=questions.open_questions(ws),
                                folder=imap.folder, report=table, replies=replies,
                                campaigns=[str(r[0]) for r in table.rows])

    def mailbox_fetch(self, request: Request, sent: Fields) -> Response:
        ws = self.page.workspace()
        if not ws.imap_settings().host:
            raise FormtoolError("Kein Postfach eingetragen: in formtool.toml unter [imap] "
                                "host, user und folder eintragen (Anleitung, Abschnitt 4).")
        secret = credentials.mailbox_secret(ws)

        def work(job: Job) -> None:
            def each(handled: Any) -> None:
                job.count(handled.kind.value)
                if handled.look:
                    job.say(f"{handled.sender or '?'} – {handled.subject}: {handled.note}")

            result = fetching.fetch_imap(ws, secret, on_message=each)
            job.result = [f"{n} {kind.value}" for kind, n in result.counts.items()] or [
                "Keine neuen E-Mails."]
            if result.imported is not None:
                job.result.append("Eingelesen: " + ", ".join(
                    f"{n} {s.value}" for s, n in result.imported.counts.items()) + ".")
            for report in result.not_imported:
                job.result.append(f"nicht eingelesen: {report.path.name}: {report.reason}")
            for address, names in result.filed:
                job.result.append(f"als Antwort von {address} vermerkt, bitte ansehen: "
                                  f"{', '.join(names)}")

        job = self.page.jobs.start("Postfach abrufen", work, link="/postfach")
        return _back(f"/aufgaben/{job.id}")

    def decide(self, request: Request, sent: Fields) -> Response:
        fields, _ = sent
        said = questions.decide(self.page.workspace(), _int(fields.get("nummer"), 0),
                                fields.get("wahl", ""))
        return _back("/postfach", said)

    def mark_answered(self, request: Request, sent: Fields) -> Response:
        fields, _ = sent
        addresses = fields.get("adressen", "").replace(",", " ").split()
        if not addresses:
            return _back("/postfach", "Bitte mindestens eine Adresse eintragen.")
        campaign = fields.get("aktion", "")
        undo = fields.get("rueckgaengig") == "1"
        unknown = status.mark_answered(self.page.workspace(), campaign, addresses,
                                       note=fields.get("notiz", ""), undo=undo)
        done = len(addresses) - len(unknown)
        words = (f"{done} Adresse(n) {'nicht mehr ' if undo else ''}als beantwortet "
                 f"vermerkt.")
        if unknown:
            words += f" Nicht in „{campaign}“ angeschrieben: {', '.join(unknown)}."
        return _back("/postfach", words)

    # -- website ------------------------------------------------------------------------
    def website(self, request: Request) -> Response:
        try:
            shown, empty = website.show(self.page.workspace()), ""
        except website.WebsiteError as exc:  # nothing read in yet: said on the page
            shown, empty = None, str(exc)
        return self.page.render(request, "website.html", title="Partnerliste für die Website",
                                shown=shown, empty=empty)

    def website_file(self, request: Request) -> Response:
        path = website.download(self.page.workspace(), request.path_params["filename"])
        return FileResponse(path, filename=path.name)

    def website_write(self, request: Request, sent: Fields) -> Response:
        fields, _ = sent
        codes = [c for c in fields.get("freigeben", "").split() if c]
        published = website.publish(self.page.workspace(), approve_codes=codes or None)
        return _back("/website", f"Geschrieben: {len(published.files)} Dateien in website/ "
                                 f"({len(published.partners.entries)} Partner).")

    # -- settings -----------------------------------------------------------------------
    def settings(self, request: Request) -> Response:
        now = settings.current(self.page.workspace())
        values = now.values
        provider = request.query_params.get("anbieter", "")
        if provider:  # a preset only fills the form; nothing is written before „Speichern“
            values = settings.apply_preset(values, provider)
        lines = request.query_params.getlist("ergebnis")
        return self.page.render(request, "einstellungen.html", title="Einstellungen",
                                values=values, stored=now.password_stored, now=now,
                                presets=list(settings.PRESETS), provider=provider,
                                lines=lines)

    def settings_save(self, request: Request, sent: Fields) -> Response:
        fields, _ = sent
        settings.save(self.page.workspace(), {k: v for k, v in fields.items()
                                              if k in settings.FIELDS})
        return _back("/einstellungen", "Einstellungen gespeichert (formtool.toml, mit allen "
                                       "Kommentaren).")

    def settings_password(self, request: Request, sent: Fields) -> Response:
        fields, _ = sent
        settings.keep_password(self.page.workspace(), fields.get("passwort", ""))
        return _back("/einstellungen", "Anmeldung erfolgreich; das Passwort liegt im "
                                       "Schlüsselbund des Betriebssystems.")

    def settings_mailbox_password(self, request: Request, sent: Fields) -> Response:
        fields, _ = sent
        settings.keep_mailbox_password(self.page.workspace(), fields.get("passwort", ""))
        return _back("/einstellungen", "Anmeldung am Postfach erfolgreich; das Passwort liegt "
                                       "im Schlüsselbund des Betriebssystems.")

    def sign_in(self, request: Request, sent: Fields) -> Response:
        """OAuth sign-in (Microsoft 365 …) with a code typed at the provider's address:
        a job that shows address and code and waits for the sign-in."""
        ws = self.page.workspace()

        def work(job: Job) -> None:
            client, code = signin.start_device(ws)
            job.say(f"Bitte im Browser {code.verification_uri} öffnen und diesen Code "
                    f"eingeben: {code.user_code}")
            job.say("Das geht auf jedem Gerät, auch am Handy. Danach mit dem Konto "
                    "anmelden, das die Rundmails sendet.")

            def waiting(left: float) -> None:
                job.waiting_until = time.time() + left

            done = signin.finish_device(ws, client, code, waiting)
            where = ("im Schlüsselbund" if done.stored_in == "Schlüsselbund"
                     else f"in {done.stored_in} (nur für Sie lesbar)")
            job.result = [f"Angemeldet bei {done.service}; die Anmeldung ist {where} "
                          "gespeichert."]
            if done.mailbox_checked:
                job.result.append(f"Anmeldung am Postfach {ws.imap_settings().host} "
                                  "erfolgreich.")

        job = self.page.jobs.start("Anmelden (ohne Passwort)", work, link="/einstellungen")
        return _back(f"/aufgaben/{job.id}")

    def settings_test(self, request: Request, sent: Fields) -> Response:
        lines = settings.test_connection(self.page.workspace())
        return _back("/einstellungen", " ".join(lines))

    # -- forget ---------------------------------------------------------------------------
    def forget(self, request: Request) -> Response:
        ws = self.page.workspace()
        address = request.query_params.get("adresse", "").strip()
        people: list[privacy.Person] = []
        planned = None
        if address and "@" not in address:  # a name: who is meant?
            people = privacy.find_people(ws, address)
        elif address:
            planned = privacy.plan(ws, address)
        return self.page.render(request, "vergessen.html", title="Eine Person vergessen",
                                address=address, planned=planned, people=people,
                                searched=bool(address and "@" not in address), root=ws.root)

    def forget_now(self, request: Request, sent: Fields) -> Response:
        fields, _ = sent
        if fields.get("bestaetigt") != "1":
            return _back("/vergessen", "Bitte bestätigen.")
        result = privacy.forget(self.page.workspace(), fields.get("adresse", ""),
                                delete_files=True)
        r = result.removed
        words = (f"Vergessen: {r.contacts} Kontakt(e), {r.sends} Versand-Einträge, "
                 f"{r.responses} Rückläufe; {len(result.findings)} Datei(en) bereinigt.")
        if result.left:
            words += " Nicht gelöscht: " + "; ".join(result.left)
        return _back("/vergessen", words)

    # -- jobs ---------------------------------------------------------------------------
    def _job(self, request: Request) -> Job:
        job = self.page.jobs.all.get(request.path_params["id"])
        if job is None:
            raise FormtoolError("Diese Aufgabe gibt es nicht (mehr) – formtool wurde "
                                "vielleicht neu gestartet.")
        return job

    def job(self, request: Request) -> Response:
        job = self._job(request)
        return self.page.render(request, "aufgabe.html", title=job.title, job=job,
                                state=job.snapshot())

    def job_json(self, request: Request) -> Response:
        return JSONResponse(self._job(request).snapshot())

    def job_cancel(self, request: Request, sent: Fields) -> Response:
        job = self._job(request)
        job.cancel.set()
        return _back(f"/aufgaben/{job.id}", "Wird abgebrochen: die E-Mail, die gerade "
                                            "hinausgeht, wird noch vermerkt.")

    def quit(self, request: Request, sent: Fields) -> Response:
        self.page.stop()
        return self.page.render(request, "beendet.html", title="Beendet")


def kind_words(kind: str) -> str:
    return {"failed": "fehlgeschlagen", "pending": "zurückgestellt",
            "unknown": "Zustand unbekannt"}.get(kind, kind)


def _quoted(name: str) -> str:
    return quote(name, safe="")
