"""docs/ARCHITECTURE.md, Recipes, "A periodic action", followed as written: its code blocks are
applied to a copy of the package in tmp_path, and ganx-train runs from that copy (PYTHONPATH):
the action runs every step, the run resumes, and so does a checkpoint from before the key."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from ganx_cli import GANX_TRAIN, TINY_ARGS
from recipes import copy_of_the_package, follow, recipe

TITLE = "A periodic action"
TAG = "D/logits_fixed_noise"

pytestmark = pytest.mark.slow  # ganx-train in subprocesses


def train_from(src: Path, cwd: Path, *args: str):
    import subprocess

    path = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "PYTHONPATH": path, "HYDRA_FULL_ERROR": ""}
    return subprocess.run(
        [GANX_TRAIN, *TINY_ARGS, *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def histogram_steps(run_dir: Path) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"histograms": 0}).Reload()
    return (
        [event.step for event in events.Histograms(TAG)]
        if TAG in events.Tags()["histograms"]
        else []
    )


def test_the_recipe_touches_three_files_and_one_more_for_a_new_media_type():
    files = [step.file for step in recipe(TITLE)]
    assert sorted(set(files)) == [
        "conf/config.yaml",
        "src/ganx/outputs.py",
        "src/ganx/schedule.py",
        "src/ganx/trackers.py",  # the new media type (a histogram)
    ]


def test_a_periodic_action_added_by_the_recipe_runs_and_resumes(tmp_path):
    copy = copy_of_the_package(tmp_path)
    follow(copy, recipe(TITLE))
    src = copy / "src"
    run = tmp_path / "run"
    done = train_from(src, tmp_path, f"hydra.run.dir={run}", "train.steps=2", "logits.every=1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert histogram_steps(run) == [1, 2]
    # a checkpoint from before the key (deleted from its config): it resumes, the action on
    older = tmp_path / "older"
    shutil.copytree(run, older)
    last = older / "checkpoints" / "last.pt"
    saved = torch.load(last, weights_only=True)
    del saved["config"]["logits"]
    torch.save(saved, last)
    for folder in (run, older):
        more = train_from(
            src,
            tmp_path,
            f"hydra.run.dir={folder}",
            "resume=auto",
            "train.steps=3",
            "logits.every=1",
        )
        assert more.returncode == 0, more.stderr[-3000:]
        assert f"resuming {folder} at step 2 of 2" in more.stdout + more.stderr
        assert histogram_steps(folder) == [1, 2, 3]
