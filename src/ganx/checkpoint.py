"""Checkpoints: one flat dict of plain types and tensors, written atomically, loaded safely.

Atomic: the dict is written to a temporary file in the same directory, flushed and fsynced,
then renamed over the target, so the previous ``last.pt`` stays valid until the new one is
complete. Safe: loading uses ``torch.load(weights_only=True)``, which refuses pickles that
would run code; that is why every non-tensor value stored here is a plain Python type.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import torch


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or does not fit the run that tries to load it."""


def atomic_save(state: dict, path: Path) -> None:
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):  # disk full, read-only, permissions
            raise CheckpointError(
                f"could not write checkpoint {path} ({err}); the previous "
                f"{path.name}, if any, is intact"
            ) from err
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:  # make the rename itself durable
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain Python "
            f"types, which could run code when unpickled ({str(err).splitlines()[0]})"
        ) from err
    except (EOFError, RuntimeError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint: {err}") from err


def keep_latest(directory: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints (``step_*.pt``)."""
    steps = sorted(Path(directory).glob("step_*.pt"))
    for old in steps[: max(len(steps) - keep, 0)]:
        old.unlink()
