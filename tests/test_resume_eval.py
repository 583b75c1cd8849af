"""Exact resume with evaluation on, with the default config (its default metrics for mnist5k and
eval.num_samples 2000): stopping points fall on evaluations (train.stop_at and the end of a
finished run are evaluated), and a resume after a crash builds the feature network anew at its
first evaluation; none of that may change training. Runs are compared with one uninterrupted
run of the default job, which evaluates only at its end.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import compose_cfg

from ganx import checkpoint as ckpt
from ganx.loop import train


def last_state(run_dir: Path, name: str = "last.pt") -> dict:
    state = ckpt.load(run_dir / "checkpoints" / name)
    state.pop("config")  # train.steps/stop_at/resume differ between the runs compared
    state.pop("elapsed_s")  # wall-clock time spent training: never equal between two runs
    state.pop("record")  # when and how each invocation was started (ganx.records)
    return state


def assert_trees_equal(a, b, path="checkpoint") -> None:
    """Every tensor (weights, EMA, optimiser and scheduler states, RNG streams, data position,
    grid noise) bitwise equal, and every other value equal."""
    if isinstance(a, dict):
        assert set(a) == set(b), (path, set(a) ^ set(b))
        for key in a:
            assert_trees_equal(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_trees_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    else:
        assert a == b, path


def evaluated_steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["step"] for r in map(json.loads, lines) if "fid2k_mnist" in r]


def default_job(cache: Path, *overrides: str):
    """The default config (``ganx-train`` without arguments) with ``overrides``; real-data
    features are cached under ``cache``, not in the home directory."""
    return compose_cfg(f"metrics.cache_dir={cache}", *overrides, tiny=False)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[Path, Path]:
    """One uninterrupted 6-step run of the default job."""
    root = tmp_path_factory.mktemp("resume_eval")
    run_dir = root / "straight"
    train(default_job(root / "cache", "train.steps=6", "log.progress=false"), run_dir)
    assert evaluated_steps(run_dir) == [6]
    return run_dir, root / "cache"


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_ganx_train_stop_at_an_evaluation_then_resume_equals_uninterrupted(straight, tmp_path):
    """`ganx-train train.steps=6 train.stop_at=3`, then `resume=auto`, as a user types them."""
    reference, cache = straight
    run_dir = tmp_path / "paused"
    env = dict(os.environ, GANX_CACHE=str(cache))
    for extra in (["train.stop_at=3"], ["resume=auto"]):
        command = [sys.executable, "-m", "ganx.train", "train.steps=6", *extra]
        # one thread, as the in-process reference run uses
        command += [f"hydra.run.dir={run_dir}", "hardware.threads=1", "log.progress=false"]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if extra == ["train.stop_at=3"]:
            assert evaluated_steps(run_dir) == [3]  # the stopping point is evaluated
    assert evaluated_steps(run_dir) == [3, 6]
    assert_trees_equal(last_state(reference), last_state(run_dir))


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_a_finished_run_continued_to_more_steps_equals_the_longer_run(straight, tmp_path):
    """No schedule of the default job depends on train.steps (lr_decay off), so 3 finished
    (and evaluated) steps continued to 6 are the 6-step run."""
    reference, cache = straight
    run_dir = tmp_path / "extended"
    train(default_job(cache, "train.steps=3", "log.progress=false"), run_dir)
    train(default_job(cache, "train.steps=6", "resume=auto", "log.progress=false"), run_dir)
    assert evaluated_steps(run_dir) == [3, 6]
    assert_trees_equal(last_state(reference), last_state(run_dir))


@pytest.mark.slow  # five evaluations of 2,000 samples
def test_evaluations_and_a_resume_after_a_crash_change_nothing(straight, tmp_path):
    """Evaluations at 2, 4 and 6 and checkpoints at 3: the run equals the one evaluated only at
    its end; and a process that resumes from the step-3 checkpoint (as after a crash following
    the evaluation at 2) builds its feature network at step 4, where the first run reused the
    one it built at step 2, and still ends the same."""
    reference, cache = straight
    common = ["train.steps=6", "eval.at=[2,4]", "ckpt.every=3", "ckpt.keep=5"]
    first = tmp_path / "evaluated"
    train(default_job(cache, *common, "log.progress=false"), first)
    assert evaluated_steps(first) == [2, 4, 6]
    assert_trees_equal(last_state(reference), last_state(first))
    crash_point = first / "checkpoints" / "step_0000003.pt"
    resumed = tmp_path / "resumed"
    train(default_job(cache, *common, f"resume={crash_point}", "log.progress=false"), resumed)
    assert evaluated_steps(resumed) == [4, 6]
    assert_trees_equal(last_state(reference), last_state(resumed))
