"""``ganx-dirac serve``: its endpoint gives the table's numbers, refuses bad input with a 400
and one line, streams the 2-D view and stops it; the command's own lines (URL, port in use,
Ctrl-C)."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from explorer_server import get_json, running_explorer
from hydra import compose, initialize_config_module

from ganx.dirac_serve import parse_keys
from ganx.dirac_study import format_eigenvalues, run_study, study_config, verdict
from ganx.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def explorer():
    with running_explorer() as url:
        yield url


def table_cells() -> dict:
    """docs/dirac_table.md's cells by (loss, reg): what `ganx-dirac` writes."""
    cells = {}
    for line in (ROOT / "docs" / "dirac_table.md").read_text().splitlines():
        parts = [p.strip() for p in line.strip("|").split("|")]
        if len(parts) == 8 and parts[0] not in ("loss", "---"):
            cells[parts[0], parts[1]] = parts
    return cells


@pytest.mark.parametrize("loss,reg", [("ns", "none"), ("ns", "r1"), ("wgan", "none")])
def test_endpoint_gives_the_table_cell(explorer, loss, reg):
    status, body = get_json(f"{explorer}/api/dirac?loss={loss}&reg={reg}")
    assert status == 200
    cell = table_cells()[loss, reg]
    assert f"{body['final_distance']:.4g}" == cell[2]
    assert str(body["converged"]).lower() == cell[3]
    assert format_eigenvalues([complex(*p) for p in body["eigenvalues"]]) == cell[5]
    assert body["distance"][-1] == body["final_distance"]
    assert len(body["trajectory"]) == 101 and body["trajectory"][0] == [1.0, 1.0]


def test_endpoint_equals_a_fresh_study_run(explorer):
    """The same setting off the study's defaults: lr 0.1, 150 alternating steps, R1 0.3."""
    query = "loss=hinge&reg=r1&weight=0.3&lr=0.1&steps=150&updates=alternating&theta=-0.5&psi=1.5"
    _, body = get_json(f"{explorer}/api/dirac?{query}")
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose(
            "dirac_study",
            overrides=[
                "losses=[hinge]",
                "regs=[r1]",
                "reg_settings.r1.weight=0.3",
                "lr=0.1",
                "steps=150",
                "updates=alternating",
                "start=[-0.5,1.5]",
                "plot.enabled=false",
            ],
        )
        (outcome,), gammas = run_study(cfg)
    assert body["trajectory"] == outcome.trajectory.tolist()
    assert body["final_distance"] == outcome.final_distance
    assert body["critical_gamma"] == gammas["hinge"]
    assert body["verdict"] == verdict(outcome.trajectory, cfg.tol)
    assert body["weight"] == 0.3 and body["expected_critical_gamma"] == 2.0


@pytest.mark.parametrize(
    "query,line",
    [
        ("lr=abc", "lr='abc': not a number"),
        ("lr=-1", "lr='-1': must be > 0"),
        ("loss=nope", "loss='nope': unknown; allowed: minimax, ns,"),
        ("steps=2.5", "steps='2.5': must be a whole number"),
        ("reg=r1&weight=-2", "weight='-2': must be >= 0"),
        ("theta=inf", "theta='inf': not a finite number"),
        ("updates=sideways", "updates='sideways': unknown; allowed: simultaneous, alternating"),
    ],
)
def test_bad_input_is_a_400_with_one_line(explorer, query, line):
    status, body = get_json(f"{explorer}/api/dirac?{query}")
    assert status == 400
    assert body["error"].startswith(line) and "\n" not in body["error"]


def test_mixture_bad_input_and_unknown_paths(explorer):
    status, body = get_json(f"{explorer}/api/mixture?dataset=ring9")
    assert status == 400 and body["error"].startswith("dataset='ring9': unknown")
    assert get_json(f"{explorer}/api/nothing")[0] == 404
    assert get_json(f"{explorer}/api/mixture/stop?run=77", method="POST")[0] == 404


def read_events(response, wanted: int) -> list[tuple[str, dict]]:
    events, block = [], []
    while len([e for e in events if e[0] == "snapshot"]) < wanted:
        line = response.readline().decode()
        assert line, "the stream ended early"
        if line.strip():
            block.append(line.strip())
            continue
        name = block[0].removeprefix("event: ")
        events.append((name, json.loads(block[1].removeprefix("data: "))))
        block = []
    return events


def test_mixture_streams_snapshots_and_stops(explorer):
    query = "dataset=grid25&loss=ns&reg=r1&weight=1&steps=5000&every=3"
    with urllib.request.urlopen(f"{explorer}/api/mixture?{query}", timeout=120) as response:
        events = read_events(response, 2)
        (start, run), shots = events[0], [body for name, body in events if name == "snapshot"]
        assert start == "start" and run["dataset"] == "grid25" and run["weight"] == 1.0
        assert [s["step"] for s in shots] == [0, 3]
        assert len(shots[1]["centres"]) == 25 and len(shots[1]["samples"]) == 500
        assert len(shots[1]["d"]) == 40 and set(shots[1]["modes"]) == {
            "modes",
            "high_quality",
            "mode_kl",
        }
        assert get_json(f"{explorer}/api/mixture/status")[1]["running"][run["run"]]
        status, stopped = get_json(f"{explorer}/api/mixture/stop?run={run['run']}", "POST")
        assert status == 200 and stopped["step"] < 5000
        rest = response.read().decode()  # the stream ends after the stop
    assert "event: end" in rest and '"stopped": true' in rest
    assert get_json(f"{explorer}/api/mixture/status")[1]["running"] == {}


def test_verdicts_on_known_paths():
    turns = torch.linspace(0, 4 * math.pi, 200)
    circle = torch.stack([torch.cos(turns), torch.sin(turns)], dim=1)
    assert verdict(circle, 0.05) == "circles"
    assert verdict(circle * torch.linspace(1, 0.01, 200)[:, None], 0.05) == "converges"
    assert verdict(circle * torch.linspace(1, 3, 200)[:, None], 0.05) == "diverges"
    assert verdict(torch.tensor([[1.0, 1.0], [float("nan"), 0.0]]), 0.05) == "diverges"
    assert verdict(torch.tensor([[1.0, 1.0], [1.0, 0.5], [1.0, 0.0]]), 0.05) == "stalls"
    assert verdict(circle[:45], 0.05) == "stalls"  # under half a turn
    assert verdict(circle[:55], 0.05) == "circles"


def test_a_reg_setting_that_is_no_key_is_one_line():
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose("dirac_study", overrides=["+reg_settings.r1.gama=1"])
        with pytest.raises(ConfigError, match=r"^reg.r1.gama=1: not a key of that config$"):
            study_config("ns", ["r1"], cfg)


def test_serve_keys_are_checked():
    assert parse_keys(["port=9000"]) == {"host": "127.0.0.1", "port": "9000"}
    for argv, line in (
        (["prot=9000"], "'prot=9000': expected key=value, keys: host, port"),
        (["port=http"], "port='http': a whole number, 0..65535"),
    ):
        with pytest.raises(SystemExit, match=line):
            parse_keys(argv)


def serve(*keys, sigint=signal.SIG_DFL):
    """The server in a subprocess that starts with SIGINT's disposition ``sigint`` (a shell
    starts a background job with SIGINT ignored, and the child inherits that)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ganx.commands.dirac", "serve", *keys],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
    )


@pytest.mark.slow  # a subprocess: make test (CI) runs it
@pytest.mark.parametrize("sigint", [signal.SIG_DFL, signal.SIG_IGN], ids=["default", "ignored"])
def test_serve_prints_its_url_and_stops_on_ctrl_c(sigint):
    proc = serve("port=0", sigint=sigint)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ganx-dirac serve: http://127.0.0.1:"), proc.stderr.read()
        url = line.split()[2]
        with urllib.request.urlopen(url, timeout=60) as page:
            assert b"The Dirac-GAN explorer" in page.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0 and out.strip() == "ganx-dirac serve: stopped" and not err


@pytest.mark.slow  # a subprocess: make test (CI) runs it
def test_serve_refuses_a_port_in_use_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = serve(f"port={port}")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and out == ""
    assert err == (
        f"ganx-dirac serve: error: port {port} on 127.0.0.1 is in use; choose another with port=N\n"
    )


def test_page_is_offline_and_served(explorer):
    with urllib.request.urlopen(explorer + "/", timeout=60) as response:
        html = response.read().decode()
    assert response.headers["Content-Type"].startswith("text/html")
    # nothing from elsewhere: no http(s) URL other than the SVG namespace
    urls = {word for word in html.replace('"', " ").split() if word.startswith("http")}
    assert urls == {"http://www.w3.org/2000/svg"}
    time.sleep(0)  # the page is one request: no assets to fetch


@pytest.mark.slow  # subprocesses: make test (CI) runs it
def test_the_command_dispatches_serve_and_the_study():
    for args, first in ((["serve", "--help"], "ganx-dirac serve:"), (["--help"], "ganx-dirac:")):
        proc = subprocess.run(
            [sys.executable, "-m", "ganx.commands.dirac", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0 and proc.stdout.startswith(first), proc.stderr
    assert "ganx-dirac serve" in proc.stdout  # the study's help names the explorer


@pytest.mark.slow  # a server process: make test (CI) runs it
def test_bench_dirac_times_the_endpoint_and_the_same_run_in_process(capsys):
    from conftest import load_script

    result = load_script("bench_dirac").main(["--steps", "20", "--repeats", "2"])
    assert len(result["http_ms"]) == len(result["direct_ms"]) == 2
    assert result["ratio"] == pytest.approx(
        sorted(result["http_ms"])[0] / 200 + sorted(result["http_ms"])[1] / 200
    )  # the median of two, over the 100 ms target
    out = capsys.readouterr().out
    assert "ns + r1, 20 steps" in out and "endpoint median / target 100 ms" in out
    # the hand loop of the same operations gave ganx's trajectory (else the script exits)
    assert "ganx's step / hand loop of the same operations = " in out


@pytest.mark.slow  # the whole study, 60 cells (about 12 s)
def test_docs_table_is_what_ganx_dirac_writes(tmp_path):
    """docs/dirac_table.md, which docs/dirac.md includes, is the table.md a fresh run of the study
    with its defaults writes, line by line (regenerate: python scripts/docs_numbers.py dirac)."""
    from ganx.dirac_study import write_tables

    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose("dirac_study", overrides=["plot.enabled=false"])
    outcomes, gammas = run_study(cfg)
    torch.set_num_threads(1)
    write_tables(outcomes, gammas, tmp_path, cfg)
    fresh = (tmp_path / "table.md").read_text().splitlines()
    documented = (ROOT / "docs" / "dirac_table.md").read_text().splitlines()
    assert [line for line in documented if line not in fresh] == []
    assert documented == fresh
    assert '--8<-- "dirac_table.md"' in (ROOT / "docs" / "dirac.md").read_text()
