"""Ordinary mistakes that produced wrong mail (issue 20): who answered is never invited
again, a reminder the same day is named, a copied template is recognised, answers by
phone or letter are marked by hand. A real SMTP server on 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers import invoke
from smtpserver import LocalSmtpServer
from test_mail import server  # noqa: F401 (a fixture)

from formtool.state.store import Journal, Store

CONTACTS = 40


def _recipients(smtp: LocalSmtpServer) -> list[str]:
    return [r for item in smtp.handler.received for r in item.rcpt_tos]


def _first_two(ws: Path) -> list[str]:
    with Store(ws / ".formtool" / "state.db") as store:
        return [s.email for s in Journal(store).sends("einladung-fachberatung")][:2]


def test_who_answered_is_never_invited_again(ws: Path, server: LocalSmtpServer) -> None:  # noqa: F811
    assert invoke(ws, "mail", "send", "einladung-fachberatung", "--yes").exit_code == 0
    phone, letter = _first_two(ws)
    marked = invoke(ws, "status", "einladung-fachberatung", "--beantwortet", phone,
                    "--beantwortet", letter, "--notiz", "Anruf")
    assert "2 Adresse(n) als beantwortet vermerkt" in marked.output
    status = " ".join(invoke(ws, "status", "einladung-fachberatung").output.split())
    assert "beantwortet 2" in status

    # a reminder without --only-unanswered, an hour after the invitation
    server.handler.received.clear()
    reminder = invoke(ws, "mail", "send", "erinnerung", "--yes")
    text = " ".join(reminder.output.split())
    assert sorted(_recipients(server)) == sorted(
        set(_recipients_all(ws)) - {phone, letter})
    assert "haben schon geantwortet, auch in einer früheren Aktion" in text
    assert "ging erst vor 1 Stunde hinaus" not in text  # erinnerung reminds of nothing

    # the invitation copied to a new name: the answered left out, the copy named
    shutil.copy(ws / "templates" / "einladung-fachberatung.md.j2",
                ws / "templates" / "einladung-fachberatung-neu.md.j2")
    server.handler.received.clear()
    copy = invoke(ws, "mail", "send", "einladung-fachberatung-neu", "--limit", "1", "--yes")
    text = " ".join(copy.output.split())
    assert f"{CONTACTS - 2} von ihnen haben denselben Text schon mit „einladung-fachberatung“" \
        in text
    assert phone not in _recipients(server) and letter not in _recipients(server)

    # by choice, they are mailed too
    server.handler.received.clear()
    invoke(ws, "mail", "send", "einladung-fachberatung-neu", "--auch-beantwortete", "--yes")
    assert phone in _recipients(server)


def _recipients_all(ws: Path) -> list[str]:
    with Store(ws / ".formtool" / "state.db") as store:
        return [s.email for s in Journal(store).sends("einladung-fachberatung")]


def test_a_template_that_reminds_goes_to_the_unanswered_and_names_a_hasty_reminder(
        ws: Path, server: LocalSmtpServer) -> None:  # noqa: F811
    assert invoke(ws, "mail", "send", "einladung-fachberatung", "--yes").exit_code == 0
    answered = _first_two(ws)[0]
    invoke(ws, "status", "einladung-fachberatung", "--beantwortet", answered)
    template = ws / "templates" / "erinnerung.md.j2"
    template.write_text("Erinnerung-an: einladung-fachberatung\n"
                        + template.read_text(encoding="utf-8"), encoding="utf-8")
    server.handler.received.clear()
    result = invoke(ws, "mail", "send", "erinnerung", "--yes")
    text = " ".join(result.output.split())
    assert "nur wer „einladung-fachberatung“ bekam und noch nicht geantwortet hat" in text
    assert "„einladung-fachberatung“ ging erst vor 1 Stunde hinaus" in text
    assert answered not in _recipients(server) and len(_recipients(server)) == CONTACTS - 1


def test_a_mark_by_hand_can_be_taken_back(ws: Path, server: LocalSmtpServer) -> None:  # noqa: F811
    invoke(ws, "mail", "send", "einladung-fachberatung", "--yes")
    someone = _first_two(ws)[0]
    invoke(ws, "status", "einladung-fachberatung", "--beantwortet", someone)
    back = invoke(ws, "status", "einladung-fachberatung", "--nicht-beantwortet", someone)
    assert "nicht mehr als beantwortet vermerkt" in back.output
    status = " ".join(invoke(ws, "status", "einladung-fachberatung").output.split())
    assert "beantwortet 0" in status
    stranger = invoke(ws, "status", "einladung-fachberatung", "--beantwortet",
                      "niemand@nirgends.example")
    assert stranger.exit_code == 1 and "nichts vermerkt" in stranger.output
