"""Use case: the decisions the mailbox leaves to a person ("bitte prüfen") – an opt-out
in unclear words, a bounce that nothing ties to the send – each with its choices, kept
in state.db until decided (``mail fetch`` asks; the web page's /postfach answers)."""

from __future__ import annotations

from dataclasses import dataclass

from formtool.errors import FormtoolError
from formtool.state.store import Journal, Question, Store, present
from formtool.workspace import Workspace

CHOICES = {  # kind -> (choice, German button), the first one is what the mail suggests
    "abmeldung": (("abmelden", "Ja, abmelden"), ("keine", "Nein, keine Abmeldung")),
    "unzustellbar": (("stimmt", "Stimmt, unzustellbar"), ("kam-an", "Irrtum, die E-Mail kam an")),
}
WHAT = {"abmeldung": "Abmeldung?", "unzustellbar": "Unzustellbar (nicht bestätigt)?"}


class QuestionError(FormtoolError):
    """A decision that cannot be taken."""


@dataclass(frozen=True)
class Open:
    question: Question
    what: str
    choices: tuple[tuple[str, str], ...]


def open_questions(ws: Workspace) -> list[Open]:
    if not present(ws.state_db):
        return []
    with Store(ws.state_db) as store:
        return [Open(q, WHAT.get(q.kind, q.kind), CHOICES.get(q.kind, ()))
                for q in Journal(store).questions()]


def decide(ws: Workspace, number: int, choice: str) -> str:
    """Take the decision; what it did, in German."""
    with Store(ws.state_db) as store:
        journal = Journal(store)
        question = journal.question(number)
        if question is None:
            raise QuestionError("Diese Frage ist schon entschieden.")
        if choice not in {c for c, _ in CHOICES.get(question.kind, ())}:
            raise QuestionError(f"Unbekannte Entscheidung „{choice}“.")
        if choice == "abmelden":
            journal.add_optout(question.email, "postfach (bestätigt)")
            said = f"{question.email} abgemeldet: bekommt keine E-Mail mehr."
        elif choice == "kam-an":
            journal.restore_delivered(question.campaign, question.email)
            said = f"{question.email}: wieder als zugestellt vermerkt (bekommt Erinnerungen)."
        elif choice == "stimmt":
            said = f"{question.email} bleibt unzustellbar."
        else:
            said = f"{question.email}: keine Abmeldung."
        journal.settle_question(number)  # after the decision: a kill leaves it open
        store.checkpoint()
    return said
