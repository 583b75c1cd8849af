"""A signal stops a whole sweep, not only its current job (basic sweeper and Optuna), and the
Optuna preset runs as documented with two tiny trials."""

import json
import signal
import subprocess

import pytest
from ganx_cli import GANX_TRAIN, TINY_ARGS, ganx_train, wait_for_step


def status(run_dir):
    return json.loads((run_dir / "status.json").read_text())["status"]


def interrupt_first_job(sweep, first_job, *args):
    proc = subprocess.Popen(
        [GANX_TRAIN, "-m", *TINY_ARGS, "log.every=1", f"hydra.sweep.dir={sweep}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_step(sweep / first_job, 1, proc, timeout=180)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out


@pytest.mark.slow
def test_sigterm_stops_a_basic_sweep_and_resume_auto_finishes_it(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["seed=0,1,2", "sample.every=1000", "ckpt.every=1000"]
    code, out = interrupt_first_job(sweep, "default/seed=0", *args, "train.steps=400")
    assert code == 143, out  # 128 + SIGTERM
    assert "the sweep stopped" in out and "resume=auto" in out
    assert status(sweep / "default/seed=0") == "interrupted"
    assert not (sweep / "default/seed=1").exists() and not (sweep / "default/seed=2").exists()

    proc = ganx_train(
        "-m", *TINY_ARGS, f"hydra.sweep.dir={sweep}", *args, "train.steps=12", "resume=auto"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for seed in (0, 1, 2):
        assert status(sweep / f"default/seed={seed}") == "finished"


OPTUNA_TINY = [
    "hparams_search=r1_mnist",
    "eval.metrics=[fid_mnist]",
    "eval.num_samples=100",  # the preset's objective, fid_mnist, follows it: fid100_mnist
]


@pytest.mark.slow
def test_sigterm_stops_an_optuna_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    code, out = interrupt_first_job(
        sweep,
        "trial=0",
        *OPTUNA_TINY,
        "train.steps=400",
        "eval.every=1000",
        "sample.every=1000",
        "ckpt.every=1000",
        "hydra.sweeper.n_trials=3",
        f"metrics.cache_dir={tmp_path / 'cache'}",
    )
    assert code == 143, out  # 128 + SIGTERM
    assert status(sweep / "trial=0") == "interrupted"
    assert not (sweep / "trial=1").exists()


@pytest.mark.slow
def test_optuna_preset_runs_two_trials_and_reports_the_best(tmp_path):
    sweep = tmp_path / "sweep"
    proc = ganx_train(
        "-m",
        *TINY_ARGS,
        *OPTUNA_TINY,
        "eval.every=4",
        "hydra.sweeper.n_trials=2",
        f"metrics.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = (sweep / "optimization_results.yaml").read_text()
    assert "best_params" in best and "reg.r1.weight" in best and "best_value" in best
    values = []
    for trial in (0, 1):
        run_dir = sweep / f"trial={trial}"
        assert status(run_dir) == "finished"
        records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        values.append([r["fid100_mnist"] for r in records if "fid100_mnist" in r][-1])
        overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
        assert "reg.r1.weight=" in overrides and "optim.g.lr=" in overrides
    # the reported best value is the better of the two trials' objectives
    best_value = float(best.split("best_value:")[1].split()[0])
    assert best_value == pytest.approx(min(values), rel=1e-6)
