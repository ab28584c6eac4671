"""Test helpers: the independent readers/fillers used to check formtool's PDFs.

The readers (qpdf, pdftk, poppler, node with pdf.js and pdf-lib) are installed by
`make test`. A missing one fails the test loudly instead of skipping it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader

from formtool import workspace
from formtool.pdf import formdef

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


def _beside(out: Path, suffix: str) -> Path:
    """A filler's input data: kept out of the folder the tests import from."""
    folder = out.parent.parent / f".{out.parent.name}-fill-data"
    folder.mkdir(exist_ok=True)
    return folder / (out.stem + suffix)


def pdftk_fill(source: Path, values: dict[str, str], out: Path) -> Path:
    data = _beside(out, ".xfdf")
    data.write_text(xfdf(values), encoding="utf-8")
    run("pdftk", source, "fill_form", data, "output", out)
    return out


def pdflib_fill(source: Path, values: dict[str, object], out: Path) -> Path:
    data = _beside(out, ".json")
    data.write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
    node("pdflib_fill.mjs", source, out, data)
    return out


def field_values(path: Path) -> dict[str, object]:
    """/V of every terminal field, as pypdf reads it."""
    fields = PdfReader(path).get_fields() or {}
    return {name: f.get("/V") for name, f in fields.items() if f.get("/FT")}


def pdfjs_fill(source: Path, values: dict[str, object], out: Path) -> Path:
    data = _beside(out, ".json")
    data.write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
    node("pdfjs_fill.mjs", source, out, data)
    return out


def pypdf_fill(source: Path, values: dict[str, object], out: Path) -> Path:
    """Fill with pypdf: checkboxes take True/False, radios and choices the export value."""
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    kinds = {n: f.get("/FT") for n, f in (writer.get_fields() or {}).items()}
    converted = {}
    for name, value in values.items():
        if kinds.get(name) == "/Btn":
            value = ("/Yes" if value else "/Off") if isinstance(value, bool) else f"/{value}"
        converted[name] = value
    for page in writer.pages:
        writer.update_page_form_field_values(page, converted, auto_regenerate=False)
    writer.write(out)
    return out


def pdftk_values(values: dict[str, object]) -> dict[str, str]:
    return {n: ("Yes" if v else "Off") if isinstance(v, bool) else str(v)
            for n, v in values.items()}


FILLERS = {
    "pdftk": lambda src, values, out: pdftk_fill(src, pdftk_values(values), out),
    "pdf-lib": pdflib_fill,
    "pdf.js": pdfjs_fill,
    "pypdf": pypdf_fill,
}


def read_csv(path: Path, delimiter: str = ";", encoding: str = "utf-8-sig") -> list[dict[str, str]]:
    import csv

    with path.open(encoding=encoding, newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def make_foreign_form(path: Path) -> Path:
    """A form no formtool made, with the quirks seen in the wild.

    Checkbox on-states /On, /Ja and the empty name /; a checkbox with only /AS;
    a LibreOffice-style radio group (/1, /2); hierarchical names; a duplicate
    name; and a field that sits on the page but is missing from /AcroForm
    /Fields (as macOS Preview leaves them).
    """
    import pikepdf
    from pikepdf import Array, Dictionary, Name, String

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    page = pdf.pages[0]
    annots = Array()
    fields = Array()
    y = [800]

    def widget(**entries: object) -> pikepdf.Dictionary:
        y[0] -= 30
        entries.setdefault("Rect", Array([50, y[0], 250, y[0] + 20]))
        d = Dictionary(Type=Name.Annot, Subtype=Name.Widget, P=page.obj, **entries)
        ref = pdf.make_indirect(d)
        annots.append(ref)
        return ref

    def ap(*states: str) -> pikepdf.Dictionary:
        return Dictionary(N=Dictionary({f"/{s}": pdf.make_stream(b"") for s in states}))

    fields.append(widget(FT=Name.Tx, T=String("plain"), V=String("Ferhat Ağaoğlu")))
    fields.append(widget(FT=Name.Btn, T=String("cb_on"), V=Name("/On"), AS=Name("/On"),
                         AP=ap("On", "Off")))
    fields.append(widget(FT=Name.Btn, T=String("cb_ja"), V=Name("/Ja"), AS=Name("/Ja"),
                         AP=ap("Ja", "Off")))
    fields.append(widget(FT=Name.Btn, T=String("cb_empty"), V=Name("/"), AS=Name("/"),
                         AP=ap("", "Off")))
    fields.append(widget(FT=Name.Btn, T=String("cb_as_only"), AS=Name("/Yes"),
                         AP=ap("Yes", "Off")))
    fields.append(widget(FT=Name.Btn, T=String("cb_off"), V=Name("/Off"), AS=Name("/Off"),
                         AP=ap("Yes", "Off")))
    radio = pdf.make_indirect(Dictionary(FT=Name.Btn, T=String("farbe"), Ff=49152,
                                         V=Name("/2"), Kids=Array()))
    for state in ("1", "2"):
        kid = widget(Parent=radio, AS=Name(f"/{state}" if state == "2" else "/Off"),
                     AP=ap(state, "Off"))
        radio.Kids.append(kid)
    fields.append(radio)
    person = pdf.make_indirect(Dictionary(T=String("person"), Kids=Array()))
    for name, value in (("name", "Łucja Nowak"), ("email", "l.nowak@kita.example")):
        person.Kids.append(widget(FT=Name.Tx, T=String(name), V=String(value), Parent=person))
    fields.append(person)
    fields.append(widget(FT=Name.Tx, T=String("notiz"), V=String("")))
    fields.append(widget(FT=Name.Tx, T=String("notiz"), V=String("zweite Zeile\nmit Umbruch")))
    widget(FT=Name.Tx, T=String("nur_auf_der_seite"), V=String("Preview war hier"))
    page.obj.Annots = annots
    pdf.Root.AcroForm = Dictionary(Fields=fields)
    with warnings.catch_warnings():  # the unreachable widget is the point
        warnings.simplefilter("ignore")
        pdf.save(path)
    return path


@contextlib.contextmanager
def small_disk(folder: Path, size_kib: int, *, read_only: bool = False) -> Iterator[Path]:
    """``folder`` on a tmpfs of ``size_kib`` KiB (its files copied over), optionally
    remounted read-only: a real full or read-only disk, for root as for every user.
    Skips where this machine does not let the tests mount (not root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    saved = folder.with_name(folder.name + ".saved")
    shutil.copytree(folder, saved)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs",
                        str(folder)], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(saved)
        pytest.skip(f"tmpfs not available: {exc.stderr!r}")
    try:
        shutil.copytree(saved, folder, dirs_exist_ok=True)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        shutil.rmtree(saved, ignore_errors=True)


def invoke(ws: Path, *args: str, input: str | None = None) -> Result:
    """The CLI in a workspace, as a user runs it: no traceback may reach the output, and
    an exception other than the exit is a test failure, not an exit code."""
    from formtool.cli import cli

    result = CliRunner().invoke(cli, ["--workspace", str(ws), *args], input=input)
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    english = ENGLISH.search(result.output)
    assert english is None, f"English in the output: {english[0]!r}\n{result.output}"
    return result


# What libraries say in English when their messages are passed through unwrapped
# (Python's OS errors, ssl, smtplib, qpdf, Jinja, keyring, getpass, click, tomllib).
# A mail server's own reply ("535 5.7.8 …") is quoted as the server's words.
ENGLISH = re.compile(
    r"Errno|Error:|No such file|Permission denied|Connection refused|Connection reset|"
    r"timed out|WRONG_VERSION|\[SSL|certificate verify failed|is undefined|Aborted!|"
    r"Warning:|Password input|Illegal character|unexpected end|expected token|"
    r"No recommended backend|keyrings\.alt|object at 0x|qpdf|xref table|xref stream|"
    r"trailer dict|file is damaged|reconstructing|"
    r"Invalid value|Missing argument|No such option|Try '")


def campaign_counts(output: str, campaign: str) -> dict[str, int]:
    """The labelled counts `formtool status` shows for one campaign ("gesendet 40 · …")."""
    lines = output.splitlines()
    start = lines.index(campaign)
    counts: dict[str, int] = {}
    for line in lines[start + 1:start + 3]:
        for part in line.split(":")[-1].split("·"):
            label, number = part.strip().rsplit(maxsplit=1)
            counts[label] = int(number)
    return counts


def kill_sends(ws: Path, received: Callable[[], int], *, seed: int, runs: int = 5,
               most: int = 6, late: float = 0.02) -> int:
    """Start `mail send erinnerung --yes` ``runs`` times and SIGKILL it at a random moment
    – after 1 to ``most`` more messages reached the server (``received`` counts them),
    and up to ``late`` seconds more; how many runs were killed."""
    import os
    import random
    import signal
    import sys
    import time

    from imapserver import PASSWORD as IMAP_PASSWORD
    from mailhelpers import PASSWORD

    from formtool.usecases import credentials

    rng = random.Random(seed)
    env = {**os.environ, credentials.PASSWORD_ENV: PASSWORD,
           credentials.IMAP_PASSWORD_ENV: IMAP_PASSWORD}
    command = [sys.executable, "-m", "formtool", "--workspace", str(ws), "mail", "send",
               "erinnerung", "--yes"]
    kills = 0
    for _ in range(runs):
        wanted = received() + rng.randint(1, most)
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while process.poll() is None and received() < wanted and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.random() * late)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
    return kills
