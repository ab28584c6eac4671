"""Benchmark: `formtool mail fetch` from a local Dovecot, beside a bare fetch-and-parse loop.

    .venv/bin/python bench/bench_fetch.py [N]      (default 1,000; needs root and
                                                    dovecot-imapd, as the tests do)

N messages (one in three with a filled PDF form attached, the others replies) are
appended to a fresh Dovecot mailbox, twice (one copy per contender). Measured in one run:
  * the bare loop: IMAPClient fetches every message (BODY.PEEK[], batches of 50) and
    parses it with the email package – the least any reader of the mailbox does;
  * formtool mail fetch, whole process: fetching, classifying, saving and importing the
    forms, recording each message, moving the handled ones to formtool/erledigt.
Prints messages per second, the ratio, and formtool's peak RSS at N/5 and N (flat).
"""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from imapserver import PASSWORD, USER, Dovecot
from mailhelpers import make_certificate
from peak import run_measured


def _messages(count: int, pdf: bytes) -> list[bytes]:
    out = []
    for i in range(count):
        msg = EmailMessage()
        msg["From"] = f"kita{i}@traeger.example"
        msg["To"] = USER
        msg["Subject"] = f"AW: Einladung ({i})"
        msg["Message-ID"] = f"<bench-{i}@traeger.example>"
        msg["In-Reply-To"] = f"<inv-{i}@buendnis.example>"
        msg.set_content("Vielen Dank, anbei unser Formular.\n" + "Gruß\n" * 5)
        if i % 3 == 0:
            msg.add_attachment(pdf, maintype="application", subtype="pdf",
                               filename="Beitrittserklärung Bündnispartner.pdf")
        out.append(msg.as_bytes())
    return out


def _filled_form(folder: Path) -> bytes:
    import pikepdf

    from formtool import workspace
    from formtool.pdf import formdef, layout

    form = formdef.load(workspace.shipped_forms_dir() / "buendnispartner.toml")
    blank = layout.write_blank(form, folder / "blank.pdf", alliance="Bündnis")
    with pikepdf.open(blank) as pdf:
        for field in pdf.Root.AcroForm.Fields:
            if str(field.get("/T")) == "organisation":
                field.V = pikepdf.String("Kita Gößnitz")
        pdf.save(folder / "filled.pdf")
    return (folder / "filled.pdf").read_bytes()


def bare(server: Dovecot, cafile: Path, folder: str) -> float:
    """Messages per second: fetch everything in batches and parse it."""
    with server.client(cafile) as client:
        client.select_folder(folder, readonly=True)
        start = time.perf_counter()
        uids = client.search(["ALL"])
        for i in range(0, len(uids), 50):
            for data in client.fetch(uids[i:i + 50], ["BODY.PEEK[]"]).values():
                email.message_from_bytes(data[b"BODY[]"], policy=email.policy.default)
        return len(uids) / (time.perf_counter() - start)


def ours(server: Dovecot, cafile: Path, folder: str, count: int) -> tuple[float, float]:
    """Messages per second and peak RSS (MiB) of `formtool mail fetch` on ``folder``."""
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        formtool = str(Path(sys.executable).with_name("formtool"))
        subprocess.run([formtool, "init", str(ws)], check=True, capture_output=True)
        with (ws / "formtool.toml").open("a", encoding="utf-8") as fh:
            fh.write(f'\n[imap]\nhost = "127.0.0.1"\nport = {server.ssl_port}\n'
                     f'security = "ssl"\nuser = "{USER}"\nca_file = "{cafile}"\n'
                     f'folder = "{folder}"\n')
        env = {**os.environ, "FORMTOOL_IMAP_PASSWORD": PASSWORD}
        elapsed, peak = run_measured([formtool, "--workspace", str(ws), "mail", "fetch"], env)
    return count / elapsed, peak


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        cafile, _ = certificate = make_certificate(Path(tmp))
        server = Dovecot(certificate)
        try:
            pdf = _filled_form(Path(tmp))
            for n in (count // 5, count):
                batch = _messages(n, pdf)
                with server.client(cafile) as client:
                    for name in (f"bare{n}", f"ours{n}"):
                        client.create_folder(name)
                        for data in batch:
                            client.append(name, data)
                rate_bare = bare(server, cafile, f"bare{n}")
                rate_ours, peak = ours(server, cafile, f"ours{n}", n)
                print(f"{n:6d} messages: bare fetch+parse {rate_bare:7.0f}/s, formtool mail "
                      f"fetch (whole process) {rate_ours:6.0f}/s = {rate_ours / rate_bare:.2f}x,"
                      f" peak RSS {peak:.0f} MiB")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
