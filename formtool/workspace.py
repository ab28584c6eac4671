"""Find the workspace, load ``formtool.toml``, create new workspaces."""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from formtool.errors import WorkspaceError

CONFIG_NAME = "formtool.toml"
DEFAULT_ALLIANCE = "Bündnis für Qualität in der Kindertagesbetreuung Thüringen"

CONFIG_TEMPLATE = f"""\
# formtool – Einstellungen dieses Arbeitsordners.
# Hier steht NIE ein Passwort: das SMTP-Passwort liegt im Schlüsselbund des
# Betriebssystems („formtool mail login“) oder in FORMTOOL_SMTP_PASSWORD.

[buendnis]
# Name, der oben auf jeder Seite der Formulare steht.
name = "{DEFAULT_ALLIANCE}"
"""


@dataclass(frozen=True)
class Workspace:
    """A formtool workspace: a folder with ``formtool.toml``."""

    root: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def forms_dir(self) -> Path:
        return self.root / "forms"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def contacts_dir(self) -> Path:
        return self.root / "contacts"

    @property
    def state_dir(self) -> Path:
        return self.root / ".formtool"

    @property
    def alliance_name(self) -> str:
        section = self.config.get("buendnis", {})
        name = section.get("name") if isinstance(section, dict) else None
        return name if isinstance(name, str) and name.strip() else DEFAULT_ALLIANCE


def load(root: Path) -> Workspace:
    """Load the workspace at ``root`` (which must hold ``formtool.toml``)."""
    path = root / CONFIG_NAME
    try:
        with path.open("rb") as fh:
            config = tomllib.load(fh)
    except FileNotFoundError:
        raise WorkspaceError(
            f"{root}: kein formtool-Arbeitsordner ({CONFIG_NAME} fehlt)."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkspaceError(f"{path}: Die Einstellungen sind fehlerhaft: {exc}") from None
    except OSError as exc:
        raise WorkspaceError(f"{path}: kann nicht gelesen werden: {exc.strerror}") from None
    return Workspace(root=root.resolve(), config=config)


def find(start: Path | None = None) -> Workspace:
    """Find the workspace at ``start`` or the nearest folder above it, like git."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_NAME).is_file():
            return load(candidate)
    raise WorkspaceError(
        f"Kein formtool-Arbeitsordner gefunden (in {here} und darüber gibt es keine "
        f"{CONFIG_NAME}). Legen Sie einen an mit: formtool init ORDNER"
    )


def _examples() -> Path:
    return Path(str(resources.files("formtool") / "examples"))


def shipped_forms_dir() -> Path:
    """The forms shipped with formtool, used by name outside any workspace."""
    return _examples() / "forms"


def init(root: Path) -> list[Path]:
    """Create a workspace at ``root``; never overwrite. Returns the files created."""
    created: list[Path] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        config = root / CONFIG_NAME
        if not config.exists():
            config.write_text(CONFIG_TEMPLATE, encoding="utf-8")
            created.append(config)
        examples = _examples()
        for source in sorted(examples.rglob("*")):
            if not source.is_file() or "__pycache__" in source.parts:
                continue
            target = root / source.relative_to(examples)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            created.append(target)
    except OSError as exc:
        raise WorkspaceError(
            f"{root}: Arbeitsordner kann nicht angelegt werden: {exc.strerror or exc}"
        ) from None
    return created
