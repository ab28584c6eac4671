"""The shape of the package, guarded: layers point down, and commands start fast.

Front ends (cli, clitext, screen; web/) -> use cases (usecases/) -> domain (pdf/, mail/,
data/) -> state (state/) -> shared (errors, addresses, atomic, workspace, the package).
The front ends reach nothing below the use cases (their types: usecases/types.py).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from formtool import workspace

PACKAGE = Path(__file__).resolve().parents[1] / "formtool"
LAYERS = {  # a module may import its own layer and those listed
    # the front ends stand on the use cases alone: what they show comes through them
    "cli": {"cli", "web", "usecases", "shared"},  # `formtool web` starts the page
    "web": {"web", "usecases", "shared"},
    "usecases": {"usecases", "domain", "state", "shared"},
    "domain": {"domain", "state", "shared"},
    "state": {"state", "shared"},
    "shared": {"shared"},
}
HEAVY = ("pikepdf", "pypdf", "reportlab", "jinja2", "markdown", "aiosmtpd", "keyring", "idna",
         "smtplib", "ssl", "multiprocessing", "email.message", "formtool.pdf.layout",
         "formtool.mail.message", "formtool.mail.template", "formtool.usecases.sending",
         "formtool.usecases.demo", "starlette", "uvicorn", "tomlkit", "openpyxl",
         "formtool.web", "formtool.web.app")


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[:2] in (["formtool", "cli"], ["formtool", "clitext"], ["formtool", "screen"],
                     ["formtool", "__main__"]):
        return "cli"
    if len(parts) > 1 and parts[1] == "web":
        return "web"
    if len(parts) > 1 and parts[1] == "usecases":
        return "usecases"
    if len(parts) > 1 and parts[1] in ("pdf", "mail", "data"):
        return "domain"
    if len(parts) > 1 and parts[1] == "state":
        return "state"
    return "shared"


def _imports(path: Path) -> set[str]:
    """formtool modules a file imports, at the top or inside functions (TYPE_CHECKING too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "formtool"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("formtool"))
    return {m for m in found if (PACKAGE.parent / (m.replace(".", "/") + ".py")).exists()
            or (PACKAGE.parent / m.replace(".", "/")).is_dir()}


def test_layers_point_down() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        own = _layer(module)
        for imported in _imports(path):
            if _layer(imported) not in LAYERS[own]:
                wrong.append(f"{module} ({own}) imports {imported} ({_layer(imported)})")
    assert wrong == []


def _loaded(*args: str, cwd: Path) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "formtool", *args],
                            cwd=cwd, capture_output=True, text=True, check=True)
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


@pytest.mark.parametrize("args", [("--help",), ("status",), ("forms", "list"),
                                  ("mail", "--help")])
def test_commands_start_without_the_heavy_libraries(tmp_path: Path, args: tuple[str, ...]
                                                    ) -> None:
    workspace.init(tmp_path / "ws")
    loaded = _loaded(*args, cwd=tmp_path / "ws")
    assert "formtool.cli" in loaded  # the measurement works
    assert sorted(m for m in loaded if m in HEAVY) == []
