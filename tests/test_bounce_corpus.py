"""The real-shaped corpus (tests/bouncecorpus.py) through `mail fetch`: who is
unreachable, who complained, who answered – per kind, with recall and precision
printed, and gates the loop's central answer must meet (issue 22)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from bouncecorpus import Fixture, bounces, human_replies, notices
from test_fetch import _as_maildir
from test_real_world_returns import AUTO_HEADERS, AUTO_SUBJECTS, _message

from formtool.mail.inbound import Kind, classify
from formtool.state.store import Journal, SendState, Store


def _autoreplies() -> list[Fixture]:
    out = [Fixture(f"auto-{i}", _message(f"auto{i}@kita.example", subject,
                                         "Ich bin bis 15.12. nicht erreichbar.").as_bytes(),
                   "autoreply") for i, subject in enumerate(AUTO_SUBJECTS)]
    out += [Fixture(f"auto-header-{i}", _message(f"autoh{i}@kita.example", "AW: Einladung",
                                                 "Danke für Ihre Nachricht.", **h).as_bytes(),
                    "autoreply") for i, h in enumerate(AUTO_HEADERS)]
    return out


CORPUS = [*bounces(), *notices(), *human_replies(), *_autoreplies()]
KINDS = {Kind.BOUNCE: "bounce", Kind.NOTICE: "notice", Kind.COMPLAINT: "complaint",
         Kind.AUTOREPLY: "autoreply", Kind.REPLY: "reply", Kind.OTHER: "reply"}


def test_the_corpus_is_as_wide_as_the_world() -> None:
    families = {f.name.rsplit("-", 1)[0] for f in CORPUS if f.kind == "bounce"}
    counts = Counter(f.kind for f in CORPUS)
    assert counts["bounce"] >= 150 and len(families) >= 30
    assert counts["notice"] + counts["complaint"] >= 20
    assert counts["autoreply"] >= 40 and counts["reply"] >= 30


def test_every_kind_is_read_right(capsys: pytest.CaptureFixture[str]) -> None:
    """Recall and precision per kind by classify alone; the status code shown."""
    seen: Counter[tuple[str, str]] = Counter()
    wrong = []
    shown = with_code = 0
    found_recipient = 0
    for fixture in CORPUS:
        found = classify(fixture.data)
        got = KINDS.get(found.kind, found.kind.value)
        seen[(fixture.kind, got)] += 1
        if got != fixture.kind:
            wrong.append(f"{fixture.name}: {got}")
        if fixture.kind == "bounce" and got == "bounce":
            block = found.bounces[0] if found.bounces else None
            named = {b.recipient for b in found.bounces} | set(found.candidates) | {
                a for b in found.bounces for a in b.also}
            found_recipient += fixture.recipient in named or bool(
                fixture.original_id and block and block.original_id == fixture.original_id)
            if fixture.status:
                with_code += 1
                shown += any(fixture.status in f"{b.status} {b.diagnostic}"
                             for b in found.bounces)
    kinds = sorted({k for k, _ in seen})
    with capsys.disabled():
        print("\nkind        recall   precision")
        for kind in kinds:
            total = sum(n for (k, _), n in seen.items() if k == kind)
            claimed = sum(n for (_, g), n in seen.items() if g == kind)
            hits = seen[(kind, kind)]
            print(f"{kind:10}  {hits / total:6.1%}   {hits / claimed if claimed else 1:6.1%}")
        bounces_total = sum(1 for f in CORPUS if f.kind == "bounce")
        print(f"bounce recipient found: {found_recipient}/{bounces_total}; status code shown: "
              f"{shown}/{with_code}")
        for line in wrong:
            print("  wrong:", line)
    false_bounces = sum(n for (k, g), n in seen.items() if g == "bounce" and k != "bounce")
    assert false_bounces == 0
    assert found_recipient / bounces_total >= 0.97
    assert shown / with_code >= 0.95
    autos = sum(1 for f in CORPUS if f.kind == "autoreply")
    assert seen[("autoreply", "autoreply")] / autos >= 0.98
    assert seen[("reply", "autoreply")] == 0 and seen[("reply", "bounce")] == 0


def test_the_corpus_through_mail_fetch(ws: Path, tmp_path: Path) -> None:
    """The whole corpus from a Maildir against a journal that sent every message it
    names: each bounce marks its own contact (and nobody else), each complaint opts
    its contact out, nothing else changes a send."""
    contacts = {f.recipient: f.original_id or f"<other-{i}@buendnis.example>"
                for i, f in enumerate(CORPUS) if f.recipient}
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign("einladung", "einladung-fachberatung")
        for i, (address, mid) in enumerate(contacts.items()):
            journal.mark("einladung", email=address, key=f"K{i}", state=SendState.SENT,
                         message_id=mid, sent_at=1000.0 + i)
    from click.testing import CliRunner

    from formtool.cli import cli

    # the CLI directly: the servers' own English subjects ("Warning: …") are shown as sent
    result = CliRunner().invoke(cli, ["--workspace", str(ws), "mail", "fetch", "--from",
                                      str(_as_maildir([f.data for f in CORPUS],
                                                      tmp_path / "box"))])
    assert "Traceback" not in result.output and not isinstance(
        result.exception, Exception), result.output
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        state = {s.email: s for s in journal.sends("einladung")}
        opted = {a for a in contacts if journal.is_opted_out(a)}
    expected_failed = {f.recipient for f in CORPUS if f.kind == "bounce"}
    failed = {a for a, s in state.items() if s.state is SendState.FAILED}
    assert failed <= expected_failed  # never a contact the report is not about
    assert len(failed) / len(expected_failed) >= 0.97, sorted(expected_failed - failed)
    assert opted == {f.recipient for f in CORPUS if f.kind == "complaint"}
    with_code = [f for f in CORPUS if f.kind == "bounce" and f.status and f.recipient in failed]
    shown = [f for f in with_code if f.status in state[f.recipient].reply]
    assert len(shown) / len(with_code) >= 0.95, [
        (f.name, state[f.recipient].reply) for f in with_code if f not in shown]
