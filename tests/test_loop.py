"""Issue → return → who answered → reminders: personal forms, status, demo."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import (
    campaign_counts,
    field_values,
    invoke,
    node,
    pdflib_fill,
    pdftk_fill,
    read_csv,
    run,
)
from mailhelpers import PASSWORD, USER, FaultyMailbox, MemoryKeyring
from pypdf import PdfReader
from smtpserver import LocalSmtpServer
from test_mail import configure

from formtool import workspace
from formtool.cli import cli
from formtool.data.filenames import safe_filename
from formtool.mail import contacts
from formtool.pdf import fill, formdef, layout
from formtool.state.store import Store
from formtool.usecases import personal


def issued(ws: Path) -> dict[str, tuple[str, str]]:
    with Store(ws / ".formtool" / "state.db") as store:
        rows = store.db.execute("SELECT contact_key, response_id, file FROM forms_issued")
        return {key: (rid, file) for key, rid, file in rows}


def test_personal_forms_are_prefilled_and_readable_everywhere(ws: Path) -> None:
    result = invoke(ws, "forms", "generate", "buendnispartner", "--contacts",
                    str(ws / "contacts" / "fachberatungen.csv"), "--campaign", "einladung")
    assert result.exit_code == 0, result.output
    assert "40 persönliche Formulare" in result.output
    forms = issued(ws)
    assert len(forms) == 40
    ids = {rid for rid, _ in forms.values()}
    assert len(ids) == 40 and all(len(i) >= 10 for i in ids)
    rid, file = forms["FB-00001"]
    path = Path(file)
    assert path.name == "Buendnispartner_Caritasverband-Altenburger-Land_FB-00001.pdf"
    assert path.parent == ws / "formulare" / "einladung"
    values = field_values(path)
    assert values["response_id"] == rid
    assert values["organisation"] == "Caritasverband Altenburger Land"
    assert values["strasse"] == "Schloßberg 61"
    assert values["plz"] == "04600"
    assert values["ort_organisation"] == "Altenburg"
    assert values["nachname"] == "Köhler"
    assert values["anrede"] == "frau"
    assert values["form_id"] == "buendnispartner"
    assert "No syntax or stream encoding errors" in run("qpdf", "--check", path).stdout
    dump = run("pdftk", path, "dump_data_fields_utf8").stdout
    assert "FieldValue: Caritasverband Altenburger Land" in dump
    assert f"FieldValue: {rid}" in dump
    seen = json.loads(node("pdfjs_fields.mjs", path).stdout)
    assert seen["fields"]["nachname"][0]["value"] == "Köhler"
    # the value is drawn (an appearance stream), so every viewer shows it
    text = run("pdftotext", "-layout", path, "-").stdout
    assert "Caritasverband Altenburger Land" in text and "Schloßberg 61" in text
    assert path.read_bytes().count(b"%%EOF") == 2  # the blank plus one incremental update

    again = invoke(ws, "forms", "generate", "buendnispartner", "--contacts",
                   str(ws / "contacts" / "fachberatungen.csv"), "--campaign", "einladung")
    assert again.exit_code == 0
    assert issued(ws) == forms  # same ids, same files


def test_names_beyond_latin1_in_personal_forms(tmp_path: Path) -> None:
    form = formdef.load(workspace.shipped_forms_dir() / "buendnispartner.toml")
    filler = fill.Personaliser(form, layout.render(form, alliance="x"))
    name = "Łucja Şahin-Ağaoğlu (Kita „Sonne“) € –"
    out = tmp_path / "p.pdf"
    out.write_bytes(filler.fill({"organisation": name, "thema_sonstiges": "a\nb (c)"}, "ABC234"))
    values = field_values(out)
    assert values["organisation"] == name
    assert values["thema_sonstiges"] == "a\nb (c)"
    shown = run("pdftotext", "-layout", out, "-").stdout
    assert name in shown  # drawn as written, with the embedded form font


def test_response_ids_are_unique_over_60000() -> None:
    ids = {fill.new_response_id() for _ in range(60_000)}
    assert len(ids) == 60_000
    assert all(len(i) == 12 and set(i) <= set(fill.RESPONSE_ID_ALPHABET) for i in ids)


@pytest.mark.parametrize(("text", "expected"), [
    ("Diakonie Gotha / Süd", "Diakonie Gotha - Süd"),
    ("..\\..\\etc\\passwd", "etc-passwd"),
    ("Kita\x00\x1f Sonne\n", "Kita Sonne"),
    ("CON", "_CON"),
    ("A" * 300, "A" * 96),
])
def test_safe_file_names(text: str, expected: str) -> None:
    assert safe_filename(text, suffix=".pdf") == expected + ".pdf"


def test_personal_file_name_is_ascii() -> None:
    form = formdef.load(workspace.shipped_forms_dir() / "buendnispartner.toml")
    contact = contacts.Contact(5, "FB/12", "x@y.example", {"organisation": "Diakonie Gößnitz "
                                                           "e.V. / Süd"})
    assert personal.personal_file_name(form, contact) == (
        "Buendnispartner_Diakonie-Goessnitz-e.V.---Sued_FB-12.pdf")


def test_the_loop(ws: Path, certificate: tuple[Path, Path],
                  memory_keyring: MemoryKeyring) -> None:
    """Personal forms → invitations → returns by pdftk and pdf-lib → import → status →
    reminders only to the unanswered → a second reminder run sends nothing new."""
    certfile, keyfile = certificate
    mailbox = FaultyMailbox()
    with LocalSmtpServer(mailbox, security="starttls", certfile=certfile, keyfile=keyfile,
                         auth=(USER, PASSWORD)) as smtp:
        configure(ws, smtp.port, ca_file=certfile)
        memory_keyring.set_password("formtool", f"{USER}@127.0.0.1", PASSWORD)
        invited = invoke(ws, "mail", "send", "einladung-fachberatung", "--attach-form",
                         "buendnispartner", "--yes")
        assert invited.exit_code == 0, invited.output
        assert "Fertig: 40 gesendet." in invited.output
        forms = issued(ws)
        assert len(forms) == 40
        by_address = {}
        for item in mailbox.received:
            message = item.message()
            [pdf] = list(message.iter_attachments())
            assert pdf.get_filename() == "Beitrittserklärung Bündnispartner.pdf"
            by_address[item.rcpt_tos[0]] = pdf.get_content()
        assert len(by_address) == 40

        # three answer with pdftk, two with pdf-lib, one forwards it to a colleague
        returns = ws.parent / "rueck"
        returns.mkdir()
        contact_list = list(contacts.read(ws / "contacts" / "fachberatungen.csv"))
        answering = contact_list[:6]
        for i, contact in enumerate(answering):
            source = returns / f"mail-{i}.pdf"
            source.write_bytes(by_address[contact.email])
            answers = {"kreis": "partner", "website_nennung": "ja", "einwilligung": "Yes"}
            if i == 5:
                answers["email"] = "kollegin@anderes-amt.example"
            if i < 3 or i == 5:
                pdftk_fill(source, answers, returns / f"antwort-{i}.pdf")
            else:
                pdflib_fill(source, {**answers, "einwilligung": True},
                            returns / f"antwort-{i}.pdf")
            source.unlink()  # only the filled copies are imported (helper files are not PDFs)
        imported = invoke(ws, "import", str(returns), "--header", "names")
        assert imported.exit_code == 0, imported.output
        rows = {r["kontakt_id"]: r for r in read_csv(ws / "antworten" / "buendnispartner.csv")}
        assert set(rows) == {c.key for c in answering}
        assert all(r["aktion"] == "einladung-fachberatung" for r in rows.values())
        assert rows["FB-00001"]["organisation"] == "Caritasverband Altenburger Land"
        assert rows["FB-00001"]["kreis"] == "Bündnispartner*in (unterstützt und bleibt informiert)"
        forwarded = rows[answering[5].key]["probleme"]
        assert "zurück von kollegin@anderes-amt.example" in forwarded
        assert "weitergeleitet?" in forwarded

        status = invoke(ws, "status", "einladung-fachberatung")
        assert campaign_counts(status.output, "einladung-fachberatung") == {
            "gesendet": 40, "fehlgeschlagen": 0, "unzustellbar": 0, "zurückgestellt": 0,
            "unbekannt": 0, "beantwortet": 6, "offen": 34, "abgemeldet": 0}
        invoke(ws, "mail", "optout", contact_list[10].email)
        status = invoke(ws, "status", "einladung-fachberatung")
        counts = campaign_counts(status.output, "einladung-fachberatung")
        assert (counts["offen"], counts["abgemeldet"]) == (33, 1)
        offen = invoke(ws, "status", "einladung-fachberatung", "--offen")
        assert "FB-00007" in offen.output and "FB-00001" not in offen.output
        assert "Schloßberg" in offen.output or "straße" in offen.output
        invoke(ws, "status", "einladung-fachberatung", "--offen", "--csv",
               str(ws / "offen.csv"))
        assert len(read_csv(ws / "offen.csv")) == 33

        before = len(mailbox.received)
        reminded = invoke(ws, "mail", "send", "erinnerung", "--only-unanswered",
                          "einladung-fachberatung", "--attach-form", "buendnispartner", "--yes")
        assert reminded.exit_code == 0, reminded.output
        assert "Fertig: 33 gesendet." in reminded.output
        reminders = mailbox.received[before:]
        expected = {c.email for c in contact_list[6:]} - {contact_list[10].email}
        assert {r.rcpt_tos[0] for r in reminders} == expected
        # the reminder carries the same personal form (same response id) as the invitation
        first = reminders[0].message()
        [pdf] = list(first.iter_attachments())
        sample = ws.parent / "reminder.pdf"
        sample.write_bytes(pdf.get_content())
        key = next(c.key for c in contact_list if c.email == reminders[0].rcpt_tos[0])
        assert field_values(sample)["response_id"] == forms[key][0]

        again = invoke(ws, "mail", "send", "erinnerung", "--only-unanswered",
                       "einladung-fachberatung", "--attach-form", "buendnispartner", "--yes")
        assert "Nichts zu senden." in again.output
        assert len(mailbox.received) == before + 33
        counts = Counter(r.rcpt_tos[0] for r in mailbox.received)
        assert max(counts.values()) == 2  # invitation + one reminder at most


def test_unknown_campaign_for_reminders(ws: Path, certificate: tuple[Path, Path],
                                        memory_keyring: MemoryKeyring) -> None:
    with LocalSmtpServer() as smtp:
        configure(ws, smtp.port, security="none", user="")
        result = invoke(ws, "mail", "send", "erinnerung", "--only-unanswered", "gibtsnicht",
                        "--yes")
    assert result.exit_code == 1
    assert "Aktion „gibtsnicht“ gibt es nicht" in result.output


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(target)])
    assert result.exit_code == 0, result.output
    assert "40 Einladungen gesendet" in result.output
    assert "12 Rückläufe eingelesen" in result.output
    # the reply, the opt-out and the bounce that came back by mail get no reminder
    assert "13 beantwortet, 25 offen, 1 abgemeldet, 1 unzustellbar" in result.output
    assert "25 Erinnerungen" in result.output
    assert "0 neue E-Mails" in result.output
    assert len(list((target / "postfach").glob("*.eml"))) == 65
    rows = read_csv(target / "antworten" / "buendnispartner.csv")
    assert len(rows) == 12 and all(r["kontakt_id"] for r in rows)
    reader = PdfReader(next((target / "ruecklaeufe").glob("*.pdf")))
    assert (reader.get_fields() or {})["einwilligung"]["/V"] == "/Yes"
    again = CliRunner().invoke(cli, ["demo", "--dir", str(target)])  # replaces its own demo
    assert again.exit_code == 0
    (tmp_path / "fremd").mkdir()
    (tmp_path / "fremd" / "wichtig.txt").write_text("x", encoding="utf-8")
    refused = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "fremd")])
    assert refused.exit_code == 1
    assert "kein Demo-Ordner" in refused.output
    assert (tmp_path / "fremd" / "wichtig.txt").exists()


def test_forget_removes_a_person_everywhere(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    assert CliRunner().invoke(cli, ["demo", "--dir", str(target)]).exit_code == 0
    row = read_csv(target / "antworten" / "buendnispartner.csv")[0]
    address, key = row["E-Mail"], row["kontakt_id"]
    listed = invoke(target, "forget", address)
    assert listed.exit_code == 0, listed.output
    assert "Aus state.db gelöscht: 1 Kontakt(e), 1 Sendung(en), 1 Rücklauf/Rückläufe, " \
           "1 persönliche(s) Formular(e)" in listed.output
    assert "antworten/buendnispartner.csv: 1 Zeile(n) enthält noch Daten" in listed.output
    assert "contacts/fachberatungen.csv: 1 Zeile(n)" in listed.output
    assert f"_{key}.pdf: Datei enthält noch Daten" in listed.output
    assert ".eml: Datei enthält noch Daten" in listed.output
    with Store(target / ".formtool" / "state.db") as store:
        for table, column in (("contacts", "key"), ("forms_issued", "contact_key"),
                              ("responses", "contact_key"), ("sends", "contact_key")):
            count = store.db.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?",
                                     (key,)).fetchone()[0]
            assert count == 0, table
        # the demo's own "Abmelden" by mail, and now the forgotten address (as a hash)
        assert store.db.execute("SELECT COUNT(*) FROM optouts").fetchone()[0] == 2
        dump = "\n".join(store.db.iterdump())
    assert address not in dump

    deleted = invoke(target, "forget", address, "--delete-files")
    assert "gelöscht" in deleted.output
    again = invoke(target, "forget", address)  # nothing of the person is left
    assert again.exit_code == 1
    assert "kommt in diesem Arbeitsordner nicht vor" in again.output
    assert len(read_csv(target / "antworten" / "buendnispartner.csv")) == 11
    assert all(address not in p.read_text(encoding="latin-1")
               for p in target.rglob("*.eml"))
    # never mailed again: the opt-out hash holds for every campaign
    contact_list = contacts.read(target / "contacts" / "fachberatungen.csv")
    assert address not in {c.email for c in contact_list}
