"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from helpers import ALLIANCE, shipped_form
from mailhelpers import MemoryKeyring, make_certificate

from formtool import workspace
from formtool.pdf import layout


@pytest.fixture(scope="session")
def blank_forms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both shipped forms, generated once per test session."""
    out = tmp_path_factory.mktemp("blank")
    return {
        form_id: layout.write_blank(shipped_form(form_id), out / f"{form_id}.pdf",
                                    alliance=ALLIANCE)
        for form_id in ("buendnispartner", "regionalgruppe")
    }


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    """No test may touch the real OS keyring."""
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A fresh workspace with the shipped forms, templates and contacts."""
    root = tmp_path / "ws"
    workspace.init(root)
    return root


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))
