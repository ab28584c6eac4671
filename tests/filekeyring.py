"""A keyring backend for the web page's own process in the tests: a JSON file named by
FORMTOOL_TEST_KEYRING (the OS keyring is never touched). Set with
PYTHON_KEYRING_BACKEND=filekeyring.FileKeyring and tests/ on PYTHONPATH."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def _path(self) -> Path:
        return Path(os.environ["FORMTOOL_TEST_KEYRING"])

    def _load(self) -> dict[str, str]:
        try:
            loaded: dict[str, str] = json.loads(self._path().read_text(encoding="utf-8"))
            return loaded
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\x00{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}\x00{username}"] = password
        self._path().write_text(json.dumps(data), encoding="utf-8")

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data.pop(f"{service}\x00{username}", None)
        self._path().write_text(json.dumps(data), encoding="utf-8")
