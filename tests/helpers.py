"""Test helpers: the independent readers/fillers used to check formtool's PDFs.

The readers (qpdf, pdftk, poppler, node with pdf.js and pdf-lib) are installed by
`make test`. A missing one fails the test loudly instead of skipping it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from pypdf import PdfReader

from formtool import formdef, workspace

JS_DIR = Path(__file__).parent / "js"
ALLIANCE = "Bündnis für Qualität in der Kindertagesbetreuung Thüringen"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run `make test`, which installs the test readers")
    return path


def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    need(str(args[0]))
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check,
                          timeout=120)


def node(script: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    if not (JS_DIR / "node_modules" / "pdfjs-dist").is_dir():
        pytest.fail("npm packages missing in tests/js: run `make test`")
    return run("node", JS_DIR / script, *args)


def shipped_form(form_id: str) -> formdef.FormDefinition:
    return formdef.load(workspace.shipped_forms_dir() / f"{form_id}.toml")


def xfdf(values: dict[str, str]) -> str:
    """An XFDF document (UTF-8) that pdftk's fill_form reads."""
    fields = "".join(
        f'<field name="{escape(name)}"><value>{escape(value)}</value></field>'
        for name, value in values.items()
    )
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<xfdf xmlns="http://ns.adobe.com/xfdf/" xml:space="preserve">'
            f"<fields>{fields}</fields></xfdf>")


def pdftk_fill(source: Path, values: dict[str, str], out: Path) -> Path:
    data = out.with_suffix(".xfdf")
    data.write_text(xfdf(values), encoding="utf-8")
    run("pdftk", source, "fill_form", data, "output", out)
    return out


def pdflib_fill(source: Path, values: dict[str, object], out: Path) -> Path:
    data = out.with_suffix(".json")
    data.write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
    node("pdflib_fill.mjs", source, out, data)
    return out


def field_values(path: Path) -> dict[str, object]:
    """/V of every terminal field, as pypdf reads it."""
    fields = PdfReader(path).get_fields() or {}
    return {name: f.get("/V") for name, f in fields.items() if f.get("/FT")}
