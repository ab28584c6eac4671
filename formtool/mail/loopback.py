"""The one-shot server on 127.0.0.1 that the browser is sent back to after signing in
(RFC 8252 §7.3): it takes the first request that carries ``code`` or ``error`` and
shows a short German page; nothing else is served."""

from __future__ import annotations

import http.server
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_PAGE = """<!doctype html>
<html lang="de"><head><meta charset="utf-8"><title>formtool</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""


class Catcher:
    """``with Catcher() as c: … c.redirect_uri … c.wait(seconds)`` → the query's
    parameters, or None when nothing came in time."""

    def __init__(self) -> None:
        self._found: dict[str, str] | None = None
        self._arrived = threading.Event()
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                params = dict(parse_qsl(urlsplit(self.path).query))
                if urlsplit(self.path).path != "/" or not ("code" in params
                                                          or "error" in params):
                    self.send_error(404)
                    return
                ok = "code" in params
                body = _PAGE.format(
                    title="Angemeldet" if ok else "Anmeldung nicht abgeschlossen",
                    text=("formtool hat die Anmeldung erhalten. Dieses Fenster kann "
                          "geschlossen werden." if ok else
                          "Die Anmeldung wurde abgebrochen; formtool sagt im Fenster, "
                          "was zu tun ist.")).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.end_headers()
                self.wfile.write(body)
                if catcher._found is None:
                    catcher._found = params
                    catcher._arrived.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the query holds the code: never on the terminal

        self._server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="oauth-loopback")

    def __enter__(self) -> Catcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, seconds: float) -> dict[str, str] | None:
        self._arrived.wait(seconds)
        return self._found
