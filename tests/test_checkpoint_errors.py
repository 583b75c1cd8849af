"""Corrupted checkpoints: truncated, empty, a text file, a pickle of the wrong structure, a
checkpoint of another model. Each is refused with one line naming the file and what is wrong,
and naming an intact older copy beside it when there is one."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

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
    "truncated": (truncate, "is truncated or corrupted ("),
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes): its write never completed"),
    "text": (lambda p: p.write_text("step: 4\n"), "is a text file, not a checkpoint"),
    "list": (
        lambda p: torch.save([1, 2], p),
        "is not a ganx checkpoint: it holds a list, not a dict",
    ),
    "dict": (
        lambda p: torch.save({"step": 4}, p),
        "is not a ganx checkpoint: it lacks generator, discriminator, config",
    ),
}
# what only the in-process test below tries as well
MORE_DAMAGES = {
    "binary": (
        lambda p: p.write_bytes(bytes(range(128, 256)) * 8),
        "is not a checkpoint written by ganx (not a torch.save zip archive)",
    ),
    # a text file whose 512th byte is inside a character (the read stops mid-character)
    "text_cut": (
        lambda p: p.write_text("#" * 511 + "\u00e9 step: 4\n", encoding="utf-8"),
        "is a text file, not a checkpoint",
    ),
    "types": (
        lambda p: torch.save({"step": 4.0, "generator": {}, "discriminator": {}, "config": {}}, p),
        "is not a ganx checkpoint: its config or step has the wrong type",
    ),
    "config": (
        lambda p: torch.save({"step": 4, "generator": {}, "discriminator": {}, "config": []}, p),
        "is not a ganx checkpoint: its config or step has the wrong type",
    ),
}


def saved(path, step: int):
    """A minimal checkpoint: the keys every ganx checkpoint holds, no training needed."""
    state = {"step": step, "generator": {"w": torch.ones(2)}, "discriminator": {}, "config": {}}
    ckpt.atomic_save(state, path)
    return path


@pytest.mark.parametrize("kind", sorted(DAMAGES | MORE_DAMAGES))
def test_load_refuses_a_damaged_checkpoint_in_one_line_naming_the_newest_intact_copy(
    tmp_path, kind
):
    """The in-process share of test_damaged_last_pt_names_the_file_and_the_intact_copy: the
    whole line ckpt.load raises for each damage, ending with the newest step copy that loads."""
    run = tmp_path / "checkpoints"
    for step in (2, 4):
        saved(run / f"step_000000{step}.pt", step)
    last = saved(run / "last.pt", 4)
    damage, what = (DAMAGES | MORE_DAMAGES)[kind]
    damage(last)
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load(last)
    message = str(err.value)
    hint = f"; an intact older copy is beside it: resume from it with resume={run}/step_0000004.pt"
    if kind == "truncated":  # then torch's reason, its first sentence
        with pytest.raises(RuntimeError) as torch_err:
            torch.load(last, weights_only=True)
        what += str(torch_err.value).split(". ")[0] + ")"
        assert ". " in str(torch_err.value).splitlines()[0]  # (there is advice to leave out)
    assert message == f"checkpoint {last} {what}{hint}"


def test_load_names_a_missing_file_and_a_directory(tmp_path):
    for path, what in ((tmp_path / "none.pt", "does not exist"), (tmp_path, "is a directory")):
        with pytest.raises(ckpt.CheckpointError) as err:
            ckpt.load(path)
        assert str(err.value) == f"checkpoint {path} {what}"


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
    assert str(err.value) == f"checkpoint {path} is empty (0 bytes): its write never completed"


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


class _FullDisk:
    """A file that takes ``room`` bytes, then fails with ``error`` (inside torch.save)."""

    def __init__(self, file, room: int, error: OSError):
        self.file, self.room, self.error = file, room, error

    def write(self, data) -> int:
        if len(data) > self.room:
            raise self.error
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
        (OSError("Disk quota exceeded"), "disk quota exceeded"),  # no errno, no strerror
    ],
)
def test_a_full_disk_inside_torch_save_is_one_line_and_leaves_the_previous_file(
    tmp_path, monkeypatch, error, reason
):
    """torch's zip writer reports a failed write only as a RuntimeError: the system's reason is
    kept and named, the temporary file removed, and the previous checkpoint left as it was."""
    run, fdopen = tmp_path / "checkpoints", os.fdopen
    path = run / "last.pt"

    def full_disk(fd, mode):
        return _FullDisk(fdopen(fd, mode), 100, error)

    for previous in ("no partial file is left", "the previous last.pt is intact"):
        monkeypatch.setattr(ckpt.os, "fdopen", full_disk)
        with pytest.raises(ckpt.CheckpointError) as err:
            saved(path, 2)
        assert str(err.value) == (f"could not write checkpoint {path}: {reason}; {previous}")
        assert sorted(p.name for p in run.iterdir()) == (["last.pt"] if path.exists() else [])
        monkeypatch.setattr(ckpt.os, "fdopen", fdopen)
        if not path.exists():
            saved(path, 1)
    assert ckpt.load(path)["step"] == 1


def test_atomic_save_makes_its_directories_and_renames_from_beside_the_target(
    tmp_path, monkeypatch
):
    """The temporary file lies in the target's directory (a rename within one file system is
    atomic; across two it is not, or fails), and missing directories are made."""
    renamed = []
    replace = os.replace

    def recorded(src, dst):
        renamed.append((Path(src), Path(dst)))
        replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", recorded)
    path = tmp_path / "a" / "b" / "last.pt"
    saved(path, 1)
    saved(path, 2)  # again, into the directory now there
    assert [dst for _, dst in renamed] == [path, path]
    for src, _ in renamed:  # what a crash would leave: hidden, and named after what it was for
        assert src.parent == path.parent and src.name.startswith(".last.pt.")
        assert src.name.endswith(".tmp")
    assert ckpt.load(path)["step"] == 2 and sorted(p.name for p in path.parent.iterdir()) == [
        "last.pt"
    ]


def test_a_checkpoint_directory_that_is_a_file_is_one_line(tmp_path):
    """The run's checkpoints/ taken by a file: the system's reason in one line, nothing else
    touched (no temporary file was made, so none is removed)."""
    (tmp_path / "checkpoints").write_text("not a directory")
    path = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(ckpt.CheckpointError) as err:
        saved(path, 1)
    want = f"could not write checkpoint {path}: file exists; no partial file is left"
    assert str(err.value) == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]


def test_a_damaged_step_copy_names_the_next_older_one(tmp_path):
    """Resuming from the newest step copy itself, damaged: the hint skips it and names the one
    before (the copy being loaded is no way out)."""
    run = tmp_path / "checkpoints"
    for step in (2, 4):
        saved(run / f"step_000000{step}.pt", step)
    truncate(run / "step_0000004.pt")
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load(run / "step_0000004.pt")
    assert str(err.value).endswith(f"resume from it with resume={run}/step_0000002.pt")


def test_a_checkpoint_holding_other_objects_is_refused_in_one_plain_line(tmp_path):
    """weights_only loading refuses a pickle of other objects (they could run code): one line
    with torch's reason, its first sentence, without its terminal escapes."""
    path = tmp_path / "last.pt"
    torch.save({"step": 1, "generator": {}, "discriminator": {}, "config": Path("x")}, path)
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load(path)
    assert str(err.value) == (
        f"refusing to load {path}: it holds objects other than tensors and plain Python types, "
        "which could run code when unpickled (Weights only load failed)"
    )


def test_an_error_without_a_message_is_named_by_its_type():
    """The reason in a refusal line: torch's first sentence, or the error's type when it has no
    message (an empty read raises EOFError() in some torch versions)."""
    from ganx.checkpoint import _first_sentence

    assert _first_sentence(EOFError()) == "EOFError"
    assert _first_sentence(RuntimeError("it broke. Do this.\nMore")) == "it broke"
