"""An IMAP server that misbehaves on cue, on 127.0.0.1 (plain: formtool allows security
"none" on this machine only). Enough IMAP to get a client logged in and into a folder;
then, by ``mode``:

* ``dribble-greeting``: the greeting comes a byte every 0.3 s, never ending;
* ``dribble-fetch``: the FETCH of message bodies starts, then a byte every 0.3 s;
* ``stall-fetch``: the FETCH of message bodies is never answered;
* ``garbage``: the SEARCH is answered with bytes that are no IMAP at all;
* ``refuse``: every command after login gets ``NO``.
"""

from __future__ import annotations

import socketserver
import threading
import time

from formtool.mail.localsmtp import free_port

MESSAGE = (b"From: kita@traeger.example\r\nSubject: AW: Einladung\r\n"
           b"Message-ID: <x@traeger.example>\r\n\r\nHallo\r\n")


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def _send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def _dribble(self) -> None:
        while not self.server.stopping.is_set():
            self._send(b"x")
            time.sleep(0.3)

    def handle(self) -> None:
        mode = self.server.mode
        try:
            if mode == "dribble-greeting":
                self._send(b"* OK ")
                self._dribble()
                return
            self._send(b"* OK [CAPABILITY IMAP4rev1 UIDPLUS MOVE] ready\r\n")
            while not self.server.stopping.is_set():
                line = self.rfile.readline()
                if not line:
                    return
                tag, _, rest = line.decode("latin-1").strip().partition(" ")
                command = rest.split(" ", 1)[0].upper()
                arguments = rest.upper()
                if command == "UID":
                    command = "UID " + arguments.split(" ")[1]
                self.server.seen.append(command)
                if command == "CAPABILITY":
                    self._send(f"* CAPABILITY IMAP4rev1 UIDPLUS MOVE\r\n{tag} OK done\r\n"
                               .encode())
                elif command == "LOGIN":
                    self._send(f"{tag} OK logged in\r\n".encode())
                elif command == "LOGOUT":
                    self._send(f"* BYE\r\n{tag} OK bye\r\n".encode())
                    return
                elif mode == "refuse":
                    self._send(f"{tag} NO [UNAVAILABLE] not today\r\n".encode())
                elif command in ("SELECT", "EXAMINE"):
                    self._send(f"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n"
                               f"{tag} OK [READ-WRITE] selected\r\n".encode())
                elif command in ("SEARCH", "UID SEARCH"):
                    if mode == "garbage":
                        self._send(b"\x00\xff\xfe not imap at all \x1b[2J\r\n")
                        continue
                    self._send(f"* SEARCH 1\r\n{tag} OK done\r\n".encode())
                elif command == "UID FETCH" and "RFC822.SIZE" in arguments:
                    self._send(f"* 1 FETCH (UID 1 RFC822.SIZE {len(MESSAGE)})\r\n"
                               f"{tag} OK done\r\n".encode())
                elif command == "UID FETCH":
                    if mode == "stall-fetch":
                        self.server.stopping.wait()
                        return
                    self._send(f"* 1 FETCH (UID 1 BODY[] {{{len(MESSAGE)}}}\r\n".encode())
                    self._dribble()
                    return
                else:
                    self._send(f"{tag} OK done\r\n".encode())
        except OSError:  # the client cut the connection
            return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, mode: str) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.mode = mode
        self.stopping = threading.Event()
        self.seen: list[str] = []


class BadImap:
    """``with BadImap("dribble-fetch") as server:`` – ``server.port``."""

    def __init__(self, mode: str) -> None:
        self.port = free_port()
        self.server = _Server(self.port, mode)

    def __enter__(self) -> BadImap:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stopping.set()
        self.server.shutdown()
        self.server.server_close()


__all__ = ["BadImap"]
