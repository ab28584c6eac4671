"""Benchmark: the web page with 60,000 contacts and 60,000 answers – how fast each page
answers, side by side with the CLI doing the same reading (`formtool status`, and a
`mail preview --to` of one contact, which reads the whole list), and what an idle
server costs.

    .venv/bin/python bench/bench_web.py [CONTACTS]      (default 60000)

The server is the real `formtool web` in its own process; each page is fetched
ROUNDS times over one keep-alive connection and the median is reported (this machine
is shared: compare the ratios). Idle: the server's CPU time over 5 s with no request.
"""

from __future__ import annotations

import csv
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROUNDS = 7
PAGES = ["/", "/kontakte", "/kontakte?liste=kontakte.csv&seite=600", "/formulare",
         "/aktionen", "/antworten", "/antworten?tabelle=buendnispartner&seite=1000",
         "/postfach", "/einstellungen", "/vergessen"]


def workspace(root: Path, count: int) -> None:
    subprocess.run([sys.executable, "-m", "formtool", "init", str(root)], check=True,
                   stdout=subprocess.DEVNULL)
    (root / "contacts" / "fachberatungen.csv").unlink()
    with (root / "contacts" / "kontakte.csv").open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, delimiter=";")
        out.writerow(["id", "anrede", "vorname", "nachname", "organisation", "strasse", "plz",
                      "ort", "email"])
        for i in range(count):
            out.writerow([f"K-{i:06d}", "Frau" if i % 2 else "Herr", "Vorname", f"Name{i}",
                          f"Kita Nummer {i}", "Hauptstraße 1", f"{7000 + i % 90000:05d}",
                          "Erfurt", f"person{i}@kita{i % 997}.example"])
    answers = root / "antworten"
    answers.mkdir()
    with (answers / "buendnispartner.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh, delimiter=";")
        out.writerow(["Name der Organisation", "E-Mail", "Ort", "Kreis", "Zustimmung"])
        for i in range(count):
            out.writerow([f"Kita Nummer {i}", f"person{i}@kita{i % 997}.example", "Erfurt",
                          "Mitte", "ja"])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000
    root = Path(tempfile.mkdtemp(prefix="formtool-bench-web-"))
    try:
        workspace(root / "ws", count)
        ws = root / "ws"
        server = subprocess.Popen([sys.executable, "-m", "formtool", "--workspace", str(ws),
                                   "web", "--no-browser", "--port", "0"],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        found = re.search(r"127\.0\.0\.1:(\d+)/\?token=(\S+)", server.stdout.readline())
        assert found
        port, token = int(found.group(1)), found.group(2)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        host = {"Host": f"127.0.0.1:{port}"}
        connection.request("GET", f"/?token={token}", headers=host)
        answer = connection.getresponse()
        answer.read()
        cookie = (answer.getheader("Set-Cookie") or "").split(";", 1)[0]
        time.sleep(3)  # as a person: the page opens, a few seconds later the first click
        print(f"{count:,} contacts, {count:,} answers; median of {ROUNDS} requests "
              "(the first one, with cold caches, shown apart; 3 s after the start, in "
              "which the server reads the first list)")
        print(f"{'page':48} {'first ms':>9} {'median ms':>10}")
        for path in PAGES:
            times = []
            for _ in range(ROUNDS):
                start = time.perf_counter()
                connection.request("GET", path, headers={**host, "Cookie": cookie})
                response = connection.getresponse()
                response.read()
                assert response.status == 200, (path, response.status)
                times.append((time.perf_counter() - start) * 1000)
            print(f"{path:48} {times[0]:9.0f} {statistics.median(times[1:]):10.0f}")
        before = cpu_seconds(server.pid)
        time.sleep(5)
        idle = cpu_seconds(server.pid) - before
        print(f"idle server: {idle * 1000:.0f} ms CPU in 5 s")
        for label, argv in (
                ("CLI: formtool status", ["status"]),
                ("CLI: formtool mail preview --to K-059999",
                 ["mail", "preview", "einladung-fachberatung", "--to", f"K-{count - 1:06d}"])):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "formtool", "--workspace", str(ws), *argv],
                           check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"{label:48} {'':9} {(time.perf_counter() - start) * 1000:10.0f}")
        server.send_signal(2)
        server.wait(timeout=30)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
