"""``formtool-fenster``: the page without a console window (Windows' gui-scripts entry;
a desktop shortcut runs it). The workspace is FORMTOOL_WORKSPACE, else the folder the
shortcut starts in ("Ausführen in"). There is no console to print to: everything,
errors included, is said in the page."""

from __future__ import annotations

import os
from pathlib import Path


def main() -> None:
    from formtool.web.server import serve

    root = Path(os.environ.get("FORMTOOL_WORKSPACE") or Path.cwd())
    serve(root.resolve(), say=lambda line: None)
