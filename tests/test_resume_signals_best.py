"""Resumed runs keep their clocks and tensorboard history, best.pt follows the objective in the
right direction, and signals checkpoint first (the commands as a user types them)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import torch
from conftest import compose_cfg
from ganx_cli import GANX_TRAIN, TINY_ARGS, ganx_train_here, wait_for_step

from ganx import checkpoint as ckpt
from ganx.outputs import objective_and_mode


def records(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_elapsed_time_and_tensorboard_continue_across_resume(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "D"
    assert ganx_train_here(*TINY_ARGS, "train.steps=4", f"hydra.run.dir={run_dir}")[0] == 0
    first = records(run_dir)[-1]["time_s"]
    assert ckpt.load(run_dir / "checkpoints" / "last.pt")["elapsed_s"] >= first
    code, stderr = ganx_train_here(
        *TINY_ARGS, "train.steps=8", "resume=auto", f"hydra.run.dir={run_dir}"
    )
    assert code == 0, stderr
    times = [r["time_s"] for r in records(run_dir)]
    assert times == sorted(times) and times[-1] > first  # not restarted from zero
    status = json.loads((run_dir / "status.json").read_text())
    assert status["wall_time_s"] >= times[-1]
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("loss/D")] == [2, 4, 6, 8]
    assert [e.step for e in events.Images("samples")] == [2, 4, 6, 8]  # step 4's grid kept


@pytest.mark.parametrize(
    ("objective", "mode", "expected"),
    [
        ("fid_mnist", None, ("fid2k_mnist", "min")),
        ("kid2k_mnist", None, ("kid2k_mnist", "min")),
        ("is_mnist", None, ("is2k_mnist", "max")),
        ("classes_mnist", None, ("classes2k_mnist", "max")),
        ("class_kl2k_mnist", None, ("class_kl2k_mnist", "min")),
        ("fid_mnist", "max", ("fid2k_mnist", "max")),  # eval.mode only overrides
    ],
)
def test_objective_key_and_direction(objective, mode, expected):
    cfg = compose_cfg(
        "eval.metrics=[fid_mnist,kid_mnist,is_mnist,classes_mnist]",
        f"eval.objective={objective}",
        f"eval.mode={'null' if mode is None else mode}",
        "eval.num_samples=2000",
    )
    assert objective_and_mode(cfg) == expected


def test_best_pt_keeps_the_lowest_fid(tmp_path):
    run_dir = tmp_path / "D"
    code, stderr = ganx_train_here(
        *TINY_ARGS,
        "train.steps=6",
        "eval.metrics=[fid_mnist]",
        "eval.num_samples=100",
        "eval.every=1",
        "eval.objective=fid_mnist",
        f"metrics.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
    )
    assert code == 0, stderr
    fids = {r["step"]: r["fid100_mnist"] for r in records(run_dir) if "fid100_mnist" in r}
    best_step = min(fids, key=fids.get)
    best = ckpt.load(run_dir / "checkpoints" / "best.pt")
    assert best["step"] == best_step and best["best"] == pytest.approx(fids[best_step])
    assert len(set(fids.values())) > 1  # a real choice was made


def start(run_dir, *extra):
    return subprocess.Popen(
        [GANX_TRAIN, *TINY_ARGS, "log.every=1", f"hydra.run.dir={run_dir}", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# the final evaluation of this config takes many seconds on a CPU: a signal must not wait for it
LONG_EVAL = ["eval.metrics=[fid_mnist,kid_mnist]", "eval.num_samples=20000", "eval.every=100000"]


@pytest.mark.slow
def test_sigterm_checkpoints_first_without_the_final_evaluation(tmp_path):
    run_dir = tmp_path / "D"
    proc = start(run_dir, "train.steps=100000", *LONG_EVAL, f"metrics.cache_dir={tmp_path}")
    wait_for_step(run_dir, 3, proc)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out  # 128 + SIGTERM: stopped after its checkpoint
    assert time.time() - sent < 10, "the checkpoint waited for an evaluation"
    assert "SIGTERM received: saving a checkpoint" in out
    state = ckpt.load(run_dir / "checkpoints" / "last.pt")
    assert state["step"] >= 3
    assert not any("fid20k_mnist" in r for r in records(run_dir))
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"


@pytest.mark.slow
def test_signal_during_an_evaluation_abandons_it(tmp_path):
    run_dir = tmp_path / "D"
    long_eval = [*LONG_EVAL[:2], "eval.every=5", f"metrics.cache_dir={tmp_path}"]
    proc = start(run_dir, "train.steps=100000", *long_eval)
    wait_for_step(run_dir, 4, proc)
    time.sleep(1.0)  # step 5's evaluation is running now
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out  # 128 + SIGINT
    assert "evaluation at step 5 was abandoned" in out
    assert ckpt.load(run_dir / "checkpoints" / "last.pt")["step"] >= 5


@pytest.mark.slow
def test_second_signal_aborts_at_once_and_keeps_the_checkpoint(tmp_path):
    run_dir = tmp_path / "D"
    proc = start(run_dir, "train.steps=100000", "ckpt.every=2", *LONG_EVAL)
    wait_for_step(run_dir, 4, proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert "Traceback" not in out
    assert proc.returncode == 130, out  # 128 + SIGINT either way
    if "aborted" in out:  # the second signal came before the loop had stopped
        assert "aborted; resume=auto continues" in out
    state = ckpt.load(run_dir / "checkpoints" / "last.pt")  # intact, never half-written
    assert state["step"] >= 4 and torch.isfinite(state["fixed_noise"]).all()
