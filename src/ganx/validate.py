"""Config checks that run before any training and before anything is written by ganx.

Each failure raises :class:`ConfigError`: one line naming the key, the bad value and what is
allowed. ``ganx-train`` runs them for every job before Hydra creates a run directory
(:mod:`ganx.preflight`); ``train`` runs them again for callers of the Python API.
"""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from .errors import ConfigError
from .hardware import requested_processes
from .methods import TOY_DATA, refuse_unsupported
from .nets import dcgan, r3gan, resnet64, sngan, wgan_gp_mnist

# which resolutions each model family supports (None: any), as the nets themselves check them
MODEL_RESOLUTIONS = {
    "dcgan": tuple(dcgan.RESOLUTIONS),
    "mlp": None,
    "dragan_mlp": None,
    "sngan": sngan.RESOLUTIONS,
    "resnet64": resnet64.RESOLUTIONS,
    "ssgan": sngan.RESOLUTIONS,
    "infomax": sngan.RESOLUTIONS,
    "dirac": (1,),
    "toy2d": (2,),
    "toy3d": (3,),
    "wgan_gp_mnist": wgan_gp_mnist.RESOLUTIONS,
    "r3gan": tuple(r3gan.BASIS_SIZE),
}
# the override that works, named by the refusal of an image model on a toy data set (and back)
TOY_WAY_FORWARD = {
    "ring8": "use model=toy2d (or the whole study: experiment=toy_ring8)",
    "grid25": "use model=toy2d (or the whole study: experiment=toy_grid25)",
    "mog3d": "use model=toy3d (or Roth et al.'s study: experiment=roth_3dgan)",
    "dirac": "use model=dirac (or the Dirac-GAN explorer: ganx-dirac)",
}
IMAGE_WAY_FORWARD = "use an image model, e.g. model=dcgan (the default)"
AMP_CHOICES = ("off", "bf16", "fp16")
COMPILE_CHOICES = ("off", "default", "reduce-overhead")
# regularizer settings that are non-negative numbers, and those that are true/false
REG_NUMBERS = (
    "weight",
    "weight_end",
    "std",
    "decay",
    "step_size",
    "clamp",
    "noise_scale",
    "target",
)
REG_FLAGS = ("anneal", "clamp_real", "zero_debias")
# flags that also take a word: instance noise's anneal (linear | none), DAT's clamp_real (auto)
REG_FLAG_WORDS = {"anneal": ("linear", "none"), "clamp_real": ("auto",)}


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value, key: str, integer: bool = False) -> None:
    ok = isinstance(value, int) if integer else is_number(value)
    if isinstance(value, bool) or not ok or value <= 0:
        kind = "a positive integer" if integer else "a positive finite number"
        raise ConfigError(f"{key}={value!r}: must be {kind}")


def _optional_positive(value, key: str) -> None:
    if value is not None:
        _positive(value, key, integer=True)


def _non_negative(value, key: str, integer: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else is_number(value)
    if not ok or value < 0:
        kind = "an integer >= 0" if integer else "a finite number >= 0"
        raise ConfigError(f"{key}={value!r}: must be {kind}")


def _flag(value, key: str) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r}: must be true or false")


def _choice(value, key: str, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r}; allowed: {', '.join(map(str, allowed))}")


def _string_list(value, key: str) -> list:
    if not isinstance(value, (list, ListConfig)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}={value!r}: must be a list of names, e.g. [a,b]")
    return list(value)


def validate(cfg: DictConfig) -> None:
    validate_train(cfg)
    validate_eval(cfg)
    validate_regularizers(cfg)
    validate_lazy_regularization(cfg)
    validate_model(cfg)
    validate_hardware(cfg)
    validate_augment(cfg)
    if cfg.resume is not None and not isinstance(cfg.resume, str):
        raise ConfigError(f"resume={cfg.resume!r}; allowed: null, auto or a checkpoint path")
    _flag(cfg.get("start_over", False), "start_over")
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or cfg.seed < 0:
        raise ConfigError(f"seed={cfg.seed!r}: must be an integer >= 0")
    refuse_unsupported(cfg)  # method combinations that cannot work as published (JS + hinge)


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
    for player in ("g", "d"):
        validate_optimizer(cfg.optim[player], f"optim.{player}")
    for key in ("sample.every", "sample.n", "ckpt.every", "log.every"):
        section, name = key.split(".")
        _positive(cfg[section][name], key, integer=True)
    _choice(cfg.sample.bn_stats, "sample.bn_stats", ("batch", "running"))
    _non_negative(cfg.ckpt.keep, "ckpt.keep", integer=True)
    _flag(cfg.log.progress, "log.progress")


def validate_optimizer(node: DictConfig, key: str) -> None:
    if not isinstance(node, DictConfig) or not isinstance(node.get("_target_"), str):
        raise ConfigError(f"{key}: must name an optimizer class in _target_, e.g. torch.optim.Adam")
    _positive(node.get("lr"), f"{key}.lr")
    if "betas" in node:
        betas = node.betas
        ok = isinstance(betas, (list, ListConfig)) and len(betas) == 2
        if not ok or not all(is_number(b) and 0.0 <= b < 1.0 for b in betas):
            raise ConfigError(
                f"{key}.betas={betas!r}: must be two numbers in [0, 1), e.g. [0.5,0.999]"
            )
    for name in ("weight_decay", "eps", "momentum"):
        if node.get(name) is not None:
            _non_negative(node[name], f"{key}.{name}")


def validate_eval(cfg: DictConfig) -> None:
    from .metrics.registry import available_metrics

    metrics = _string_list(cfg.eval.metrics, "eval.metrics")
    unknown = [m for m in metrics if m not in available_metrics()]
    if unknown:
        raise ConfigError(f"eval.metrics: unknown {unknown}; allowed: {available_metrics()}")
    _positive(cfg.eval.every, "eval.every", integer=True)
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


def validate_regularizers(cfg: DictConfig) -> None:
    if not isinstance(cfg.reg, DictConfig):
        raise ConfigError(f"reg={cfg.reg!r}: choose regularizers with reg=r1 or reg=[r1,lecam]")
    for name, node in cfg.reg.items():
        if node is None:
            continue
        for key in REG_NUMBERS:
            if node.get(key) is not None:
                _non_negative(node[key], f"reg.{name}.{key}")
        for key in REG_FLAGS:
            if key in node and node[key] not in REG_FLAG_WORDS.get(key, ()):
                _flag(node[key], f"reg.{name}.{key}")
        if "interval" in node:
            _positive(node.interval, f"reg.{name}.interval", integer=True)
        for key in ("start_step", "anneal_steps"):
            if node.get(key) is not None:
                _non_negative(node[key], f"reg.{name}.{key}", integer=True)
        _optional_positive(node.get("schedule_steps"), f"reg.{name}.schedule_steps")
        if "schedule" in node:
            _choice(node.schedule, f"reg.{name}.schedule", ("constant", "cosine"))
            validate_weight_schedule(name, node)
        if "perturb" in node:
            _choice(node.perturb, f"reg.{name}.perturb", ("both", "real", "fake"))
        if "output" in node:
            _choice(node.output, f"reg.{name}.output", ("logit", "sigmoid"))


def validate_weight_schedule(name: str, node: DictConfig) -> None:
    """R1/R2's ``schedule``: cosine needs its end weight; constant takes neither setting."""
    if node.schedule == "cosine" and node.get("weight_end") is None:
        raise ConfigError(
            f"reg.{name}.schedule=cosine needs reg.{name}.weight_end (the weight it decays "
            f"to), e.g. reg.{name}.weight_end=0.005"
        )
    if node.schedule == "constant":
        for key in ("weight_end", "schedule_steps"):
            if node.get(key) is not None:
                raise ConfigError(
                    f"reg.{name}.{key}={node[key]!r} has no effect with "
                    f"reg.{name}.schedule=constant; set reg.{name}.schedule=cosine or drop it"
                )


# (player, key, allowed) of the models' word-valued settings
MODEL_CHOICES = (
    ("generator", "upsample", ("bilinear", "nearest")),
    ("discriminator", "hidden_width", ("input", "output")),
)
# (activation and init are each net's own: mlp.check_settings, toy2d's mlp; toy3d runs tanh)


def validate_model_choices(cfg: DictConfig) -> None:
    _choice(
        cfg.model.get("latent_distribution", "normal"),
        "model.latent_distribution",
        ("normal", "uniform"),
    )
    for player, key, allowed in MODEL_CHOICES:
        if key in cfg.model[player]:
            _choice(cfg.model[player][key], f"model.{player}.{key}", allowed)


def validate_model(cfg: DictConfig) -> None:
    family = cfg.model.name
    _positive(cfg.model.latent_dim, "model.latent_dim", integer=True)
    validate_model_choices(cfg)
    _flag(cfg.model.spectral_norm, "model.spectral_norm")
    for player in ("generator", "discriminator"):
        node = cfg.model[player]
        for key in ("ngf", "ndf", "dim", "hidden", "depth", "nrkhs", "expansion"):
            if node.get(key) is not None:  # sngan's ngf/ndf null: mimicry's for the resolution
                _positive(node[key], f"model.{player}.{key}", integer=True)
        if "widths" in node:
            widths = node.widths
            if not isinstance(widths, (list, ListConfig)) or not widths:
                raise ConfigError(f"model.{player}.widths={widths!r}: must be a non-empty list")
            for i, width in enumerate(widths):
                _positive(width, f"model.{player}.widths[{i}]", integer=True)
        for key in ("width", "cardinality", "blocks"):  # r3gan: one number, or one per stage
            if key in node:
                values = node[key] if isinstance(node[key], ListConfig) else [node[key]]
                for value in values:
                    _positive(value, f"model.{player}.{key}", integer=True)
    image_model = family not in ("dirac", "toy2d", "toy3d")
    image_data = cfg.dataset.name not in TOY_DATA
    if image_model != image_data:
        raise ConfigError(
            f"model={family} cannot train on dataset={cfg.dataset.name}: "
            "dirac pairs with dirac, toy2d with ring8/grid25, toy3d with mog3d, image models "
            f"with image data sets; {TOY_WAY_FORWARD.get(cfg.dataset.name, IMAGE_WAY_FORWARD)}"
        )
    validate_dataset(cfg)
    allowed = MODEL_RESOLUTIONS.get(family, None)
    resolution = cfg.dataset.resolution
    if allowed is not None and resolution not in allowed:
        nearest = min(allowed, key=lambda r: (abs(r - resolution), r))
        others = [
            name
            for name, sizes in MODEL_RESOLUTIONS.items()
            if name not in ("dirac", "toy2d", "toy3d") and (sizes is None or resolution in sizes)
        ]
        raise ConfigError(
            f"model={family} does not support dataset.resolution={resolution} "
            f"(dataset={cfg.dataset.name}); allowed resolutions: {list(allowed)}. Add "
            f"dataset.resolution={nearest} (the images are resized), or choose a model "
            f"that takes {resolution} px: {', '.join(f'model={m}' for m in others)}"
        )


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


AUGMENT_CHOICES = ("none", "diffaug", "ada")


def validate_augment(cfg: DictConfig) -> None:
    """``augment=diffaug|ada`` transforms images: refused on the toy data (points)."""
    from .augment import ADA_TRANSFORMS, DIFFAUG_POLICIES

    node = cfg.get("augment")
    name = node.get("name", "none") if isinstance(node, DictConfig) else node
    _choice(name, "augment.name", AUGMENT_CHOICES)
    if name == "none":
        return
    if cfg.dataset.name in TOY_DATA:
        raise ConfigError(
            f"augment={name} with dataset={cfg.dataset.name}: augmentation transforms images; "
            "allowed with the toy data sets (ring8, grid25, mog3d, dirac): augment=none"
        )
    key, allowed = (
        ("policy", DIFFAUG_POLICIES) if name == "diffaug" else ("transforms", ADA_TRANSFORMS)
    )
    chosen = _string_list(node[key], f"augment.{key}")
    for item in chosen or [None]:
        if item not in allowed:
            raise ConfigError(
                f"augment.{key}={chosen!r}; allowed: a non-empty list of {', '.join(allowed)}"
            )
    if name == "diffaug":
        for key in ("translation", "cutout"):
            _non_negative(node[key], f"augment.{key}")
        return
    for key in ("target", "p"):
        if not (is_number(node[key]) and 0.0 <= node[key] <= 1.0):
            raise ConfigError(f"augment.{key}={node[key]!r}: must be a number in [0, 1]")
    _positive(node.interval, "augment.interval", integer=True)
    _positive(node.kimg, "augment.kimg")
