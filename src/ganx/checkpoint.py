"""Checkpoints: one flat dict of plain types and tensors, written atomically, loaded safely.

Atomic: the dict is written to a temporary file in the same directory, flushed and fsynced,
then renamed over the target, so the previous ``last.pt`` stays valid until the new one is
complete. Safe: loading uses ``torch.load(weights_only=True)``, which refuses pickles that
would run code; that is why every non-tensor value stored here is a plain Python type.
"""

from __future__ import annotations

import codecs
import os
import pickle
import tempfile
from pathlib import Path

import torch

from .errors import CheckpointError


class _RecordingWriter:
    """The file torch.save writes through, keeping the OSError of a failed write: torch's zip
    writer reports it only as ``RuntimeError: [enforce fail at inline_container.cc]``."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.file.flush()


def write_error(path: Path, err: OSError) -> CheckpointError:
    """One line naming the file and the system's reason (``no space left on device``)."""
    reason = (err.strerror or str(err)).lower()
    previous = (
        f"the previous {path.name} is intact" if path.is_file() else "no partial file is left"
    )
    return CheckpointError(f"could not write checkpoint {path}: {reason}; {previous}")


def atomic_save(state: dict, path: Path) -> None:
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            writer = _RecordingWriter(f)
            try:
                torch.save(state, writer)
            except RuntimeError as err:
                if writer.error is None:
                    raise
                raise writer.error from err
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):  # disk full, read-only, permissions
            raise write_error(path, err) from err
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:  # make the rename itself durable
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# what every checkpoint of ganx holds (loop.checkpoint_state); anything without them is not one
REQUIRED_KEYS = ("step", "generator", "discriminator", "config")
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6


def load(path: Path, mmap: bool = False) -> dict:
    """A checkpoint written by ganx; a file that is not one raises :class:`CheckpointError`
    naming the file, what is wrong and, when there is one, an intact older copy beside it.
    ``mmap``: map the tensors instead of reading them (for a look at the config only)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {path} {what}")
    problem = _read_problem(path)
    if problem is None:
        state = _torch_load(path, mmap)
        problem = _structure_problem(state)
        if problem is None:
            return state
    raise CheckpointError(f"checkpoint {path} {problem}{_older_copy_hint(path)}")


def _read_problem(path: Path) -> str | None:
    """What makes the file unreadable before unpickling, if anything."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "is empty (0 bytes): its write never completed"
    if head.startswith(ZIP_MAGIC):
        return None
    try:  # incremental: a character cut by the 512-byte read is no reason to call it binary
        codecs.getincrementaldecoder("utf-8")().decode(head)
        return "is a text file, not a checkpoint"
    except UnicodeDecodeError:
        return "is not a checkpoint written by ganx (not a torch.save zip archive)"


def _first_sentence(err: BaseException) -> str:
    """torch's reason, as much as fits one line: its first sentence (the rest is advice, and in
    the weights-only refusal terminal escapes), or the error's type when it says nothing."""
    return (str(err).splitlines() or [type(err).__name__])[0].split(". ")[0]


def _torch_load(path: Path, mmap: bool = False) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain Python "
            f"types, which could run code when unpickled ({_first_sentence(err)})"
        ) from err
    except (EOFError, RuntimeError, KeyError, ValueError, OSError) as err:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupted ({_first_sentence(err)})"
            f"{_older_copy_hint(path)}"
        ) from err


def _structure_problem(state) -> str | None:
    if not isinstance(state, dict):
        return f"is not a ganx checkpoint: it holds a {type(state).__name__}, not a dict"
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        return f"is not a ganx checkpoint: it lacks {', '.join(missing)}"
    if not isinstance(state["config"], dict) or not isinstance(state["step"], int):
        return "is not a ganx checkpoint: its config or step has the wrong type"
    return None


def intact_copy(path: Path) -> Path | None:
    """The newest ``step_*.pt`` beside ``path`` (other than it) that loads as a checkpoint."""
    for other in sorted(Path(path).parent.glob("step_*.pt"), reverse=True):
        if other.resolve() == Path(path).resolve():
            continue
        try:
            if (
                _read_problem(other) is None
                and _structure_problem(_torch_load(other, True)) is None
            ):
                return other
        except CheckpointError:
            continue
    return None


def _older_copy_hint(path: Path) -> str:
    older = intact_copy(path)
    if older is None:
        return ""
    return f"; an intact older copy is beside it: resume from it with resume={older}"


def read_config(path: Path) -> dict:
    """The config a checkpoint was written with (checked like :func:`load`, tensors mapped,
    not read)."""
    return load(path, mmap=True)["config"]


def keep_latest(directory: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints (``step_*.pt``)."""
    steps = sorted(Path(directory).glob("step_*.pt"))
    for old in steps[: max(len(steps) - keep, 0)]:
        old.unlink()
