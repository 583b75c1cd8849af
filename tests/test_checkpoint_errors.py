"""Corrupted checkpoints: truncated, empty, a text file, a pickle of the wrong structure, a
checkpoint of another model. Each is refused with one line naming the file and what is wrong,
and naming an intact older copy beside it when there is one."""

from __future__ import annotations

import shutil

import pytest
import torch
from ganx_cli import TINY_ARGS, error_lines, ganx_train_here, snapshot

from ganx import checkpoint as ckpt


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A run with last.pt and the step copies step_0000002.pt, step_0000004.pt."""
    run_dir = tmp_path_factory.mktemp("runs") / "D"
    code, stderr = ganx_train_here(*TINY_ARGS, "train.steps=4", f"hydra.run.dir={run_dir}")
    assert code == 0, stderr
    return run_dir


def damaged_copy(finished_run, tmp_path, damage):
    run_dir = tmp_path / "D"
    shutil.copytree(finished_run, run_dir)
    last = run_dir / "checkpoints" / "last.pt"
    damage(last)
    return run_dir, last


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGES = {
    "truncated": (truncate, "is truncated or corrupted"),
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "text": (lambda p: p.write_text("step: 4\n"), "is a text file, not a checkpoint"),
    "list": (lambda p: torch.save([1, 2], p), "is not a ganx checkpoint: it holds a list"),
    "dict": (lambda p: torch.save({"step": 4}, p), "it lacks generator, discriminator, config"),
}


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
@pytest.mark.parametrize("kind", sorted(DAMAGES))
def test_damaged_last_pt_names_the_file_and_the_intact_copy(finished_run, tmp_path, kind):
    damage, what = DAMAGES[kind]
    run_dir, last = damaged_copy(finished_run, tmp_path, damage)
    before = snapshot(run_dir)
    code, stderr = ganx_train_here(
        *TINY_ARGS, "train.steps=6", "resume=auto", f"hydra.run.dir={run_dir}"
    )
    lines = error_lines(stderr)
    assert code != 0 and len(lines) == 1 and "Traceback" not in stderr, stderr
    assert str(last) in lines[0] and what in lines[0]
    intact = run_dir / "checkpoints" / "step_0000004.pt"
    assert f"resume from it with resume={intact}" in lines[0]
    assert snapshot(run_dir) == before  # nothing written, the damaged file kept for a look
    code, stderr = ganx_train_here(
        *TINY_ARGS, "train.steps=6", f"resume={intact}", f"hydra.run.dir={run_dir}"
    )
    assert code == 0, stderr  # the offered command works
    assert ckpt.load(last)["step"] == 6


def test_the_newest_intact_copy_is_offered(finished_run, tmp_path):
    run_dir, last = damaged_copy(finished_run, tmp_path, truncate)
    truncate(run_dir / "checkpoints" / "step_0000004.pt")
    with pytest.raises(ckpt.CheckpointError, match="resume=.*step_0000002.pt"):
        ckpt.load(last)


def test_no_copy_is_offered_when_none_is_intact(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"")
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load(path)
    assert str(path) in str(err.value) and "intact" not in str(err.value)


def test_checkpoint_of_another_model_is_refused_by_key(finished_run, tmp_path):
    run_dir = tmp_path / "mlp"
    other = finished_run / "checkpoints" / "last.pt"
    code, stderr = ganx_train_here(
        *TINY_ARGS[:-3],
        "hardware.threads=1",
        "model=mlp",
        f"resume={other}",
        f"hydra.run.dir={run_dir}",
    )
    lines = error_lines(stderr)
    assert code != 0 and len(lines) == 1, stderr
    assert f"cannot resume from {other}" in lines[0]
    assert "model.name: checkpoint 'dcgan', now 'mlp'" in lines[0]
    assert not run_dir.exists()
