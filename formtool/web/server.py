"""``formtool web``: the page's server – uvicorn on 127.0.0.1 only, never another
interface (there is no option for it); the port 8765, the next free one if taken, or
any with 0. It prints the address with the start token and runs until Ctrl+C or the
page's „Beenden“; a send under way then stops after the message in flight."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path

from formtool.errors import FormtoolError

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TRIES = 20  # ports tried after the default one


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1: ``port``, else (for the default) the next free."""
    candidates = [port] if port != DEFAULT_PORT else list(range(port, port + TRIES))
    last: OSError | None = None
    for candidate in candidates:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((HOST, candidate))
        except OSError as exc:
            sock.close()
            last = exc
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise FormtoolError(f"Port {candidate} lässt sich nicht öffnen: {exc.strerror}."
                                ) from None
        sock.listen(64)
        sock.set_inheritable(True)
        return sock
    why = last.strerror if last else "belegt"
    raise FormtoolError(f"Port {port} ist belegt ({why}); bitte mit --port einen anderen "
                        "wählen (oder --port 0: irgendeinen freien).")


def _log_to(root: Path) -> None:
    """Details of unexpected errors go to .formtool/web.log in the workspace (not in a
    folder that is none: its pages say so, and nothing is created there)."""
    if not (root / "formtool.toml").is_file():
        return
    state = root / ".formtool"
    state.mkdir(exist_ok=True)
    handler = logging.FileHandler(state / "web.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("formtool.web", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if name == "formtool.web" else logging.WARNING)
        logger.propagate = False


def serve(root: Path, *, port: int = DEFAULT_PORT, open_browser: bool = True,
          say: Callable[[str], None] = print) -> None:
    """Run the page for the workspace at ``root`` until Ctrl+C or „Beenden“."""
    import uvicorn

    from formtool.web.app import build
    from formtool.web.security import Keys

    keys = Keys()
    sock = bind(port)
    bound = sock.getsockname()[1]
    server: uvicorn.Server | None = None

    def stop() -> None:
        if server is not None:
            server.should_exit = True

    guard, page = build(root, keys, stop)
    guard.port = bound
    _log_to(root)
    threading.Thread(target=page.warm, daemon=True, name="warm").start()
    config = uvicorn.Config(guard, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5, log_config=None)
    server = uvicorn.Server(config)
    url = f"http://{HOST}:{bound}/?token={keys.token}"
    say(f"formtool läuft: {url}")
    say("Beenden: Strg+C (oder „Beenden“ auf der Seite).")
    if open_browser:
        threading.Timer(0.5, lambda: webbrowser.open(url)).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl+C is the usual way to end it: no error
        pass
    finally:
        page.jobs.stop_all()  # a send stops after the message in flight, recorded
        with contextlib.suppress(OSError):
            sock.close()
    say("formtool beendet.")
