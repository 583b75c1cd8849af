"""The Python API behind ``import ganx`` (loaded on first use; see ``src/ganx/__init__.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import sampling


def compose(*overrides: str, config_name: str = "config") -> DictConfig:
    """The config ``ganx-train OVERRIDES`` would train with (Hydra's compose API), without the
    ``hydra`` node: ``ganx.compose("loss=hinge", "reg=dat", "train.steps=500")``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from omegaconf import open_dict

    from .defaults import outside_any_hydra_app
    from .train import register_resolvers

    register_resolvers()
    with outside_any_hydra_app():
        with initialize_config_module("ganx.conf", version_base="1.3"):
            cfg = hydra_compose(config_name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.pop("hydra", None)
    if config_name == "config":  # what fit records as the run's command line
        COMPOSED[id(cfg)] = (cfg, list(overrides))
    return cfg


# configs made by compose (kept alive, so an id is never reused) and their overrides
COMPOSED: dict[int, tuple[DictConfig, list[str]]] = {}


def override_value(value) -> str:
    """A value in Hydra's override syntax (quoted where it holds Hydra's special characters)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    text = str(value)
    if isinstance(value, str) and (not text or any(c in SPECIAL for c in text)):
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return text


SPECIAL = set(" ,[]{}()'\"=:$*")


def overrides_of(cfg: DictConfig) -> list[str]:
    """The ``ganx-train`` overrides that compose ``cfg``: those ``compose`` was given, then
    ``key=value`` for every value changed in Python since (``+key=`` added, ``~key`` removed)."""
    from .resume_rules import flatten

    known = COMPOSED.get(id(cfg))
    overrides = list(known[1]) if known and known[0] is cfg else []
    old = flatten(OmegaConf.to_container(compose(*overrides), resolve=True))
    new = flatten(OmegaConf.to_container(cfg, resolve=True))
    for key in sorted(set(old) | set(new)):
        if key not in new:
            overrides.append(f"~{key}")
        elif key not in old:
            overrides.append(f"+{key}={override_value(new[key])}")
        elif old[key] != new[key]:
            overrides.append(f"{key}={override_value(new[key])}")
    return overrides


def console_lines(enabled: bool):
    """ganx-train's console output (Hydra's job logging) for a run started from Python: ganx's
    INFO lines on stderr while it trains, in Hydra's format; nothing when not ``enabled``."""
    import contextlib
    import logging
    import sys

    if not enabled:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def attached():
        logger = logging.getLogger("ganx")
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
        )
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(min(level or logging.INFO, logging.INFO))
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)

    return attached()


def fit(cfg: DictConfig, run_dir: str | Path, progress: bool = True) -> dict:
    """Train as ``ganx-train`` does, writing everything under ``run_dir``, and leave the same
    run: the progress on stderr (``progress=False``: none, and ``log.progress=false``), the
    same records (``.hydra/`` with the config and the overrides, ``run.json`` whose command is
    the ``ganx-train`` line that trains this config), so ``ganx-report``, ``ganx-eval`` and
    ``resume=auto`` read it like any run. Returns the last logged values (``status``,
    ``step``, losses, metrics, ``best``)."""
    from omegaconf import open_dict

    from .preflight import dry_build
    from .records import API_COMMAND
    from .rundir import check_not_in_use
    from .train import in_this_process, prepare, record
    from .validate import validate

    run_dir = Path(run_dir)
    check_not_in_use(run_dir, None)  # a live run in it: refused before anything is written
    if not progress and cfg.log.progress:
        with open_dict(cfg):
            cfg.log.progress = False
    overrides = overrides_of(cfg)  # before prepare, which settles the metrics as ganx-train does
    prepare(cfg)
    validate(cfg)
    dry_build(cfg)  # every constructor's checks, named as ganx-train names them, before .hydra/
    record(cfg, run_dir, overrides)
    token = API_COMMAND.set(["ganx-train", *overrides, f"hydra.run.dir={run_dir}"])
    try:
        with console_lines(progress):
            return in_this_process(cfg, run_dir)
    finally:
        API_COMMAND.reset(token)


@dataclass
class Generator:
    """A checkpoint's generator with what sampling needs: its run config, the step, and the
    BatchNorm statistics choice (``sample.bn_stats``) that ``ganx-sample`` uses."""

    config: DictConfig
    module: torch.nn.Module
    step: int
    device: torch.device
    bn_stats: str

    @property
    def latent_dim(self) -> int:
        return int(self.config.model.latent_dim)

    def sample(
        self, n: int = 64, seed: int | None = None, latents: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``n`` images (float, CPU, in [-1, 1]) from the noise drawn with ``seed``, or from
        ``latents``; ``seed=None`` gives the evaluation noise of this checkpoint."""
        if latents is None:
            latents = self.latents(n, seed)
        chunk = max(int(self.config.train.batch_size), 256)
        return sampling.images_from(self.module, latents, self.bn_stats, self.device, chunk)

    def latents(self, n: int, seed: int | None = None) -> torch.Tensor:
        if seed is None:
            seed = sampling.eval_noise_seed(int(self.config.seed), self.step)
        prior = sampling.latent_distribution(self.config)
        return sampling.draw_noise(n, self.latent_dim, seed, prior)


def load_generator(
    checkpoint: str | Path, ema: bool = True, device: str = "cpu", bn_stats: str | None = None
) -> Generator:
    """G of ``checkpoint`` (its EMA weights when ``ema`` and the run kept an EMA);
    ``bn_stats=None`` takes the run's ``sample.bn_stats``. ``ganx-sample``, ``ganx-eval`` and
    ``ganx-export`` load their checkpoint with it."""
    from . import checkpoint as ckpt
    from .build import build_nets
    from .hardware import device_from

    dev = device_from(device)
    state = ckpt.load(Path(checkpoint))
    cfg = OmegaConf.create(state["config"])
    module, _ = build_nets(cfg)
    weights = state["ema_generator"] if ema and state["ema_generator"] else state["generator"]
    module.load_state_dict(weights)
    module, step = module.to(dev).eval(), int(state["step"])
    choice = bn_stats or cfg.sample.get("bn_stats", "batch")
    if choice not in sampling.BN_CHOICES:
        raise ValueError(f"bn_stats={choice!r}; allowed: {', '.join(sampling.BN_CHOICES)}")
    return Generator(cfg, module, step, dev, choice)


def as_images(images) -> torch.Tensor:
    """Float NCHW in [-1, 1] from a folder of image files or an ``.npz`` (``ganx-sample``'s),
    a uint8 NHWC/NCHW array, or a float tensor already in [-1, 1]."""
    from .imagesets import as_float, read_set

    if isinstance(images, (str, Path)):
        return read_set(images, "images")
    return as_float(images)


def evaluate(
    images,
    metrics: list[str],
    dataset: str = "mnist5k",
    device: str = "cpu",
    real: str | Path | None = None,
    root: str | Path | None = None,
    **settings,
) -> dict[str, float]:
    """``metrics`` (names as in ``eval.metrics``) of ``images`` (a tensor, an array, a folder of
    PNG/JPG or an ``.npz``) against ``dataset``'s real images (``root``: its ``dataset.root``)
    or against the images at ``real`` (a folder or an ``.npz``), as ``ganx-eval samples=...``
    computes them: ``ganx.evaluate("samples/", ["fid_inception"], real="other/")``.
    ``settings`` override the ``metrics`` config block (cache_dir, inception_weights,
    kid_subset_size, ...)."""
    from .hardware import device_from
    from .imagesets import score_sets

    cfg = compose(f"dataset={dataset}", *([f"dataset.root={root}"] if root else []))
    cfg.metrics = OmegaConf.merge(cfg.metrics, settings)
    return score_sets(as_images(images), list(metrics), cfg, real, device_from(device))
