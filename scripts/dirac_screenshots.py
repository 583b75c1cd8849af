"""The screenshots of ``ganx-dirac serve``'s page in the README (docs/dirac_explorer*.png),
taken in headless Chromium (Debian's ``chromium``, driven by Playwright) from a server in this
process.

    python scripts/dirac_screenshots.py                 # writes docs/dirac_explorer*.png
    python scripts/dirac_screenshots.py --out /tmp/shots --mixture-steps 3000
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

from ganx.dirac_serve import make_server

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# none against R1 at gamma 1 (past the critical 2|f'(0)| = 1: no spiral), on the same plane
COMPARE = "?loss=ns&reg=none&compare=1&loss_b=ns&reg_b=r1&weight_b=1"


def shoot(page, url: str, out: Path, mixture_steps: int) -> list[Path]:
    written = [out / "dirac_explorer.png", out / "dirac_explorer_mixture.png"]
    written.append(out / "dirac_explorer_error.png")
    page.goto(url + COMPARE)
    page.wait_for_selector("#plane[data-state=still]", timeout=120_000)
    page.locator("#dirac-view").screenshot(path=written[0])
    page.get_by_label("Regularizer (2-D)").select_option("r1")
    page.get_by_label("Steps (2-D)").fill(str(mixture_steps))
    page.get_by_label("Snapshot every N steps").fill("100")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_function(
        f"document.getElementById('m_status').textContent.includes('finished at step "
        f"{mixture_steps}')",
        timeout=1_800_000,
    )
    page.locator("#mixture-view").screenshot(path=written[1])
    page.goto(url + "?loss=ns&reg=r1&lr=-0.2")
    page.wait_for_selector("#plane[data-state=error]", timeout=60_000)
    page.screenshot(path=written[2], clip={"x": 0, "y": 0, "width": 1200, "height": 300})
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--mixture-steps", type=int, default=2000)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        sys.exit(f"dirac_screenshots: no Chromium at {args.chromium}: apt-get install -y chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    server = make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            for path in shoot(page, url, args.out, args.mixture_steps):
                print(f"dirac_screenshots: {path}")
            browser.close()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
