"""Run directories and sweeps never lose or mix results: a previous run is refused before
anything is written (resume=auto continues it, start_over=true moves it aside), a run dir a live
process trains in is refused to every other process, a resume may change only the schedules,
each invocation is recorded, sweeps check every job first."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
import yaml
from conftest import TINY, compose_cfg
from ganx_cli import (
    GANX_TRAIN,
    TINY_ARGS,
    error_lines,
    ganx_train,
    ganx_train_here,
    snapshot,
    wait_for_step,
)
from key_cover import override

import ganx.train
from ganx import rundir
from ganx.commands.report import main as report_main
from ganx.errors import DataError


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_second_run_in_a_run_dir_is_refused_and_changes_nothing(tmp_path):
    run_dir = tmp_path / "D"
    first = ganx_train(*TINY_ARGS, "train.steps=2", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = snapshot(run_dir)
    again = ganx_train(*TINY_ARGS, "seed=1", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert again.returncode != 0
    lines = error_lines(again.stderr)
    assert len(lines) == 1 and "Traceback" not in again.stderr
    assert "holds a previous run" in lines[0]
    assert "resume=auto" in lines[0] and "start_over=true" in lines[0]
    assert snapshot(run_dir) == before  # .hydra/, the job log and every output untouched


def test_a_run_dir_in_use_is_refused_before_anything_is_written(tmp_path):
    """While a process trains in a run dir (it holds the dir's lock), the same command typed
    again with resume=auto, or with start_over=true, is refused in one line and changes
    nothing; so is the Python API's ganx.fit."""
    import ganx

    run_dir = tmp_path / "D"
    assert ganx_train_here(*TINY_ARGS, "train.steps=2", f"hydra.run.dir={run_dir}")[0] == 0
    with rundir.held(run_dir):  # the lock a live run holds (flock: per open file, any process)
        before = snapshot(run_dir)
        for extra in ("resume=auto", "start_over=true"):
            code, stderr = ganx_train_here(
                *TINY_ARGS, "train.steps=4", extra, f"hydra.run.dir={run_dir}"
            )
            lines = error_lines(stderr)
            assert code == 1 and len(lines) == 1, stderr
            assert f"hydra.run.dir={run_dir} is in use" in lines[0]
            assert f"pid {os.getpid()}" in lines[0] and "resume=auto" in lines[0]
        cfg = compose_cfg("train.steps=4", "resume=auto")
        with pytest.raises(rundir.RunDirInUse, match="is in use"):
            ganx.fit(cfg, run_dir)
        assert snapshot(run_dir) == before
    assert not list(tmp_path.glob("D.old-*"))
    # the lock ends with its holder: the same command now continues the run
    code, stderr = ganx_train_here(
        *TINY_ARGS, "train.steps=4", "resume=auto", f"hydra.run.dir={run_dir}"
    )
    assert code == 0, stderr


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_a_second_ganx_train_in_a_live_run_dir_is_refused(tmp_path):
    """Two processes, as a user meets it: a run is training; the same command with
    resume=auto in another terminal is refused and records nothing; after the first is stopped
    (it checkpoints), the same command continues it."""
    run_dir = tmp_path / "D"
    # long enough that it still trains when the second command has started (about 10 s)
    args = [*TINY_ARGS, "train.steps=20000", "log.every=1", "sample.every=1000", "ckpt.every=1000"]
    args.append(f"hydra.run.dir={run_dir}")
    first = subprocess.Popen(
        [GANX_TRAIN, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for_step(run_dir, 1, first, timeout=180)
        second = ganx_train(*args, "resume=auto", cwd=tmp_path)
        lines = error_lines(second.stderr)
        assert second.returncode == 1 and len(lines) == 1, second.stderr
        assert "is in use" in lines[0] and f"pid {first.pid}" in lines[0]
        invocations = (run_dir / ".hydra" / "invocations.jsonl").read_text().splitlines()
        assert len(invocations) == 1  # the refused command recorded nothing
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143  # stopped by SIGTERM after its checkpoint
    stopped_at = json.loads((run_dir / "status.json").read_text())["step"]
    # the bare resume, as a requeue script types it, with a shorter run to finish
    resumed = ganx_train(f"hydra.run.dir={run_dir}", "resume=auto", f"train.steps={stopped_at + 2}")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"


def test_start_over_moves_the_previous_run_aside(tmp_path):
    run_dir = tmp_path / "D"
    assert ganx_train_here(*TINY_ARGS, "train.steps=2", f"hydra.run.dir={run_dir}")[0] == 0
    before = snapshot(run_dir)
    code, stderr = ganx_train_here(
        *TINY_ARGS,
        "train.steps=2",
        "seed=1",
        override("start_over", True),
        f"hydra.run.dir={run_dir}",
    )
    assert code == 0, stderr
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("D.old-")]
    assert len(moved) == 1 and snapshot(moved[0]) == before
    assert "seed=1" in yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_resume_records_each_invocation_and_keeps_the_first(tmp_path):
    run_dir = tmp_path / "D"
    assert ganx_train_here(*TINY_ARGS, "train.steps=2", f"hydra.run.dir={run_dir}")[0] == 0
    first_config = (run_dir / ".hydra" / "config.yaml").read_bytes()
    code, stderr = ganx_train_here(
        *TINY_ARGS, "train.steps=4", "log.every=1", "resume=auto", f"hydra.run.dir={run_dir}"
    )
    assert code == 0, stderr
    assert (run_dir / ".hydra" / "config.yaml").read_bytes() == first_config
    lines = (run_dir / ".hydra" / "invocations.jsonl").read_text().splitlines()
    records = [json.loads(x) for x in lines]
    assert [r["resume"] for r in records] == [None, "auto"]
    assert records[1]["changed"] == {
        "train.steps": {"was": 2, "now": 4},
        "log.every": {"was": 2, "now": 1},
    }
    assert "train.steps=4" in records[1]["overrides"]


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_resume_with_changed_training_settings_is_refused_by_name(tmp_path):
    run_dir = tmp_path / "D"
    assert ganx_train_here(*TINY_ARGS, "train.steps=2", f"hydra.run.dir={run_dir}")[0] == 0
    before = snapshot(run_dir)
    code, stderr = ganx_train_here(
        *TINY_ARGS, "loss=hinge", "optim.g.lr=1e-3", "resume=auto", f"hydra.run.dir={run_dir}"
    )
    lines = error_lines(stderr)
    assert code != 0 and len(lines) == 1, stderr
    assert "loss._target_: checkpoint 'ganx.losses.NonSaturatingLoss'" in lines[0]
    assert "optim.g.lr: checkpoint 0.0002, now 0.001" in lines[0]
    assert snapshot(run_dir) == before


SWEEP_ARGS = [*TINY_ARGS, "train.steps=2"]


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_sweep_checks_every_job_first_and_lists_all_invalid_ones(tmp_path):
    sweep = tmp_path / "sweep"
    args = [*TINY, "train.steps=2", f"hydra.sweep.dir={sweep}"]
    code, stderr = ganx_train_here("-m", "model=sngan,dcgan,dirac", *args)
    lines = error_lines(stderr)
    assert code != 0 and "Traceback" not in stderr
    assert "2 of 3 jobs are invalid; none was started" in lines[0]
    assert any("job model=sngan:" in x for x in lines)
    assert any("job model=dirac:" in x for x in lines)
    assert not sweep.exists()


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_sweep_job_dirs_rerun_and_resume(tmp_path):
    sweep = tmp_path / "sweep"
    code, stderr = ganx_train_here("-m", "reg=none,r1", *SWEEP_ARGS, f"hydra.sweep.dir={sweep}")
    assert code == 0, stderr
    jobs = sorted(p.parent.parent.relative_to(sweep).as_posix() for p in sweep.rglob("last.pt"))
    assert jobs == ["reg=none/seed=0", "reg=r1/seed=0"]  # the swept key only
    before = snapshot(sweep)
    code, stderr = ganx_train_here("-m", "reg=none,r1", *SWEEP_ARGS, f"hydra.sweep.dir={sweep}")
    lines = error_lines(stderr)
    assert code != 0 and "2 of 2 jobs are invalid" in lines[0]
    assert snapshot(sweep) == before
    code, stderr = ganx_train_here(
        "-m", "reg=none,r1", *SWEEP_ARGS, "train.steps=4", "resume=auto", f"hydra.sweep.dir={sweep}"
    )
    assert code == 0, stderr
    for job in jobs:
        status = json.loads((sweep / job / "status.json").read_text())
        assert status["status"] == "finished" and status["step"] == 4


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_failed_sweep_job_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real_train = ganx.train.in_this_process

    def flaky(cfg, run_dir):
        if "r1" in cfg.reg:
            raise DataError("the data went away")
        return real_train(cfg, run_dir)

    monkeypatch.setattr(ganx.train, "in_this_process", flaky)
    sweep = tmp_path / "sweep"
    code, stderr = ganx_train_here("-m", "reg=r1,none", *SWEEP_ARGS, f"hydra.sweep.dir={sweep}")
    assert code != 0 and "1 of 2 jobs did not finish" in stderr
    assert "job reg=r1" in stderr and "the data went away" in stderr
    assert json.loads((sweep / "reg=none/seed=0/status.json").read_text())["status"] == "finished"
    failed = json.loads((sweep / "reg=r1/seed=0/status.json").read_text())
    assert failed == {"status": "failed", "error": "the data went away"}
    # a job the sweep planned but that never started (its process was killed first)
    with open(sweep / "jobs.jsonl", "a") as f:
        f.write(json.dumps({"dir": "reg=dat/seed=0", "overrides": ["reg=dat", "seed=0"]}) + "\n")
    report_main([str(sweep)])
    report = (sweep / "report.md").read_text()
    assert "seed=0:failed" in report and "seed=0:never ran" in report


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
@pytest.mark.parametrize("tool", ["ganx-sample", "ganx-eval"])
def test_tools_take_a_sweep_checkpoint_path_unquoted(tmp_path, tool):
    sweep = tmp_path / "sweep"
    code, stderr = ganx_train_here("-m", "reg=none,r1", *SWEEP_ARGS, f"hydra.sweep.dir={sweep}")
    assert code == 0, stderr
    path = sweep / "reg=r1" / "seed=0" / "checkpoints" / "last.pt"
    import subprocess
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).parent / tool)
    args = ["n=4", f"out={tmp_path / 'x.png'}"]
    if tool == "ganx-eval":
        args = ["metrics=[classes_mnist]", "num_samples=100", "device=cpu"]
    proc = subprocess.run(
        [exe, f"checkpoint={path}", *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "step 2" in proc.stdout


def test_another_rank_checks_the_config_not_the_run_dir_rank0_is_writing(tmp_path, monkeypatch):
    """Under torchrun every rank runs the pre-flight, and rank 1 may start after rank 0 has
    locked the run dir and written .hydra/: rank 1 must not refuse that as a previous run (CI
    once failed so), must not move it aside with start_over=true, and records nothing."""
    from ganx.preflight import check_run_dir
    from ganx.train import record

    run_dir = tmp_path / "D"
    cfg = compose_cfg("train.steps=2", "start_over=true")
    record(cfg, run_dir, overrides=["train.steps=2"])  # what rank 0 writes first
    with rundir.held(run_dir):  # and the lock it holds while it trains
        before = snapshot(run_dir)
        with pytest.raises(rundir.RunDirInUse):  # rank 0's own check (a second ganx-train)
            check_run_dir(cfg, run_dir, "hydra.run.dir")
        monkeypatch.setenv("RANK", "1")
        check_run_dir(cfg, run_dir, "hydra.run.dir")
        record(cfg, run_dir, overrides=["train.steps=2"])
        assert snapshot(run_dir) == before
    assert not list(tmp_path.glob("D.old-*"))
