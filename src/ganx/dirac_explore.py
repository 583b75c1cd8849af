"""The numbers of ``ganx-dirac serve``'s page: one Dirac-GAN run as JSON, computed by the
functions ``ganx-dirac`` builds its table with (:func:`ganx.dirac_study.run_cell`,
:func:`~ganx.dirac_study.jacobian_eigenvalues`, :func:`~ganx.dirac_study.critical_gamma`,
:func:`~ganx.dirac_study.field_on_grid`), so a setting's result on the page is its table cell.

A query is the page's URL parameters: ``loss``, ``reg``, ``weight`` (the regularizer's weight;
instance noise's std), ``lr``, ``steps``, ``updates``, ``theta``, ``psi``. A bad value raises
:class:`BadQuery` with one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
import math
import threading

import torch
from omegaconf import DictConfig, open_dict

from .dirac_study import (
    EXPECTED_CRITICAL_GAMMA,
    STUDY_LOSSES,
    STUDY_REGS,
    cell_regs,
    check_study,
    composed_structure,
    field_on_grid,
    loss_critical_gamma,
    plot_grid,
    run_cell,
    study_config,
    study_regs,
    verdict,
)
from .errors import ConfigError

MAX_STEPS = 5000
MAX_START = 100.0  # |theta|, |psi| at the start
# the setting of each regularizer that the page's "weight" sets (instance noise: its std)
WEIGHT_KEY = {"instance_noise": "std"}
# Hydra's compose and the cached configs are process-wide: one computation at a time
LOCK = threading.Lock()


class BadQuery(ValueError):
    """A query value the endpoint refuses (HTTP 400): one line for the page."""


def number(query: dict, key: str, default: float, low: float | None = None, strict=False):
    """``query[key]`` as a finite float (``default`` when absent), at least ``low`` (more than
    ``low`` with ``strict``)."""
    raw = query.get(key, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadQuery(f"{key}={raw!r}: not a number") from None
    if not math.isfinite(value):
        raise BadQuery(f"{key}={raw!r}: not a finite number")
    if low is not None and (value <= low if strict else value < low):
        raise BadQuery(f"{key}={raw!r}: must be {'>' if strict else '>='} {low:g}")
    return value


def choice(query: dict, key: str, default: str, allowed) -> str:
    value = query.get(key, default)
    if value not in allowed:
        raise BadQuery(f"{key}={value!r}: unknown; allowed: {', '.join(allowed)}")
    return value


def default_weight(defaults: DictConfig, reg: str) -> float:
    """The study's weight of ``reg`` (``conf/dirac_study.yaml``'s ``reg_settings``, else the
    regularizer's own default in ``conf/reg/``; r1+r2: R1's); 0 for ``none``."""
    names = cell_regs(reg)
    if not names:
        return 0.0
    name, key = names[0], WEIGHT_KEY.get(names[0], "weight")
    settings = defaults.reg_settings.get(name, {})
    if key in settings:
        return float(settings[key])
    with LOCK:
        return float(composed_structure("ns", (name,)).reg[name][key])


def dirac_settings(query: dict, defaults: DictConfig) -> DictConfig:
    """The ``ganx-dirac`` config (``defaults``: ``conf/dirac_study.yaml``) of one query."""
    loss = choice(query, "loss", "ns", list(STUDY_LOSSES))
    reg = choice(query, "reg", "none", list(STUDY_REGS))
    cfg = copy.deepcopy(defaults)
    cfg.losses, cfg.regs = [loss], [reg]
    cfg.lr = number(query, "lr", defaults.lr, 0.0, strict=True)
    steps = number(query, "steps", defaults.steps, 1)
    if steps != int(steps) or steps > MAX_STEPS:
        raise BadQuery(f"steps={query.get('steps')!r}: must be a whole number, 1..{MAX_STEPS}")
    cfg.steps = int(steps)
    cfg.updates = choice(query, "updates", defaults.updates, ["simultaneous", "alternating"])
    start = [
        number(query, key, value)
        for key, value in zip(("theta", "psi"), defaults.start, strict=True)
    ]
    if max(map(abs, start)) > MAX_START:
        raise BadQuery(f"theta, psi = {start}: the start must lie within +-{MAX_START:g}")
    cfg.start = start
    if cell_regs(reg):
        weight = number(query, "weight", default_weight(defaults, reg), 0.0)
        for name in cell_regs(reg):
            key = WEIGHT_KEY.get(name, "weight")
            with open_dict(cfg):
                if name not in cfg.reg_settings:
                    cfg.reg_settings[name] = {}
                cfg.reg_settings[name][key] = weight
    try:
        check_study(cfg)
    except ConfigError as err:
        raise BadQuery(str(err)) from None
    return cfg


def pairs(values: list[complex]) -> list[list[float]]:
    return [[v.real, v.imag] for v in values]


# per process: the field depends on the loss and the penalties' settings, not on lr, steps or
# the start, so moving the start or changing the step size reuses it
_FIELDS: dict = {}


def field_of(loss: str, reg: str, cfg: DictConfig) -> tuple[list, list]:
    settings = repr([cfg.reg_settings.get(r) for r in cell_regs(reg)])
    key = (loss, reg, settings, cfg.batch_size, cfg.seed, cfg.plot.extent, cfg.plot.arrows)
    if key not in _FIELDS:
        u, v = field_on_grid(loss, reg, cfg, plot_grid(cfg))
        _FIELDS[key] = (u.tolist(), v.tolist())
    return _FIELDS[key]


_GAMMAS: dict = {}  # per process: by loss (and batch, seed)


def critical_gamma_of(loss: str, cfg: DictConfig) -> float | None:
    """The measured critical R1 gamma of ``loss`` (as in the table), once per loss."""
    key = (loss, cfg.batch_size, cfg.seed)
    if key not in _GAMMAS:
        probe = copy.deepcopy(cfg)
        probe.regs = ["r1"]
        _GAMMAS[key] = loss_critical_gamma(loss, study_config(loss, study_regs(probe), probe))
    return _GAMMAS[key]


def dirac_result(cfg: DictConfig) -> dict:
    """One run of the setting ``cfg`` (from :func:`dirac_settings`) as the page shows it."""
    loss, reg = cfg.losses[0], cfg.regs[0]
    with LOCK:
        torch.set_num_threads(1)  # scalar work: threads only add overhead
        outcome = run_cell(loss, reg, cfg, study_config(loss, study_regs(cfg), cfg))
        gamma = critical_gamma_of(loss, cfg)
        u, v = field_of(loss, reg, cfg)
    path = outcome.trajectory
    distance = path.norm(dim=1)  # as the table's final distance: float32, then a float
    finite = [d if math.isfinite(d) else None for d in distance.tolist()]
    return {
        "loss": loss,
        "reg": reg,
        "weight": settings_weight(cfg, reg),
        "lr": cfg.lr,
        "steps": cfg.steps,
        "updates": cfg.updates,
        "start": list(cfg.start),
        "tol": cfg.tol,
        "trajectory": [[t if math.isfinite(t) else None for t in p] for p in path.tolist()],
        "distance": finite,
        "final_distance": outcome.final_distance if math.isfinite(outcome.final_distance) else None,
        "converged": outcome.converged,
        "verdict": verdict(outcome.trajectory, cfg.tol),
        "expected_converges": outcome.expected,
        "eigenvalues": pairs(outcome.eigenvalues),
        "predicted_eigenvalues": pairs(outcome.predicted),
        "critical_gamma": gamma if gamma is None or math.isfinite(gamma) else None,
        "expected_critical_gamma": EXPECTED_CRITICAL_GAMMA.get(loss),
        "field": {"grid": plot_grid(cfg).tolist(), "u": u, "v": v},
        "extent": float(cfg.plot.extent),
    }


def settings_weight(cfg: DictConfig, reg: str) -> float | None:
    names = cell_regs(reg)
    if not names:
        return None
    return float(cfg.reg_settings[names[0]][WEIGHT_KEY.get(names[0], "weight")])
