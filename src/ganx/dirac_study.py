"""``ganx-dirac``: the Dirac-GAN convergence study of Mescheder et al. 2018 from the CLI.

Every combination of ``losses`` x ``regs`` is the config ``ganx-train model=dirac dataset=dirac
loss=L reg=R`` (composed by Hydra, built by the same builders), trained by plain gradient
descent (:func:`ganx.dirac_run.descend`: the trajectory of ``training_iteration`` with SGD, bit
for bit, without the optimizer's overhead), started from (theta, psi) = (1, 1). The losses run
in one forked process per core, each computing its row, its critical gamma and its cells'
fields; then each loss's PNGs and the overview are drawn in the same processes.

    ganx-dirac out=dirac_out                       # the whole table and all plots
    ganx-dirac 'losses=[ns]' 'regs=[none,r1]' lr=0.05 updates=alternating

Writes into ``out``: ``table.md`` and ``table.csv`` (final distance to the equilibrium (0, 0),
converged or not, eigenvalues of the Jacobian of the gradient vector field at (0, 0), and the
behaviour the paper predicts), one PNG per combination (trajectory over the vector field) and
``overview.png``.
"""

from __future__ import annotations

import copy
import csv
import functools
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import hydra
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError

from .build import Parts
from .commands.report import markdown_table
from .dirac_run import descend, dirac_parts, read_plan
from .dirac_run import discriminator_loss as dirac_discriminator_loss
from .errors import ConfigError
from .rng import seed_everything
from .step import StepSettings, frozen, generator_loss

# study name -> (loss group choice, regularizers that make up that "loss")
STUDY_LOSSES = {
    "minimax": ("minimax", []),
    "ns": ("ns", []),
    "wgan": ("wgan", []),
    "wgan_gp": ("wgan", ["gp"]),
    "lsgan": ("lsgan", []),
    "hinge": ("hinge", []),
    "dragan": ("ns", ["dragan"]),
    "rsgan": ("rsgan", []),
    "rpgan": ("rpgan", []),
    "ragan": ("ragan", []),
}
# a "+" joins regularizers that act together in one cell (R3GAN's reg=[r1,r2])
STUDY_REGS = ("none", "r1", "r2", "r1+r2", "rlc", "lecam", "gp0", "instance_noise")


PAPER_LOSSES = ("minimax", "ns", "wgan", "wgan_gp")
# the relativistic losses whose Dirac-GAN field the theory gives (see expected_behaviour)
RELATIVISTIC = ("rsgan", "rpgan", "ragan")
ZERO_CENTRED = ("r1", "r2", "r1+r2", "gp0")


def cell_regs(reg: str) -> list[str]:
    """The regularizers of one study column: ``r1+r2`` is both, ``none`` is none."""
    return [r for r in reg.split("+") if r != "none"]


def expected_behaviour(loss: str, reg: str) -> str:
    """What the theory predicts for the Dirac-GAN; "-" where it says nothing.

    Mescheder et al. 2018: with D(x) = psi * x the GAN and WGAN losses are f(psi * theta) + f(0),
    f'(0) != 0. Unregularized GAN and WGAN do not converge (purely imaginary eigenvalues, sec. 2.2
    and Lemma 2.3), nor does WGAN-GP (sec. 3.2: its penalty keeps |psi| away from 0); instance
    noise converges for GAN losses (f''(0) < 0) but not for WGAN (f'' = 0, sec. 3.3); the
    zero-centred penalties R1/R2 converge for every gamma > 0 (Theorem 4.1), with real
    eigenvalues for gamma >= 2|f'(0)| (1 for the GAN losses, 2 for WGAN); R1 and R2 together
    act as one penalty of weight 2 gamma (both gradients are psi).

    The relativistic losses: the data sit at 0, so D(x) = 0 and the pair's difference is
    D(G(z)) - D(x) = psi * theta. RSGAN/RpGAN's losses are then softplus(psi * theta) for D and
    softplus(-psi * theta) for G: the non-saturating GAN's field, f'(0) = 1/2; RaSGAN's (with a
    batch of identical fakes) twice that, f'(0) = 1. Theorem 4.1 applies to both: no
    convergence without regularization, convergence with R1, R2 or both; R1 and R2 together
    is the combination Huang et al. 2024 (sec. 2) prove locally convergent for RpGAN. With
    instance noise eps the pair's difference is psi * (theta + eps_f - eps_r), one noise term of
    twice the variance: the same damping 2 sigma^2 f''(0) < 0 as the GAN loss's two terms.
    """
    if loss in RELATIVISTIC:
        if reg in ("none",):
            return "no"
        if reg in ZERO_CENTRED or (reg == "instance_noise" and loss != "ragan"):
            return "yes"
        return "-"
    if loss not in PAPER_LOSSES:
        return "-"
    if loss == "wgan_gp":
        return "no"
    if reg in ZERO_CENTRED:
        return "yes"
    if reg == "instance_noise":
        return "no" if loss == "wgan" else "yes"
    if reg == "none":
        return "no"
    return "-"


# |f'(0)| on the Dirac-GAN: the off-diagonal entries of the Jacobian at (0, 0), +-f'(0)
DIRAC_SLOPE = {
    "minimax": 0.5,
    "ns": 0.5,
    "rsgan": 0.5,
    "rpgan": 0.5,
    "wgan": 1.0,
    "hinge": 1.0,  # relu(1 + t) and -t are linear near 0, as WGAN
    "ragan": 1.0,
}


def predicted_eigenvalues(loss: str, reg: str, weights: dict[str, float]) -> list[complex]:
    """The eigenvalues of the Jacobian at (0, 0) in closed form, where the theory gives it:
    J = [[0, a], [-a, -g]] with a = |f'(0)| (:data:`DIRAC_SLOPE`) and g the summed weight of the
    zero-centred penalties R1/R2 (each adds weight * psi^2 / 2 to D's loss), so
    lambda = (-g +- sqrt(g^2 - 4 a^2)) / 2 (Mescheder et al. 2018, Theorem 4.1's proof). Empty
    for the other cells."""
    regs = cell_regs(reg)
    if loss not in DIRAC_SLOPE or any(r not in ("r1", "r2") for r in regs):
        return []
    a, g = DIRAC_SLOPE[loss], sum(weights[r] for r in regs)
    disc = g * g - 4 * a * a
    re, im = (math.sqrt(disc), 0.0) if disc >= 0 else (0.0, math.sqrt(-disc))
    return [complex((-g + sign * re) / 2 + 0.0, sign * im / 2) for sign in (1, -1)]


@dataclass
class Outcome:
    loss: str
    reg: str
    trajectory: torch.Tensor  # (steps + 1, 2): theta, psi
    eigenvalues: list[complex]
    final_distance: float
    converged: bool
    expected: str
    predicted: list[complex]  # eigenvalues in closed form; empty where the theory is silent
    field: tuple | None = None  # (u, v) on the plot grid, where the study computed it


def study_config(loss: str, regs: list[str], cfg: DictConfig) -> DictConfig:
    """The ``ganx-train`` config for ``loss`` with every regularizer in ``regs`` selected
    (Hydra compose, the same groups as training) and the study's values (:func:`with_values`);
    :func:`cell_config` narrows it to one cell. The compose depends on the loss and the
    regularizers alone, so it is done once per pair (``ganx-dirac serve`` answers a changed lr
    or start without composing again)."""
    return with_values(composed_structure(loss, tuple(regs)), cfg)


@functools.lru_cache(maxsize=128)
def composed_structure(loss: str, regs: tuple[str, ...]) -> DictConfig:
    """The composed config of ``loss`` and ``regs`` before the study's values are set, cut to
    :data:`RUN_KEYS` (every config copy of a cell and of a page request copies only these):
    read only (callers get a copy through :func:`with_values`)."""
    loss_choice, loss_regs = STUDY_LOSSES[loss]
    named = dict.fromkeys(name for r in regs for name in cell_regs(r))
    selected = loss_regs + [r for r in named if r not in loss_regs]
    overrides = [
        "model=dirac",
        "dataset=dirac",
        f"loss={loss_choice}",
        f"reg=[{','.join(selected)}]",
        "hardware=cpu",
        "train.ema=null",
        "optim.g._target_=torch.optim.SGD",
        "optim.d._target_=torch.optim.SGD",
        "~optim.g.betas",
        "~optim.d.betas",
        # two scalar parameters: the per-tensor loop beats the multi-tensor (foreach) kernels
        "+optim.g.foreach=false",
        "+optim.d.foreach=false",
    ]
    composed = compose_ganx("config", overrides)
    structure = OmegaConf.masked_copy(composed, list(RUN_KEYS))
    OmegaConf.set_struct(structure, True)  # a reg setting that is no key stays an error
    return structure


# what a Dirac run reads of the composed config (the builders, the step's plan, build_all's
# hardware and augmentation switches); evaluation, logging and checkpoints play no part
RUN_KEYS = ("seed", "model", "dataset", "train", "optim", "reg", "loss", "augment", "hardware")


def compose_ganx(name: str, overrides: list[str]) -> DictConfig:
    """Hydra's compose of ganx's config ``name``: in the caller's Hydra context (``ganx-dirac``,
    tests) or, outside one (``ganx-dirac serve``'s request threads), in one of its own."""
    if GlobalHydra.instance().is_initialized():
        return compose(name, overrides=overrides)
    with initialize_config_module("ganx.conf", version_base="1.3"):
        return compose(name, overrides=overrides)


def with_values(structure: DictConfig, cfg: DictConfig) -> DictConfig:
    """A copy of ``structure`` with the study's values from ``cfg`` (steps, batch, n_dis,
    updates, lr, start, seed and ``reg_settings`` of the selected regularizers)."""
    values = {
        "train.steps": cfg.steps,
        "train.batch_size": cfg.batch_size,
        "train.n_dis": cfg.n_dis,
        "train.updates": cfg.updates,
        "optim.g.lr": cfg.lr,
        "optim.d.lr": cfg.lr,
        "model.generator.theta0": cfg.start[0],
        "model.discriminator.psi0": cfg.start[1],
        "seed": cfg.seed,
    }
    for name, settings in (cfg.reg_settings or {}).items():
        if name in structure.reg:
            values.update({f"reg.{name}.{key}": value for key, value in settings.items()})
    out = copy.deepcopy(structure)  # nested nodes too: the cached structure stays as composed
    for key, value in values.items():
        try:
            OmegaConf.update(out, key, value, merge=False)
        except ConfigAttributeError as err:
            raise ConfigError(f"{key}={value}: not a key of that config") from err
    return out


def cell_config(base: DictConfig, loss: str, reg: str) -> DictConfig:
    """Keep only the loss's own regularizers and ``reg`` (multi-select nodes are independent)."""
    keep = set(STUDY_LOSSES[loss][1]) | set(cell_regs(reg))
    cfg = base.copy()
    with open_dict(cfg):
        cfg.reg = {name: node for name, node in base.reg.items() if name in keep}
    return cfg


def set_parameters(parts: Parts, theta: float, psi: float) -> None:
    with torch.no_grad():
        parts.generator.theta.fill_(theta)
        parts.discriminator.psi.fill_(psi)


def vector_field(
    parts: Parts, settings: StepSettings, theta: float, psi: float, seed: int = 0
) -> tuple[float, float]:
    """(-dL_G/dtheta, -dL_D/dpsi) at (theta, psi), with the run's losses and penalties (as
    :func:`ganx.dirac_run.descend` takes them: both gradients from one call, G's loss with D
    frozen). The seed is fixed so that stochastic terms (instance noise, GP's interpolation)
    use common random numbers across evaluations (smooth finite differences)."""
    set_parameters(parts, theta, psi)
    # the CPU generator alone: torch.manual_seed also queues the CUDA seeds, recording a stack
    # trace each time (two thirds of a field's cost); every draw here is on the CPU
    torch.default_generator.manual_seed(seed)
    real = torch.zeros(parts.stream.batch_size, 1)
    fake = parts.generator(torch.zeros(len(real), 1)).detach()
    d_total = dirac_discriminator_loss(parts, real, fake, 0, settings.total)
    with frozen(parts.discriminator_params):
        g_total, _ = generator_loss(parts, len(real), 0, settings, real=real)  # relativistic
    g_grad, d_grad = torch.autograd.grad(
        (g_total, d_total), (parts.generator.theta, parts.discriminator.psi)
    )
    return -g_grad.item(), -d_grad.item()


def jacobian_eigenvalues(
    parts: Parts, settings: StepSettings, h: float = 1e-3, seed: int = 0
) -> list[complex]:
    """Eigenvalues of the Jacobian of the vector field at (0, 0), by central differences; empty
    where the field is not differentiable there (the kink of |psi| in WGAN-GP's and DRAGAN's
    penalties makes a difference quotient of order 1/h). ``seed``: the field's
    (:func:`vector_field`), which leaves the CPU generator seeded by it."""
    cols = []
    for dt, dp in ((h, 0.0), (0.0, h)):
        plus = vector_field(parts, settings, dt, dp, seed)
        minus = vector_field(parts, settings, -dt, -dp, seed)
        cols.append([(a - b) / (2 * h) for a, b in zip(plus, minus, strict=True)])
    jac = torch.tensor(cols, dtype=torch.float64).T
    if jac.abs().max() > 0.1 / h:
        return []
    return [complex(v) for v in torch.linalg.eigvals(jac).tolist()]


def critical_gamma(
    parts: Parts, settings: StepSettings, reg: str = "r1", hi: float = 10.0, iters: int = 20
) -> float:
    """The smallest weight (gamma) of ``reg`` at which the eigenvalues at (0, 0) turn real, by
    bisection (the paper: gamma = 2|f'(0)|)."""
    penalty = parts.regularizers[reg]
    lo = 0.0

    def real(gamma: float) -> bool:
        penalty.weight = gamma
        return all(abs(v.imag) < 1e-9 for v in jacobian_eigenvalues(parts, settings))

    if not real(hi):
        return math.inf
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if real(mid) else (mid, hi)
    return hi


def run_cell(loss: str, reg: str, cfg: DictConfig, base: DictConfig) -> Outcome:
    """One cell: the Jacobian's eigenvalues at (0, 0), then ``cfg.steps`` steps of plain
    gradient descent from ``cfg.start`` (:func:`ganx.dirac_run.descend`, the same trajectory
    as ``training_iteration`` with the composed SGD: ``tests/test_dirac_run.py``)."""
    run_cfg = cell_config(base, loss, reg)
    plan = read_plan(run_cfg)
    seed_everything(run_cfg.seed)
    parts = dirac_parts(run_cfg)
    settings = StepSettings(plan.steps, plan.latent_dim, check=False)
    # the field reseeds the CPU generator: with the run's seed, so that the run's random draws
    # (instance noise, interpolation points) depend on it (with 0 they ignored ``seed``)
    eig = jacobian_eigenvalues(parts, settings, seed=run_cfg.seed)
    trajectory = descend(parts, plan, tuple(cfg.start))
    final = trajectory[-1].norm().item()
    if not math.isfinite(final):
        final = math.inf
    weights = {name: r.weight for name, r in parts.regularizers.items()}
    predicted = predicted_eigenvalues(loss, reg, weights)
    expected = expected_behaviour(loss, reg)
    return Outcome(loss, reg, trajectory, eig, final, final < cfg.tol, expected, predicted)


def verdict(trajectory: torch.Tensor, tol: float) -> str:
    """What a trajectory does: ``converges`` (final distance to (0, 0) below ``tol``, the
    table's "converged"), ``diverges`` (non-finite, or ends more than twice as far as it
    started), ``circles`` (turns at least half-way round (0, 0): a slow orbit, such as R_LC's,
    makes half a turn in the study's 100 steps) or ``stalls`` (none of these: it comes to rest
    short of the equilibrium, as WGAN-GP's and LSGAN's do)."""
    path = trajectory.double()
    distance = path.norm(dim=1)
    final = float(distance[-1])
    if final < tol:
        return "converges"
    if not math.isfinite(final) or final > 2 * max(float(distance[0]), tol):
        return "diverges"
    angle = torch.atan2(path[:, 1], path[:, 0])
    turns = (torch.diff(angle) + math.pi) % (2 * math.pi) - math.pi  # each step's turn
    return "circles" if abs(float(turns.sum())) >= math.pi else "stalls"


def format_eigenvalues(eig: list[complex]) -> str:
    def one(v: complex) -> str:
        if abs(v.imag) < 1e-6:
            return f"{v.real:.3f}"
        return f"{v.real:.3f}{'+' if v.imag >= 0 else '-'}{abs(v.imag):.3f}i"

    return ", ".join(one(v) for v in eig)


# the paper's critical gamma 2|f'(0)| for D(x) = psi * x (hinge is linear near 0, like WGAN)
EXPECTED_CRITICAL_GAMMA = {loss: 2 * slope for loss, slope in DIRAC_SLOPE.items()}


def write_tables(
    outcomes: list[Outcome], gammas: dict[str, float], out: Path, cfg: DictConfig
) -> None:
    rows = [
        {
            "loss": o.loss,
            "reg": o.reg,
            "final_distance": f"{o.final_distance:.4g}",
            "converged": str(o.converged).lower(),
            "expected_converges": o.expected,
            "eigenvalues": (
                format_eigenvalues(o.eigenvalues)
                if o.eigenvalues
                else "field not differentiable at (0, 0)"
            ),
            "predicted_eigenvalues": format_eigenvalues(o.predicted) if o.predicted else "-",
            "max_real_eigenvalue": (
                f"{max(v.real for v in o.eigenvalues):.4f}" if o.eigenvalues else ""
            ),
        }
        for o in outcomes
    ]
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    head = (
        f"Dirac-GAN, start {tuple(cfg.start)}, {cfg.updates} gradient descent, lr {cfg.lr}, "
        f"{cfg.steps} steps, n_dis {cfg.n_dis}; converged = final distance to (0, 0) < "
        f"{cfg.tol}.\n\n"
    )
    cols = list(rows[0])
    lines = markdown_table(cols, [[r[c] for c in cols] for r in rows])
    gamma_rows = [
        [loss, f"{gamma:.4f}", EXPECTED_CRITICAL_GAMMA.get(loss, "-")]
        for loss, gamma in gammas.items()
    ]
    gamma_lines = [
        "",
        "Critical R1 gamma (eigenvalues at (0, 0) turn real), measured by bisection vs the "
        "paper's 2|f'(0)|:",
        "",
        *markdown_table(["loss", "measured", "expected"], gamma_rows),
    ]
    with open(out / "critical_gamma.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["loss", "measured", "expected"])
        for loss, gamma in gammas.items():
            writer.writerow([loss, f"{gamma:.6g}", EXPECTED_CRITICAL_GAMMA.get(loss, "")])
    (out / "table.md").write_text(head + "\n".join(lines + gamma_lines) + "\n")


def in_frame(path: torch.Tensor, extent: float) -> tuple[torch.Tensor, int | None]:
    """The trajectory up to where it first leaves the square [-extent, extent]^2, ending on
    the frame at the crossing point (linear between the two steps), and that step (None if it
    stays inside)."""
    outside = (path.abs() > extent).any(dim=1)
    if not outside.any():
        return path, None
    first = int(outside.nonzero()[0])
    if first == 0:
        return path[:1].clamp(-extent, extent), 0
    p0, p1 = path[first - 1], path[first]
    t = 1.0
    for d in range(path.shape[1]):
        if abs(float(p1[d])) > extent:
            bound = extent if p1[d] > 0 else -extent
            t = min(t, float((bound - p0[d]) / (p1[d] - p0[d])))
    crossing = (p0 + t * (p1 - p0)).clamp(-extent, extent)
    return torch.cat([path[:first], crossing[None]]), first


def field_on_grid(loss: str, reg: str, cfg: DictConfig, grid: torch.Tensor):
    """The gradient vector field (u, v) of one cell at every (theta, psi) of ``grid`` x
    ``grid`` (rows: psi, columns: theta), as :func:`vector_field` gives it."""
    return cell_field(cell_config(study_config(loss, study_regs(cfg), cfg), loss, reg), grid)


def cell_field(run_cfg: DictConfig, grid: torch.Tensor):
    """:func:`field_on_grid` of a cell's config (fresh parts: a penalty's state, such as
    LeCam's moving anchors, starts where the field's first evaluation always found it)."""
    parts = dirac_parts(run_cfg)
    settings = StepSettings(run_cfg.train.steps, run_cfg.model.latent_dim, check=False)
    seed = run_cfg.seed
    field = [[vector_field(parts, settings, t.item(), p.item(), seed) for t in grid] for p in grid]
    u = torch.tensor([[v[0] for v in row] for row in field])
    v = torch.tensor([[v[1] for v in row] for row in field])
    return u, v


def draw_frame(ax, extent: float) -> None:
    """What every panel shares: the limits (a margin for the exit mark, which sits on the
    frame), the labels and the tick size."""
    margin = 0.06 * extent
    ax.set_xlim(-extent - margin, extent + margin)
    ax.set_ylim(-extent - margin, extent + margin)
    ax.set_xlabel("theta", fontsize=7)
    ax.set_ylabel("psi", fontsize=7)
    ax.tick_params(labelsize=6)


def draw_cell(ax, outcome: Outcome, cfg: DictConfig, grid: torch.Tensor, field=None) -> None:
    """The gradient field, the trajectory (cut where it leaves the frame, marked with an x)
    and a two-line title that fits its panel."""
    u, v = field if field is not None else field_on_grid(outcome.loss, outcome.reg, cfg, grid)
    extent = float(cfg.plot.extent)
    ax.quiver(grid, grid, u, v, color="0.6", angles="xy", clip_on=True)
    path, left_at = in_frame(outcome.trajectory, extent)
    ax.plot(path[:, 0], path[:, 1], color="tab:red", lw=1.2)
    ax.plot([cfg.start[0]], [cfg.start[1]], "o", color="tab:red", ms=3)
    ax.plot([0], [0], "*", color="black", ms=6)
    verdict = "converges" if outcome.converged else "does not converge"
    if left_at is not None:
        ax.plot(path[-1:, 0], path[-1:, 1], "x", color="tab:red", ms=7, mew=2, clip_on=False)
        verdict += f"; leaves the frame at step {left_at}"
    ax.set_title(f"{outcome.loss} + {outcome.reg}\n{verdict}", fontsize=7)
    draw_frame(ax, extent)


def plot_grid(cfg: DictConfig) -> torch.Tensor:
    return torch.linspace(-cfg.plot.extent, cfg.plot.extent, cfg.plot.arrows)


def overview_figure(outcomes: list[Outcome], cfg: DictConfig, fields: dict | None = None):
    """All cells in one figure, losses as rows and regularizers as columns; ``fields``:
    each cell's (u, v) by (loss, reg), else its :attr:`Outcome.field`, else computed here.
    Every panel has the same extent, so only the outer ones carry tick labels, and five ticks
    a side (the ticks and tick labels of 60 panels were three quarters of its drawing time)."""
    import matplotlib.pyplot as plt

    grid = plot_grid(cfg)
    fields = fields or {}
    losses = list(dict.fromkeys(o.loss for o in outcomes))
    regs = list(dict.fromkeys(o.reg for o in outcomes))
    width, height = 2.9 * len(regs), 3.0 * len(losses)
    figure, axes = plt.subplots(len(losses), len(regs), figsize=(width, height), squeeze=False)
    # fixed margins in inches (a layout engine measured every tick label: most of the save);
    # a panel is 2.9 x 3.0 in: 0.55 in between columns for the labels, 0.75 in between rows
    # for the two-line title and the x label
    figure.subplots_adjust(
        left=0.5 / width,
        right=1 - 0.1 / width,
        bottom=0.45 / height,
        top=1 - 0.4 / height,
        wspace=0.55 / (2.9 - 0.55),
        hspace=0.75 / (3.0 - 0.75),
    )
    for o in outcomes:
        ax = axes[losses.index(o.loss)][regs.index(o.reg)]
        draw_cell(ax, o, cfg, grid, fields.get((o.loss, o.reg), o.field))
    ticks = torch.linspace(-cfg.plot.extent, cfg.plot.extent, 5).tolist()
    for ax in axes.flat:  # five ticks a side on a 2.3 in panel (the cells' PNGs have nine),
        # on the outer panels only: each tick is a Line2D and a Text (half the figure's time)
        ax.set_xticks(ticks if ax.get_subplotspec().is_last_row() else [])
        ax.set_yticks(ticks if ax.get_subplotspec().is_first_col() else [])
        ax.label_outer()
    return figure


class CellCanvas:
    """The one figure a process draws its cell PNGs on. Its axes, ticks and labels are the
    same for every cell (one extent), so they are drawn once and kept as a background: a cell
    restores it and draws only its own artists on top (field, trajectory, marks, title). A
    fresh figure or a cleared axes per cell laid out and drew every tick label again (50 ms
    of CPU per cell, against 14). Fixed margins fit the two-line title and the labels."""

    def __init__(self, extent: float):
        import matplotlib.pyplot as plt

        self.figure, self.ax = plt.subplots(figsize=(4, 4), dpi=100)
        self.figure.subplots_adjust(left=0.14, right=0.96, bottom=0.11, top=0.9)
        draw_frame(self.ax, extent)
        self.figure.canvas.draw()
        self.background = self.figure.canvas.copy_from_bbox(self.figure.bbox)

    def save(self, outcome: Outcome, cfg: DictConfig, grid: torch.Tensor, path: Path) -> None:
        import matplotlib.image
        import numpy as np

        ax, canvas = self.ax, self.figure.canvas
        draw_cell(ax, outcome, cfg, grid, outcome.field)
        drawn = [*ax.collections, *ax.lines]
        canvas.restore_region(self.background)
        for artist in [*drawn, ax.title]:
            ax.draw_artist(artist)
        matplotlib.image.imsave(path, np.asarray(canvas.buffer_rgba()), dpi=100)
        for artist in drawn:
            artist.remove()
        ax.set_title("")


@functools.cache
def cell_canvas(extent: float) -> CellCanvas:
    return CellCanvas(extent)


def plot_job(job: tuple[str, list[Outcome], DictConfig, Path]) -> int:
    """``("cells", one loss's outcomes, ...)``: their PNGs; ``("overview", all, ...)``:
    ``overview.png``. Returns the number of cell PNGs drawn."""
    import matplotlib.pyplot as plt

    kind, outcomes, cfg, out = job
    if kind == "overview":
        figure = overview_figure(outcomes, cfg)
        figure.savefig(out / "overview.png", dpi=80)
        plt.close(figure)
        return 0
    grid = plot_grid(cfg)
    canvas = cell_canvas(float(cfg.plot.extent))
    for o in outcomes:
        canvas.save(o, cfg, grid, out / f"{o.loss}__{o.reg}.png")
    return len(outcomes)


def plot_outcomes(
    outcomes: list[Outcome], out: Path, cfg: DictConfig, progress=None, pool=None
) -> None:
    """One PNG per cell and ``overview.png``, each loss's PNGs and the overview a job of their
    own (in ``pool``'s processes when given: :func:`forked_pool`); the fields come with the
    outcomes (:func:`run_study` with ``fields``) or are computed here first."""
    import matplotlib

    matplotlib.use("Agg")
    grid = plot_grid(cfg)
    outcomes = [
        o if o.field is not None else replace(o, field=field_on_grid(o.loss, o.reg, cfg, grid))
        for o in outcomes
    ]
    losses = dict.fromkeys(o.loss for o in outcomes)
    jobs = [("overview", outcomes, cfg, out)]  # first: the longest job starts first
    jobs += [("cells", [o for o in outcomes if o.loss == loss], cfg, out) for loss in losses]
    done = 0
    for drawn in (pool.imap_unordered if pool else map)(plot_job, jobs):
        done += drawn
        if progress:
            progress(f"plots: {done}/{len(outcomes)}" if drawn else "plots: overview.png")


def check_study(cfg: DictConfig) -> None:
    """One line naming the bad key, its value and what is allowed (before anything runs)."""
    unknown = [x for x in cfg.losses if x not in STUDY_LOSSES]
    if unknown:
        raise ConfigError(f"losses={unknown}: unknown; allowed: {list(STUDY_LOSSES)}")
    unknown = [x for x in cfg.regs if x not in STUDY_REGS]
    if unknown:
        raise ConfigError(f"regs={unknown}: unknown; allowed: {list(STUDY_REGS)}")
    if cfg.updates not in ("simultaneous", "alternating"):
        raise ConfigError(f"updates={cfg.updates!r}; allowed: simultaneous, alternating")
    if cfg.lr <= 0 or cfg.steps <= 0:
        raise ConfigError(f"lr={cfg.lr}, steps={cfg.steps}: both must be positive")
    for name, settings in (cfg.reg_settings or {}).items():
        interval = (settings or {}).get("interval", 1)
        if interval != 1:  # the Dirac step (ganx.dirac_run) has no lazy regularisation
            raise ConfigError(
                f"reg_settings.{name}.interval={interval}: the Dirac-GAN study penalises "
                "every D step (interval 1)"
            )


def loss_critical_gamma(loss: str, base: DictConfig) -> float | None:
    """The measured critical R1 gamma of ``loss`` (``base`` selects r1); None for WGAN-GP and
    DRAGAN, whose penalties put a kink in the field at (0, 0)."""
    if STUDY_LOSSES[loss][1]:
        return None
    run_cfg = cell_config(base, loss, "r1")
    parts = dirac_parts(run_cfg)
    settings = StepSettings(run_cfg.train.steps, run_cfg.model.latent_dim, check=False)
    return critical_gamma(parts, settings)


def study_regs(cfg: DictConfig) -> list[str]:
    """The regularizers one compose per loss selects: the study's and R1 (critical gamma)."""
    return list(cfg.regs) + ["r1"]


def study_loss(job: tuple[str, DictConfig, bool]) -> tuple[list[Outcome], float | None]:
    """One row of the table: every regularizer of ``loss`` (with its field on the plot grid
    when ``fields``), and its critical R1 gamma."""
    loss, cfg, fields = job
    torch.set_num_threads(1)  # scalar work: threads only add overhead
    base = study_config(loss, study_regs(cfg), cfg)  # one compose per loss
    cells = [run_cell(loss, reg, cfg, base) for reg in cfg.regs]
    if fields:  # here, where the loss's config is composed, not again in the plots' processes
        grid = plot_grid(cfg)
        cells = [replace(o, field=cell_field(cell_config(base, loss, o.reg), grid)) for o in cells]
    return cells, loss_critical_gamma(loss, base)


def run_study(
    cfg: DictConfig, progress=None, pool=None, fields: bool = False
) -> tuple[list[Outcome], dict[str, float]]:
    """Every loss x reg cell, and the measured critical R1 gamma of each GAN-form loss;
    ``progress(line)`` hears of each loss as it is done; ``fields``: each outcome brings its
    field for the plots. With a (forked) ``pool`` the losses run in its processes: every cell
    seeds itself, so the numbers do not change."""
    check_study(cfg)
    torch.set_num_threads(1)
    outcomes, gammas = [], {}
    jobs = [(loss, cfg, fields) for loss in cfg.losses]
    rows = (pool.imap if pool else map)(study_loss, jobs)
    for loss, (cells, gamma) in zip(cfg.losses, rows, strict=True):
        outcomes += cells
        if gamma is not None:
            gammas[loss] = gamma
        if progress:
            total = len(cfg.losses) * len(cfg.regs)
            progress(f"table: {len(outcomes)}/{total} runs ({loss})")
    return outcomes, gammas


def forked_pool(plots: bool = False):
    """A pool of one forked process per core: the forks inherit Hydra's state and the
    composed configs, and the cells and plots are independent. ``plots``: matplotlib is
    imported first, once, for both."""
    import multiprocessing

    if plots:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    return multiprocessing.get_context("fork").Pool(os.cpu_count() or 1)


@hydra.main(version_base="1.3", config_path="pkg://ganx.conf", config_name="dirac_study")
def hydra_main(cfg: DictConfig) -> None:
    started = time.time()

    def progress(line: str) -> None:
        print(f"ganx-dirac: {line}, {time.time() - started:.1f} s", file=sys.stderr, flush=True)

    try:
        check_study(cfg)
    except ConfigError as err:
        sys.exit(f"ganx-dirac: error: {err}")
    out = Path(cfg.out)
    with forked_pool(cfg.plot.enabled) as pool:
        outcomes, gammas = run_study(cfg, progress, pool, fields=cfg.plot.enabled)
        out.mkdir(parents=True, exist_ok=True)
        write_tables(outcomes, gammas, out, cfg)
        table_time = time.time() - started
        if cfg.plot.enabled:  # a line per loss's PNGs and one for the overview
            plot_outcomes(outcomes, out, cfg, progress, pool)
    print((out / "table.md").read_text())
    print(
        f"table: {len(outcomes)} runs in {table_time:.1f} s; all files: "
        f"{time.time() - started:.1f} s -> {out}"
    )


def main() -> None:
    from .commands.ganx import handle_version

    handle_version("ganx-dirac")
    hydra_main()


if __name__ == "__main__":
    main()
