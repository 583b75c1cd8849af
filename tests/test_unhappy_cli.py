"""The unhappy paths of issue 24 as a user meets them: the console script in a subprocess. A
paused run continued by the bare ``ganx-train hydra.run.dir=D resume=auto`` ends bitwise equal to
the straight run; a full disk (a real 2 MB tmpfs) and a read-only mount (real, when root)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from ganx_cli import TINY_ARGS, error_lines, ganx_train
from test_resume_eval import assert_trees_equal

from ganx import checkpoint as ckpt

# non-default train.steps, eval.every, seed, loss and regularizer, with an evaluation on
OWN = [*TINY_ARGS, "train.steps=6", "eval.every=3", "seed=3", "loss=hinge", "reg=[r2]"]
OWN += ["reg.r2.weight=1", "eval.metrics=[fid_mnist]", "eval.num_samples=20"]


def weights(run_dir: Path) -> dict:
    state = ckpt.load(run_dir / "checkpoints" / "last.pt")
    keys = ("generator", "discriminator", "ema_generator", "opt_g", "opt_d", "rng", "step")
    return {k: state[k] for k in keys if k in state}


@pytest.mark.slow  # three ganx-train processes
def test_a_bare_resume_from_the_cli_ends_bitwise_equal_to_a_straight_run(tmp_path):
    cache = f"metrics.cache_dir={tmp_path / 'cache'}"
    straight = ganx_train(*OWN, cache, f"hydra.run.dir={tmp_path / 'straight'}")
    assert straight.returncode == 0, straight.stderr[-3000:]
    run_dir = tmp_path / "D"
    paused = ganx_train(*OWN, cache, "train.stop_at=3", f"hydra.run.dir={run_dir}")
    assert paused.returncode == 0, paused.stderr[-3000:]
    resumed = ganx_train(f"hydra.run.dir={run_dir}", "resume=auto")
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    assert f"resuming {run_dir} at step 3 of 6 with its own settings; changed: nothing" in out
    assert json.loads((run_dir / "status.json").read_text())["step"] == 6
    assert_trees_equal(weights(run_dir), weights(tmp_path / "straight"))


@contextlib.contextmanager
def mounted_tmpfs(where: Path, options: str):
    """A real tmpfs at ``where`` (root only), unmounted afterwards; skips when it cannot."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the in-process fault tests cover the rest)")
    where.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=False)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs -o {options} failed (exit {done.returncode})")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@pytest.mark.slow  # a ganx-train process on a real, full tmpfs
def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path):
    with mounted_tmpfs(tmp_path / "full", "size=2m") as full:
        run_dir = full / "run"  # room for one tiny checkpoint (1.4 MB), not for its successor
        args = [*TINY_ARGS, "train.steps=6", "ckpt.keep=0", "logger=[]", "sample.every=100"]
        proc = ganx_train(*args, f"hydra.run.dir={run_dir}")
        lines = error_lines(proc.stderr)
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
        assert f"could not write checkpoint {run_dir}/checkpoints/last.pt" in lines[0]
        assert "no space left on device" in lines[0] and "previous last.pt is intact" in lines[0]
        status = json.loads((run_dir / "status.json").read_text())
        assert status["status"] == "failed" and "no space left on device" in status["error"]
        assert ckpt.load(run_dir / "checkpoints" / "last.pt")["step"] == 2
        assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["last.pt"]


@pytest.mark.slow  # a ganx-train process
def test_a_read_only_run_dir_is_refused_before_anything(tmp_path):
    if os.geteuid() == 0:
        context = mounted_tmpfs(tmp_path / "ro", "ro,size=1m")
    else:  # a folder without write permission is what a user without root meets
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o555)
        context = contextlib.nullcontext(tmp_path / "ro")
    with context as read_only:
        proc = ganx_train(*TINY_ARGS, f"hydra.run.dir={read_only}/run")
        lines = error_lines(proc.stderr)
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-3000:]
        assert f"hydra.run.dir={read_only}/run: cannot write there" in lines[0]
        assert "Traceback" not in proc.stderr
        assert not (read_only / "run").exists()
