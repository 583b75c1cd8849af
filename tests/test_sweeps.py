"""Multirun sweeps (basic and submitit_local launchers) and ganx-report."""

import csv
import json
import subprocess
import sys

import pytest
from conftest import TINY, TINY_WIDTHS, compose_cfg

from ganx.commands.report import main as report_main
from ganx.loop import train

SWEEP_ARGS = [
    *TINY,
    *TINY_WIDTHS["dcgan"],
    "hardware.threads=1",
    "eval.metrics=[fid_mnist]",
    "eval.num_samples=100",
    "eval.every=2",
]


def run_sweep(tmp_path, *extra):
    cmd = [
        sys.executable,
        "-m",
        "ganx.train",
        "-m",
        "reg=none,r1",
        "seed=0,1",
        *SWEEP_ARGS,
        f"metrics.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path / "sweep"


def job_dirs(sweep):
    return sorted(p.parent.parent for p in sweep.rglob(".hydra/overrides.yaml"))


def check_report(sweep):
    report_main([str(sweep)])
    rows = list(csv.DictReader(open(sweep / "report.csv")))
    assert [r["setting"] for r in rows] == ["reg=none", "reg=r1"]
    for row in rows:
        reg = row["setting"].split("=")[1]
        finals = []
        for seed in (0, 1):
            job = next(
                d
                for d in job_dirs(sweep)
                if d.name == f"seed={seed}" and f"reg={reg}" in d.parent.name
            )
            lines = [json.loads(x) for x in (job / "metrics.jsonl").read_text().splitlines()]
            finals.append([x for x in lines if "fid100_mnist" in x][-1]["fid100_mnist"])
        assert float(row["fid100_mnist final mean"]) == pytest.approx(sum(finals) / 2, rel=1e-5)
        assert row["finished"] == "2" and row["diverged"] == "0" and row["seeds"] == "0,1"
    assert (sweep / "report.md").read_text().count("| reg=") == 2
    assert (sweep / "fid100_mnist.png").exists()


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_basic_launcher_sweep_and_report(tmp_path):
    sweep = run_sweep(tmp_path)
    dirs = job_dirs(sweep)
    assert len(dirs) == 4
    assert {d.name for d in dirs} == {"seed=0", "seed=1"}  # seeds grouped under each setting
    assert all("reg=" in d.parent.name for d in dirs)
    check_report(sweep)
    # no state leaks between jobs run in one process: job 3 equals a run of its own
    alone = train(
        compose_cfg(
            "reg=r1",
            "seed=0",
            "hardware.threads=1",
            "eval.metrics=[fid_mnist]",
            "eval.num_samples=100",
            "eval.every=2",
            f"metrics.cache_dir={tmp_path / 'cache'}",
        ),
        tmp_path / "alone",
    )
    job = next(d for d in dirs if d.name == "seed=0" and "reg=r1" in d.parent.name)
    last = json.loads((job / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["loss/D"] == alone["loss/D"] and last["fid100_mnist"] == alone["fid100_mnist"]


@pytest.mark.slow
def test_submitit_local_sweep(tmp_path):
    sweep = run_sweep(tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10")
    assert len(job_dirs(sweep)) == 4
    check_report(sweep)


def test_report_lists_diverged_running_and_failed_jobs(tmp_path):
    def job(setting, seed, status, fids):
        d = tmp_path / "sweep" / setting / f"seed={seed}"
        (d / ".hydra").mkdir(parents=True)
        (d / ".hydra" / "overrides.yaml").write_text(f"- {setting}\n- seed={seed}\n")
        lines = [
            json.dumps({"step": 10 * (i + 1), "loss/D": 1.0, "aux/D": 0.5, "fid2k_mnist": f})
            for i, f in enumerate(fids)
        ]
        (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        if status is not None:
            (d / "status.json").write_text(json.dumps({"status": status, "wall_time_s": 5.0}))

    job("reg=none", 0, "finished", [50.0, 40.0])
    job("reg=none", 1, "diverged", [60.0])
    job("reg=r1", 0, "finished", [30.0, 35.0])
    job("reg=r1", 1, "running", [45.0])
    job("reg=r1", 2, None, [])
    report_main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")])
    rows = {r["setting"]: r for r in csv.DictReader(open(tmp_path / "out" / "report.csv"))}
    assert rows["reg=none"]["diverged"] == "1" and rows["reg=none"]["finished"] == "1"
    assert float(rows["reg=none"]["fid2k_mnist final mean"]) == 40.0
    assert not any(c.startswith(("loss/", "aux/")) for c in rows["reg=none"])  # losses: no metric
    assert float(rows["reg=r1"]["fid2k_mnist best mean"]) == 30.0  # lower is better for FID
    assert "seed=1:running or crashed" in rows["reg=r1"]["other"]
    assert "seed=2:failed before training" in rows["reg=r1"]["other"]


def test_a_sweep_composes_each_job_once(tmp_path, monkeypatch):
    """Compose once (ganx.sweeps.ComposeOnce): the pre-flight composes each job, Hydra's basic
    sweeper and launcher reuse that composition (they composed it twice more), and each job
    trains the config a fresh composition of its overrides gives."""
    from ganx_cli import ganx_train_here
    from hydra import compose, initialize_config_module
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    import ganx.train

    compositions = []  # the overrides of every composition Hydra made
    load = ConfigLoaderImpl.load_configuration

    def counted(self, config_name, overrides, *args, **kwargs):
        compositions.append(list(overrides))
        return load(self, config_name, overrides, *args, **kwargs)

    trained = []

    def stub_training(cfg, run_dir):
        trained.append((list(HydraConfig.get().overrides.task), OmegaConf.to_container(cfg)))
        (run_dir / "status.json").write_text(json.dumps({"status": "finished"}))
        return {"status": "finished", "step": 0}

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    monkeypatch.setattr(ganx.train, "in_this_process", stub_training)
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0,1,2", "train.steps=7", *TINY, f"hydra.sweep.dir={sweep}"]
    code, stderr = ganx_train_here(*args)
    assert code == 0, stderr
    for seed in (0, 1, 2):
        assert sum(f"seed={seed}" in o for o in compositions) == 1, compositions
    assert sorted(cfg["seed"] for _, cfg in trained) == [0, 1, 2]
    with initialize_config_module("ganx.conf", version_base="1.3"):
        for overrides, cfg in trained:
            assert cfg == OmegaConf.to_container(compose("config", overrides=overrides))


def test_the_loop_does_not_validate_what_the_preflight_validated(tmp_path, monkeypatch):
    """A job the pre-flight checked in this process trains without a second validation; the
    loop called from Python (ganx.fit, tests) still validates."""
    from ganx_cli import ganx_train_here

    import ganx.loop
    import ganx.startup

    validated = []
    monkeypatch.setattr(ganx.loop, "validate", validated.append)
    monkeypatch.setattr(ganx.startup, "_imported", False)  # the pre-flight imports (once)
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0,1", "train.steps=1", *TINY, *TINY_WIDTHS["dcgan"]]
    code, stderr = ganx_train_here(*args, "hardware.threads=1", f"hydra.sweep.dir={sweep}")
    assert code == 0, stderr
    assert validated == [] and len(job_dirs(sweep)) == 2 and ganx.startup._imported
    cfg = compose_cfg("train.steps=1", *TINY_WIDTHS["dcgan"])
    train(cfg, tmp_path / "from_python")
    assert validated == [cfg]
