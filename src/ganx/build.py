"""Everything built from the config is built here: the one module that calls ``instantiate``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from . import schema
from .augment import Augment, stream_seed
from .data import BatchStream, DataSource, take_subset
from .errors import ConfigError, DataError
from .hardware import loader_workers
from .losses import GANLoss
from .regularizers import Regularizer
from .schema import SettingError

log = logging.getLogger("ganx")
PLAYERS = ("generator", "discriminator")


def instantiate(node, *args, **kwargs):
    """``hydra.utils.instantiate`` that lets our own errors through unwrapped: a missing data set
    or a bad constructor argument should read as that, not as an instantiation trace."""
    try:
        return hydra_instantiate(node, *args, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, (ValueError, TypeError, OSError)):
            raise cause from None
        raise


def instantiate_named(key: str, node, *args, **kwargs):
    """``instantiate`` for the node at config key ``key``: a setting its constructor refuses is
    reported under the full key (``reg.lecam.decay=1.5: must be in [0, 1)``, a
    :class:`~ganx.schema.SettingError` prefixed), any other ``ValueError``/``TypeError`` as
    ``key: message``. ``ganx-train``'s dry build and ``build_all`` (``ganx.fit``) both come here,
    so they refuse with the same line."""
    try:
        return instantiate(node, *args, **kwargs)
    except SettingError as err:
        raise err.under(key) from None
    except (ConfigError, DataError):
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}: {err}") from None


def check_optimizer(node) -> None:
    """The settings of an optimiser node, whose constructor is torch's (its messages name no
    key): ``lr`` positive, ``betas`` two numbers in [0, 1), the others >= 0."""
    if not isinstance(node, DictConfig) or not isinstance(node.get("_target_"), str):
        raise SettingError(
            "_target_",
            None if node is None else node.get("_target_"),
            ": must name an optimizer class, e.g. torch.optim.Adam",
        )
    schema.positive("lr", node.get("lr"))
    if "betas" in node:
        betas = node.betas
        ok = isinstance(betas, (list, tuple, ListConfig)) and len(betas) == 2
        if not ok or not all(schema.is_number(b) and 0.0 <= b < 1.0 for b in betas):
            raise SettingError(
                "betas",
                betas,
                ": must be two numbers in [0, 1), e.g. [0.5,0.999]",
                shown=str(list(betas) if ok else betas),
            )
    for name in ("weight_decay", "eps", "momentum"):
        if node.get(name) is not None:
            schema.non_negative(name, node[name])


def build_optimizer(key: str, node, parameters, **extra) -> torch.optim.Optimizer:
    """The optimiser at ``key`` (``optim.g``) over ``parameters``, refused under its key."""
    try:
        check_optimizer(node)
    except SettingError as err:
        raise err.under(key) from None
    partial = instantiate_named(key, node, _convert_="all")
    try:
        return partial(parameters, **extra)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}: {err}") from None


def build_data(cfg: DictConfig) -> DataSource:
    return instantiate_named("dataset.source", cfg.dataset.source)


def training_data(cfg: DictConfig, source: DataSource) -> DataSource:
    """What training reads: ``source`` cut to ``dataset.subset`` images (class-balanced, drawn
    from ``dataset.subset_seed``) when that is set. Metrics still compare with all of
    ``source``, as the limited-data papers compute FID against the full training set."""
    subset = cfg.dataset.get("subset")
    if subset is None:
        return source
    return take_subset(source, subset, cfg.dataset.get("subset_seed", 0))


def build_augment(cfg: DictConfig, device: torch.device, rank: int = 0) -> Augment | None:
    """``augment=diffaug|ada``: the augmentation with its own stream, seeded from the run's
    seed and rank (``augment=none``: None)."""
    node = cfg.get("augment")
    if node is None or node.get("name", "none") == "none":
        return None
    settings = OmegaConf.create({k: v for k, v in node.items() if k != "name"})
    augment = instantiate_named("augment", settings)
    augment.bind(device, stream_seed(cfg.seed, rank))
    return augment


def build_stream(
    cfg: DictConfig, source: DataSource, device: torch.device, rank: int = 0, world: int = 1
) -> BatchStream:
    return BatchStream(
        source,
        cfg.train.batch_size,
        cfg.seed,
        device,
        num_workers=loader_workers(cfg.dataset.get("num_workers", 0), world),
        on_device=cfg.dataset.get("on_device", False),
        rank=rank,
        world=world,
    )


def build_nets(cfg: DictConfig) -> tuple[nn.Module, nn.Module]:
    return tuple(instantiate_named(f"model.{p}", cfg.model[p]) for p in PLAYERS)


def build_loss(cfg: DictConfig) -> GANLoss:
    return instantiate_named("loss", cfg.loss)


def build_regularizers(cfg: DictConfig) -> dict[str, Regularizer]:
    """``cfg.reg`` maps a name to a node with ``_target_`` (``reg=none`` selects nothing)."""
    return {
        name: instantiate_named(f"reg.{name}", node)
        for name, node in cfg.reg.items()
        if node is not None
    }


LAZY_MODES = ("separate", "folded")


def lazy_mode(cfg: DictConfig) -> str:
    """``train.lazy_regularization`` (``folded`` for configs from before it, as they ran)."""
    return str(cfg.train.get("lazy_regularization", "folded"))


def lazy_interval(cfg: DictConfig) -> int:
    """The interval k of D's lazy penalties (1: none is lazy); a separate regularisation step
    needs one k, as StyleGAN2's ``D_reg_interval`` (validate refuses several)."""
    intervals = {
        int(node.interval)
        for node in (cfg.reg or {}).values()
        if node is not None and node.get("interval", 1) > 1
    }
    return max(intervals, default=1)


def adjusted_for_lazy_steps(optimizer: torch.optim.Optimizer, interval: int) -> None:
    """StyleGAN2's lazy regularisation: with a separate regularisation step every k D steps, D's
    lr is multiplied by c = k / (k + 1) and each Adam beta raised to c, so that the k + 1
    optimiser steps of k iterations move as far as k plain ones
    (NVlabs/stylegan2-ada-pytorch@d72cc7d:training/training_loop.py:201-206)."""
    ratio = interval / (interval + 1)
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * ratio
        if "betas" in group:
            group["betas"] = tuple(beta**ratio for beta in group["betas"])


def build_optimizers(
    cfg: DictConfig, generator: nn.Module, discriminator: nn.Module, device: torch.device
):
    extra = {"fused": True} if device.type == "cuda" else {}
    opt_g = build_optimizer("optim.g", cfg.optim.g, generator.parameters(), **extra)
    opt_d = build_optimizer("optim.d", cfg.optim.d, discriminator.parameters(), **extra)
    if lazy_mode(cfg) == "separate" and lazy_interval(cfg) > 1:
        adjusted_for_lazy_steps(opt_d, lazy_interval(cfg))
    return opt_g, opt_d


def has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


@dataclass
class Parts:
    """The built pieces of one run (no global state: a sweep builds a fresh set per job)."""

    device: torch.device
    generator: nn.Module
    discriminator: nn.Module
    loss: GANLoss
    regularizers: dict[str, Regularizer]
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    source: DataSource
    stream: BatchStream
    aux: object | None = None  # a model family's auxiliary loss (ganx.aux), if it has one
    # what the hot path calls: torch.compile'd wrappers with hardware.compile, else the modules
    generator_fast: nn.Module | None = None
    discriminator_fast: nn.Module | None = None
    # one D call on cat(real, fake) per D step (hardware.concat_real_fake, D without BatchNorm)
    concat_real_fake: bool = False
    # what every image D sees goes through (augment=diffaug|ada); None: augment=none
    augment: Augment | None = None
    # train.lazy_regularization: separate (StyleGAN2's own regularisation step) | folded
    lazy_regularization: str = "separate"
    # D's parameters, listed once: G's step freezes them (walking D's modules for them twice a
    # step costs more than the toy nets' whole forward pass)
    discriminator_params: list[nn.Parameter] | None = None

    def __post_init__(self):
        self.generator_fast = self.generator_fast or self.generator
        self.discriminator_fast = self.discriminator_fast or self.discriminator
        if self.discriminator_params is None:
            self.discriminator_params = list(self.discriminator.parameters())


def build_all(cfg: DictConfig, device: torch.device, rank: int = 0, world: int = 1) -> Parts:
    source = build_data(cfg)
    generator, discriminator = build_nets(cfg)
    memory_format = (
        torch.channels_last
        if cfg.hardware.channels_last and source.resolution > 3  # images, not the toy data
        else torch.preserve_format
    )
    generator = generator.to(device, memory_format=memory_format)
    discriminator = discriminator.to(device, memory_format=memory_format)
    opt_g, opt_d = build_optimizers(cfg, generator, discriminator, device)
    parts = Parts(
        device,
        generator,
        discriminator,
        build_loss(cfg),
        build_regularizers(cfg),
        opt_g,
        opt_d,
        source,
        build_stream(cfg, training_data(cfg, source), device, rank, world),
    )
    parts.augment = build_augment(cfg, device, rank)
    parts.lazy_regularization = lazy_mode(cfg)
    if cfg.model.get("aux") is not None:
        parts.aux = instantiate_named("model.aux", cfg.model.aux)
    for reg in parts.regularizers.values():  # what a regularizer leaves to the run (DAT's range)
        if hasattr(reg, "configure"):
            reg.configure(source.value_range, parts.aux is not None)
    # a joint batch would mix real and fake BatchNorm statistics: then D keeps two calls
    parts.concat_real_fake = bool(cfg.hardware.get("concat_real_fake")) and not has_batch_norm(
        discriminator
    )
    if cfg.hardware.compile != "off":
        # the wrappers share the modules' parameters; checkpoints keep the plain modules' keys
        mode = None if cfg.hardware.compile == "default" else cfg.hardware.compile
        parts.generator_fast = torch.compile(generator, mode=mode)
        parts.discriminator_fast = torch.compile(discriminator, mode=mode)
        eager = [n for n, r in parts.regularizers.items() if r.needs_real_grad or r.needs_fake_grad]
        if eager:
            log.info(
                "hardware.compile=%s: on D steps where %s apply, D runs eagerly (their penalty "
                "needs a double backward through D, which compiled graphs lack); G's step and "
                "the other D steps use the compiled D",
                cfg.hardware.compile,
                ", ".join(eager),
            )
    return parts
