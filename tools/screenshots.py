"""The guide's pictures: the demo's workspace in `formtool web`, photographed in Chromium.

    .venv/bin/python tools/screenshots.py        # writes docs/bilder/*.png

Needs Debian's chromium and Playwright (as the tests do). The pictures show synthetic
contacts only (the demo's).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from webhelpers import CHROMIUM, CHROMIUM_ARGS, running  # noqa: E402

OUT = REPO / "docs" / "bilder"
PAGES = [("/", "uebersicht"), ("/kontakte", "kontakte"),
         ("/aktionen/erinnerung?liste=fachberatungen.csv", "email"),
         ("/postfach", "postfach"), ("/antworten", "antworten"), ("/website", "website"),
         ("/einstellungen", "einstellungen")]


def main() -> None:
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="formtool-bilder-"))
    try:
        demo = root / "demo"
        subprocess.run([sys.executable, "-m", "formtool", "demo", "--dir", str(demo)],
                       check=True, stdout=subprocess.DEVNULL)
        OUT.mkdir(parents=True, exist_ok=True)
        with running(demo) as web, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for width in (1280, 390):
                page = browser.new_page(viewport={"width": width, "height": 860},
                                        locale="de-DE")
                page.goto(web.url)
                for path, name in PAGES if width == 1280 else PAGES[:1]:
                    page.goto(web.base + path)
                    page.wait_for_timeout(800)  # the previews' frames are drawn
                    page.screenshot(path=str(OUT / f"{name}-{width}.png"))
                if width == 1280:
                    page.goto(web.base + PAGES[2][0])
                    page.select_option("#nur_offen", "einladung-fachberatung")
                    page.wait_for_load_state("networkidle")  # the previews laid out
                    with page.expect_navigation():
                        page.locator("form[action$='/pruefen']").evaluate(
                            "form => form.requestSubmit()")
                    assert "/bestaetigen/" in page.url, page.text_content("main")
                    page.screenshot(path=str(OUT / "senden-bestaetigen-1280.png"))
                page.close()
            browser.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(sorted(str(p.relative_to(REPO)) for p in OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
