"""Config checks of the plain sections, before any training and before anything is written.

What a ``_target_`` node builds (nets, loss, regularizers, augmentation, optimisers, data set)
checks its own settings in its constructor (:mod:`ganx.schema`; ``preflight.dry_build`` builds
every part before anything is written, ``build_all`` does for ``ganx.fit``), and the combinations
of methods are :mod:`ganx.methods`'s. What is left here is owned by no constructor: train, eval,
metrics, sample, ckpt, log, hardware, the plain keys of model and dataset, and every ``*.every``
key (by pattern). Each failure raises :class:`ConfigError`: one line naming the key, the bad
value and what is allowed. ``ganx-train`` runs them for every job before Hydra creates a run
directory (:mod:`ganx.preflight`); ``train`` runs them again for callers of the Python API.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from . import schema
from .errors import ConfigError
from .hardware import requested_processes
from .methods import on_points, refuse_unsupported
from .schema import is_number

AMP_CHOICES = ("off", "bf16", "fp16")
COMPILE_CHOICES = ("off", "default", "reduce-overhead")
AUGMENT_CHOICES = ("none", "diffaug", "ada")


def _positive(value, key: str, integer: bool = False) -> None:
    schema.positive(key, value, integer)


def _optional_positive(value, key: str) -> None:
    schema.optional_positive(key, value)


def _non_negative(value, key: str, integer: bool = False) -> None:
    schema.non_negative(key, value, integer)


def _flag(value, key: str) -> None:
    schema.flag(key, value)


def _choice(value, key: str, allowed) -> None:
    schema.choice(key, value, allowed)


def _string_list(value, key: str) -> list:
    if not isinstance(value, (list, ListConfig)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}={value!r}: must be a list of names, e.g. [a,b]")
    return list(value)


def validate(cfg: DictConfig) -> None:
    if not isinstance(cfg.reg, DictConfig):
        raise ConfigError(f"reg={cfg.reg!r}: choose regularizers with reg=r1 or reg=[r1,lecam]")
    validate_train(cfg)
    validate_every(cfg)
    validate_eval(cfg)
    validate_lazy_regularization(cfg)
    validate_model(cfg)
    validate_dataset(cfg)
    validate_hardware(cfg)
    validate_augment(cfg)
    if cfg.resume is not None and not isinstance(cfg.resume, str):
        raise ConfigError(f"resume={cfg.resume!r}; allowed: null, auto or a checkpoint path")
    _flag(cfg.get("start_over", False), "start_over")
    # below 2**32: the streams derived from it (seed * 1_000_003 + step for evaluation noise,
    # epochs and ranks) must stay inside torch.Generator's 64-bit seed
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or not 0 <= cfg.seed < 2**32:
        raise ConfigError(f"seed={cfg.seed!r}: must be an integer in [0, 2**32)")
    refuse_unsupported(cfg)  # combinations that cannot work: JS + hinge, a model's resolutions


def every_keys(node: dict, prefix: str = ""):
    """The dotted path of every ``*.every`` key (``node``: the config unresolved, so that no
    other key's interpolation is resolved here), outside the ``_target_`` nodes."""
    for name, value in node.items():
        if isinstance(value, dict) and "_target_" not in value:
            yield from every_keys(value, f"{prefix}{name}.")
        elif name == "every":
            yield f"{prefix}{name}"


def validate_every(cfg: DictConfig) -> None:
    """A periodic action's interval in G steps: every ``*.every`` key is a positive integer."""
    for key in every_keys(OmegaConf.to_container(cfg, resolve=False)):
        _positive(OmegaConf.select(cfg, key), key, integer=True)


def validate_train(cfg: DictConfig) -> None:
    train = cfg.train
    _positive(train.steps, "train.steps", integer=True)
    _positive(train.batch_size, "train.batch_size", integer=True)
    _positive(train.n_dis, "train.n_dis", integer=True)
    _optional_positive(train.get("stop_at"), "train.stop_at")
    _non_negative(train.ema_start, "train.ema_start", integer=True)
    _flag(train.lr_decay, "train.lr_decay")
    ema = train.ema
    if ema is not None and not (is_number(ema) and 0.0 <= ema < 1.0):
        raise ConfigError(f"train.ema={ema!r}: must be null or a number in [0, 1)")
    _choice(train.updates, "train.updates", ("alternating", "simultaneous", "g_first"))
    if train.updates == "g_first" and train.n_dis != 1:
        raise ConfigError(
            f"train.n_dis={train.n_dis} with train.updates=g_first: G's one fake batch feeds "
            "one D step (PyTorch-GAN's original-GAN training loop); allowed: train.n_dis=1"
        )
    _choice(train.on_nonfinite, "train.on_nonfinite", ("stop", "skip"))
    _positive(cfg.sample.n, "sample.n", integer=True)
    _choice(cfg.sample.bn_stats, "sample.bn_stats", ("batch", "running"))
    _non_negative(cfg.ckpt.keep, "ckpt.keep", integer=True)
    _flag(cfg.log.progress, "log.progress")


def validate_eval(cfg: DictConfig) -> None:
    from .metrics.registry import available_metrics

    metrics = _string_list(cfg.eval.metrics, "eval.metrics")
    unknown = [m for m in metrics if m not in available_metrics()]
    if unknown:
        raise ConfigError(f"eval.metrics: unknown {unknown}; allowed: {available_metrics()}")
    at = cfg.eval.get("at") or []
    if not isinstance(at, (list, ListConfig)):
        raise ConfigError(f"eval.at={at!r}: must be a list of steps, e.g. [1000,5000]")
    for i, step in enumerate(at):
        _positive(step, f"eval.at[{i}]", integer=True)
    _positive(cfg.eval.num_samples, "eval.num_samples", integer=True)
    m = cfg.metrics
    _positive(m.kid_subset_size, "metrics.kid_subset_size", integer=True)
    _positive(m.batch_size, "metrics.batch_size", integer=True)
    _optional_positive(m.real_count, "metrics.real_count")
    for key in ("cache_dir", "inception_weights"):
        if m[key] is not None and not isinstance(m[key], str):
            raise ConfigError(f"metrics.{key}={m[key]!r}: must be null or a path")
    check_sample_counts(cfg, metrics)
    if any(name.endswith("_inception") for name in metrics):
        check_inception_weights(cfg, metrics)
    if "modes" in metrics and cfg.dataset.name not in ("ring8", "grid25", "mog3d"):
        raise ConfigError(
            f"eval.metrics: modes needs a Gaussian mixture (ring8, grid25, mog3d), not "
            f"dataset={cfg.dataset.name}"
        )
    if "modes_stacked_mnist" in metrics and cfg.dataset.name != "stacked_mnist":
        raise ConfigError(
            f"eval.metrics: modes_stacked_mnist scores the 1,000 digit triples of "
            f"dataset=stacked_mnist, not dataset={cfg.dataset.name}"
        )
    validate_objective(cfg, metrics)


# the fewest samples each torch-fidelity metric is defined for, with why (torch-fidelity 0.4.0,
# as ganx.metrics.fidelity calls it; fewer gives NaN or raises at the first evaluation)
MIN_SAMPLES = {
    "fid": (2, "a covariance of one sample is undefined"),
    "kid": (2, "its unbiased MMD divides by n(n-1)"),
    "pr": (4, "each sample's 3rd nearest neighbour among the others"),
    "is": (10, "its 10 splits"),
}


def check_sample_counts(cfg: DictConfig, metrics: list[str]) -> None:
    """eval.num_samples (and metrics.real_count, metrics.kid_subset_size) below what a
    configured metric needs: refused before training, naming the metric and the minimum."""
    counts = [("eval.num_samples", cfg.eval.num_samples)]
    if cfg.metrics.real_count is not None:
        counts.append(("metrics.real_count", cfg.metrics.real_count))
    if any(m.startswith("kid_") for m in metrics):
        counts.append(("metrics.kid_subset_size", cfg.metrics.kid_subset_size))
    for metric in metrics:
        kind = metric.rpartition("_")[0]
        if kind not in MIN_SAMPLES:
            continue
        least, why = MIN_SAMPLES[kind]
        for key, value in counts:
            if key == "metrics.kid_subset_size" and kind != "kid":
                continue
            if value < least:
                raise ConfigError(
                    f"{key}={value}: eval.metrics {metric} needs at least {least} samples ({why})"
                )


def check_inception_weights(cfg: DictConfig, metrics: list[str]) -> None:
    """Inception metrics need the weights file; the Inception Score also needs its classifier
    head, which the offline pool3 conversion (``ganx-weights inception``) does not have."""
    from .metrics.fidelity import default_inception_weights, inception_has_head

    weights = Path(cfg.metrics.inception_weights or default_inception_weights()).expanduser()
    if not weights.is_file():
        raise ConfigError(
            f"eval.metrics asks for Inception metrics but no weights are at "
            f"{weights}; run `ganx-weights inception` (offline conversion), set "
            "metrics.inception_weights, or train without metrics with eval.metrics=[]"
        )
    if "is_inception" in metrics and not inception_has_head(weights):
        raise ConfigError(
            f"eval.metrics: is_inception needs Inception's classifier head, which the weights "
            f"at {weights} do not have (the offline pool3 conversion); drop is_inception or set "
            "metrics.inception_weights to torch-fidelity's original weights"
        )


def validate_objective(cfg: DictConfig, metrics: list[str]) -> None:
    from .metrics.keys import resolve_objective

    objective, mode = cfg.eval.objective, cfg.eval.get("mode")
    if mode is not None:
        _choice(mode, "eval.mode", ("min", "max"))
    if objective is None:
        return
    if not isinstance(objective, str):
        raise ConfigError(f"eval.objective={objective!r}: must be null or a metric key")
    try:
        resolve_objective(objective, metrics, cfg.eval.num_samples, cfg.dataset.name)
    except KeyError as err:
        raise ConfigError(f"eval.objective={objective}: {err.args[0]}") from None


def validate_lazy_regularization(cfg: DictConfig) -> None:
    """``separate`` lazy steps have one interval, as StyleGAN2's ``D_reg_interval``."""
    mode = cfg.train.get("lazy_regularization", "folded")
    _choice(mode, "train.lazy_regularization", ("separate", "folded"))
    lazy = {
        f"reg.{name}.interval={node.interval}"
        for name, node in cfg.reg.items()
        if node is not None and isinstance(node.get("interval"), int) and node.interval > 1
    }
    if mode == "separate" and len({item.rsplit("=", 1)[1] for item in lazy}) > 1:
        raise ConfigError(
            f"{', '.join(sorted(lazy))} with train.lazy_regularization=separate: StyleGAN2's "
            "separate regularisation step has one interval; give the lazy penalties the same "
            "interval, or train.lazy_regularization=folded"
        )


def validate_model(cfg: DictConfig) -> None:
    """The model section's own keys (its nets' settings are their constructors')."""
    _positive(cfg.model.latent_dim, "model.latent_dim", integer=True)
    _choice(
        cfg.model.get("latent_distribution", "normal"),
        "model.latent_distribution",
        ("normal", "uniform"),
    )
    _flag(cfg.model.spectral_norm, "model.spectral_norm")


MAX_STACKED = 200_000  # StackedMNIST images held in memory: 1.9 GB at 28 px
MAX_RESOLUTION = 1024  # images are resized once and held in memory: 5,000 at 1024 px is 15 GB


def validate_dataset(cfg: DictConfig) -> None:
    data = cfg.dataset
    _positive(data.resolution, "dataset.resolution", integer=True)
    if data.resolution > MAX_RESOLUTION:
        raise ConfigError(
            f"dataset.resolution={data.resolution}: at most {MAX_RESOLUTION} (the data set is "
            "resized once and held in memory)"
        )
    _positive(data.channels, "dataset.channels", integer=True)
    if data.get("subset") is not None:
        _positive(data.subset, "dataset.subset", integer=True)  # its upper end: the data set's
    seed = data.get("subset_seed", 0)
    _non_negative(seed, "dataset.subset_seed", integer=True)
    if seed >= 2**63:
        raise ConfigError(f"dataset.subset_seed={seed}: must be below 2**63")
    if data.name == "stacked_mnist":
        _positive(data.n, "dataset.n", integer=True)
        if data.n > MAX_STACKED:
            raise ConfigError(
                f"dataset.n={data.n}: at most {MAX_STACKED:,} StackedMNIST images (held in memory, "
                "9.4 KB each)"
            )
    source = data.get("source")
    for key in ("resolution", "channels"):
        if isinstance(source, DictConfig) and key in source and source[key] != data[key]:
            raise ConfigError(
                f"dataset.source.{key}={source[key]!r} differs from dataset.{key}={data[key]!r}; "
                f"set dataset.{key} (the source and the nets follow it)"
            )


def validate_hardware(cfg: DictConfig) -> None:
    hw = cfg.hardware
    _choice(hw.amp, "hardware.amp", AMP_CHOICES)
    _choice(hw.compile, "hardware.compile", COMPILE_CHOICES)
    _optional_positive(hw.get("threads"), "hardware.threads")
    for key in ("channels_last", "tf32", "cudnn_benchmark", "concat_real_fake"):
        if key in hw:
            _flag(hw[key], f"hardware.{key}")
    if not isinstance(hw.device, str):
        raise ConfigError(f"hardware.device={hw.device!r}; allowed: auto, cpu, cuda, cuda:N")
    requested_processes(hw)  # raises on a bad hardware.processes


def validate_augment(cfg: DictConfig) -> None:
    """``augment=diffaug|ada`` transforms images: refused on the toy data (points). Its
    settings are its constructor's (:mod:`ganx.augment`)."""
    node = cfg.get("augment")
    name = node.get("name", "none") if isinstance(node, DictConfig) else node
    _choice(name, "augment.name", AUGMENT_CHOICES)
    if name != "none" and on_points(cfg):
        raise ConfigError(
            f"augment={name} with dataset={cfg.dataset.name}: augmentation transforms images; "
            "allowed with the toy data sets (ring8, grid25, mog3d, dirac): augment=none"
        )
