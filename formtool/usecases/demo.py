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
from pathlib import Path

from formtool import workspace
from formtool.errors import FormtoolError
from formtool.mail import outbox
from formtool.mail.localsmtp import DemoSmtpServer, Mailbox
from formtool.state.store import CampaignStatus, Journal, Store
from formtool.usecases import importing, sending, website

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
        issued = sorted((root / "formulare" / INVITATION).glob("*.pdf"))
        returned = rng.sample(issued, RETURNS)
        for path in returned:
            _fill_return(path, root / "ruecklaeufe" / f"Antwort_{path.name}", _answers(rng))
        say(f"3. {RETURNS} Fachberatungen haben ihr Formular ausgefüllt zurückgeschickt")
        options = importing.ImportOptions(output_dir=root / "antworten")
        imported = importing.run_import(
            ws, importing.import_files([root / "ruecklaeufe"]), options).counts
        ok = sum(n for status, n in imported.items() if status.ok)
        say(f"4. {ok} Rückläufe eingelesen und ihren Absendern zugeordnet")
        before = _status(ws, INVITATION)
        say(f"5. Stand „{INVITATION}“: {before.sent} gesendet, {before.answered} "
            f"beantwortet, {before.unanswered} offen")
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
    say(f"Rückläufe:   {root / 'ruecklaeufe'}")
    say(f"Tabelle:     {root / 'antworten' / (FORM + '.xlsx')} (für Excel; als CSV: "
        f"{FORM}.csv)")
    say(f"Website:     {root / 'website' / 'partnerliste.html'} (und .md, .csv, .json)")
    say(f"Stand:       {command()} --workspace {_quoted(root)} status")
    return DemoResult(root, invited, reminded, imported, invitation, reminder)
