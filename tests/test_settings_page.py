"""`usecases/settings.py` (the web page's /einstellungen) against hostile values: a
value is always a value – it never adds a section, a key or a line to formtool.toml –
and one that cannot be kept leaves the file byte for byte as it was."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from formtool import workspace
from formtool.usecases import settings

HOSTILE = ['"] [smtp] host = "evil.example"', "x\" user = \"evil\"", "''' [oauth]",
           "\\u0000", "#nicht-kommentar", "=HYPERLINK(\"http://evil.example\")",
           "<script>alert(1)</script>", "ß" * 500]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_stays_one_value(ws: Path, value: str) -> None:
    before = tomllib.loads((ws / "formtool.toml").read_text(encoding="utf-8"))
    settings.save(workspace.load(ws), {"sender_name": value, "reply_to": ""})
    after = tomllib.loads((ws / "formtool.toml").read_text(encoding="utf-8"))
    assert after["sender"]["name"] == value
    assert set(after) == set(before) and after["smtp"] == before["smtp"]
    assert "oauth" not in after
    assert settings.current(workspace.load(ws)).values["sender_name"] == value


@pytest.mark.parametrize(("field", "value", "said"), [
    ("sender_name", "Zeile\neins", "Steuerzeichen"),
    ("sender_name", '"]\n[smtp]\nhost = "evil.example"', "Steuerzeichen"),
    ("smtp_host", "host\x00name", "Steuerzeichen"),
    ("smtp_port", "587; DROP", "eine Zahl bitte"),
    ("smtp_port", "0", "erlaubt sind 1 bis 65535"),
    ("smtp_security", "plaintext", "security"),
])
def test_a_value_that_cannot_be_kept_changes_nothing(ws: Path, field: str, value: str,
                                                     said: str) -> None:
    path = ws / "formtool.toml"
    before = path.read_bytes()
    with pytest.raises(Exception, match=said):
        settings.save(workspace.load(ws), {field: value})
    assert path.read_bytes() == before


def test_a_preset_fills_and_keeps_the_rest(ws: Path) -> None:
    values = settings.apply_preset({"sender_email": "info@buendnis.example"}, "Strato")
    assert (values["smtp_host"], values["smtp_port"], values["smtp_security"]) == (
        "smtp.strato.de", "465", "ssl")
    assert values["sender_email"] == "info@buendnis.example"
    with pytest.raises(settings.SettingsError, match="Unbekannter Anbieter"):
        settings.apply_preset({}, "<script>")
