"""``ganx-dirac serve``'s page in a real headless Chromium (Playwright through Debian's
``chromium``: Playwright's own browser download needs a CDN). Without Chromium these tests are
skipped, naming the install command; ``.ci/run`` installs it, so CI runs them."""

import csv
import io
import json
import os
import time
import urllib.request
from pathlib import Path

import pytest
from explorer_server import get_json, running_explorer

pytest.importorskip("playwright", reason="pip install -e '.[dev]' (playwright is a dev extra)")

CHROMIUM = os.environ.get("GANX_CHROMIUM", "/usr/bin/chromium")  # elsewhere: to test the skip
INSTALL = "apt-get install -y chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # a browser and a server: make test (CI) runs them


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch arguments, pointed at the system's Chromium."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; install it with: {INSTALL}")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": LAUNCH_ARGS}


@pytest.fixture(scope="module")
def explorer():
    with running_explorer() as url:
        yield url


@pytest.fixture
def errors(page):
    """Console errors and uncaught exceptions of the page."""
    seen = []
    page.on("console", lambda m: seen.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.append(str(e)))
    return seen


def settle(page):
    """Wait until the trajectory has finished drawing (or the page shows an error)."""
    page.wait_for_selector("#plane[data-state=still], #plane[data-state=error]", timeout=60_000)


def run_with(page, **controls):
    for label, value in controls.items():
        field = page.get_by_label(label, exact=True)
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_timeout(50)  # the click's request starts before we wait for its result
    settle(page)


def test_page_loads_without_console_errors(page, explorer, errors):
    page.goto(explorer)
    settle(page)
    assert page.locator("#verdict_a").inner_text() in ("circles", "converges", "diverges", "stalls")
    for label in ("Loss", "Regularizer", "Learning rate", "Steps", "Updates", "Start θ", "Start ψ"):
        assert page.get_by_label(label, exact=True).count() == 1, label
    assert errors == []


def test_ns_none_circles_and_r1_at_gamma_1_converges(page, explorer, errors):
    page.goto(explorer)
    settle(page)
    run_with(page, Loss="ns", Regularizer="none")
    assert page.locator("#verdict_a").inner_text() == "circles"
    points = page.locator("#trajectory-a").get_attribute("points").split()
    assert len(points) == 101  # every step drawn, once the animation is done
    run_with(page, **{"Regularizer": "r1", "Regularizer weight (γ; σ for instance noise)": "1"})
    assert page.locator("#verdict_a").inner_text() == "converges"
    assert "r1 (1)" in page.locator("#setting_a").inner_text()
    assert errors == []


def test_page_shows_the_table_cell(page, explorer):
    """The page's numbers for a setting are `ganx-dirac`'s table cell (docs/dirac_table.md)."""
    rows = {}
    for line in (ROOT / "docs" / "dirac_table.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 8:
            rows[cells[0], cells[1]] = cells
    for loss, reg in (("ns", "r1"), ("wgan", "none"), ("lsgan", "rlc")):
        page.goto(f"{explorer}/?loss={loss}&reg={reg}")
        settle(page)
        assert page.locator("#final_a").inner_text() == rows[loss, reg][2]
        assert page.locator("#eig_a").inner_text() == rows[loss, reg][5]
        assert page.locator("#converged_a").inner_text().startswith(rows[loss, reg][3])


def test_url_with_settings_reproduces_the_view(page, explorer, context):
    page.goto(explorer)
    settle(page)
    page.get_by_label("Compare with a second setting (B)").check()
    settle(page)
    run_with(
        page,
        **{
            "Loss": "wgan",
            "Regularizer": "r2",
            "Regularizer weight (γ; σ for instance noise)": "0.4",
            "Learning rate": "0.1",
            "Steps": "150",
            "Updates": "alternating",
            "Start θ": "-0.5",
            "Regularizer (B)": "none",
        },
    )
    url = page.url
    assert "reg=r2" in url and "weight=0.4" in url and "compare=1" in url
    shown = page.locator("#results").inner_text()
    lines = [page.locator(f"#trajectory-{k}").get_attribute("points") for k in "ab"]
    fresh = context.new_page()
    fresh.goto(url)
    settle(fresh)
    assert fresh.locator("#results").inner_text() == shown
    assert [fresh.locator(f"#trajectory-{k}").get_attribute("points") for k in "ab"] == lines
    assert fresh.get_by_label("Learning rate", exact=True).input_value() == "0.1"


def test_downloads_give_the_endpoints_rows(page, explorer):
    query = "loss=ns&reg=r1&weight=0.8&steps=60&theta=0.5&psi=-1"
    page.goto(f"{explorer}/?{query}")
    settle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    _, body = get_json(f"{explorer}/api/dirac?{query}")
    assert [(int(r["step"]), float(r["theta"]), float(r["psi"])) for r in rows] == [
        (i, t, p) for i, (t, p) in enumerate(body["trajectory"])
    ]
    assert [float(r["distance"]) for r in rows] == body["distance"]
    assert {r["setting"] for r in rows} == {"A"}
    with page.expect_download() as download:
        page.get_by_role("button", name="Download SVG").click()
    svg = Path(download.value.path()).read_text()
    assert svg.startswith("<svg") and 'id="trajectory-a"' in svg
    with page.expect_download() as download:
        page.get_by_role("button", name="Download PNG").click()
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert download.value.suggested_filename == "dirac_ns_r1.png"


def test_bad_values_show_one_line(page, explorer, errors):
    page.goto(explorer)
    settle(page)
    run_with(page, **{"Learning rate": "abc"})
    assert page.get_by_role("alert").first.inner_text() == "lr='abc': not a number"
    run_with(page, **{"Learning rate": "-1"})
    assert page.get_by_role("alert").first.inner_text() == "lr='-1': must be > 0"
    run_with(page, **{"Learning rate": "0.2"})
    assert page.get_by_role("alert").first.inner_text() == ""
    page.goto(f"{explorer}/?loss=nope")
    settle(page)
    message = page.get_by_role("alert").first.inner_text()
    assert message.startswith("loss='nope': unknown; allowed: minimax, ns,")
    status, _ = get_json(f"{explorer}/api/dirac?loss=nope")
    assert status == 400
    # the failed requests' 400s are the only console errors (Chromium logs each one)
    assert all("400" in e for e in errors), errors


def test_mixture_view_streams_and_stops(page, explorer, errors):
    page.goto(explorer)
    settle(page)
    page.get_by_label("Data set").select_option("ring8")
    page.get_by_label("Regularizer (2-D)").select_option("r1")
    page.get_by_label("Steps (2-D)").fill("5000")
    page.get_by_label("Snapshot every N steps").fill("5")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_function(
        "Number(document.getElementById('m_count').textContent) >= 2", timeout=120_000
    )
    assert page.locator("#mixture circle").count() > 100  # G's samples are drawn
    assert "modes covered" in page.locator("#m_status").inner_text()
    run_with(page, Steps="50")  # the Dirac view answers while the 2-D run trains
    assert "50 simultaneous steps" in page.locator("#setting_a").inner_text()
    page.get_by_role("button", name="Stop").click()
    page.wait_for_function("document.getElementById('m_status').textContent.startsWith('stopped')")
    count = page.locator("#m_count").inner_text()
    time.sleep(1.5)
    assert page.locator("#m_count").inner_text() == count  # no snapshot after the stop
    assert get_json(f"{explorer}/api/mixture/status")[1]["running"] == {}
    assert page.get_by_role("button", name="Stop").is_disabled()
    assert errors == []


def test_the_endpoint_json_is_strict(explorer):
    """No NaN or Infinity in the JSON (the browser's JSON.parse refuses them)."""
    with urllib.request.urlopen(f"{explorer}/api/dirac?loss=wgan&steps=400", timeout=60) as r:
        body = json.loads(r.read(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert body["verdict"] == "diverges"


def test_a_click_on_the_plane_starts_there(page, explorer):
    page.goto(explorer)
    settle(page)
    box = page.locator("#plane").bounding_box()
    # the plane maps [-2, 2] onto pixels 30..450 of 480: pixel (345, 345) is (1, -1)
    page.mouse.click(box["x"] + 345 * box["width"] / 480, box["y"] + 345 * box["height"] / 480)
    page.wait_for_function("document.getElementById('theta').value !== '1'")
    settle(page)
    theta = float(page.get_by_label("Start θ", exact=True).input_value())
    psi = float(page.get_by_label("Start ψ", exact=True).input_value())
    assert abs(theta - 1) < 0.02 and abs(psi + 1) < 0.02  # within a pixel or two
    assert f"theta={theta:.3f}&psi={psi:.3f}" in page.url
    _, body = get_json(f"{explorer}/api/dirac?{page.url.split('?')[1]}")
    assert body["trajectory"][0] == [pytest.approx(theta), pytest.approx(psi)]
    assert page.locator("#verdict_a").inner_text() == body["verdict"]
