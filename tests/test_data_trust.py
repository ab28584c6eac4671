"""Nothing lost, nobody else's data touched (issue 11): settings, forget, long answers,
hostile names in every table, contact files from Windows. Real files, real CLI."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pikepdf
import pytest
from helpers import invoke, read_csv, small_disk

from formtool.pdf import formdef, layout
from formtool.state.store import Journal, SendState, Store

LONG = "Sehr lange Antwort. " * 10_000  # 200,000 characters


def filled(blank: Path, out: Path, **values: str) -> Path:
    with pikepdf.open(blank) as pdf:
        fields = {str(f.get("/T")): f for f in pdf.Root.AcroForm.Fields}
        for name, value in values.items():
            fields[name].V = pikepdf.String(value)
        pdf.save(out)
    return out


@pytest.fixture
def blank(ws: Path) -> Path:
    form = formdef.load(ws / "forms" / "buendnispartner.toml")
    return layout.write_blank(form, ws.parent / "blank.pdf", alliance="Bündnis")


# -- settings are checked, not guessed -----------------------------------------------------

@pytest.mark.parametrize(("addition", "message"), [
    ("[limits]\nper_minut = 5\n", "[limits] per_minut ist unbekannt – meinten Sie „per_minute“?"),
    ("[limit]\nper_minute = 5\n", "unbekannter Abschnitt [limit] – meinten Sie „limits“?"),
    ("[smtp]\npassword = \"geheim\"\n", "ein Passwort gehört nie in diese Datei"),
    ("[smtp]\ntimeout = 0\n", "[smtp] timeout muss größer als 0 sein."),
    ("[limits]\nmax_size_mb = inf\n", "[limits] max_size_mb = inf – erwartet eine endliche Zahl."),
    ("[limits]\nper_day = -1\n", "[limits] per_day darf nicht negativ sein."),
    ("[smtp]\nport = 70000\n", "[smtp] port = 70000 – erlaubt sind 1 bis 65535"),
    ("[sender]\nemail = info@x.example\n",
     "Zeile 2, Spalte 12: die Einstellungen sind nicht lesbar"),
])
def test_bad_settings_stop_with_one_german_line(tmp_path: Path, addition: str,
                                                 message: str) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "formtool.toml").write_text(addition, encoding="utf-8")
    result = invoke(root, "status")
    assert result.exit_code == 1
    assert message in result.output, result.output
    assert "geheim" not in result.output


def test_a_cp1252_settings_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "formtool.toml").write_bytes('[buendnis]\nname = "Bündnis"\n'.encode("cp1252"))
    result = invoke(root, "status")
    assert result.exit_code == 1
    assert "Zeile 2: die Datei ist nicht als UTF-8 gespeichert" in result.output


def test_the_shipped_settings_pass_the_check(ws: Path) -> None:
    assert invoke(ws, "status").exit_code == 0


# -- forget touches exactly one person ------------------------------------------------------

def test_forget_leaves_a_similar_address_and_same_named_files(ws: Path, blank: Path) -> None:
    me, other = "info@kita-jena.example", "kita-info@kita-jena.example"
    (ws / "contacts" / "fachberatungen.csv").write_text(
        f"id,organisation,email\nA1,Kita Jena,{me}\nA2,Kita Jena Nord,{other}\n",
        encoding="utf-8")
    for folder, address in (("a", me), ("b", other)):
        (ws / "ruecklaeufe" / folder).mkdir(parents=True)
        filled(blank, ws / "ruecklaeufe" / folder / "Beitrittserklaerung.pdf",
               email=address, organisation="Kita")
    (ws / "vorschau").mkdir()
    (ws / "vorschau" / "a.eml").write_text(f"To: <{me}>\r\n\r\nHallo\r\n", encoding="utf-8")
    (ws / "vorschau" / "b.eml").write_text(f"To: <{other}>\r\n\r\nHallo\r\n", encoding="utf-8")
    leftover = ws / "antworten" / ".buendnispartner.csv.abc123.tmp"
    leftover.parent.mkdir()
    leftover.write_text(f"x;{me}\n", encoding="utf-8")
    result = invoke(ws, "forget", me, "--delete-files")
    assert result.exit_code == 0, result.output
    assert not (ws / "ruecklaeufe" / "a" / "Beitrittserklaerung.pdf").exists()
    assert (ws / "ruecklaeufe" / "b" / "Beitrittserklaerung.pdf").exists()
    assert not (ws / "vorschau" / "a.eml").exists() and (ws / "vorschau" / "b.eml").exists()
    assert not leftover.exists()
    remaining = read_csv(ws / "contacts" / "fachberatungen.csv", delimiter=",")
    assert [r["email"] for r in remaining] == [other]


def test_forget_an_address_nobody_has_is_said(ws: Path) -> None:
    result = invoke(ws, "forget", "niemand@nirgends.example")
    assert result.exit_code == 1
    assert "kommt in diesem Arbeitsordner nicht vor" in result.output


def test_forget_survives_a_contact_list_with_a_huge_cell(ws: Path) -> None:
    (ws / "contacts" / "fachberatungen.csv").write_text(
        f"id,notiz,email\nA1,{'x' * 300_000},weg@kita.example\nA2,kurz,bleibt@kita.example\n",
        encoding="utf-8")
    result = invoke(ws, "forget", "weg@kita.example", "--delete-files")
    assert result.exit_code == 0, result.output
    rows = read_csv(ws / "contacts" / "fachberatungen.csv", delimiter=",")
    assert [r["email"] for r in rows] == ["bleibt@kita.example"]


# -- long answers, colliding and hostile names ------------------------------------------------

def test_a_long_answer_never_blocks_the_table(ws: Path, blank: Path) -> None:
    first = filled(blank, ws.parent / "lang.pdf", thema_sonstiges=LONG, response_id="LANG1")
    second = filled(blank, ws.parent / "kurz.pdf", thema_sonstiges="kurz", response_id="KURZ1")
    assert invoke(ws, "import", str(first)).exit_code == 0
    again = invoke(ws, "import", str(second))
    assert again.exit_code == 0, again.output
    update = invoke(ws, "import", str(first), "--update")
    assert update.exit_code == 0, update.output
    rows = read_csv(ws / "antworten" / "buendnispartner.csv")
    assert len(rows) == 2
    long_row = next(r for r in rows if r["response_id"] == "LANG1")
    assert len(long_row["Weitere Themen"]) == 32_767
    assert "auf 32.767 gekürzt" in long_row["probleme"]


def test_raw_fields_named_like_meta_columns_keep_both(ws: Path) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    fields = pikepdf.Array()
    for name, value in (("datei", "aus dem Formular"), ("probleme", "keine"),
                        ("=HYPERLINK(\"http://x\")", "=1+1")):
        fields.append(pdf.make_indirect(pikepdf.Dictionary(
            FT=pikepdf.Name.Tx, T=pikepdf.String(name), V=pikepdf.String(value),
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Widget,
            Rect=pikepdf.Array([0, 0, 10, 10]))))
    pdf.pages[0].obj.Annots = fields
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=fields)
    pdf.save(ws.parent / "fremd.pdf")
    result = invoke(ws, "import", str(ws.parent / "fremd.pdf"), "--form", "raw")
    assert result.exit_code == 0, result.output
    header = (ws / "antworten" / "raw.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert "'=HYPERLINK" in header  # a formula in a header is neutralised too
    [row] = read_csv(ws / "antworten" / "raw.csv")
    assert row["datei (Feld)"] == "aus dem Formular" and row["datei"] == "fremd.pdf"
    assert row["probleme (Feld)"] == "keine" and row["probleme"] == ""
    assert row["'=HYPERLINK(\"http://x\")"] == "'=1+1"
    # a second import reads its own neutralised header back: no duplicate column
    pdf.save(ws.parent / "fremd2.pdf")
    invoke(ws, "import", str(ws.parent / "fremd2.pdf"), "--form", "raw")
    header2 = (ws / "antworten" / "raw.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header2 == header


def test_formulas_in_status_exports_and_reports(ws: Path, blank: Path) -> None:
    with Store(ws / ".formtool" / "state.db") as store:
        journal = Journal(store)
        journal.campaign("c", "t")
        store.remember_contact(key="=cmd|' /C calc'!A0", email="a@kita.example",
                               name="=HYPERLINK(\"http://evil\")", organisation="+49 123",
                               address="-1")
        journal.mark("c", email="a@kita.example", key="=cmd|' /C calc'!A0",
                     state=SendState.SENT, sent_at=0.0)
        journal.mark("c", email="b@kita.example", key="@SUM(1)", state=SendState.FAILED,
                     reply="=2+2")
    assert invoke(ws, "status", "c", "--offen", "--csv", str(ws / "offen.csv")).exit_code == 0
    assert invoke(ws, "status", "c", "--fehler", "--csv", str(ws / "fehler.csv")).exit_code == 0
    for table in ("offen.csv", "fehler.csv"):
        for row in read_csv(ws / table):
            for cell in row.values():
                assert not cell.startswith(("=", "+", "-", "@")), (table, cell)
    weird = filled(blank, ws.parent / "=cmd.pdf", organisation="x")
    invoke(ws, "import", str(weird), "--report", str(ws / "bericht.csv"))
    [report] = read_csv(ws / "bericht.csv")
    assert report["datei"] == "'=cmd.pdf"


def test_tables_keep_their_permissions(ws: Path, blank: Path) -> None:
    first = filled(blank, ws.parent / "a.pdf", response_id="PERM1")
    invoke(ws, "import", str(first))
    table = ws / "antworten" / "buendnispartner.csv"
    mode = stat.S_IMODE(table.stat().st_mode)
    assert mode & 0o044, oct(mode)  # readable by others, as a new file would be
    table.chmod(0o640)
    invoke(ws, "import", str(filled(blank, ws.parent / "b.pdf", response_id="PERM2")))
    assert stat.S_IMODE(table.stat().st_mode) == 0o640


def test_a_full_disk_during_import_is_a_german_message(ws: Path, blank: Path) -> None:
    returns = ws.parent / "rueck"
    returns.mkdir()
    for i in range(5):
        filled(blank, returns / f"r{i}.pdf", response_id=f"VOLL{i}", thema_sonstiges="x" * 30000)
    (ws / "antworten").mkdir()
    with small_disk(ws / "antworten", 64) as folder:
        result = invoke(ws, "import", str(returns))
        leftovers = [p.name for p in folder.iterdir()]
    assert result.exit_code == 1
    assert "Datenträger ist voll" in result.output
    assert leftovers == []  # no temporary file left behind


# -- contact files from Windows ------------------------------------------------------------------

def test_excel_unicode_text_is_read(ws: Path) -> None:
    text = "id\tnachname\torganisation\temail\r\nU1\tGröße\tKita\tu1@kita.example\r\n"
    (ws / "contacts" / "fachberatungen.csv").write_bytes(text.encode("utf-16"))
    result = invoke(ws, "mail", "preview", "erinnerung")
    assert result.exit_code == 0, result.output
    assert "1 E-Mail(s) als .eml" in result.output


@pytest.mark.parametrize(("data", "hint"), [
    (b"PK\x03\x04" + os.urandom(200), "Arbeitsmappe (.xlsx/.ods)"),
    (bytes(range(256)) * 8, "keine Textdatei"),
])
def test_workbooks_and_binaries_are_refused_with_a_hint(ws: Path, data: bytes,
                                                        hint: str) -> None:
    (ws / "contacts" / "fachberatungen.csv").write_bytes(data)
    result = invoke(ws, "mail", "preview", "erinnerung")
    assert result.exit_code == 1
    assert hint in result.output
    assert all(c.isprintable() or c in "\n" for c in result.output)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc (Linux)")
def test_a_killed_worker_ends_the_import_and_frees_the_state(ws: Path, blank: Path) -> None:
    """What the out-of-memory killer does to a worker: the run notices, reads that
    worker's files again in a fresh one, finishes, and state.db is free."""
    import signal
    import subprocess
    import sys
    import time

    returns = ws.parent / "rueck"
    returns.mkdir()
    for i in range(120):
        filled(blank, returns / f"r{i:03d}.pdf", response_id=f"KILL{i:04d}")
    process = subprocess.Popen([sys.executable, "-m", "formtool", "--workspace", str(ws),
                                "import", str(returns)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    victim = None
    while victim is None and time.monotonic() < deadline and process.poll() is None:
        workers = _children(process.pid)
        if len(workers) >= 2:
            victim = workers[-1]
        time.sleep(0.005)
    assert victim is not None, "no worker seen"
    os.kill(victim, signal.SIGKILL)  # raises if it had ended already: the kill is real
    output, _ = process.communicate(timeout=60)
    assert "Traceback" not in output
    # the killed worker's files are read again in a fresh one: nothing lost, nothing twice
    assert process.returncode == 0, output
    after = invoke(ws, "status")  # state.db is free
    assert after.exit_code == 0, after.output
    rows = read_csv(ws / "antworten" / "buendnispartner.csv")
    assert sorted(r["response_id"] for r in rows) == [f"KILL{i:04d}" for i in range(120)]


def test_harmless_structural_warnings_are_no_damage(ws: Path, blank: Path) -> None:
    """A trailer /Size off by some (qpdf warns, and reads the file fine): no note."""
    good = filled(blank, ws.parent / "ok.pdf", response_id="SIZE1", organisation="Kita")
    data = good.read_bytes()
    import re

    size = re.findall(rb"/Size (\d+)", data)[-1]
    wrong = data.replace(b"/Size " + size, b"/Size " + str(int(size) + 7).encode(), 1)
    (ws.parent / "size.pdf").write_bytes(wrong)
    result = invoke(ws, "import", str(ws.parent / "size.pdf"))
    assert result.exit_code == 0, result.output
    [row] = read_csv(ws / "antworten" / "buendnispartner.csv")
    assert "beschädigt" not in row["probleme"]
    assert row["Name der Organisation"] == "Kita" and row["response_id"] == "SIZE1"


def test_a_dynamic_xfa_form_says_xfa(ws: Path) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    sig = pdf.make_indirect(pikepdf.Dictionary(
        FT=pikepdf.Name.Sig, T=pikepdf.String("Unterschrift"), Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.Widget, Rect=pikepdf.Array([0, 0, 10, 10])))
    pdf.pages[0].obj.Annots = pikepdf.Array([sig])
    xfa = pdf.make_stream(b"<xdp:xdp><xfa:datasets><name>Antwort</name></xfa:datasets>"
                          b"</xdp:xdp>")
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([sig]), XFA=xfa)
    pdf.Root.NeedsRendering = True
    pdf.save(ws.parent / "xfa.pdf")
    result = invoke(ws, "import", str(ws.parent / "xfa.pdf"), "--form", "raw")
    assert result.exit_code == 1
    assert "XFA-Formular" in result.output
    assert not (ws / "antworten" / "raw.csv").exists()  # no pretend row


def test_locked_widgets_outside_the_field_tree_are_no_answers(ws: Path) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page()

    def widget(name: str, value: str, **extra: object) -> pikepdf.Object:
        return pdf.make_indirect(pikepdf.Dictionary(
            FT=pikepdf.Name.Tx, T=pikepdf.String(name), V=pikepdf.String(value),
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Widget,
            Rect=pikepdf.Array([0, 0, 10, 10]), **extra))

    listed = widget("name", "Kita Sonnenschein")
    preview = widget("vergessen", "Preview war hier")  # fillable, dropped from the tree
    stamp = widget("wasserzeichen", "ENTWURF", F=4 | 64 | 128, Ff=1)  # print, ro, locked
    pdf.pages[0].obj.Annots = pikepdf.Array([listed, preview, stamp])
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([listed]))
    with warnings.catch_warnings():  # the widgets outside the tree are the point
        warnings.simplefilter("ignore")
        pdf.save(ws.parent / "stempel.pdf")
    result = invoke(ws, "import", str(ws.parent / "stempel.pdf"), "--form", "raw")
    assert result.exit_code == 0, result.output
    [row] = read_csv(ws / "antworten" / "raw.csv")
    assert row["name"] == "Kita Sonnenschein" and row["vergessen"] == "Preview war hier"
    assert "wasserzeichen" not in row


def test_a_stream_bomb_is_refused_in_bounded_memory(ws: Path) -> None:
    """A 300 kB file whose field value unpacks to 300 MB: refused with a German line; the
    import's processes stay within the cap (here 200 MB a worker), peak measured."""
    import json
    import subprocess
    import sys

    from bombs import make_bomb

    bomb = make_bomb(ws.parent / "bombe.pdf", 300 * 1024 * 1024)
    assert bomb.stat().st_size < 1024 * 1024
    env = {**os.environ, "FORMTOOL_IMPORT_MEMORY_MB": "200"}
    # a fresh parent, so that its children's peak is this import's alone
    measure = ("import json, resource, subprocess, sys; "
               "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(json.dumps([r.returncode, r.stdout + r.stderr, "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))")
    out = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "formtool",
                          "--workspace", str(ws), "import", str(bomb), "--form", "raw"],
                         env=env, capture_output=True, text=True, timeout=120, check=True)
    code, output, peak_mib = json.loads(out.stdout)
    result = subprocess.CompletedProcess([], code, output, "")
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "bombe.pdf" in result.stdout
    assert "zu groß zum Einlesen" in result.stdout, result.stdout
    assert peak_mib < 260, peak_mib  # the value is 300 MB: it was never held


def test_a_file_over_its_time_is_skipped_and_the_rest_goes_on(ws: Path, blank: Path) -> None:
    import subprocess
    import sys

    from bombs import make_bomb

    folder = ws.parent / "mix"
    folder.mkdir()
    make_bomb(folder / "a-langsam.pdf", 400 * 1024 * 1024)  # seconds to unpack
    filled(blank, folder / "b-gut.pdf", response_id="ZEIT1", organisation="Kita")
    env = {**os.environ, "FORMTOOL_IMPORT_SECONDS": "0.3", "FORMTOOL_IMPORT_MEMORY_MB": "4096"}
    result = subprocess.run([sys.executable, "-m", "formtool", "--workspace", str(ws),
                             "import", str(folder)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stdout
    assert "a-langsam.pdf: zu langsam: nach 0.3 s noch nicht gelesen" in result.stdout
    assert "b-gut.pdf" in result.stdout and "1 importiert" in result.stdout
    [row] = read_csv(ws / "antworten" / "buendnispartner.csv")
    assert row["response_id"] == "ZEIT1"
