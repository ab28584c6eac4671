"""``formtool demo``: the whole loop on this machine, no account, no network.

A fresh workspace; an SMTP server on a free loopback port that stores every
message as an .eml file; personal forms for the 40 synthetic Fachberatungen;
the invitations; 12 of the forms filled as if returned; the import; the
status; the reminders to the other 28.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shlex
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path

from formtool import workspace
from formtool.errors import FormtoolError
from formtool.mail import outbox
from formtool.mail.localsmtp import DemoSmtpServer, Mailbox
from formtool.state.store import CampaignStatus, Journal, Store
from formtool.usecases import fetching, importing, sending, website

MARKER = ".formtool-demo"
INVITATION, REMINDER, FORM = "einladung-fachberatung", "erinnerung", "buendnispartner"
RETURNS = 12


@dataclass
class DemoResult:
    root: Path
    invited: outbox.Summary
    reminded: outbox.Summary
    imported: Counter[importing.Status]
    invitation: CampaignStatus
    reminder: CampaignStatus


def _fresh(root: Path) -> None:
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).exists():
            raise FormtoolError(f"{root} ist nicht leer und kein Demo-Ordner; bitte einen "
                                "anderen Ordner mit --dir angeben.")
        shutil.rmtree(root)
    workspace.init(root)
    (root / MARKER).write_text("Von formtool demo angelegt; wird beim nächsten Lauf ersetzt.\n",
                               encoding="utf-8")


def _configure(root: Path, port: int) -> None:
    config = root / workspace.CONFIG_NAME
    text = config.read_text(encoding="utf-8")
    for old, new in (('email = ""', 'email = "koordination@buendnis-demo.example"'),
                     ('host = ""', 'host = "127.0.0.1"'), ("port = 587", f"port = {port}"),
                     ('security = "starttls"', 'security = "none"')):
        text = text.replace(old, new, 1)
    text += "\n# Demo: keine Versandgrenzen für den eingebauten Server\n"
    config.write_text(text.replace("# per_minute = 20", "per_minute = 0", 1)
                      .replace("# per_hour = 300", "per_hour = 0", 1), encoding="utf-8")


def _answers(rng: random.Random) -> dict[str, str]:
    """Varied answers, as different offices would give them."""
    answers = {
        "art": "/fachberatung" if rng.random() < 0.8 else "/traeger",
        "kreis": rng.choice(["/kerngruppe", "/buendnisgruppe", "/partner"]),
        "website_nennung": rng.choice(["/ja", "/nein"]),
        "funktion": rng.choice(["Fachberatung Kita", "Leitung Fachdienst", "Referentin"]),
        "thema_sonstiges": rng.choice(["", "Übergang Kita – Grundschule",
                                       "Fachkräftegewinnung im ländlichen Raum\nSprach-Kitas"]),
        "einwilligung": "/Yes",
    }
    signed = dt.date.today() - dt.timedelta(days=rng.randint(1, 21))  # before the import
    answers["datum"] = f"{signed.day}.{signed.month}.{signed.year}"
    for topic in ("finanzierung", "qualitaetsstandards", "fachkraefte", "sprachfoerderung",
                  "regionalgruppe", "inklusion"):
        answers[f"thema_{topic}"] = "/Yes" if rng.random() < 0.4 else "/Off"
    return answers


def _fill_return(source: Path, target: Path, answers: dict[str, str]) -> None:
    """Fill a personal form as a recipient's viewer would: values and their appearances
    (pikepdf's form filler; names starting with / are a box's or a radio's state). The
    place of signing is the organisation's town, as pre-filled."""
    import pikepdf
    from pikepdf.form import (
        CheckboxField,
        DefaultAppearanceStreamGenerator,
        Form,
        RadioButtonGroup,
        TextField,
    )

    with pikepdf.open(source) as pdf:
        form = Form(pdf, DefaultAppearanceStreamGenerator)
        town = form["ort_organisation"]
        place = str(town.value) if isinstance(town, TextField) and town.value else "Erfurt"
        for name, value in {**answers, "ort": place}.items():
            field = form[name]
            if isinstance(field, CheckboxField):
                field.checked = value != "/Off"
            elif isinstance(field, RadioButtonGroup):
                field.value = pikepdf.Name(value)
            elif isinstance(field, TextField):
                field.value = value
        target.parent.mkdir(parents=True, exist_ok=True)
        pdf.save(target)


def command() -> str:
    """How to call formtool from a terminal here: ``formtool`` when it is on the PATH,
    else the script beside this Python (a venv that is not activated), else
    ``python -m formtool``."""
    if shutil.which("formtool"):
        return "formtool"
    script = Path(sys.executable).with_name("formtool.exe" if os.name == "nt" else "formtool")
    if script.exists():
        return _quoted(script)
    return f"{_quoted(Path(sys.executable))} -m formtool"


def _quoted(path: Path) -> str:
    text = str(path)
    if os.name == "nt":
        return f'"{text}"' if " " in text else text
    return shlex.quote(text)


def _mail_comes_back(ws: workspace.Workspace, rng: random.Random) -> Path:
    """What arrives in the coordinator's mailbox, as a local Maildir (``eingang/``): 12
    forms filled and sent back as replies, a reply without a form, an "Abmelden" and a
    bounce from a mail server – each from a different contact."""
    import mailbox
    from email.message import EmailMessage

    root = ws.root
    with Store(ws.state_db) as store:
        sends = list(Journal(store).sends(INVITATION))
    chosen = rng.sample(sends, RETURNS + 3)
    forms = {p.stem.rsplit("_", 1)[-1]: p
             for p in (root / "formulare" / INVITATION).glob("*.pdf")}
    inbox = mailbox.Maildir(root / "eingang")
    now = dt.datetime.now().astimezone().replace(microsecond=0)
    scratch = root / ".formtool" / "demo-ausgefuellt"
    for number, send in enumerate(chosen):
        msg = EmailMessage()
        msg["From"], msg["To"] = send.email, "koordination@buendnis-demo.example"
        msg["Message-ID"] = f"<demo-{number}@fachberatung.example>"
        msg["Date"] = format_datetime(now - dt.timedelta(hours=3 * (len(chosen) - number)))
        msg["In-Reply-To"] = send.message_id
        if number < RETURNS:
            filled = scratch / f"{send.contact_key}.pdf"
            _fill_return(forms[send.contact_key], filled, _answers(rng))
            msg["Subject"] = "AW: Einladung ins Bündnis"
            msg.set_content("Guten Tag,\n\nanbei unsere Beitrittserklärung.\n")
            msg.add_attachment(filled.read_bytes(), maintype="application", subtype="pdf",
                               filename="Beitrittserklärung Bündnispartner.pdf")
        elif number == RETURNS:
            msg["Subject"] = "AW: Einladung ins Bündnis"
            msg.set_content("Guten Tag,\n\nwir melden uns nach der Teamsitzung im Januar.\n")
        elif number == RETURNS + 1:
            msg["Subject"] = "Abmelden"
            msg.set_content("Abmelden\n")
        else:
            msg.replace_header("From", "Mail Delivery System <MAILER-DAEMON@mx.demo.example>")
            msg["Subject"] = "Undelivered Mail Returned to Sender"
            msg["Auto-Submitted"] = "auto-replied"
            msg.set_content("Die Nachricht konnte nicht zugestellt werden.\n\n"
                            f"{send.email}: 550 5.1.1 Postfach unbekannt\n")
            original = EmailMessage()
            original["From"], original["To"] = "koordination@buendnis-demo.example", send.email
            original["Message-ID"], original["Subject"] = send.message_id, "Einladung"
            original.set_content("…")
            msg.add_attachment(original)
        inbox.add(msg.as_bytes())
    shutil.rmtree(scratch, ignore_errors=True)
    return root / "eingang"


def _send(ws: workspace.Workspace, template: str, only_unanswered: str | None = None
          ) -> outbox.Summary:
    return sending.send(ws, template, password=None, attach_form=FORM,
                        only_unanswered=only_unanswered).summary


def _status(ws: workspace.Workspace, campaign: str) -> CampaignStatus:
    with Store(ws.state_db) as store:
        return Journal(store).status(campaign)


def run(root: Path, say: Callable[[str], None] = lambda line: None, seed: int = 2026
        ) -> DemoResult:
    """Run the loop in ``root`` (replaced if it is an earlier demo)."""
    _fresh(root)
    mailbox = Mailbox(root / "postfach")
    with DemoSmtpServer(mailbox) as smtp:
        _configure(root, smtp.port)
        ws = workspace.load(root)
        say(f"1. Arbeitsordner {root}; eingebauter Mailserver auf 127.0.0.1:{smtp.port} "
            "(speichert jede E-Mail als .eml, nichts verlässt den Rechner)")
        invited = _send(ws, INVITATION)
        say(f"2. {invited.sent} Einladungen gesendet, jede mit einem persönlichen, "
            "vorausgefüllten Formular")
        rng = random.Random(seed)
        inbox = _mail_comes_back(ws, rng)
        say(f"3. Im Postfach: {RETURNS} ausgefüllte Formulare, eine Antwort ohne Formular, "
            "eine Abmeldung und eine Unzustellbarkeits-Meldung")
        fetched = fetching.fetch_from(ws, inbox)
        imported = fetched.imported.counts if fetched.imported else Counter()
        ok = sum(n for status, n in imported.items() if status.ok)
        say(f"4. Postfach abgerufen: {ok} Rückläufe eingelesen und ihren Absendern zugeordnet, "
            "die Antwort als beantwortet vermerkt, die Abmeldung und die unzustellbare "
            "Adresse bekommen keine Erinnerung")
        before = _status(ws, INVITATION)
        say(f"5. Stand „{INVITATION}“: {before.sent} gesendet, {before.answered} "
            f"beantwortet, {before.unanswered} offen, {before.opted_out} abgemeldet, "
            f"{before.undeliverable} unzustellbar")
        reminded = _send(ws, REMINDER, only_unanswered=INVITATION)
        say(f"6. {reminded.sent} Erinnerungen an die, die noch nicht geantwortet haben")
        again = sending.send(ws, REMINDER, password=None, attach_form=FORM,
                             only_unanswered=INVITATION)
        say(f"7. Erinnerung noch einmal aufgerufen: {again.summary.sent} neue E-Mails "
            f"({again.before.already_sent} schon erinnert) – niemand bekommt etwas doppelt")
        invitation, reminder = _status(ws, INVITATION), _status(ws, REMINDER)
        listed = website.publish(ws)
        say(f"8. Partnerliste für die Website: {len(listed.partners.entries)} Organisationen, "
            "die der Nennung zugestimmt haben (ohne Personendaten)")
    say(f"Formulare:   {root / 'formulare'}")
    say(f"E-Mails:     {root / 'postfach'} ({len(mailbox.received)} .eml-Dateien)")
    say(f"Postfach:    {root / 'eingang'} (Maildir: was zurückkam)")
    say(f"Rückläufe:   {root / 'ruecklaeufe'}")
    say(f"Tabelle:     {root / 'antworten' / (FORM + '.xlsx')} (für Excel; als CSV: "
        f"{FORM}.csv)")
    say(f"Website:     {root / 'website' / 'partnerliste.html'} (und .md, .csv, .json)")
    say(f"Stand:       {command()} --workspace {_quoted(root)} status")
    return DemoResult(root, invited, reminded, imported, invitation, reminder)
