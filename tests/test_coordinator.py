"""As the coordinator sees it (issue 13): a console of 80 columns, tables Excel opens
right, every file answered, messages in German. Real files, real CLI."""

from __future__ import annotations

from pathlib import Path

from helpers import invoke

from formtool.state.store import Journal, SendState, Store

WIDTH = 80


def _hostile_journal(ws: Path) -> None:
    campaign = "einladung-fachberatungen-thueringen-herbst-2026-zweite-runde-mit-langem-namen-x"
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign(campaign, "einladung")
        for i in range(3):
            key = f"FB-{i:05d}"
            email = f"sehr.lange.adresse.{i}@kinder-und-jugendhilfe-landkreis-beispiel.example"
            store.remember_contact(
                key=key, email=email, name="Prof. Dr. " + "Mustermann-" * 12 + str(i),
                organisation="Arbeitsgemeinschaft " * 8,
                address="Straße des Friedens 1\nHinterhaus, 3. Etage\n07381 Pößneck")
            journal.mark(campaign, email=email, key=key,
                         state=SendState.SENT if i else SendState.FAILED, sent_at=0.0,
                         reply="" if i else "550 5.1.1 " + "Das Postfach ist unbekannt. " * 9)


def test_status_fits_80_columns(ws: Path) -> None:
    _hostile_journal(ws)
    for args in ([], ["--offen"], ["--fehler"]):
        result = invoke(ws, "status", *args)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert len(lines) >= 3
        too_wide = [line for line in lines if len(line) > WIDTH]
        assert too_wide == [], args
    offen = invoke(ws, "status", "--offen").output
    assert "07381 Pößneck" in offen and "Hinterhaus" in offen  # wrapped, not cut
    fehler = invoke(ws, "status", "--fehler").output
    assert "Das Postfach ist unbekannt." in fehler and "fehlgeschlagen" in fehler
