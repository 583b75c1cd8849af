"""Small statistics shared by the metrics (:mod:`.registry`, :mod:`.fidelity`)."""

from __future__ import annotations

import torch


def kl_from_uniform(counts: torch.Tensor) -> float:
    """KL(p || uniform) of a histogram, in nats (0 = perfectly balanced; log K = one bin);
    NaN for an empty histogram (undefined)."""
    total = counts.sum()
    if total == 0:
        return float("nan")
    p = counts.double() / total
    nonzero = p > 0
    return float((p[nonzero] * (p[nonzero] * len(counts)).log()).sum())
