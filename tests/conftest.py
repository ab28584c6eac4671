"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ALLIANCE, shipped_form

from formtool import layout


@pytest.fixture(scope="session")
def blank_forms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both shipped forms, generated once per test session."""
    out = tmp_path_factory.mktemp("blank")
    return {
        form_id: layout.write_blank(shipped_form(form_id), out / f"{form_id}.pdf",
                                    alliance=ALLIANCE)
        for form_id in ("buendnispartner", "regionalgruppe")
    }
