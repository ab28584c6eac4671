"""Benchmark: personal pre-filled forms, side by side with reportlab and PyPDFForm.

    .venv/bin/pip install PyPDFForm      # the reference filler (PyPI)
    .venv/bin/python bench/bench_personalise.py [N]     (default 10,000)

Measured in one run, on the partner form (29 fields, 11 pre-filled from the contact):
  * formtool: N personal forms written to disk with their response ids in state.db
    (blank laid out once, an incremental update per copy), in fresh processes at N/5
    and N to show memory is flat in the number of contacts;
  * laying each form out again with reportlab (formtool's own layout), on N/50;
  * PyPDFForm's fill of the blank, on N/50.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peak import peak_rss_mib

from formtool import workspace
from formtool.mail import contacts
from formtool.pdf import formdef, layout
from formtool.state.store import Store
from formtool.usecases import personal

FORM = workspace.shipped_forms_dir() / "buendnispartner.toml"


def make_contacts(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "anrede", "vorname", "nachname", "organisation", "strasse", "plz",
                         "ort", "landkreis", "email", "telefon"])
        for i in range(count):
            writer.writerow([f"K{i:06d}", "Frau" if i % 2 else "Herr", "Jana", f"Köhler-{i}",
                             f"Kita Nr. {i} Gößnitz", f"Schloßberg {i % 200}", "04639",
                             "Gößnitz", "Altenburger Land", f"kita{i}@traeger{i % 97}.example",
                             "03447 123456"])
    return path


def child(count: int) -> dict[str, float]:
    form = formdef.load(FORM)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        contact_list = contacts.read(make_contacts(root / "kontakte.csv", count))
        start = time.perf_counter()
        blank = layout.render(form, alliance=workspace.DEFAULT_ALLIANCE)
        with Store(root / "state.db") as store:
            issuer = personal.PersonalForms(form, blank, store, root / "formulare", "bench")
            made = sum(1 for _ in issuer.issue_all(contact_list))
        elapsed = time.perf_counter() - start
    assert made == count
    return {"rate": count / elapsed,
            "peak_mib": peak_rss_mib()}


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    for n in (count // 5, count):
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], check=True,
                             capture_output=True, text=True)
        r = json.loads(out.stdout)
        print(f"formtool (incremental update)  {n:6d} forms: {r['rate']:7.0f} forms/s, "
              f"peak RSS {r['peak_mib']:.0f} MiB")
    ours = r["rate"]

    form = formdef.load(FORM)
    few = max(count // 50, 20)
    people = list(contacts.read(make_contacts(Path(tempfile.mkdtemp()) / "k.csv", few)))
    start = time.perf_counter()
    for _ in people:
        layout.render(form, alliance=workspace.DEFAULT_ALLIANCE)
    lay = few / (time.perf_counter() - start)
    print(f"reportlab layout per form      {few:6d} forms: {lay:7.0f} forms/s")

    from PyPDFForm import PdfWrapper

    blank = layout.render(form, alliance=workspace.DEFAULT_ALLIANCE)
    start = time.perf_counter()
    for person in people:
        values = personal.prefill_values(form, person)
        values = {k: v for k, v in values.items() if k != "anrede"}  # PyPDFForm: index only
        PdfWrapper(io.BytesIO(blank).getvalue()).fill(values).read()
    pypdfform = few / (time.perf_counter() - start)
    print(f"PyPDFForm fill                 {few:6d} forms: {pypdfform:7.0f} forms/s")
    print(f"formtool vs reportlab: {ours / lay:.0f}x; vs PyPDFForm: {ours / pypdfform:.0f}x")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]))))
    else:
        main()
