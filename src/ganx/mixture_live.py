"""The live 2-D mixture view of ``ganx-dirac serve``: trains ``experiment=toy_ring8`` or
``toy_grid25`` (the configs ``ganx-train`` runs, built by the same :func:`ganx.build.build_all`
and stepped by the same :func:`ganx.step.training_iteration`) with the chosen loss and
regularizer, and yields a snapshot every ``every`` G steps: G's samples, D's output on a grid
and the modes covered, as :func:`ganx.metrics.registry.mixture_modes` counts them for the study.

The Dirac-GAN code's author took its training loop from his mode-collapse examples
(ChristophReich1996/Mode_Collapse); this is that experiment, with ganx's losses.
"""

from __future__ import annotations

import itertools
import threading

import torch
from omegaconf import DictConfig

from .build import build_all
from .data import mixture_centres
from .dirac_explore import LOCK, WEIGHT_KEY, BadQuery, choice, number
from .dirac_study import STUDY_LOSSES, cell_regs, compose_ganx
from .metrics.registry import EvalContext, mixture_modes
from .rng import seed_everything
from .step import StepSettings, training_iteration

# half the width of the square the page shows: the modes and a margin around them
VIEW_EXTENT = {"ring8": 3.0, "grid25": 5.5}
# the losses and regularizers a 2-D run takes (the Dirac study's, less its 1-D-only ones)
MIXTURE_REGS = ("none", "r1", "r2", "r1+r2", "rlc", "lecam", "instance_noise")
GRID = 40  # D is shown on GRID x GRID points
SHOWN = 500  # samples drawn on the page
MAX_STEPS = 20000


def mixture_query(query: dict) -> dict:
    """The settings of one 2-D run from the page's query; :class:`BadQuery` on a bad value."""
    steps = number(query, "steps", 2000, 1)
    every = number(query, "every", 100, 1)
    if steps != int(steps) or every != int(every) or steps > MAX_STEPS:
        raise BadQuery(
            f"steps={query.get('steps')!r}, every={query.get('every')!r}: whole numbers, "
            f"steps at most {MAX_STEPS}"
        )
    reg = choice(query, "reg", "none", list(MIXTURE_REGS))
    weight = query.get("weight", "")
    return {
        "dataset": choice(query, "dataset", "ring8", list(VIEW_EXTENT)),
        "loss": choice(query, "loss", "ns", list(STUDY_LOSSES)),
        "reg": reg,
        "weight": None if weight in ("", None) else number(query, "weight", 0.0, 0.0),
        "steps": int(steps),
        "every": int(every),
        "seed": int(number(query, "seed", 0, 0)),
    }


def mixture_config(settings: dict) -> DictConfig:
    """The ``ganx-train`` config of a 2-D run (Hydra compose; the reg's own default weight
    unless the page sets one)."""
    loss_choice, loss_regs = STUDY_LOSSES[settings["loss"]]
    regs = loss_regs + [r for r in cell_regs(settings["reg"]) if r not in loss_regs]
    overrides = [
        f"experiment=toy_{settings['dataset']}",
        f"loss={loss_choice}",
        f"reg=[{','.join(regs)}]",
        "hardware=cpu",
        f"train.steps={settings['steps']}",
        f"seed={settings['seed']}",
    ]
    if settings["weight"] is not None:
        overrides += [
            f"reg.{r}.{WEIGHT_KEY.get(r, 'weight')}={settings['weight']}"
            for r in cell_regs(settings["reg"])
        ]
    with LOCK:
        return compose_ganx("config", overrides)


class MixtureRun:
    """One 2-D training run; :meth:`stop` (from another thread) ends it before its next step."""

    _ids = itertools.count(1)

    def __init__(self, settings: dict):
        self.settings = settings
        self.id = next(self._ids)
        self.stopped = threading.Event()
        self.step = 0

    def stop(self) -> None:
        self.stopped.set()

    def snapshots(self):
        """Train, yielding a snapshot at step 0, every ``every`` steps and at the end."""
        cfg = mixture_config(self.settings)
        torch.set_num_threads(1)  # two threads on a shared 2-core CPU ran 20x slower
        seed_everything(cfg.seed)
        parts = build_all(cfg, torch.device("cpu"))
        settings = StepSettings(cfg.train.steps, cfg.model.latent_dim, check=False)
        fixed = torch.randn(cfg.eval.num_samples, cfg.model.latent_dim)
        yield snapshot(parts, fixed, 0, self.settings["dataset"])
        d_steps, every = 0, self.settings["every"]
        for step in range(cfg.train.steps):
            if self.stopped.is_set():
                return
            _, d_steps = training_iteration(
                parts, settings, step, d_steps, cfg.train.n_dis, cfg.train.updates,
                parts.stream.next,
            )  # fmt: skip
            self.step = step + 1
            if self.step % every == 0 or self.step == cfg.train.steps:
                yield snapshot(parts, fixed, self.step, self.settings["dataset"])


def snapshot(parts, latents: torch.Tensor, step: int, dataset: str) -> dict:
    """G's samples for ``latents`` (the first :data:`SHOWN` drawn; all counted for the modes),
    D's output on the view's grid, and the mode coverage of the samples."""
    extent = VIEW_EXTENT[dataset]
    with torch.no_grad():
        parts.generator.eval()
        samples = parts.generator(latents).float()
        parts.generator.train()
        axis = torch.linspace(-extent, extent, GRID)
        ys, xs = torch.meshgrid(axis, axis, indexing="ij")
        points = torch.stack([xs.flatten(), ys.flatten()], dim=1)
        d_out = parts.discriminator(points).reshape(GRID, GRID)
    modes = mixture_modes(EvalContext(samples, parts.source))
    return {
        "step": step,
        "samples": samples[:SHOWN].tolist(),
        "d": d_out.tolist(),
        "grid": axis.tolist(),
        "extent": extent,
        "modes": {key.rsplit("_", 1)[0]: value for key, value in modes.items()},
        "centres": mixture_centres(dataset).tolist(),
    }
