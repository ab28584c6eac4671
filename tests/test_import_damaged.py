"""Every file gets an answer: damaged, encrypted, flattened and foreign files never crash."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import pikepdf
import pytest
from click.testing import CliRunner
from helpers import ENGLISH, pdftk_fill, read_csv, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reportlab.pdfgen.canvas import Canvas

from formtool import workspace
from formtool.cli import cli
from formtool.pdf.extract import Outcome, extract
from formtool.state.store import Store
from formtool.usecases.importing import FileReport, Importer, ImportOptions, Status


@pytest.fixture(scope="module")
def filled(blank_forms: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("filled") / "filled.pdf"
    return pdftk_fill(blank_forms["buendnispartner"],
                      {"organisation": "Kita Gößnitz", "einwilligung": "Yes"}, out)


def _classic_pdf(objects: list[bytes], *, prev_self: bool = False) -> bytes:
    """A PDF with a classic xref table; ``prev_self`` makes the xref point at itself."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    prev = b" /Prev %d" % xref if prev_self else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, prev, xref)
    return bytes(out)


def _damaged_files(folder: Path, filled: Path) -> dict[str, str]:
    """Write every kind of bad input; returns file name -> expected words of the reason."""
    data = filled.read_bytes()
    expected: dict[str, str] = {}

    def put(name: str, content: bytes, reason: str) -> None:
        (folder / name).write_bytes(content)
        expected[name] = reason

    put("leer.pdf", b"", "leere Datei")
    put("zufall.pdf", random.Random(7).randbytes(5000), "keine PDF-Datei")
    put("abgeschnitten.pdf", data[:2000], "beschädigt und nicht lesbar")
    put("halb-abgeschnitten.pdf", data[: len(data) // 2], "wurde repariert und gelesen")
    put("xref-schleife.pdf", _classic_pdf([
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ], prev_self=True), "keine Formularfelder")
    put("seitenbaum-schleife.pdf", _classic_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
    ]), "beschädigt und nicht lesbar")
    put("feld-schleife.pdf", _classic_pdf([
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [3 0 R] >> >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
        b"<< /T (a) /Kids [4 0 R] >>",
        b"<< /T (b) /Parent 3 0 R /Kids [3 0 R] >>",
    ]), "keine Formularfelder")
    with pikepdf.open(filled) as pdf:
        pdf.save(folder / "passwort.pdf", encryption=pikepdf.Encryption(
            user="geheim", owner="owner", R=6))
        expected["passwort.pdf"] = "passwortgeschützt"
        pdf.save(folder / "nur-besitzerpasswort.pdf", encryption=pikepdf.Encryption(
            user="", owner="owner", R=6))
        expected["nur-besitzerpasswort.pdf"] = ""
        xfa = pikepdf.new()
        xfa.add_blank_page()
        xfa.Root.AcroForm = pikepdf.Dictionary(
            Fields=pikepdf.Array(), XFA=xfa.make_stream(b"<xdp:xdp/>"))
        xfa.save(folder / "xfa.pdf")
        expected["xfa.pdf"] = "XFA-Formular"
    run("qpdf", "--flatten-annotations=all", filled, folder / "abgeflacht.pdf")
    expected["abgeflacht.pdf"] = "abgeflacht oder eingescannt"
    canvas = Canvas(str(folder / "gedruckt.pdf"))
    canvas.drawString(100, 700, "Kita Gößnitz – ausgedruckt und eingescannt")
    canvas.save()
    expected["gedruckt.pdf"] = "keine Formularfelder"
    (folder / "Rücklauf Müller (2).pdf").write_bytes(data)
    expected["Rücklauf Müller (2).pdf"] = ""
    return expected


def test_every_bad_file_gets_a_plain_answer(filled: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    workspace.init(ws)
    folder = tmp_path / "rueck"
    folder.mkdir()
    expected = _damaged_files(folder, filled)
    result = CliRunner().invoke(cli, ["--workspace", str(ws), "import", str(folder),
                                      "--report", str(tmp_path / "bericht.csv")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert ENGLISH.search(result.output) is None, result.output  # qpdf's words stay out
    report = {r["datei"]: r for r in read_csv(tmp_path / "bericht.csv")}
    assert all(ENGLISH.search(r["grund"]) is None for r in report.values()), report
    assert set(report) == set(expected)
    for name, words in expected.items():
        assert words in report[name]["grund"], (name, report[name])
        if report[name]["ergebnis"] == "fehlgeschlagen":
            assert report[name]["grund"], name
            assert f"fehlgeschlagen             {name}: " in result.output
    assert report["nur-besitzerpasswort.pdf"]["ergebnis"].startswith("importiert")
    assert report["Rücklauf Müller (2).pdf"]["ergebnis"].startswith("importiert")
    assert report["seitenbaum-schleife.pdf"]["ergebnis"] == "fehlgeschlagen"
    # without a response id the key is the file's hash: the encrypted copy is another file
    rows = read_csv(ws / "antworten" / "buendnispartner.csv")
    assert sorted(r["datei"] for r in rows) == ["Rücklauf Müller (2).pdf",
                                                "halb-abgeschnitten.pdf",
                                                "nur-besitzerpasswort.pdf"]


def test_password_opens_protected_files(filled: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    workspace.init(ws)
    with pikepdf.open(filled) as pdf:
        pdf.save(tmp_path / "geschuetzt.pdf",
                 encryption=pikepdf.Encryption(user="geheim", owner="o", R=6))
    wrong = CliRunner().invoke(cli, ["--workspace", str(ws), "import",
                                     str(tmp_path / "geschuetzt.pdf"), "--password", "falsch"])
    assert wrong.exit_code == 1
    assert "das angegebene Passwort passt nicht" in wrong.output
    right = CliRunner().invoke(cli, ["--workspace", str(ws), "import",
                                     str(tmp_path / "geschuetzt.pdf"), "--password", "geheim"])
    assert right.exit_code == 0, right.output


def test_decompression_bomb_is_not_unpacked(filled: Path, tmp_path: Path) -> None:
    bomb = tmp_path / "bombe.pdf"
    with pikepdf.open(filled) as pdf:
        stream = pdf.make_stream(b"")
        stream.write(zlib.compress(b"\0" * 400_000_000, 9), filter=pikepdf.Name.FlateDecode)
        page = pdf.pages[0]
        page.obj.Contents = pikepdf.Array([page.obj.Contents, stream])
        pdf.save(bomb)
    assert bomb.stat().st_size < 2_000_000
    result = extract(bomb)
    assert result.outcome is Outcome.READ
    assert result.value("organisation") == "Kita Gößnitz"


def test_a_failing_file_does_not_lose_rows_already_imported(filled: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    workspace.init(ws)
    first = CliRunner().invoke(cli, ["--workspace", str(ws), "import", str(filled)])
    assert first.exit_code == 0
    table = ws / "antworten" / "buendnispartner.csv"
    rows = read_csv(table)
    (tmp_path / "kaputt.pdf").write_bytes(b"%PDF-1.7\n garbage")
    second = CliRunner().invoke(cli, ["--workspace", str(ws), "import",
                                      str(tmp_path / "kaputt.pdf")])
    assert second.exit_code == 1
    assert read_csv(table) == rows


_MUTATIONS = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=_MUTATIONS, cut=st.floats(0.05, 1.0))
def test_mutated_forms_are_always_reported(filled: Path, tmp_path_factory: pytest.TempPathFactory,
                                           mutations: list[tuple[float, int]], cut: float) -> None:
    """Random byte flips and truncations of a real filled form: an answer, never a crash."""
    data = bytearray(filled.read_bytes())
    for where, byte in mutations:
        data[int(where * (len(data) - 1))] = byte
    data = data[: max(1, int(len(data) * cut))]
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "mutiert.pdf").write_bytes(bytes(data))
    workspace.init(folder / "ws")
    with Store(folder / "ws" / ".formtool" / "state.db") as store:
        run_ = Importer(folder / "ws" / "forms", store,
                        ImportOptions(output_dir=folder / "ws" / "antworten"))
        reports: list[FileReport] = []
        run_.run([folder / "mutiert.pdf"], on_file=reports.append)
    [report] = reports
    if report.status is Status.FAILED:
        assert report.reason


def test_a_repairable_file_is_read_and_says_so(filled: Path, tmp_path: Path) -> None:
    """A wrong startxref (as a careless mail client or an editor leaves it): qpdf repairs it."""
    data = filled.read_bytes()
    head = data[: data.rindex(b"startxref")]
    broken = tmp_path / "kaputt-aber-lesbar.pdf"
    broken.write_bytes(head + b"startxref\n999999\n%%EOF\n")
    result = extract(broken)
    assert result.outcome is Outcome.READ
    assert result.value("organisation") == "Kita Gößnitz"
    assert "Datei war beschädigt, wurde repariert und gelesen" in result.notes
