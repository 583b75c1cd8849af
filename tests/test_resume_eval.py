"""Exact resume with evaluation on, as a user runs it: the default config (its default metrics
for mnist5k, eval.num_samples 2000), `ganx-train` in a subprocess. Stopping points fall on
evaluations (train.stop_at and the end of a finished run are evaluated), and a resume after a
crash builds the feature network anew at its first evaluation; none of that may change training.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganx import checkpoint as ckpt


def ganx_train(run_dir: Path, cache: Path, *overrides: str) -> None:
    """``ganx-train`` with the default config apart from ``overrides``."""
    env = dict(os.environ, GANX_CACHE=str(cache))  # real-data features: not in the home dir
    command = [sys.executable, "-m", "ganx.train", f"hydra.run.dir={run_dir}", *overrides]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def last_state(run_dir: Path) -> dict:
    state = ckpt.load(run_dir / "checkpoints" / "last.pt")
    state.pop("config")  # train.steps/stop_at/resume differ between the runs compared
    return state


def assert_trees_equal(a, b, path="checkpoint") -> None:
    """Every tensor (weights, EMA, optimiser and scheduler states, RNG streams, data position)
    bitwise equal, and every other value equal."""
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
    import json

    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["step"] for r in map(json.loads, lines) if "fid2k_mnist" in r]


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[Path, Path]:
    """One uninterrupted 6-step run of the default job (evaluated at its end)."""
    root = tmp_path_factory.mktemp("resume_eval")
    run_dir = root / "straight"
    ganx_train(run_dir, root / "cache", "train.steps=6")
    assert evaluated_steps(run_dir) == [6]
    return run_dir, root / "cache"


def test_stop_at_an_evaluation_then_resume_equals_uninterrupted(straight, tmp_path):
    reference, cache = straight
    run_dir = tmp_path / "paused"
    ganx_train(run_dir, cache, "train.steps=6", "train.stop_at=3")
    assert evaluated_steps(run_dir) == [3]  # the stopping point is evaluated
    ganx_train(run_dir, cache, "train.steps=6", "resume=auto")
    assert evaluated_steps(run_dir) == [3, 6]
    assert_trees_equal(last_state(reference), last_state(run_dir))


def test_a_finished_run_continued_to_more_steps_equals_the_longer_run(straight, tmp_path):
    """No schedule of the default job depends on train.steps (lr_decay off), so 3 finished
    steps continued to 6 are the 6-step run."""
    reference, cache = straight
    run_dir = tmp_path / "extended"
    ganx_train(run_dir, cache, "train.steps=3")
    ganx_train(run_dir, cache, "train.steps=6", "resume=auto")
    assert evaluated_steps(run_dir) == [3, 6]
    assert_trees_equal(last_state(reference), last_state(run_dir))


def test_resume_after_a_crash_that_followed_an_evaluation(tmp_path):
    """Evaluations at 2, 4, 6 and checkpoints at 3: a crash after step 3 leaves the step-3
    checkpoint, and the new process builds its feature network at step 4, where the
    uninterrupted run reused the one built at step 2."""
    cache = tmp_path / "cache"
    common = ["train.steps=6", "eval.every=2", "ckpt.every=3"]
    ganx_train(tmp_path / "straight", cache, *common)
    assert evaluated_steps(tmp_path / "straight") == [2, 4, 6]
    crash_point = tmp_path / "straight" / "checkpoints" / "step_0000003.pt"
    ganx_train(tmp_path / "resumed", cache, *common, f"resume={crash_point}")
    assert evaluated_steps(tmp_path / "resumed") == [4, 6]
    assert_trees_equal(last_state(tmp_path / "straight"), last_state(tmp_path / "resumed"))
