"""`make wheel-check`: the installed wheel serves its page – templates and static files
shipped, the start token works – then stops on Ctrl+C. Standard library only.

    python tools/web_smoke.py FORMTOOL_EXECUTABLE WORKSPACE
"""

from __future__ import annotations

import http.client
import re
import signal
import subprocess
import sys


def main() -> None:
    executable, workspace = sys.argv[1], sys.argv[2]
    server = subprocess.Popen([executable, "--workspace", workspace, "web", "--no-browser",
                               "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
        assert found, line
        port = int(found.group(1))
        host = {"Host": f"127.0.0.1:{port}"}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        connection.request("GET", f"/?token={found.group(2)}", headers=host)
        answer = connection.getresponse()
        answer.read()
        cookie = (answer.getheader("Set-Cookie") or "").split(";", 1)[0]
        for path, words in (("/", "Übersicht"), ("/static/style.css", "skip"),
                            ("/kontakte", "Kontaktliste")):
            connection.request("GET", path, headers={**host, "Cookie": cookie})
            response = connection.getresponse()
            body = response.read().decode("utf-8")
            assert response.status == 200 and words in body, (path, response.status)
        print(f"formtool web aus dem Wheel: Seiten und Dateien da (Port {port}).")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
