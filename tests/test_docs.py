"""The documentation: the site builds with --strict (no broken link or anchor) and fetches nothing
from another host; the README's links resolve; the numbers it states about the default job are
the ones scripts/docs_numbers.py wrote from the run; the versions it names are the pins."""

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from conftest import load_script
from docs_pages import README, ROOT

SNIPPET = ROOT / "docs" / "generated" / "default_job.md"


class Resources(HTMLParser):
    """What a page makes the browser fetch by itself (not the links a reader may follow)."""

    FETCHED = {"script": "src", "img": "src", "link": "href", "iframe": "src", "source": "src"}

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.FETCHED and attrs.get(self.FETCHED[tag]):
            self.urls.append(attrs[self.FETCHED[tag]])
        self.urls += re.findall(r"url\(([^)]*)\)", attrs.get("style") or "")


def remote(url: str) -> bool:
    return bool(re.match(r"['\"]?(https?:)?//", url))


@pytest.mark.slow  # the whole site, API pages included (a few seconds)
def test_the_site_builds_strictly_and_offline(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pages = sorted(site.rglob("*.html"))
    assert {"index.html", "api.html", "studies.html", "ARCHITECTURE.html"} <= {
        p.name for p in pages
    }
    fetched = {}
    for page in pages:
        parser = Resources()
        parser.feed(page.read_text())
        fetched[page.name] = [u for u in parser.urls if remote(u)]
    assert not {name: urls for name, urls in fetched.items() if urls}
    for sheet in site.rglob("*.css"):
        assert not re.findall(
            r"@import\s+url\(['\"]?(https?:)?//|url\(['\"]?https?://", sheet.read_text()
        ), sheet
    api = (site / "api.html").read_text()
    for name in (
        "ganx.api.compose",
        "ganx.api.fit",
        "ganx.api.load_generator",
        "ganx.api.evaluate",
    ):
        assert f'id="{name}"' in api, name  # generated from the docstrings
    studies = (site / "studies.html").read_text()
    assert "fid2k_mnist" in studies and "--8&lt;--" not in studies  # the snippet was included


def test_the_readme_links_resolve():
    """Every relative link of the README names a file, and a #fragment one of its headings."""
    from markdown.extensions.toc import slugify

    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(local) >= 10
    for link in local:
        path, _, fragment = link.partition("#")
        target = ROOT / path
        assert target.is_file(), link
        if fragment:
            headings = re.findall(r"^#+ (.*)$", target.read_text(), flags=re.M)
            assert fragment in {slugify(h, "-") for h in headings}, link


def snippet_values() -> dict[str, dict[str, str]]:
    """The snippet's rows: {run label: {metric: value as written}}."""
    rows = [line.strip("|").split("|") for line in SNIPPET.read_text().splitlines()]
    rows = [[cell.strip() for cell in row] for row in rows if len(row) > 3]
    header = [cell.strip("`") for cell in rows[0]]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows[2:]}


def test_the_readme_states_the_default_jobs_numbers_of_the_snippet():
    """The README quotes the default job's final metrics; docs/studies.md includes the snippet
    scripts/docs_numbers.py wrote from the run's metrics.jsonl; the two say the same."""
    numbers = load_script("docs_numbers")
    default = snippet_values()["the default job"]
    readme = README.read_text()
    stated = {m: re.findall(rf"`{m}` ([\d.]*\d)", readme) for m in numbers.METRICS}
    assert stated["fid2k_mnist"], "the README states the default job's FID"
    for metric, values in stated.items():
        assert values in ([], [default[metric]]), (metric, values, default[metric])
    assert '--8<-- "generated/default_job.md"' in (ROOT / "docs" / "studies.md").read_text()


def write_run(run_dir, command, final, status="finished"):
    run_dir.mkdir()
    records = [
        {"step": 2450, "loss/D": 1.0},
        {"step": 2500, "loss/D": 0.9},
        {"step": 2500, **final},
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    record = {
        "ganx": "0.1.0",
        "git": {"commit": "0123456789abcdef", "dirty": False},
        "versions": {"torch": "2.14.1"},
        "device": "cpu (2 threads)",
        "command": f"{command} hydra.run.dir={run_dir}",
    }
    (run_dir / "run.json").write_text(json.dumps([record]))
    (run_dir / "status.json").write_text(json.dumps({"status": status, "wall_time_s": 300.0}))


def test_docs_numbers_writes_the_final_values_of_each_run(tmp_path):
    numbers = load_script("docs_numbers")
    final = {
        "fid2k_mnist": 6.09512,
        "kid2k_mnist": 0.13456,
        "is2k_mnist": 4.1399,
        "classes2k_mnist": 10,
        "class_kl2k_mnist": 0.1187,
    }
    write_run(tmp_path / "r1", "ganx-train", final)
    write_run(tmp_path / "none", "ganx-train reg=none", {**final, "fid2k_mnist": 7.5})
    out = tmp_path / "default_job.md"
    argv = ["default-job", str(tmp_path / "r1"), "--without-r1", str(tmp_path / "none")]
    numbers.main([*argv, "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    assert rows[1] == ("| the default job | `ganx-train` | 6.095 | 0.1346 | 4.14 | 10 | 0.1187 |")
    assert rows[2].startswith("| without R1 | `ganx-train reg=none` | 7.5 |")
    assert "at commit 0123456 (clean), torch 2.14.1, cpu (2 threads)" in out.read_text()
    # a run of another command, or one that did not finish, is refused, naming it
    write_run(tmp_path / "hinge", "ganx-train loss=hinge", final)
    with pytest.raises(SystemExit, match="not `ganx-train`"):
        numbers.main(
            ["default-job", str(tmp_path / "hinge"), "--without-r1", str(tmp_path / "none")]
        )
    write_run(tmp_path / "paused", "ganx-train", final, status="paused")
    with pytest.raises(SystemExit, match="paused, not finished"):
        numbers.main(
            ["default-job", str(tmp_path / "paused"), "--without-r1", str(tmp_path / "none")]
        )


def makefile_pins() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return dict(re.findall(r"([A-Za-z][\w.-]*)==([\w.]+)", text))


def test_the_versions_the_docs_name_are_the_makefile_pins():
    """docs/setup.md names the pinned versions in prose; the docs extra pins what make pins."""
    pins = makefile_pins()
    setup = (ROOT / "docs" / "setup.md").read_text()
    named = dict(re.findall(r"\b([a-z][a-z-]*) (\d+\.\d+\.\d+)\b", setup))
    checked = {name: version for name, version in named.items() if name in pins}
    assert {"torch", "mkdocs", "mkdocs-material", "mlflow"} <= set(checked)
    assert {name: pins[name] for name in checked} == checked
    pyproject = (ROOT / "pyproject.toml").read_text()
    docs_extra = re.search(r"^docs = \[(.*?)\]", pyproject, flags=re.S | re.M).group(1)
    for name, version in re.findall(r'"([\w.-]+)==([\w.]+)"', docs_extra):
        assert pins.get(name) == version, name
