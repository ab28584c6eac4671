"""Benchmark: sending, side by side with the mailmerge CLI and a bare smtplib loop.

    .venv/bin/pip install mailmerge        # the reference tool (PyPI)
    .venv/bin/python bench/bench_send.py [N]     (default 1,000)

The sink is aiosmtpd on 127.0.0.1 in its own process, behaving like a mail
provider: STARTTLS with a test certificate, AUTH, and 20 ms before each reply
(a WAN round trip). Every
message carries a 60 kB PDF. Rate limits are lifted. Measured in one run:
  1. mailmerge (reconnects, negotiates TLS and logs in for every message), on N/4;
  2. formtool over 1, 4 and 8 connections, N messages each;
  3. with no delay: a bare smtplib loop over one reused connection sending the same
     (pre-built) messages, against formtool over 1 connection, for three sinks: one
     that parses each message (aiosmtpd's Message handler, like a provider's filters),
     one that writes each to disk, one that discards it (the client's cost laid bare).
     Three rounds, medians (this machine's timings vary by tens of per cent between
     runs); for reference also the bare loop with TCP_NODELAY, which formtool sets;
  4. peak RSS of formtool sending N/2, 2N and 8N messages (no delay), in fresh processes.
"""

from __future__ import annotations

import csv
import json
import os
import smtplib
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiosmtpd import handlers
from peak import peak_rss_mib

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mailhelpers import USER, make_certificate
from smtpserver import LocalSmtpServer, Mailbox

from formtool import workspace
from formtool.usecases import mailing, sending

DELAY = 0.020
PASSWORD = "bench-Passwort-42"  # ASCII: mailmerge (smtplib.login) cannot send umlauts
TEMPLATE = """Subject: Einladung ins Bündnis, {{ organisation }}
Attach: anhang.pdf

{{ anrede_brief }}

wir laden Sie herzlich ein, im **Bündnis** mitzuwirken. Die Beitrittserklärung liegt bei.

Mit freundlichen Grüßen
"""


class ParsingMailbox(handlers.Message):
    """Parses every message, as a provider's filters do (aiosmtpd's own Message handler)."""

    def handle_message(self, message):  # type: ignore[no-untyped-def]
        message.get_payload()


class CountingMailbox(Mailbox):
    """Counts without keeping 60 kB per message."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.count += 1
        return "250 2.0.0 Ok"


def make_workspace(root: Path, count: int, port: int, certfile: Path, connections: int) -> Path:
    workspace.init(root)
    (root / "formtool.toml").write_text(f"""
[sender]
name = "Bündnis Kita-Qualität Thüringen"
email = "koordination@buendnis.example"
[smtp]
host = "127.0.0.1"
port = {port}
security = "starttls"
user = "{USER}"
ca_file = "{certfile}"
connections = {connections}
max_per_connection = 100000
[limits]
per_minute = 0
per_hour = 0
per_day = 0
""", encoding="utf-8")
    (root / "templates" / "bench.md.j2").write_text(TEMPLATE, encoding="utf-8")
    (root / "anhaenge").mkdir()
    (root / "anhaenge" / "anhang.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(60 * 1024 - 9))
    with (root / "contacts" / "fachberatungen.csv").open("w", newline="",
                                                        encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "anrede", "nachname", "organisation", "email"])
        for i in range(count):
            writer.writerow([f"K{i:06d}", "Frau" if i % 2 else "Herr", f"Müller-{i}",
                             f"Kita Nr. {i} Gößnitz", f"kita{i}@traeger{i % 97}.example"])
    return root


def send_formtool(root: Path) -> float:
    """The library's use case, as `mail send` runs it: check and render all, then send."""
    ws = workspace.load(root)
    start = time.perf_counter()
    with sending.prepare(ws, "bench", campaign="bench") as plan:
        summary = plan.send(PASSWORD).summary
    elapsed = time.perf_counter() - start
    assert summary.sent and not summary.failed, summary
    return summary.sent / elapsed


def send_formtool_process(root: Path) -> float:
    """`formtool mail send --yes` as a user runs it: the whole process, start-up included."""
    env = {**os.environ, "FORMTOOL_SMTP_PASSWORD": PASSWORD}
    count = sum(1 for _ in (root / "contacts" / "fachberatungen.csv").open()) - 1
    start = time.perf_counter()
    result = subprocess.run([str(Path(sys.executable).with_name("formtool")), "--workspace",
                             str(root), "mail", "send", "bench", "--yes"], env=env,
                            capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"formtool failed:\n{result.stdout[-2000:]}")
    return count / elapsed


def send_mailmerge(root: Path, count: int, port: int) -> float:
    folder = root / "mailmerge"
    folder.mkdir()
    (folder / "server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = STARTTLS\n"
        f"username = {USER}\n", encoding="utf-8")
    (folder / "template.txt").write_text(
        "TO: {{email}}\nSUBJECT: Einladung ins Bündnis, {{organisation}}\n"
        "FROM: koordination@buendnis.example\nATTACHMENT: ../anhaenge/anhang.pdf\n\n"
        "Guten Tag,\n\nwir laden Sie herzlich ein, im Bündnis mitzuwirken.\n", encoding="utf-8")
    with (root / "contacts" / "fachberatungen.csv").open(encoding="utf-8") as src, \
            (folder / "db.csv").open("w", encoding="utf-8", newline="") as dst:
        for i, line in enumerate(src):
            if i > count:
                break
            dst.write(line)
    start = time.perf_counter()
    # start_new_session: no controlling terminal, so getpass reads the password from stdin
    result = subprocess.run([str(Path(sys.executable).with_name("mailmerge")), "--no-dry-run",
                    "--no-limit", "--template", "template.txt", "--database", "db.csv",
                    "--config", "server.conf", "--output-format", "raw"],
                            cwd=folder, input=PASSWORD + "\n", text=True,
                            capture_output=True, start_new_session=True)
    if result.returncode != 0:
        raise SystemExit(f"mailmerge failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return count / (time.perf_counter() - start)


def bare_smtplib(root: Path, port: int, certfile: Path, *, nodelay: bool = False) -> float:
    """The ceiling: the same messages, pre-built, over one reused connection."""
    ws = workspace.load(root)
    run = mailing.open_mailing(ws, "bench", None, "bare")
    prepared = [(c.email, run.built(c).data) for c in run.contacts]
    context = ssl.create_default_context(cafile=str(certfile))
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        if nodelay and smtp.sock is not None:
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        smtp.starttls(context=context)
        smtp.login(USER, PASSWORD)
        for address, data in prepared:
            smtp.sendmail("koordination@buendnis.example", [address], data)
    return len(prepared) / (time.perf_counter() - start)


def child(count: int, port: int, certfile: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_workspace(Path(tmp) / "ws", count, port, Path(certfile), 1)
        rate = send_formtool(root)
    peak = peak_rss_mib()
    print(json.dumps({"rate": rate, "peak_mib": peak}))


class Sink:
    """The sink in its own process, as a provider's server is on another machine."""

    def __init__(self, certfile: Path, keyfile: Path, delay: float, kind: str = "store"
                 ) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--sink", str(certfile), str(keyfile), str(delay), kind],
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait()


def serve(certfile: str, keyfile: str, delay: float, store: str) -> None:
    """A provider keeps what it accepts: with ``store``, every message is written to disk."""
    with tempfile.TemporaryDirectory() as spool:
        mailbox = {"store": Mailbox(Path(spool)), "parse": ParsingMailbox(),
                   "discard": CountingMailbox()}[store]
        with LocalSmtpServer(mailbox, security="starttls", certfile=Path(certfile),
                             keyfile=Path(keyfile), auth=(USER, PASSWORD), delay=delay) as smtp:
            print(smtp.port, flush=True)
            while True:
                time.sleep(3600)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        certfile, keyfile = make_certificate(tmpdir)

        with Sink(certfile, keyfile, DELAY) as sink:
            few = max(count // 4, 50)
            root = make_workspace(tmpdir / "mm", few, sink.port, certfile, 1)
            mm = send_mailmerge(root, few, sink.port)
            print(f"sink 20 ms/reply  mailmerge           {few:5d} msgs: {mm:6.1f} msg/s")
            whole = make_workspace(tmpdir / "whole", 200, sink.port, certfile, 8)
            rate = send_formtool_process(whole)
            print(f"sink 20 ms/reply  formtool mail send, whole process, 8 conn., 200 msgs: "
                  f"{rate:6.1f} msg/s = {rate / mm:4.1f}x mailmerge")
            for connections in (1, 4, 8):
                root = make_workspace(tmpdir / f"c{connections}", count, sink.port, certfile,
                                      connections)
                rate = send_formtool(root)
                print(f"sink 20 ms/reply  formtool {connections} conn.    {count:5d} msgs: "
                      f"{rate:6.1f} msg/s = {rate / mm:4.1f}x mailmerge")

        for kind in ("parse", "store", "discard"):
            rates: dict[str, list[float]] = {"bare": [], "nodelay": [], "ours": []}
            with Sink(certfile, keyfile, 0.0, kind) as sink:
                for round_ in range(3):
                    root = make_workspace(tmpdir / f"bare{kind}{round_}", count, sink.port,
                                          certfile, 1)
                    rates["bare"].append(bare_smtplib(root, sink.port, certfile))
                    rates["nodelay"].append(bare_smtplib(root, sink.port, certfile,
                                                         nodelay=True))
                    root = make_workspace(tmpdir / f"ours{kind}{round_}", count, sink.port,
                                          certfile, 1)
                    rates["ours"].append(send_formtool(root))
            bare, nodelay, ours = (statistics.median(rates[k]) for k in ("bare", "nodelay",
                                                                          "ours"))
            rounds = " ".join(f"{o / b:.0%}" for o, b in zip(rates["ours"], rates["bare"],
                                                             strict=True))
            print(f"{kind:8s}no delay  bare smtplib loop   {count:5d} msgs: {bare:6.1f} msg/s")
            print(f"{kind:8s}no delay  same, TCP_NODELAY   {count:5d} msgs: {nodelay:6.1f} msg/s")
            print(f"{kind:8s}no delay  formtool 1 conn.    {count:5d} msgs: {ours:6.1f} msg/s "
                  f"= {100 * ours / bare:.0f} % of the bare loop, {100 * ours / nodelay:.0f} % "
                  f"with TCP_NODELAY (rounds: {rounds})")
        with Sink(certfile, keyfile, 0.0) as sink:
            for n in (count // 2, count * 2, count * 8):
                out = subprocess.run([sys.executable, __file__, "--child", str(n),
                                      str(sink.port), str(certfile)], check=True,
                                     capture_output=True, text=True)
                result = json.loads(out.stdout)
                print(f"memory            formtool 1 conn.    {n:5d} msgs: peak RSS "
                      f"{result['peak_mib']:.0f} MiB ({result['rate']:.1f} msg/s)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 6 and sys.argv[1] == "--sink":
        serve(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
    else:
        main()
