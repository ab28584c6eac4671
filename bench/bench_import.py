"""Benchmark: importing returned forms, side by side with bare loops, pypdf and pdftk.

    .venv/bin/python bench/bench_import.py [N]      (default 10,000)

First, the whole ``formtool import DIR`` process (start-up included, both cores) on
3,000 distinct forms filled by pypdf (as a recipient's tool writes them), against a
warm, one-core bare pikepdf loop that opens each file and reads /T and /V of every
field (the floor of any import that reads the files with qpdf), and against the least
a correct reader must also read (field types, the buttons' appearance states).

Then makes N distinct filled copies of the partner form (cached in bench/.cache), and
measures in one run:
  * formtool's import (read, identify, normalise, validate, append to the CSV,
    record in state.db), in a fresh process, at N and at N/5 files, to show
    memory is flat in the number of files;
  * a plain ``PdfReader(f).get_fields()`` loop with pypdf (on N/5 files);
  * ``pdftk dump_data_fields_utf8`` per file (on 100 files: it starts a JVM each time).
Prints forms per second and peak RSS (the process and its workers).
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peak import peak_rss_mib, run_measured

CACHE = Path(__file__).parent / ".cache"


def _cache(name: str, count: int) -> tuple[Path, Path | None]:
    """The cached folder; and a fresh blank form when the folder must be made anew."""
    from formtool import workspace
    from formtool.pdf import formdef, layout

    folder = CACHE / f"{name}-{count}"
    if folder.is_dir() and len(list(folder.glob("*.pdf"))) == count:
        return folder, None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    form = formdef.load(workspace.shipped_forms_dir() / "buendnispartner.toml")
    blank = CACHE / "blank.pdf"
    layout.write_blank(form, blank, alliance=workspace.DEFAULT_ALLIANCE)
    return folder, blank


def make_forms(count: int) -> Path:
    import pikepdf

    folder, blank = _cache("import", count)
    if blank is None:
        return folder
    with pikepdf.open(blank) as pdf:
        fields = {str(f.get("/T")): f for f in pdf.Root.AcroForm.Fields}
        for i in range(count):
            for name, value in (("organisation", f"Kita Nr. {i} Gößnitz"),
                                ("email", f"kita{i}@traeger.example"), ("plz", "04639"),
                                ("response_id", f"BENCH{i:08d}"), ("datum", "3.2.2026"),
                                ("thema_sonstiges", "Zeile eins\nZeile zwei – ü")):
                fields[name].V = pikepdf.String(value)
            fields["thema_fachkraefte"].V = pikepdf.Name("/Yes" if i % 2 else "/Off")
            pdf.save(folder / f"rueck-{i:05d}.pdf")
    return folder


def make_pypdf_forms(count: int) -> Path:
    """``count`` distinct forms filled by pypdf (whole rewrites, as pypdf-based tools save)."""
    from pypdf import PdfReader, PdfWriter

    folder, blank = _cache("pypdf", count)
    if blank is None:
        return folder
    reader = PdfReader(blank)
    for i in range(count):
        writer = PdfWriter(clone_from=reader)
        values = {"organisation": f"Kita Nr. {i} Gößnitz", "email": f"kita{i}@traeger.example",
                  "plz": "04639", "ort": "Gößnitz", "response_id": f"PYPDF{i:07d}",
                  "datum": "3.2.2026", "thema_sonstiges": "Zeile eins\nZeile zwei – ü",
                  "kreis": "/partner", "thema_fachkraefte": "/Yes" if i % 2 else "/Off"}
        for page in writer.pages:
            writer.update_page_form_field_values(page, values, auto_regenerate=False)
        with (folder / f"pypdf-{i:05d}.pdf").open("wb") as fh:
            writer.write(fh)
    return folder


def bare_pikepdf(paths: list[Path], *, least: bool = False) -> float:
    """Warm, one core: open each file, read /T and /V of every field. Files per second.

    ``least``: also what any correct reader must read on top: /FT, and each button
    widget's /AP /N states and /AS (a checkbox's on-state is whatever its appearance
    names). No inheritance, no orphaned widgets, no values normalised: the ceiling of
    an import on one core."""
    import pikepdf

    for path in paths[:50]:  # warm the page cache and the library
        path.read_bytes()
    start = time.perf_counter()
    for path in paths:
        with pikepdf.open(path) as pdf:
            for field in pdf.Root.AcroForm.Fields:
                field.get("/T")
                field.get("/V")
                if least and field.get("/FT") == "/Btn":
                    kids = field.get("/Kids")
                    for widget in kids if kids is not None else [field]:
                        appearance = widget.get("/AP")
                        normal = appearance.get("/N") if appearance is not None else None
                        if normal is not None:
                            list(normal.keys())
                        widget.get("/AS")
    return len(paths) / (time.perf_counter() - start)


def whole_import(folder: Path) -> tuple[float, float]:
    """`formtool import DIR` as a user runs it, in a fresh workspace: files per second
    and peak RSS (MiB, the process and its largest worker)."""
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        formtool = str(Path(sys.executable).with_name("formtool"))
        subprocess.run([formtool, "init", str(ws)], check=True, capture_output=True)
        count = len(list(folder.glob("*.pdf")))
        elapsed, peak = run_measured([formtool, "--workspace", str(ws), "import", str(folder)])
    return count / elapsed, peak


def peak_mib() -> float:
    """This process's peak plus its largest worker's (workers report theirs at exit)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return peak_rss_mib() + children


def run_import(folder: Path, count: int) -> dict[str, float]:
    """Child process: a formtool import of the first ``count`` files into a new workspace."""
    from formtool import workspace
    from formtool.state.store import Store
    from formtool.usecases import importing as importer

    paths = sorted(folder.glob("*.pdf"))[:count]
    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace.init(Path(tmp)) and workspace.load(Path(tmp))
        with Store(ws.state_dir / "state.db") as store:
            run = importer.Importer(ws.forms_dir, store,
                                    importer.ImportOptions(output_dir=ws.root / "antworten"))
            start = time.perf_counter()
            counts = run.run(paths)
            elapsed = time.perf_counter() - start
        new = (importer.Status.IMPORTED, importer.Status.WITH_PROBLEMS)
        assert sum(counts[s] for s in new) == len(paths), counts
    return {"count": count, "seconds": elapsed, "peak_mib": peak_mib()}


def child(folder: Path, count: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", str(folder), str(count)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    start = time.perf_counter()
    filled = make_pypdf_forms(3000)
    print(f"3000 forms filled by pypdf ready in {filled} ({time.perf_counter() - start:.1f} s)")
    files = sorted(filled.glob("*.pdf"))
    rounds = [(whole_import(filled)[0], bare_pikepdf(files), bare_pikepdf(files, least=True))
              for _ in range(3)]
    ours, bare, least = (sorted(r[i] for r in rounds)[1] for i in (0, 1, 2))  # medians
    print(f"formtool import DIR (whole process, 2 cores)  3000 files: {ours:7.0f} forms/s")
    print(f"bare pikepdf /T /V loop (warm, 1 core)        3000 files: {bare:7.0f} forms/s"
          f"  -> formtool = {ours / bare:.2f}x the bare loop (rounds: "
          + " ".join(f"{o / b:.2f}" for o, b, _ in rounds) + ")")
    print(f"least correct reader (warm, 1 core)           3000 files: {least:7.0f} forms/s"
          f"  = {least / bare:.2f}x the bare loop")
    if count == 0:
        return
    start = time.perf_counter()
    folder = make_forms(count)
    print(f"{count} filled forms ready in {folder} ({time.perf_counter() - start:.1f} s)")
    paths = sorted(folder.glob("*.pdf"))

    results = []
    for n in (count // 5, count):
        r = child(folder, n)
        results.append(r)
        print(f"formtool import      {n:6d} files: {n / r['seconds']:7.0f} forms/s, "
              f"peak RSS {r['peak_mib']:.0f} MiB (process + workers)")

    from pypdf import PdfReader

    sample = paths[: count // 5]
    start = time.perf_counter()
    for path in sample:
        PdfReader(path).get_fields()
    pypdf_rate = len(sample) / (time.perf_counter() - start)
    print(f"pypdf get_fields()   {len(sample):6d} files: {pypdf_rate:7.0f} forms/s")

    few = paths[:100]
    start = time.perf_counter()
    for path in few:
        subprocess.run(["pdftk", str(path), "dump_data_fields_utf8"], check=True,
                       capture_output=True)
    pdftk_rate = len(few) / (time.perf_counter() - start)
    print(f"pdftk dump (per file){len(few):6d} files: {pdftk_rate:7.1f} forms/s")

    ours = count / results[-1]["seconds"]
    print(f"formtool vs pypdf loop: {ours / pypdf_rate:.1f}x; vs pdftk: {ours / pdftk_rate:.0f}x")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(run_import(Path(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
