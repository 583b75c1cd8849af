"""Figures: 2-D sample scatter plots (toy mixtures)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files and tensorboard only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def scatter_2d(points: np.ndarray, dataset_name: str, path: Path | None = None):
    """Generated points (blue) over the mixture's mode centres (red crosses)."""
    from .data import mixture_centres

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5)
    if dataset_name in ("ring8", "grid25"):
        centres = mixture_centres(dataset_name).numpy()
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="red", s=40)
        lim = np.abs(centres).max() + 1.5
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
