"""Every random stream the loop uses: seeding, saving and restoring them, and keeping them
untouched while something outside training runs (evaluation, sample grids)."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The torch stream's seed on rank ``rank`` > 0 from G step ``step`` on: each rank draws its
    own noise (rank 0's stream is seeded with ``seed`` itself, then restored from checkpoints)."""
    return seed * 1_000_003 + rank * 7919 + step


def rng_state() -> dict:
    """Python, NumPy, torch CPU and (when present) CUDA states, as plain types and tensors (what
    a checkpoint may hold: see :mod:`ganx.checkpoint`)."""
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


@contextlib.contextmanager
def preserved_rng():
    """Run the body, then put every stream back as it was. Evaluation builds its feature
    network (a module's random init before its weights load) and may draw elsewhere; were that
    to advance the training streams, a run that evaluated at a stopping point would continue
    differently from one that did not, and exact resume would break."""
    saved = rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)


def _to_plain(value):
    return [_to_plain(v) for v in value] if isinstance(value, tuple) else value


def _to_tuple(value):
    return tuple(_to_tuple(v) for v in value) if isinstance(value, list) else value
