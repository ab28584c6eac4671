"""`formtool web` (issue 23): the real server in its own process, a real Chromium.

The guard (token → cookie, Host, Origin, CSRF, headers), every GET page changing
nothing, hostile values shown as text, axe-core on every page at 390 and 1280 px,
and a send through the page to a local SMTP server: once per contact whatever is
clicked, cancellable, resumable, sharing the CLI's run lock."""

from __future__ import annotations

import http.client
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from helpers import invoke, pdftk_fill
from mailhelpers import PASSWORD, USER, FaultyMailbox, MemoryKeyring
from smtpserver import LocalSmtpServer
from test_mail import configure
from webhelpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOTS,
    Web,
    axe_violations,
    running,
    snapshot,
    wait_done,
)

PAGES = ["/", "/kontakte", "/formulare", "/aktionen", "/aktionen/einladung-fachberatung",
         "/postfach", "/antworten", "/website", "/einstellungen", "/vergessen",
         "/vergessen?adresse=claudia.koehler.1%40caritasverba-altenburger-la.example"]
HOSTILE = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>',
           "javascript:alert(1)", "=HYPERLINK(\"http://evil.example\")", "{{ 7*7 }}"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: make readers"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def smtp(ws: Path, certificate: tuple[Path, Path]) -> Iterator[LocalSmtpServer]:
    certfile, keyfile = certificate
    with LocalSmtpServer(FaultyMailbox(), security="starttls", certfile=certfile,
                         keyfile=keyfile, auth=(USER, PASSWORD)) as server:
        configure(ws, server.port, ca_file=certfile)
        yield server


@pytest.fixture
def slow(ws: Path, certificate: tuple[Path, Path]) -> Iterator[LocalSmtpServer]:
    """A server that takes 0.15 s per reply: a send lasts long enough to act during it."""
    certfile, keyfile = certificate
    with LocalSmtpServer(FaultyMailbox(), security="starttls", certfile=certfile,
                         keyfile=keyfile, auth=(USER, PASSWORD), delay=0.15) as server:
        configure(ws, server.port, ca_file=certfile)
        yield server


def _until_received(server: LocalSmtpServer, count: int) -> None:
    deadline = time.time() + 30
    while len(server.handler.received) < count and time.time() < deadline:
        time.sleep(0.1)


@pytest.fixture
def web(ws: Path, smtp: LocalSmtpServer) -> Iterator[Web]:
    with running(ws, env={"FORMTOOL_SMTP_PASSWORD": PASSWORD}) as started:
        yield started


def _request(web: Web, method: str, path: str, *, headers: dict[str, str] | None = None,
             body: str = "") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    sent = {"Host": f"127.0.0.1:{web.port}", **(headers or {})}
    if body:
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
    connection.request(method, path, body=body.encode() or None, headers=sent)
    response = connection.getresponse()
    response.read()
    return response


def _cookie(web: Web) -> str:
    query = urllib.parse.urlsplit(web.url).query
    answer = _request(web, "GET", f"/?{query}")
    assert answer.status == 303 and answer.getheader("Location") == "/"
    cookie = answer.getheader("Set-Cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    return cookie.split(";", 1)[0]


def _page(browser: Any, web: Web, *, width: int = 1280, **options: Any) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900}, **options)
    page = context.new_page()
    page.goto(web.url)
    assert "token=" not in page.url  # the token has left the address
    return page


def test_only_the_page_itself_gets_in(web: Web, ws: Path) -> None:
    before = snapshot(ws)
    plain = _request(web, "GET", "/")
    assert plain.status == 403  # no cookie: no data, only how to open formtool
    cookie = _cookie(web)
    assert _request(web, "GET", "/", headers={"Cookie": cookie}).status == 200
    wrong = _request(web, "GET", "/?token=falsch")
    assert wrong.status == 403 and not wrong.getheader("Set-Cookie")
    for host in ("evil.example", f"evil.example:{web.port}", "127.0.0.1", "0.0.0.0:1"):
        assert _request(web, "GET", "/", headers={"Cookie": cookie, "Host": host}
                        ).status == 403, host
    # every change is a POST with the page's Origin and its CSRF token
    csrf = _csrf(web, cookie)
    text = "Subject: gekapert\n\nweg\n"
    form = urllib.parse.urlencode({"csrf": csrf, "text": text})
    path = "/aktionen/einladung-fachberatung/speichern"
    for origin in (None, "null", "http://evil.example", f"http://127.0.0.1:{web.port + 1}"):
        headers = {"Cookie": cookie, **({"Origin": origin} if origin else {})}
        assert _request(web, "POST", path, headers=headers, body=form).status == 403, origin
    own = {"Cookie": cookie, "Origin": web.base}
    no_token = urllib.parse.urlencode({"text": text})
    assert _request(web, "POST", path, headers=own, body=no_token).status == 403
    bad_token = urllib.parse.urlencode({"csrf": csrf[:-2] + "xx", "text": text})
    assert _request(web, "POST", path, headers=own, body=bad_token).status == 403
    assert _request(web, "POST", "/beenden", headers={"Cookie": cookie}).status == 403
    assert snapshot(ws) == before  # nothing changed
    # GET never changes anything, and a GET to a POST route is refused
    assert _request(web, "GET", path, headers={"Cookie": cookie}).status == 405
    for answer in (plain, _request(web, "GET", "/kontakte", headers={"Cookie": cookie})):
        csp = answer.getheader("Content-Security-Policy") or ""
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "form-action 'self'" in csp
        assert "script-src 'self';" in csp  # no inline script, ever
        assert answer.getheader("X-Content-Type-Options") == "nosniff"
        assert answer.getheader("Referrer-Policy") == "same-origin"
        assert answer.getheader("Cache-Control") == "no-store"


def _csrf(web: Web, cookie: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    connection.request("GET", "/", headers={"Host": f"127.0.0.1:{web.port}", "Cookie": cookie})
    html = connection.getresponse().read().decode()
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_the_server_listens_on_loopback_only(web: Web) -> None:
    import socket

    own = [a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    for address in {a for a in own if not a.startswith("127.")}:
        with socket.socket() as probe:
            probe.settimeout(1)
            assert probe.connect_ex((address, web.port)) != 0, address


def test_every_page_reads_and_nothing_changes(browser: Any, web: Web, ws: Path) -> None:
    """Every page, and every same-site link on them, opened in Chromium: each answers,
    none shows an error, and the workspace is byte for byte as before."""
    invoke(ws, "forms", "list")
    before = snapshot(ws)
    page = _page(browser, web)
    seen: set[str] = set()
    queue = list(PAGES)
    while queue and len(seen) < 60:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        if path.endswith((".pdf", ".csv", ".xlsx")):
            answer = page.request.get(web.base + path)
            assert answer.status == 200, path
            continue
        answer = page.goto(web.base + path)
        assert answer is not None and answer.status == 200, (path, page.content()[:500])
        assert "Unerwarteter Fehler" not in (page.text_content("main") or "")
        for href in page.eval_on_selector_all(
                "a[href]", "els => els.map(e => e.getAttribute('href'))"):
            if href.startswith("/") and not href.startswith("/static"):
                queue.append(href)
    assert {"/", "/kontakte", "/formulare", "/antworten"} <= seen
    assert any(p.endswith(".pdf") for p in seen)  # the blank form's download
    assert snapshot(ws) == before


def test_pages_pass_axe_and_fit_390_and_1280(browser: Any, web: Web, ws: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = {}
    for width in (390, 1280):
        page = _page(browser, web, width=width, bypass_csp=True)  # to inject axe-core
        for path in [*PAGES, "/kontakte?liste=fachberatungen.csv"]:
            page.goto(web.base + path)
            found = axe_violations(page)
            if found:
                problems[(path, width)] = found
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, (path, width, overflow)
            name = re.sub(r"[^A-Za-z0-9_=.-]+", "_", path.strip("/")) or "uebersicht"
            page.wait_for_timeout(300)  # the previews' frames are drawn
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        page.context.close()
    assert problems == {}


def _hostile_list(ws: Path) -> Path:
    import csv

    (ws / "contacts" / "fachberatungen.csv").unlink()
    path = ws / "contacts" / "feindlich.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, delimiter=";")
        out.writerow(["id", "anrede", "vorname", "nachname", "organisation", "email"])
        for i, value in enumerate(HOSTILE, 1):
            out.writerow([f"H-{i}", "Frau", value, value, value, f"h{i}@kita.example"])
        out.writerow(["H-9", "Frau", "x", "y", "z", "<script>@x.example"])  # skipped, shown
    return path


def test_hostile_values_are_shown_as_typed(browser: Any, web: Web, ws: Path) -> None:
    _hostile_list(ws)
    (ws / "templates" / "einladung-fachberatung.md.j2").write_text(
        "Subject: Einladung für {{ organisation }}\n\n{{ anrede_brief }}\n\n"
        "Ihre Organisation: {{ organisation }}\n", encoding="utf-8")
    page = _page(browser, web)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(web.base + "/kontakte?liste=feindlich.csv")
    cells = page.eval_on_selector_all("td", "els => els.map(e => e.textContent)")
    for value in HOSTILE:
        assert value in cells, value
    assert page.query_selector("img[src=x]") is None
    skipped = page.text_content("main") or ""
    assert "<script>@x.example" in skipped
    page.goto(web.base + "/aktionen/einladung-fachberatung?liste=feindlich.csv")
    text = page.text_content("main") or ""
    assert 'Einladung für <script>alert("x")</script>' in text
    frame = page.frame_locator("iframe").first
    assert '<script>alert("x")</script>' in (frame.locator("body").text_content() or "")
    sandbox = page.get_attribute("iframe", "sandbox")
    assert sandbox == ""  # no scripts, no same origin
    page.wait_for_timeout(300)
    assert dialogs == []


def _check(page: Any) -> None:
    """Press „Prüfen“ and wait for the confirmation. Pressed again when no navigation
    follows (seen once in a while on a long page while its preview frames are drawn);
    checking twice is harmless: it only prepares and shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        try:
            with page.expect_navigation(timeout=10_000):
                page.click("button:has-text('Prüfen')")
            break
        except PlaywrightTimeout:
            continue
    page.wait_for_url(re.compile(r".*/(bestaetigen/.*|pruefen)$"))


def _send_through_the_page(page: Any, web: Web, *, double: bool = True) -> str:
    page.goto(web.base + "/aktionen/einladung-fachberatung?liste=fachberatungen.csv")
    _check(page)
    page.wait_for_url(re.compile(r".*/bestaetigen/.*"))
    confirm = page.url
    button = page.locator("button", has_text="jetzt senden")
    if double:
        button.dblclick()
    else:
        button.click()
    page.wait_for_url(re.compile(r".*/aufgaben/.*"))
    return confirm


def test_a_send_through_the_page_reaches_everyone_once(browser: Any, web: Web, ws: Path,
                                                      smtp: LocalSmtpServer) -> None:
    page = _page(browser, web)
    confirm = _send_through_the_page(page, web)
    # a second tab sends the same confirmation, and the first one goes Back and resubmits
    other = page.context.new_page()
    other.goto(confirm)
    if other.locator("button", has_text="jetzt senden").count():
        other.locator("button", has_text="jetzt senden").click()
    wait_done(page)
    job = page.url
    page.go_back()  # the confirmation again: it knows its send
    assert page.url == confirm
    assert "läuft schon oder ist fertig" in (page.text_content("main") or "")
    assert page.locator("button", has_text="jetzt senden").count() == 0
    key = confirm.rsplit("/", 1)[1]
    csrf = page.get_attribute("input[name=csrf]", "value")
    again = page.request.post(web.base + "/aktionen/einladung-fachberatung/senden",
                              form={"csrf": csrf or "", "schluessel": key},
                              headers={"Origin": web.base}, max_redirects=0)
    assert again.status == 303 and again.headers["location"] == urllib.parse.urlsplit(job).path
    recipients = Counter(r.message()["To"] for r in smtp.handler.received)
    assert recipients and max(recipients.values()) == 1, recipients
    status = " ".join(invoke(ws, "status").output.split())
    sent = len(recipients)
    assert f"gesendet {sent}" in status
    page.goto(web.base + "/")
    row = page.eval_on_selector_all("tbody tr:first-child td", "els => els.map(e => e.textContent)")
    assert row[0] == "einladung-fachberatung" and row[1] == str(sent)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "nach-dem-senden-1280.png"), full_page=True)


def test_cancel_stops_after_the_message_in_flight_and_a_new_send_resumes(
        browser: Any, ws: Path, slow: LocalSmtpServer) -> None:
    with running(ws, env={"FORMTOOL_SMTP_PASSWORD": PASSWORD}) as web:
        page = _page(browser, web)
        _send_through_the_page(page, web, double=False)
        _until_received(slow, 1)
        # the CLI meanwhile is refused: the same run lock
        cli = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes")
        assert cli.exit_code != 0 and "läuft" in cli.output, cli.output
        page.click("text=Abbrechen")
        wait_done(page)
        text = " ".join((page.text_content("main") or "").split())
        assert "Abgebrochen" in text, text
        first = len(slow.handler.received)
        total = sum(1 for line in (ws / "contacts" / "fachberatungen.csv").read_text(
            encoding="utf-8").splitlines()[1:] if line.strip())
        assert 0 < first < total
        _send_through_the_page(page, web, double=False)
        wait_done(page, timeout=120)
    recipients = Counter(r.message()["To"] for r in slow.handler.received)
    assert max(recipients.values()) == 1 and len(recipients) > first


def test_returned_forms_uploaded_become_the_table(browser: Any, web: Web, ws: Path,
                                                 blank_forms: dict[str, Path],
                                                 tmp_path: Path) -> None:
    filled = [pdftk_fill(blank_forms["buendnispartner"], {
        "organisation": f"Kita {name}", "email": f"{name.lower()}@kita.example",
        "nachname": name}, tmp_path / f"form{i}.pdf")
        for i, name in enumerate(("Alpha", "<b>Beta</b>"))]
    page = _page(browser, web)
    page.goto(web.base + "/antworten")
    # one comes again under a name that tries to climb out of the folder
    page.set_input_files("#dateien", [
        {"name": name, "mimeType": "application/pdf", "buffer": path.read_bytes()}
        for name, path in (("Alpha.pdf", filled[0]), ("<b>Beta</b>.pdf", filled[1]),
                           ("../../formtool.toml.pdf", filled[0]))])
    page.click("button:has-text('Einlesen')")
    page.wait_for_load_state()
    assert "/aufgaben/" in page.url, page.text_content("main")
    wait_done(page)
    text = " ".join((page.text_content("main") or "").split())
    assert "Eingelesen:" in text and "importiert" in text, text
    assert not (ws.parent / "formtool.toml.pdf").exists()
    page.goto(web.base + "/antworten")
    cells = page.eval_on_selector_all("td", "els => els.map(e => e.textContent)")
    assert "Kita <b>Beta</b>" in cells and "Kita Alpha" in cells
    links = page.eval_on_selector_all("a[href^='/antworten/datei/']",
                                      "els => els.map(e => e.getAttribute('href'))")
    xlsx = next(link for link in links if link.endswith(".xlsx"))
    data = page.request.get(web.base + xlsx).body()
    import io

    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    values = [c for row in book.active.iter_rows(values_only=True) for c in row]
    assert "Kita Alpha" in values
    saved = sorted(p.name for p in (ws / "ruecklaeufe").iterdir())
    assert all("/" not in name and ".." not in name for name in saved)
    assert _request(web, "GET", "/antworten/datei/..%2Fformtool.toml",
                    headers={"Cookie": _cookie(web)}).status in (400, 404)


def test_a_workbook_uploaded_is_the_list_and_bad_uploads_are_named(
        browser: Any, web: Web, ws: Path, tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Einrichtung", "Anrede", "Nachname", "E-Mail-Adresse", "PLZ"])
    sheet.append(["Kita Sonnenschein", "Frau", "Köhler", "jana@kita.example", 7907])
    sheet["E2"].number_format = "00000"
    book.save(tmp_path / "Meine Liste.xlsx")
    page = _page(browser, web)
    page.goto(web.base + "/kontakte")
    page.set_input_files("#datei", str(tmp_path / "Meine Liste.xlsx"))
    page.click("button:has-text('Hochladen')")
    page.wait_for_load_state()
    assert (ws / "contacts" / "Meine Liste.xlsx").is_file()
    cells = page.eval_on_selector_all("td", "els => els.map(e => e.textContent)")
    assert "07907" in cells and "jana@kita.example" in cells
    assert "„E-Mail-Adresse“ → email" in (page.text_content("main") or "")
    before = snapshot(ws)
    for name, data, words in (
            ("liste.ods", b"PK\x03\x04", "dieses Tabellenformat liest formtool nicht"),
            ("riesig.csv", b"E-Mail\n" + b"x" * (21 * 1024 * 1024), "höchstens 20 MB"),
            ("../../formtool.toml", b"E-Mail\na@b.example\n", "keine Kontaktliste")):
        page.goto(web.base + "/kontakte")
        page.set_input_files("#datei", {"name": name, "mimeType": "text/csv", "buffer": data})
        page.click("button:has-text('Hochladen')")
        page.wait_for_load_state()
        assert words in (page.text_content("main") or ""), name
    assert snapshot(ws) == before  # nothing kept of a refused upload


def test_settings_keep_comments_and_the_password_goes_to_the_keyring_only(
        browser: Any, ws: Path, smtp: LocalSmtpServer, tmp_path: Path) -> None:
    import json
    import os

    store = tmp_path / "keyring.json"
    tests = str(Path(__file__).parent)
    env = {"PYTHON_KEYRING_BACKEND": "filekeyring.FileKeyring",
           "FORMTOOL_TEST_KEYRING": str(store),
           "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    (ws / "formtool.toml").write_text(
        "# Bündnis-Einstellungen – dieser Kommentar bleibt\n"
        + (ws / "formtool.toml").read_text(encoding="utf-8").replace(
            "[smtp]\n", "[smtp]\n# unser Postausgang (bleibt auch)\n"), encoding="utf-8")
    with running(ws, env=env) as web:
        page = _page(browser, web)
        page.goto(web.base + "/einstellungen")
        page.select_option("#anbieter", "Strato")
        page.click("button:has-text('Übernehmen')")
        assert page.input_value("#smtp_host") == "smtp.strato.de"
        assert page.input_value("#smtp_port") == "465"
        page.fill("#sender_name", 'Bündnis <b>"Kita"</b>')
        page.click("button:has-text('Speichern')")
        page.wait_for_load_state()
        assert "Einstellungen gespeichert" in (page.text_content("main") or "")
        text = (ws / "formtool.toml").read_text(encoding="utf-8")
        assert "dieser Kommentar bleibt" in text and "# unser Postausgang (bleibt auch)" in text
        assert 'host = "smtp.strato.de"' in text
        assert page.input_value("#sender_name") == 'Bündnis <b>"Kita"</b>'
        # a bad value: the file stays as it was, the message names it
        page.fill("#smtp_port", "99999")
        page.click("button:has-text('Speichern')")
        page.wait_for_load_state()
        assert "erlaubt sind 1 bis 65535" in (page.text_content("main") or "")
        assert (ws / "formtool.toml").read_text(encoding="utf-8") == text
        # back to the test server; the password is checked, then kept in the keyring
        page.goto(web.base + "/einstellungen")
        page.fill("#smtp_host", "127.0.0.1")
        page.fill("#smtp_port", str(smtp.port))
        page.select_option("#smtp_security", "starttls")
        page.fill("#imap_host", "imap.invalid")
        page.click("button:has-text('Speichern')")
        page.wait_for_load_state()
        page.fill("#passwort", "falsch")
        page.click("button:has-text('Prüfen und speichern')")
        page.wait_for_load_state()
        assert "Das ging nicht" in (page.text_content("h1") or "")
        assert not store.exists() or "falsch" not in store.read_text(encoding="utf-8")
        page.goto(web.base + "/einstellungen")
        page.fill("#passwort", PASSWORD)
        page.click("button:has-text('Prüfen und speichern')")
        page.wait_for_load_state()
        assert "Anmeldung erfolgreich" in (page.text_content("main") or "")
        assert PASSWORD in json.loads(store.read_text(encoding="utf-8")).values()
        page.goto(web.base + "/einstellungen")
        assert PASSWORD not in page.content()
        assert "Ein Passwort ist im Schlüsselbund" in (page.text_content("main") or "")
        page.click("button:has-text('Verbindung testen')")
        page.wait_for_load_state()
        said = " ".join((page.text_content("main") or "").split())
        assert "Versand: Anmeldung bei 127.0.0.1 erfolgreich" in said, said
        assert "Postfach: Postfach-Server „imap.invalid“ nicht gefunden" in said, said
    for path in ws.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_mark_by_hand_website_and_forget_through_the_page(
        browser: Any, web: Web, ws: Path, smtp: LocalSmtpServer,
        memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password("formtool", f"{USER}@127.0.0.1", PASSWORD)
    cli = invoke(ws, "mail", "send", "einladung-fachberatung", "--yes", "--limit", "3")
    assert cli.exit_code == 0, cli.output
    sent = [r.message()["To"].addresses[0].addr_spec for r in smtp.handler.received]
    assert len(sent) == 3
    page = _page(browser, web)
    page.goto(web.base + "/postfach")
    assert "Noch kein Postfach eingetragen" in (page.text_content("main") or "")
    page.fill("#adressen", sent[0])
    page.fill("#notiz", "Anruf am 3.12.")
    page.click("button:has-text('Vermerken')")
    page.wait_for_load_state()
    assert "1 Adresse(n) als beantwortet vermerkt" in (page.text_content("main") or "")
    offen = invoke(ws, "status", "einladung-fachberatung", "--offen").output
    assert sent[0] not in offen and sent[1] in offen
    # a reply in unclear words: a question on /postfach, decided with one button
    import mailbox
    from email.message import EmailMessage

    unclear = EmailMessage()
    unclear["From"], unclear["To"] = sent[2], "koordination@buendnis.example"
    unclear["Subject"], unclear["Message-ID"] = "AW: Einladung", "<frage@kita.example>"
    unclear.set_content("Wie kann ich mich abmelden?")
    box = mailbox.Maildir(ws.parent / "eingang")
    box.add(unclear.as_bytes())
    assert invoke(ws, "mail", "fetch", "--from", str(ws.parent / "eingang")).exit_code == 0
    page.goto(web.base + "/postfach")
    assert "Bitte prüfen (1)" in (page.text_content("main") or "")
    page.click("button:has-text('Ja, abmelden')")
    page.wait_for_load_state()
    main = page.text_content("main") or ""
    assert f"{sent[2]} abgemeldet" in main and "Bitte prüfen (0)" in main
    answer = page.goto(web.base + "/website")
    assert answer is not None and answer.status == 200
    assert "Bündnispartner" in (page.text_content("main") or "")
    page.goto(web.base + "/vergessen?adresse=" + urllib.parse.quote("KÖHLER"))  # by name
    found = page.eval_on_selector_all("main li a", "els => els.map(e => e.textContent)")
    assert "Claudia Köhler" in found, found
    page.goto(web.base + f"/vergessen?adresse={urllib.parse.quote(sent[1])}")
    text = page.text_content("main") or ""
    assert "Würde gelöscht" in text and "contacts/fachberatungen.csv" in text
    before = (ws / "contacts" / "fachberatungen.csv").read_text(encoding="utf-8")
    assert sent[1] in before  # looking deleted nothing
    page.check("#bestaetigt")
    page.click("button:has-text('Vergessen')")
    page.wait_for_load_state()
    assert "Vergessen:" in (page.text_content("main") or "")
    assert sent[1] not in (ws / "contacts" / "fachberatungen.csv").read_text(encoding="utf-8")
    assert sent[1] not in invoke(ws, "status", "einladung-fachberatung", "--offen").output


def test_personal_forms_are_made_from_the_page(browser: Any, web: Web, ws: Path) -> None:
    page = _page(browser, web)
    page.goto(web.base + "/formulare")
    with page.expect_navigation():
        page.locator("form[action='/formulare/buendnispartner/persoenlich'] button").click()
    wait_done(page)
    assert "40 persönliche Formulare" in (page.text_content("main") or "")
    made = list((ws / "formulare" / "buendnispartner").glob("*.pdf"))
    assert len(made) == 40


def test_demo_web_shows_the_demo_in_the_page(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "BROWSER": "true",  # a browser that opens nothing
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    process = subprocess.Popen([sys.executable, "-m", "formtool", "demo", "--dir",
                                str(tmp_path / "demo"), "--web"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "formtool läuft:" in line:
            break
    found = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", lines[-1])
    assert found, "".join(lines)
    port = int(found.group(1))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", f"/?token={found.group(2)}", headers={"Host": f"127.0.0.1:{port}"})
    answer = connection.getresponse()
    answer.read()
    cookie = (answer.getheader("Set-Cookie") or "").split(";", 1)[0]
    connection.request("GET", "/", headers={"Host": f"127.0.0.1:{port}", "Cookie": cookie})
    html = connection.getresponse().read().decode()
    assert "einladung-fachberatung" in html and "erinnerung" in html
    process.send_signal(signal.SIGINT)
    rest = process.stdout.read()
    assert process.wait(timeout=30) == 0, rest
    assert "formtool beendet." in rest and "Traceback" not in rest


def test_ctrl_c_during_a_send_stops_after_the_message_in_flight(
        browser: Any, ws: Path, slow: LocalSmtpServer) -> None:
    """Ctrl+C in the window while the page sends: the server stops, the message under
    way is recorded, nothing is left „in Zustellung“, and a plain rerun sends the rest
    exactly once."""
    import signal

    from formtool.state.store import Journal, SendState, Store

    with running(ws, env={"FORMTOOL_SMTP_PASSWORD": PASSWORD}) as web:
        page = _page(browser, web)
        _send_through_the_page(page, web, double=False)
        _until_received(slow, 3)
        web.process.send_signal(signal.SIGINT)
        assert web.process.wait(timeout=40) == 0
        output = web.process.stdout.read() if web.process.stdout else ""
        assert "formtool beendet." in output and "Traceback" not in output, output
    with Store(ws / ".formtool" / "state.db") as store:
        states = Counter(s.state for s in Journal(store).sends("einladung-fachberatung"))
    assert states[SendState.SENDING] == 0 and states[SendState.UNKNOWN] == 0, states
    first = len(slow.handler.received)
    assert 0 < first < 40 and states[SendState.SENT] == first
    with running(ws, env={"FORMTOOL_SMTP_PASSWORD": PASSWORD}) as again:
        page = _page(browser, again)
        _send_through_the_page(page, again, double=False)
        wait_done(page, timeout=120)
    recipients = Counter(r.message()["To"] for r in slow.handler.received)
    assert len(recipients) == 40 and max(recipients.values()) == 1


def test_an_upload_too_big_for_one_request_is_refused_whole(web: Web, ws: Path) -> None:
    cookie = _cookie(web)
    csrf = _csrf(web, cookie)
    before = snapshot(ws)
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    connection.putrequest("POST", "/antworten/hochladen", skip_host=True)
    for name, value in (("Host", f"127.0.0.1:{web.port}"), ("Cookie", cookie),
                        ("Origin", web.base), ("Content-Length", str(300 * 1024 * 1024)),
                        ("Content-Type", "multipart/form-data; boundary=x")):
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(b"--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"
                    + csrf.encode() + b"\r\n")
    answer = connection.getresponse()
    body = answer.read().decode()
    assert answer.status == 413 and "höchstens 200 MB" in body, (answer.status, body[-600:])
    assert snapshot(ws) == before


def test_a_broken_workspace_is_a_german_message_never_a_traceback(web: Web, ws: Path) -> None:
    cookie = _cookie(web)
    (ws / ".formtool").mkdir(exist_ok=True)
    (ws / ".formtool" / "state.db").write_bytes(b"kein SQLite" * 100)
    (ws / "contacts" / "kaputt.csv").write_bytes(b"\x00\x01\x02" * 500)
    (ws / "templates" / "kaputt.md.j2").write_text("Subject: {{ \n\n{% if %}", encoding="utf-8")
    for path in ("/", "/kontakte?liste=kaputt.csv", "/aktionen/kaputt?liste=fachberatungen.csv",
                 "/aktionen/gibtsnicht", "/antworten/datei/..%2F..%2Fetc%2Fpasswd",
                 "/aufgaben/unbekannt", "/nirgendwo"):
        connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
        connection.request("GET", path, headers={"Host": f"127.0.0.1:{web.port}",
                                                 "Cookie": cookie})
        answer = connection.getresponse()
        body = answer.read().decode()
        assert answer.status in (200, 400, 404), (path, answer.status)
        assert "Traceback" not in body and 'File "' not in body, path
        assert '<html lang="de">' in body, path


def test_the_page_waits_while_the_cli_sends(browser: Any, ws: Path,
                                            slow: LocalSmtpServer) -> None:
    """The other way round: a CLI send runs, the page's check is refused with the
    CLI's words (the same run lock), and nothing is sent twice."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "FORMTOOL_SMTP_PASSWORD": PASSWORD,
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    cli = subprocess.Popen([sys.executable, "-m", "formtool", "--workspace", str(ws),
                            "mail", "send", "einladung-fachberatung", "--yes"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=env)
    try:
        _until_received(slow, 1)
        with running(ws, env={"FORMTOOL_SMTP_PASSWORD": PASSWORD}) as web:
            page = _page(browser, web)
            page.goto(web.base + "/aktionen/einladung-fachberatung?liste=fachberatungen.csv")
            _check(page)
            text = " ".join((page.text_content("main") or "").split())
            assert "Das ging nicht" in text and "läuft" in text, text
    finally:
        assert cli.wait(timeout=120) == 0, cli.stdout.read() if cli.stdout else ""
    recipients = Counter(r.message()["To"] for r in slow.handler.received)
    assert len(recipients) == 40 and max(recipients.values()) == 1


def test_the_whole_loop_through_the_page(browser: Any, ws: Path, smtp: LocalSmtpServer,
                                         certificate: tuple[Path, Path],
                                         tmp_path: Path) -> None:
    """Invite with personal forms, two return them by mail, fetch them from Dovecot,
    the answers as a workbook, a reminder to exactly the others – all in the page; the
    CLI's status says the same."""
    import io

    import openpyxl
    from imapserver import PASSWORD as IMAP_PASSWORD
    from imapserver import Dovecot

    cafile = certificate[0]
    dovecot = Dovecot(certificate)
    try:
        dovecot.configure(ws, cafile)
        env = {"FORMTOOL_SMTP_PASSWORD": PASSWORD, "FORMTOOL_IMAP_PASSWORD": IMAP_PASSWORD}
        with running(ws, env=env) as web:
            page = _page(browser, web)
            page.goto(web.base + "/aktionen/einladung-fachberatung?liste=fachberatungen.csv")
            page.select_option("#formular", "buendnispartner")
            _check(page)
            assert "zu senden: 40" in (page.text_content("main") or "")
            page.locator("button", has_text="jetzt senden").click()
            page.wait_for_url(re.compile(r".*/aufgaben/.*"))
            wait_done(page, timeout=120)
            invitations = [r.message() for r in smtp.handler.received]
            assert len(invitations) == 40
            returns = []
            for invitation in invitations[:2]:
                pdf = next(p for p in invitation.iter_attachments()
                           if p.get_content_type() == "application/pdf")
                blank = tmp_path / f"{len(returns)}.pdf"
                blank.write_bytes(pdf.get_content())
                filled = pdftk_fill(blank, {"art": "fachberatung", "kreis": "kerngruppe",
                                            "datenschutz": "Yes", "funktion": "Leitung"},
                                    tmp_path / f"filled{len(returns)}.pdf")
                reply = EmailMessage()
                reply["From"] = invitation["To"]
                reply["To"] = invitation["From"]
                reply["Subject"] = "AW: " + str(invitation["Subject"])
                reply["In-Reply-To"] = invitation["Message-ID"]
                reply["Message-ID"] = f"<antwort{len(returns)}@kita.example>"
                reply.set_content("Anbei unser Formular.")
                reply.add_attachment(filled.read_bytes(), maintype="application",
                                     subtype="pdf", filename="Beitrittserklärung.pdf")
                returns.append(reply)
            dovecot.seed(cafile, returns)
            page.goto(web.base + "/postfach")
            with page.expect_navigation():
                page.click("button:has-text('Abrufen')")
            wait_done(page, timeout=120)
            assert "Eingelesen:" in (page.text_content("main") or ""), page.text_content("main")
            page.goto(web.base + "/antworten")
            assert "2 Rückläufe" in (page.text_content("main") or "")
            data = page.request.get(web.base + "/antworten/datei/buendnispartner.xlsx").body()
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
            assert sum(1 for _ in book.active.iter_rows()) == 3  # header + 2
            page.goto(web.base + "/aktionen/erinnerung?liste=fachberatungen.csv")
            page.select_option("#nur_offen", "einladung-fachberatung")
            _check(page)
            text = " ".join((page.text_content("main") or "").split())
            assert "zu senden: 38" in text and "ging erst vor" in text, text
            page.locator("button", has_text="jetzt senden").click()
            page.wait_for_url(re.compile(r".*/aufgaben/.*"))
            wait_done(page, timeout=120)
            page.goto(web.base + "/")
            shown = page.eval_on_selector_all("tbody tr", "rows => rows.map(r => "
                                              "[...r.cells].map(c => c.textContent))")
        answered = {str(r["From"]) for r in returns}
        reminded = [r.message()["To"] for r in smtp.handler.received[40:]]
        assert len(reminded) == 38 and not answered & {str(t) for t in reminded}
        status = " ".join(invoke(ws, "status").output.split())
        assert "gesendet 40 · beantwortet 2 · offen 38" in status, status
        invitation_row = next(r for r in shown if r[0] == "einladung-fachberatung")
        assert (invitation_row[1], invitation_row[5], invitation_row[6]) == ("40", "2", "38")
    finally:
        dovecot.stop()


def test_a_template_with_an_unknown_placeholder_is_not_saved(browser: Any, web: Web,
                                                              ws: Path) -> None:
    path = ws / "templates" / "einladung-fachberatung.md.j2"
    before = path.read_bytes()
    page = _page(browser, web)
    page.goto(web.base + "/aktionen/einladung-fachberatung?liste=fachberatungen.csv")
    page.fill("#text", "Subject: Hallo\n\n{{ anrede_brief }}\n\nIhr {{ verein }} …\n")
    with page.expect_navigation():
        page.click("button:has-text('Speichern')")
    text = " ".join((page.text_content("main") or "").split())
    assert "Nicht gespeichert" in text and "einladung-fachberatung.md.j2:5" in text, text
    assert "„verein“" in text
    assert path.read_bytes() == before
    assert not list((ws / "templates").glob(".*"))  # no probe left behind
    page.goto(web.base + "/aktionen/einladung-fachberatung?liste=fachberatungen.csv")
    page.fill("#text", "Subject: Hallo {{ organisation }}\n\n{{ anrede_brief }}\n\nDanke.\n")
    with page.expect_navigation():
        page.click("button:has-text('Speichern')")
    assert "Vorlage gespeichert" in (page.text_content("main") or "")
    assert path.read_text(encoding="utf-8").startswith("Subject: Hallo {{ organisation }}")
    assert "Hallo Caritasverband Altenburger Land" in (page.text_content("main") or "")


def test_sign_in_without_a_password_from_the_page(browser: Any, ws: Path,
                                                  certificate: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    """Microsoft 365 and co.: „Anmelden“ on /einstellungen shows the provider's address
    and code, waits, and keeps the sign-in in the keyring – then a send works with it."""
    import json
    import os

    from oidcprovider import Provider
    from test_oauth import configure as configure_oauth
    from test_oauth import no_secret_anywhere, smtp_server

    store = tmp_path / "keyring.json"
    env = {"PYTHON_KEYRING_BACKEND": "filekeyring.FileKeyring",
           "FORMTOOL_TEST_KEYRING": str(store),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                          os.environ.get("PYTHONPATH", "")])}
    with Provider(certificate) as provider, smtp_server(provider, certificate) as server:
        provider.device_script = ["pending", "approve"]
        configure_oauth(ws, provider, certificate, server.port)
        with running(ws, env=env) as web:
            page = _page(browser, web)
            page.goto(web.base + "/einstellungen")
            assert "Noch nicht angemeldet" in (page.text_content("main") or "")
            with page.expect_navigation():
                page.click("button:has-text('Anmelden')")
            wait_done(page, timeout=60)
            text = " ".join((page.text_content("main") or "").split())
            assert "WDJB-MJHT" in text and f"{provider.issuer}/geraet" in text, text
            assert "Angemeldet bei" in text
            assert any(k.startswith("formtool") for k in json.loads(
                store.read_text(encoding="utf-8")))
            page.goto(web.base + "/einstellungen")
            assert "Eine Anmeldung ist gespeichert" in (page.text_content("main") or "")
            page.goto(web.base + "/aktionen/einladung-fachberatung?liste=fachberatungen.csv")
            _check(page)
            page.locator("button", has_text="jetzt senden").click()
            page.wait_for_url(re.compile(r".*/aufgaben/.*"))
            wait_done(page, timeout=120)
            assert len(server.handler.received) == 40
            shown = page.content()
        no_secret_anywhere(ws, provider, shown)  # no token in the workspace or the page
