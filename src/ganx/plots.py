"""Figures: 2-D and 3-D sample scatter plots (toy mixtures)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files and tensorboard only
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def scatter_2d(points: np.ndarray, dataset_name: str, path: Path | None = None):
    """Generated points (blue) over the mixture's mode centres (red crosses). A bare Figure on
    the Agg canvas, with fixed margins: neither pyplot (a third of a second to import) nor
    tight_layout's extra drawing pass is paid by every toy run of a sweep."""
    from .data import mixture_centres

    fig = Figure(figsize=(4, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5)
    if dataset_name in ("ring8", "grid25"):
        centres = mixture_centres(dataset_name).numpy()
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="red", s=40)
        lim = np.abs(centres).max() + 1.5
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.08, top=0.97)
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def draw_3d(ax, points: np.ndarray, centres: np.ndarray | None = None, title: str = "") -> None:
    """One 3-D scatter of generated points (blue) and the mixture's centres (red crosses) on an
    axis made with ``projection="3d"``, in a fixed box around the data (as Roth et al.'s
    3DGAN figures: one panel per checkpoint)."""
    ax.scatter(points[:, 0], points[:, 1], points[:, 2], s=1, alpha=0.4)
    if centres is not None:
        ax.scatter(centres[:, 0], centres[:, 1], centres[:, 2], marker="x", c="red", s=30)
        low, high = centres.min() - 0.5, centres.max() + 0.5
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_zlim(low, high)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=5)


def scatter_3d(points: np.ndarray, centres: np.ndarray | None = None, path: Path | None = None):
    """A single 3-D scatter (training's sample plot for 3-D data such as ``mog3d``)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4, 4))
    draw_3d(fig.add_subplot(projection="3d"), points, centres)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
