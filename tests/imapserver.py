"""A real Dovecot IMAP server on 127.0.0.1 for the tests: a test user, a Maildir under
the test's temporary folder, a self-signed certificate; started in the foreground and
stopped after the test. Needs Debian's dovecot-imapd (``make test`` installs it) and
root (Dovecot switches to the mail user)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from formtool.mail.localsmtp import free_port

USER, PASSWORD = "koordination@buendnis.example", "Postfach-Passw0rt-äöü"


class Dovecot:
    """``sent_flag``: the folder "Gesendet" exists and is flagged \\Sent (RFC 6154), as at
    most providers; without it the account has no Sent folder until a test makes one."""

    def __init__(self, certificate: tuple[Path, Path], *, sent_flag: bool = True,
                 capabilities: str = "", separator: str = "/", prefix: str = "",
                 oauth_introspection: str = "") -> None:
        """``capabilities``: what the server announces after login (Dovecot's
        imap_capability), e.g. without MOVE, as some providers' servers. ``separator``
        and ``prefix``: the folder hierarchy, e.g. "." and "INBOX." as Courier and many
        shared hosts have it."""
        dovecot = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(dovecot).exists():
            pytest.fail("dovecot is not installed: run `make test`, which installs dovecot-imapd")
        if os.geteuid() != 0:
            pytest.fail("the Dovecot tests need root (Dovecot switches to its mail user)")
        # Dovecot's own processes (its users) must reach the folder: not under pytest's
        # private (0700) temporary folders
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="formtool-dovecot-"))
        folder.chmod(0o755)
        self.folder = folder
        self.port, self.ssl_port = free_port(), free_port()
        mail_user = pwd.getpwnam("dovecot")
        for sub in ("run", "state", "home"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        os.chown(folder / "home", mail_user.pw_uid, mail_user.pw_gid)
        cert, key = certificate
        sent = ("  mailbox Gesendet {\n    special_use = \\Sent\n    auto = subscribe\n  }"
                if sent_flag else "")
        oauth = ""
        if oauth_introspection:  # Dovecot asks the tests' provider about every token
            ca = folder / "ca.pem"  # where Dovecot's auth process (its own user) can read it
            shutil.copyfile(cert, ca)
            ca.chmod(0o644)
            (folder / "oauth2.conf").write_text(f"""
introspection_mode = post
introspection_url = {oauth_introspection}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
tls_ca_cert_file = {ca}
""", encoding="utf-8")
            oauth = f"""
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {folder}/oauth2.conf
}}"""
        (folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n", encoding="utf-8")
        self.config = folder / "dovecot.conf"
        self.config.write_text(f"""
protocols = imap
listen = 127.0.0.1
{f"imap_capability = {capabilities}" if capabilities else ""}
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login{" xoauth2 oauthbearer" if oauth else ""}
{oauth}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={folder}/home/%u
}}
mail_location = maildir:~/Maildir
first_valid_uid = {mail_user.pw_uid}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
    ssl = yes
  }}
}}
namespace inbox {{
  inbox = yes
  separator = {separator}
  prefix = {prefix}
{sent}
}}
""", encoding="utf-8")
        self.dovecot = dovecot
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([self.dovecot, "-F", "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ssl_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail("Dovecot did not start: " + (self.folder / "dovecot.log").read_text(
            errors="replace")[-2000:])

    def halt(self) -> None:
        """Kill the server and its connections at once (as a crash or a network cut
        would), keeping its mail for start()."""
        import signal

        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def client(self, cafile: Path):  # type: ignore[no-untyped-def]
        import ssl

        from imapclient import IMAPClient

        client = IMAPClient("127.0.0.1", port=self.ssl_port, ssl=True, timeout=10,
                            ssl_context=ssl.create_default_context(cafile=str(cafile)))
        client.plain_login(USER, PASSWORD)  # UTF-8: the password has umlauts
        return client

    def configure(self, ws: Path, cafile: Path) -> None:
        """Point the workspace's [imap] at this server (implicit TLS)."""
        configure_imap(ws, self.ssl_port, cafile=cafile)

    def seed(self, cafile: Path, messages: list[Any]) -> None:
        """APPEND each message (bytes or an EmailMessage) to INBOX."""
        with self.client(cafile) as client:
            for msg in messages:
                client.append("INBOX", msg if isinstance(msg, bytes) else msg.as_bytes())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def configure_imap(ws: Path, port: int, *, security: str = "ssl", cafile: Path | None = None,
                   timeout: float = 10) -> None:
    """Add an [imap] table for a server on 127.0.0.1 to the workspace's formtool.toml."""
    config = ws / "formtool.toml"
    config.write_text(config.read_text(encoding="utf-8") + f"""
[imap]
host = "127.0.0.1"
port = {port}
security = "{security}"
user = "{USER}"
ca_file = "{cafile or ''}"
timeout = {timeout:g}
""", encoding="utf-8")
