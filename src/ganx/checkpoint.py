"""Checkpoints: one flat dict of plain types and tensors, written atomically, loaded safely.

Atomic: the dict is written to a temporary file in the same directory, flushed and fsynced,
then renamed over the target, so the previous ``last.pt`` stays valid until the new one is
complete. Safe: loading uses ``torch.load(weights_only=True)``, which refuses pickles that
would run code; that is why every non-tensor value stored here is a plain Python type.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from pathlib import Path

import numpy as np
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


def rng_state() -> dict:
    """Every random stream the loop uses, as plain types and tensors."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": _to_plain(random.getstate()),
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_plain(value):
    return [_to_plain(v) for v in value] if isinstance(value, tuple) else value


def _to_tuple(value):
    return tuple(_to_tuple(v) for v in value) if isinstance(value, list) else value


def keep_latest(directory: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints (``step_*.pt``)."""
    steps = sorted(Path(directory).glob("step_*.pt"))
    for old in steps[: max(len(steps) - keep, 0)]:
        old.unlink()
