"""What a run trains, in one line, and the combinations no reference uses.

Every run logs :func:`describe_method` at its start (model and D's normalisation, loss, each
regularizer with its weight and schedule, EMA, n_dis, both optimisers), so nobody trains
something else than they think: the defaults (``reg: [r1]``, EMA 0.999) are inherited by every
model and loss unless a preset overrides them.

:func:`refuse_unsupported` raises before training for combinations that cannot work as
published; :func:`method_warnings` names the ones that run but follow no reference.
"""

from __future__ import annotations

from importlib import resources

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError
from .schema import trait

# What a method is (penalises D's input gradient, needs a sigmoid loss, the resolutions a model
# supports, trains on points, ...) is an attribute of its class (ganx.regularizers, ganx.losses,
# ganx.nets, ganx.data), read here through the config's _target_ without building anything.

# the override that works, named by the refusal of an image model on a toy data set (and back)
TOY_WAY_FORWARD = {
    "ring8": "use model=toy2d (or the whole study: experiment=toy_ring8)",
    "grid25": "use model=toy2d (or the whole study: experiment=toy_grid25)",
    "mog3d": "use model=toy3d (or Roth et al.'s study: experiment=roth_3dgan)",
    "dirac": "use model=dirac (or the Dirac-GAN explorer: ganx-dirac)",
}
IMAGE_WAY_FORWARD = "use an image model, e.g. model=dcgan (the default)"


def group_options(group: str) -> dict[str, DictConfig]:
    """Every option of a config group (``conf/<group>/*.yaml``) by name, as written."""
    folder = resources.files("ganx.conf") / group
    return {
        item.name[: -len(".yaml")]: OmegaConf.create(item.read_text())
        for item in sorted(folder.iterdir(), key=lambda item: item.name)
        if item.name.endswith(".yaml")
    }


def on_points(cfg: DictConfig) -> bool:
    """The data set is one of points (the toy mixtures, the Dirac), not images."""
    return trait(cfg.dataset.source, "data", "images") == "points"


def loss_trait(cfg: DictConfig, name: str) -> bool:
    return bool(trait(cfg.loss, name, False))


def losses_with(name: str) -> list[str]:
    """The loss options whose class has trait ``name`` (``sigmoid_output``)."""
    return [option for option, node in group_options("loss").items() if trait(node, name, False)]


def loss_name(cfg: DictConfig) -> str:
    """The loss's short name (``ns``, ``wgan``, ...) from its class, whatever the YAML is called."""
    from hydra.utils import get_class

    return str(getattr(get_class(cfg.loss._target_), "name", cfg.loss._target_))


def _regs(cfg: DictConfig) -> dict[str, DictConfig]:
    return {name: node for name, node in (cfg.reg or {}).items() if node is not None}


def _with(regs: dict[str, DictConfig], name: str) -> list[str]:
    """The chosen regularizers whose class has trait ``name``."""
    return [key for key, node in regs.items() if trait(node, name, False)]


def _zero_centred(regs: dict[str, DictConfig]) -> set:
    return {trait(node, "zero_centred_on") for node in regs.values()} - {None}


def _settings(node: DictConfig) -> str:
    values = OmegaConf.to_container(node, resolve=True)
    values.pop("_target_", None)
    return ", ".join(f"{key} {value}" for key, value in values.items())


def _optimiser(node: DictConfig) -> str:
    values = OmegaConf.to_container(node, resolve=True)
    name = str(values.pop("_target_", "?")).rsplit(".", 1)[-1]
    values.pop("_partial_", None)
    return f"{name}({', '.join(f'{k} {v}' for k, v in values.items())})"


def d_normalisation(discriminator) -> str:
    """How the built D normalises: BatchNorm couples the samples of a batch."""
    from torch import nn

    kinds = {type(m).__name__ for m in discriminator.modules()}
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
        return "BatchNorm"
    if "LayerNorm" in kinds or "GroupNorm" in kinds:
        return "LayerNorm"
    if any(hasattr(m, "parametrizations") for m in discriminator.modules()):
        return "spectral norm"
    return "none"


def _augmentation(cfg: DictConfig) -> str:
    node = cfg.get("augment")
    if node is None or node.get("name", "none") == "none":
        return "none"
    settings = {k: v for k, v in node.items() if k not in ("name", "_target_")}
    return f"{node.name} ({', '.join(f'{k} {v}' for k, v in settings.items())})"


def describe_method(cfg: DictConfig, discriminator=None) -> str:
    """One line: model (and D's normalisation), loss, regularizers, augmentation, EMA, n_dis,
    optimisers."""
    norm = f", D normalisation: {d_normalisation(discriminator)}" if discriminator else ""
    loss = OmegaConf.to_container(cfg.loss, resolve=True)
    loss.pop("_target_", None)
    name = loss_name(cfg)
    loss_settings = f" ({', '.join(f'{k} {v}' for k, v in loss.items())})" if loss else ""
    regs = "; ".join(f"{n} ({_settings(node)})" for n, node in _regs(cfg).items()) or "none"
    ema = cfg.train.ema if cfg.train.ema else "off"
    prior = cfg.model.get("latent_distribution", "normal")
    prior = " | z ~ U[-1, 1)" if prior == "uniform" else ""
    lazy = any((node.get("interval") or 1) > 1 for node in _regs(cfg).values())
    lazy = f", lazy: {cfg.train.get('lazy_regularization', 'folded')}" if lazy else ""
    return (
        f"method: model={cfg.model.name}{norm}{prior} | loss={name}{loss_settings}"
        f" | reg: {regs}{lazy} | augment: {_augmentation(cfg)} | EMA {ema}"
        f" | n_dis {cfg.train.n_dis}, updates {cfg.train.updates}"
        f" | G {_optimiser(cfg.optim.g)} | D {_optimiser(cfg.optim.d)}"
    )


def refuse_unsupported(cfg: DictConfig) -> None:
    """Combinations that cannot do what their paper says: one ConfigError before training."""
    refuse_model_data(cfg)
    loss = loss_name(cfg)
    if loss_trait(cfg, "sigmoid_output"):
        return
    for name in _with(_regs(cfg), "needs_sigmoid_loss"):
        why = (
            "sees only differences of D's outputs, so sigmoid(D(x)) means nothing"
            if loss_trait(cfg, "relativistic")
            else "has unbounded outputs, on which they fade to ~0"
        )
        raise ConfigError(
            f"reg={name} with loss={loss}: the JS-regularizer's weights (1 - sigmoid(D(x)))^2 "
            "and sigmoid(D(x~))^2 come from the GAN loss (Roth et al. 2017, eq. 16); "
            f"{loss} {why}. Allowed losses: {', '.join(losses_with('sigmoid_output'))}"
        )


def model_resolutions(generator: DictConfig):
    """The resolutions a model family's G supports (None: any), from its class."""
    allowed = trait(generator, "resolutions")
    return allowed(generator) if callable(allowed) else allowed


def refuse_model_data(cfg: DictConfig) -> None:
    """A model on the other kind of data (an image model on points, or back), or at a
    resolution its nets do not support: one line with the override that works."""
    family, data = cfg.model.name, cfg.dataset.name
    if (trait(cfg.model.generator, "data", "images") == "points") != on_points(cfg):
        raise ConfigError(
            f"model={family} cannot train on dataset={data}: "
            "dirac pairs with dirac, toy2d with ring8/grid25, toy3d with mog3d, image models "
            f"with image data sets; {TOY_WAY_FORWARD.get(data, IMAGE_WAY_FORWARD)}"
        )
    allowed, resolution = model_resolutions(cfg.model.generator), cfg.dataset.resolution
    if allowed is None or resolution in allowed:
        return
    nearest = min(allowed, key=lambda r: (abs(r - resolution), r))
    others = []
    for name, model in group_options("model").items():
        sizes = model_resolutions(model.generator)
        if trait(model.generator, "data", "images") == "images" and (
            sizes is None or resolution in sizes
        ):
            others.append(f"model={name}")
    raise ConfigError(
        f"model={family} does not support dataset.resolution={resolution} "
        f"(dataset={data}); allowed resolutions: {list(allowed)}. Add "
        f"dataset.resolution={nearest} (the images are resized), or choose a model "
        f"that takes {resolution} px: {', '.join(others)}"
    )


# Thanh-Tung et al.'s LAMBDA for the zero-centred penalty: 500 in their image script, 10 in their
# 2-D one (htt210/GeneralizationAndStabilityInGANs@ed969b4:GradientPenaltiesGANImage.py:376 and
# htt210/GeneralizationAndStabilityInGANs@ed969b4:GradientPenaltiesGAN.py:423)
GP0_LAMBDA = {"images": (500.0, "reg=gp0"), "points": (10.0, "reg=gp0_2d")}


def zero_centred_weight_warnings(cfg: DictConfig, regs: dict[str, DictConfig]) -> list[str]:
    """A zero-centred GP weighted as the authors weight it on the *other* kind of data."""
    data = "points" if on_points(cfg) else "images"
    other = "images" if data == "points" else "points"
    (weight, choice), (other_weight, _) = GP0_LAMBDA[data], GP0_LAMBDA[other]
    return [
        f"reg.{name}.weight={node.weight} on dataset={cfg.dataset.name}: Thanh-Tung et al. use "
        f"LAMBDA {other_weight:g} on {other} and {weight:g} on {data} ({choice}, or "
        f"reg.{name}.weight={weight:g})"
        for name, node in regs.items()
        if trait(node, "on_interpolates")
        and node.get("target") == 0
        and float(node.weight) == other_weight
    ]


def method_warnings(cfg: DictConfig, discriminator=None) -> list[str]:
    """Combinations that run but follow no reference, each as one sentence."""
    regs = _regs(cfg)
    loss = loss_name(cfg)
    out = []
    if loss == "wgan" and cfg.loss.get("clip") is None and not cfg.model.get("spectral_norm"):
        if not _with(regs, "bounds_slope"):
            out.append(
                "loss=wgan without loss.clip, without a gradient penalty and without spectral "
                "norm: the critic is unconstrained (Arjovsky et al. clip at 0.01: loss.clip=0.01; "
                "Gulrajani et al. add reg=gp: experiment=wgan_gp)"
            )
    if loss == "rpgan" and not {"real", "fake"} <= _zero_centred(regs):
        out.append(
            "loss=rpgan without both reg=r1 and reg=r2: R3GAN (Huang et al. 2024) trains RpGAN "
            "with R1 and R2 together, the pair its local convergence argument covers "
            "(reg=[r1,r2])"
        )
    out += relativistic_gamma_warning(cfg, loss, regs)
    augment = cfg.get("augment") or {}
    if augment.get("name") == "ada" and loss_trait(cfg, "relativistic"):
        out.append(
            f"augment=ada with loss={loss}: ADA steers p by r_t = E[sign(D(real))] (Karras et al. "
            "2020, sec. 3), which assumes D's outputs are centred on its decision boundary; a "
            "relativistic loss sees only differences of D's outputs, so their offset, and with it "
            "r_t, is arbitrary (r_t can sit at 1 and p rise at its fastest rate throughout); "
            "augment=diffaug, or a fixed p (augment.kimg large, augment.p=P), does not depend on it"
        )
    penalties = _with(regs, "penalises_input_gradient")
    if penalties and discriminator is not None and d_normalisation(discriminator) == "BatchNorm":
        out.append(
            f"{', '.join(penalties)} penalise{'s' if len(penalties) == 1 else ''} D's input "
            "gradient per sample, but D has "
            "BatchNorm, which couples the samples of a batch (WGAN-GP's paper and code use no "
            "BatchNorm in the critic); model.discriminator.norm=none removes it"
        )
    out += zero_centred_weight_warnings(cfg, regs)
    for name in _with(regs, "on_interpolates"):
        if regs[name].get("output") == "sigmoid":
            if not loss_trait(cfg, "sigmoid_output"):
                out.append(
                    f"reg.{name}.output=sigmoid with loss={loss}: Thanh-Tung et al. penalise the "
                    "sigmoid output only for the GAN loss; their WGAN critic's is the logit "
                    f"(reg.{name}.output=logit)"
                )
    return out


# docs/studies.md, "Relativistic pairing and augmentation on MNIST-5k": rpgan + R1 + R2 at gamma
# 10 each did not train (FID 443, 1 class, 3 of 3 seeds), at gamma 1 it did (FID 11.2). R3GAN's
# own presets at 32-64 px use gamma 0.05 to 2
# (brownvc/R3GAN@19a7ddf463fbac2bd39b4c1c73d63f1c441c7403:train.py:195-265; its D loss adds
# (Gamma / 2) * (R1 + R2), brownvc/R3GAN@19a7ddf:R3GAN/Trainer.py:41, so ganx's
# reg.r1.weight = reg.r2.weight = Gamma)
FAILING_GAMMA = 10.0


def relativistic_gamma_warning(cfg: DictConfig, loss: str, regs: dict) -> list[str]:
    """rpgan/rsgan with R1 and R2 (the pair the study in docs/studies.md measured) at a gamma it
    found not to train."""
    pair = {"real", "fake"} <= _zero_centred(regs)
    if loss not in ("rpgan", "rsgan") or not pair or cfg.dataset.get("resolution", 0) > 64:
        return []
    high = [
        f"reg.{name}.weight={regs[name].weight:g}"
        for name, node in regs.items()
        if trait(node, "zero_centred_on") and (regs[name].weight or 0) >= FAILING_GAMMA
    ]
    if not high:
        return []
    return [
        f"loss={loss} with {', '.join(high)}: at gamma 10 relativistic pairing with R1 + R2 did "
        "not train in the MNIST-5k study of docs/studies.md (FID 443, one class) and at gamma 1 "
        "it did (FID 11.2); R3GAN's presets at 32-64 px use gamma 0.05 to 2 "
        "(reg.r1.weight=1 reg.r2.weight=1)"
    ]


def announce(cfg: DictConfig, discriminator, log) -> None:
    """The start-of-run record: the method line, then one warning per unreferenced combination."""
    log.info(describe_method(cfg, discriminator))
    for warning in method_warnings(cfg, discriminator):
        log.warning(warning)
