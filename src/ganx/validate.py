"""Config checks that run before any training and before anything is written by ganx.

Each failure raises :class:`ConfigError` naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

from omegaconf import DictConfig

from .build import ConfigError, requested_processes
from .nets import dcgan, resnet64, sngan

# which resolutions each model family supports (None: any), as the nets themselves check them
MODEL_RESOLUTIONS = {
    "dcgan": tuple(dcgan.RESOLUTIONS),
    "mlp": None,
    "sngan": sngan.RESOLUTIONS,
    "resnet64": resnet64.RESOLUTIONS,
    "ssgan": sngan.RESOLUTIONS,
    "infomax": sngan.RESOLUTIONS,
    "dirac": (1,),
    "toy2d": (2,),
}
AMP_CHOICES = ("off", "bf16", "fp16")
COMPILE_CHOICES = ("off", "default", "reduce-overhead")


def _positive(value, key: str, integer: bool = False) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{key}={value!r}: must be {kind}")


def validate(cfg: DictConfig) -> None:
    """Every check, in the order a user reads the config."""
    _validate_schedule(cfg)
    _validate_eval(cfg)
    _validate_regularizers(cfg)
    _validate_model_and_data(cfg)
    _validate_hardware(cfg)


def _validate_schedule(cfg: DictConfig) -> None:
    train = cfg.train
    _positive(train.steps, "train.steps", integer=True)
    _positive(train.batch_size, "train.batch_size", integer=True)
    _positive(train.n_dis, "train.n_dis", integer=True)
    for player in ("g", "d"):
        _positive(cfg.optim[player].lr, f"optim.{player}.lr")
    ema = train.ema
    if ema is not None and not 0.0 <= float(ema) < 1.0:
        raise ConfigError(f"train.ema={ema!r}: must be null or in [0, 1)")
    if train.updates not in ("alternating", "simultaneous"):
        raise ConfigError(f"train.updates={train.updates!r}; allowed: alternating, simultaneous")
    if train.on_nonfinite not in ("stop", "skip"):
        raise ConfigError(f"train.on_nonfinite={train.on_nonfinite!r}; allowed: stop, skip")
    for key in ("sample.every", "ckpt.every", "log.every"):
        section, name = key.split(".")
        _positive(cfg[section][name], key, integer=True)
    if cfg.sample.bn_stats not in ("batch", "running"):
        raise ConfigError(f"sample.bn_stats={cfg.sample.bn_stats!r}; allowed: batch, running")
    if cfg.ckpt.keep < 0:
        raise ConfigError(f"ckpt.keep={cfg.ckpt.keep!r}: must be >= 0")


def _validate_eval(cfg: DictConfig) -> None:
    from .metrics import available_metrics

    unknown = [m for m in cfg.eval.metrics if m not in available_metrics()]
    if unknown:
        raise ConfigError(f"eval.metrics: unknown {unknown}; allowed: {available_metrics()}")
    _positive(cfg.eval.every, "eval.every", integer=True)
    for i, at in enumerate(cfg.eval.get("at") or ()):
        _positive(at, f"eval.at[{i}]", integer=True)
    _positive(cfg.eval.num_samples, "eval.num_samples", integer=True)
    if any(m.startswith("kid_") for m in cfg.eval.metrics) and (
        cfg.eval.num_samples < cfg.metrics.kid_subset_size
    ):
        raise ConfigError(
            f"eval.num_samples={cfg.eval.num_samples} is smaller than "
            f"metrics.kid_subset_size={cfg.metrics.kid_subset_size}: KID draws subsets of that "
            "size; raise eval.num_samples or lower metrics.kid_subset_size"
        )
    if any(m.endswith("_inception") for m in cfg.eval.metrics):
        from pathlib import Path

        from .fidelity import default_inception_weights

        weights = Path(cfg.metrics.inception_weights or default_inception_weights()).expanduser()
        if not weights.is_file():
            raise ConfigError(
                f"eval.metrics asks for Inception metrics but no weights are at "
                f"{weights}; run `ganx-weights inception` (offline conversion) or "
                "set metrics.inception_weights"
            )
    if "modes" in cfg.eval.metrics and cfg.dataset.name not in ("ring8", "grid25"):
        raise ConfigError(
            f"eval.metrics: modes needs a 2-D mixture (ring8, grid25), not "
            f"dataset={cfg.dataset.name}"
        )
    if cfg.eval.mode not in ("min", "max"):
        raise ConfigError(f"eval.mode={cfg.eval.mode!r}; allowed: min, max")


def _validate_regularizers(cfg: DictConfig) -> None:
    for name, node in cfg.reg.items():
        if node is None:
            continue
        for key in ("weight", "std", "decay", "step_size", "clamp", "noise_scale"):
            if key in node and node[key] is not None and node[key] < 0:
                raise ConfigError(f"reg.{name}.{key}={node[key]!r}: must be >= 0")
        if "interval" in node:
            _positive(node.interval, f"reg.{name}.interval", integer=True)


def _validate_model_and_data(cfg: DictConfig) -> None:
    family = cfg.model.name
    image_model = family not in ("dirac", "toy2d")
    image_data = cfg.dataset.name not in ("dirac", "ring8", "grid25")
    if image_model != image_data:
        raise ConfigError(
            f"model={family} cannot train on dataset={cfg.dataset.name}: "
            "dirac pairs with dirac, toy2d with ring8/grid25, image models with "
            "image data sets"
        )

    allowed = MODEL_RESOLUTIONS.get(family, None)
    if allowed is not None and cfg.dataset.resolution not in allowed:
        raise ConfigError(
            f"model={family} does not support dataset.resolution={cfg.dataset.resolution} "
            f"(dataset={cfg.dataset.name}); allowed resolutions: {list(allowed)}"
        )


def _validate_hardware(cfg: DictConfig) -> None:
    hw = cfg.hardware
    if hw.amp not in AMP_CHOICES:
        raise ConfigError(f"hardware.amp={hw.amp!r}; allowed: {', '.join(AMP_CHOICES)}")
    if hw.compile not in COMPILE_CHOICES:
        raise ConfigError(f"hardware.compile={hw.compile!r}; allowed: {', '.join(COMPILE_CHOICES)}")
    requested_processes(hw)  # raises on a bad hardware.processes
    if cfg.resume not in (None, "auto") and not isinstance(cfg.resume, str):
        raise ConfigError(f"resume={cfg.resume!r}; allowed: null, auto or a checkpoint path")
