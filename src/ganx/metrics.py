"""Evaluation metrics, registered by name and computed from generated samples.

A metric is a function ``(samples, source) -> dict[str, float]`` where ``samples`` is a float
tensor on the CPU (images in [-1, 1] or 2-D points) and ``source`` the training
:class:`~ganx.data.DataSource`. Register one with ``@register("name")``; ``eval.metrics`` lists
the names a run computes. Result keys state their protocol (e.g. ``modes_ring8``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .data import DataSource, mixture_centres

METRICS: dict[str, Callable[[torch.Tensor, DataSource], dict[str, float]]] = {}


def register(name: str):
    def wrap(fn):
        METRICS[name] = fn
        return fn

    return wrap


def kl_from_uniform(counts: torch.Tensor) -> float:
    """KL(p || uniform) of a histogram, in nats (0 = perfectly balanced; log K = one bin);
    NaN for an empty histogram (undefined)."""
    total = counts.sum()
    if total == 0:
        return float("nan")
    p = counts.double() / total
    nonzero = p > 0
    return float((p[nonzero] * (p[nonzero] * len(counts)).log()).sum())


@register("modes")
def mixture_modes(samples: torch.Tensor, source: DataSource) -> dict[str, float]:
    """Mode coverage on 2-D Gaussian mixtures (Metz et al. 2017; Lin et al. 2018, PacGAN):
    a sample is *high quality* if it lies within 3 standard deviations of its nearest centre;
    a mode is *covered* if it holds at least 20% of the high-quality samples a uniform spread
    would give it (PacGAN's rule: 20 of 100 expected). Also the KL divergence of the mode
    histogram of high-quality samples from uniform."""
    name = source.name
    centres = mixture_centres(name)
    std = float(source.extra["std"])
    dist = torch.cdist(samples.double(), centres.double())
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(centres))
    threshold = 0.2 * len(samples) / len(centres)
    return {
        f"modes_{name}": float((counts >= threshold).sum()),
        f"high_quality_{name}": float(good.double().mean()),
        f"mode_kl_{name}": kl_from_uniform(counts),
    }
