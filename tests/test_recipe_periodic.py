"""docs/ARCHITECTURE.md, Recipes, "A periodic action", followed as written: its code blocks are
applied to a copy of the package in tmp_path, and ganx-train runs from that copy (PYTHONPATH):
the action runs every step, the run resumes, and so does a checkpoint from before the key."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import load_script
from ganx_cli import GANX_TRAIN, TINY_ARGS

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "### A periodic action"
EDIT = re.compile(
    r'^( *)<!-- edit (\S+) (before|after) "(.*?)" -->\n\1```\w*\n(.*?)\n\1```', re.S | re.M
)
TAG = "D/logits_fixed_noise"
mutants = load_script("mutants")  # its copy of the package, for PYTHONPATH

pytestmark = pytest.mark.slow  # ganx-train in subprocesses


def recipe_edits(name: str) -> list[tuple[str, str, str, str]]:
    """(file, before|after, anchor, code) of each block of the recipe ``name``, in order."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split(name + "\n", 1)[1]
    section = re.split(r"^#{2,3} ", section, maxsplit=1, flags=re.M)[0]
    edits = []
    for indent, file, where, anchor, code in EDIT.findall(section):
        lines = [line.removeprefix(indent) for line in code.splitlines()]
        edits.append((file, where, anchor, "\n".join(lines) + "\n"))
    return edits


def apply(edit: tuple[str, str, str, str], package: Path) -> None:
    """One block into the copy: before (then a blank line) or after the first line that starts,
    indentation aside, with the anchor."""
    file, where, anchor, code = edit
    path = mutants.in_copy(package, file)
    assert path is not None, f"the recipe edits {file}, outside the package"
    lines = path.read_text().splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.strip().startswith(anchor)), None)
    assert at is not None, f"the recipe's anchor {anchor!r} is not in {file}"
    block = code + "\n" if where == "before" else code
    lines.insert(at if where == "before" else at + 1, block)
    path.write_text("".join(lines))


def package_copy(tmp_path: Path, name: str) -> Path:
    """The package as scripts/mutants.py copies it (src/ganx with conf/ as ganx/conf) into
    tmp_path/src, with the recipe's edits applied; returns the folder for PYTHONPATH."""
    src = tmp_path / "src"
    package = mutants.package_copy(src)
    for edit in recipe_edits(name):
        apply(edit, package)
    return src


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
    files = [file for file, *_ in recipe_edits(RECIPE)]
    assert sorted(set(files)) == [
        "conf/config.yaml",
        "src/ganx/outputs.py",
        "src/ganx/schedule.py",
        "src/ganx/trackers.py",  # the new media type (a histogram)
    ]


def test_a_periodic_action_added_by_the_recipe_runs_and_resumes(tmp_path):
    src = package_copy(tmp_path, RECIPE)
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
