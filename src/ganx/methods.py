"""What a run trains, in one line, and the combinations no reference uses.

Every run logs :func:`describe_method` at its start (model and D's normalisation, loss, each
regularizer with its weight and schedule, EMA, n_dis, both optimisers), so nobody trains
something else than they think: the defaults (``reg: [r1]``, EMA 0.999) are inherited by every
model and loss unless a preset overrides them.

:func:`refuse_unsupported` raises before training for combinations that cannot work as
published; :func:`method_warnings` names the ones that run but follow no reference.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError

# the data sets of points rather than images
TOY_DATA = ("dirac", "ring8", "grid25", "mog3d")
# losses whose D output is a logit of P(real): the sigmoid-weighted regularizers assume them
SIGMOID_LOSSES = ("minimax", "ns")
# losses that see only differences of logits: D's output alone is defined up to a shift
RELATIVISTIC_LOSSES = ("rsgan", "rpgan", "ragan")
# regularizers that differentiate D's output w.r.t. its input, sample by sample
INPUT_GRADIENT_REGS = (
    "R1Penalty",
    "R2Penalty",
    "GradientPenalty",
    "DraganPenalty",
    "JSRegularizer",
)
# regularizers that bound D's slope: with any of them an unclipped WGAN critic is constrained
LIPSCHITZ_REGS = ("R1Penalty", "R2Penalty", "GradientPenalty", "DraganPenalty")


def loss_name(cfg: DictConfig) -> str:
    """The loss's short name (``ns``, ``wgan``, ...) from its class, whatever the YAML is called."""
    from hydra.utils import get_class

    return str(getattr(get_class(cfg.loss._target_), "name", cfg.loss._target_))


def _regs(cfg: DictConfig) -> dict[str, DictConfig]:
    return {name: node for name, node in (cfg.reg or {}).items() if node is not None}


def _kind(node: DictConfig) -> str:
    return str(node.get("_target_", "")).rsplit(".", 1)[-1]


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
    loss = loss_name(cfg)
    for name, node in _regs(cfg).items():
        if _kind(node) == "JSRegularizer" and loss not in SIGMOID_LOSSES:
            why = (
                "sees only differences of D's outputs, so sigmoid(D(x)) means nothing"
                if loss in RELATIVISTIC_LOSSES
                else "has unbounded outputs, on which they fade to ~0"
            )
            raise ConfigError(
                f"reg={name} with loss={loss}: the JS-regularizer's weights (1 - sigmoid(D(x)))^2 "
                "and sigmoid(D(x~))^2 come from the GAN loss (Roth et al. 2017, eq. 16); "
                f"{loss} {why}. Allowed losses: {', '.join(SIGMOID_LOSSES)}"
            )


# Thanh-Tung et al.'s LAMBDA for the zero-centred penalty: 500 in their image script, 10 in their
# 2-D one (htt210/GeneralizationAndStabilityInGANs@ed969b4:GradientPenaltiesGANImage.py:376 and
# htt210/GeneralizationAndStabilityInGANs@ed969b4:GradientPenaltiesGAN.py:423)
GP0_LAMBDA = {"images": (500.0, "reg=gp0"), "points": (10.0, "reg=gp0_2d")}


def zero_centred_weight_warnings(cfg: DictConfig, regs: dict[str, DictConfig]) -> list[str]:
    """A zero-centred GP weighted as the authors weight it on the *other* kind of data."""
    data = "points" if cfg.dataset.name in TOY_DATA else "images"
    other = "images" if data == "points" else "points"
    (weight, choice), (other_weight, _) = GP0_LAMBDA[data], GP0_LAMBDA[other]
    return [
        f"reg.{name}.weight={node.weight} on dataset={cfg.dataset.name}: Thanh-Tung et al. use "
        f"LAMBDA {other_weight:g} on {other} and {weight:g} on {data} ({choice}, or "
        f"reg.{name}.weight={weight:g})"
        for name, node in regs.items()
        if _kind(node) == "GradientPenalty"
        and node.get("target") == 0
        and float(node.weight) == other_weight
    ]


def method_warnings(cfg: DictConfig, discriminator=None) -> list[str]:
    """Combinations that run but follow no reference, each as one sentence."""
    regs = _regs(cfg)
    kinds = {name: _kind(node) for name, node in regs.items()}
    loss = loss_name(cfg)
    out = []
    if loss == "wgan" and cfg.loss.get("clip") is None and not cfg.model.get("spectral_norm"):
        if not any(kind in LIPSCHITZ_REGS for kind in kinds.values()):
            out.append(
                "loss=wgan without loss.clip, without a gradient penalty and without spectral "
                "norm: the critic is unconstrained (Arjovsky et al. clip at 0.01: loss.clip=0.01; "
                "Gulrajani et al. add reg=gp: experiment=wgan_gp)"
            )
    if loss == "rpgan" and not {"R1Penalty", "R2Penalty"} <= set(kinds.values()):
        out.append(
            "loss=rpgan without both reg=r1 and reg=r2: R3GAN (Huang et al. 2024) trains RpGAN "
            "with R1 and R2 together, the pair its local convergence argument covers "
            "(reg=[r1,r2])"
        )
    out += relativistic_gamma_warning(cfg, loss, regs, kinds)
    augment = cfg.get("augment") or {}
    if augment.get("name") == "ada" and loss in RELATIVISTIC_LOSSES:
        out.append(
            f"augment=ada with loss={loss}: ADA steers p by r_t = E[sign(D(real))] (Karras et al. "
            "2020, sec. 3), which assumes D's outputs are centred on its decision boundary; a "
            "relativistic loss sees only differences of D's outputs, so their offset, and with it "
            "r_t, is arbitrary (r_t can sit at 1 and p rise at its fastest rate throughout); "
            "augment=diffaug, or a fixed p (augment.kimg large, augment.p=P), does not depend on it"
        )
    penalties = [n for n, kind in kinds.items() if kind in INPUT_GRADIENT_REGS]
    if penalties and discriminator is not None and d_normalisation(discriminator) == "BatchNorm":
        out.append(
            f"{', '.join(penalties)} penalise{'s' if len(penalties) == 1 else ''} D's input "
            "gradient per sample, but D has "
            "BatchNorm, which couples the samples of a batch (WGAN-GP's paper and code use no "
            "BatchNorm in the critic); model.discriminator.norm=none removes it"
        )
    out += zero_centred_weight_warnings(cfg, regs)
    for name, kind in kinds.items():
        node = regs[name]
        if kind == "GradientPenalty" and node.get("output") == "sigmoid":
            if loss not in SIGMOID_LOSSES:
                out.append(
                    f"reg.{name}.output=sigmoid with loss={loss}: Thanh-Tung et al. penalise the "
                    "sigmoid output only for the GAN loss; their WGAN critic's is the logit "
                    f"(reg.{name}.output=logit)"
                )
    return out


# README, "Relativistic pairing on MNIST-5k": rpgan + R1 + R2 at gamma 10 each did not train
# (FID 443, 1 class, 3 of 3 seeds), at gamma 1 it did (FID 11.2). R3GAN's own presets at 32-64 px
# use gamma 0.05 to 2 (brownvc/R3GAN@19a7ddf463fbac2bd39b4c1c73d63f1c441c7403:train.py:195-265;
# its D loss adds (Gamma / 2) * (R1 + R2), brownvc/R3GAN@19a7ddf:R3GAN/Trainer.py:41, so
# ganx's reg.r1.weight = reg.r2.weight = Gamma)
FAILING_GAMMA = 10.0


def relativistic_gamma_warning(cfg: DictConfig, loss: str, regs: dict, kinds: dict) -> list[str]:
    """rpgan/rsgan with R1 and R2 (the pair the README's study measured) at a gamma it found
    not to train."""
    pair = {"R1Penalty", "R2Penalty"} <= set(kinds.values())
    if loss not in ("rpgan", "rsgan") or not pair or cfg.dataset.get("resolution", 0) > 64:
        return []
    high = [
        f"reg.{name}.weight={regs[name].weight:g}"
        for name, kind in kinds.items()
        if kind in ("R1Penalty", "R2Penalty") and (regs[name].weight or 0) >= FAILING_GAMMA
    ]
    if not high:
        return []
    return [
        f"loss={loss} with {', '.join(high)}: at gamma 10 relativistic pairing with R1 + R2 did "
        "not train in the README's MNIST-5k study (FID 443, one class) and at gamma 1 it did "
        "(FID 11.2); R3GAN's presets at 32-64 px use gamma 0.05 to 2 "
        "(reg.r1.weight=1 reg.r2.weight=1)"
    ]


def announce(cfg: DictConfig, discriminator, log) -> None:
    """The start-of-run record: the method line, then one warning per unreferenced combination."""
    log.info(describe_method(cfg, discriminator))
    for warning in method_warnings(cfg, discriminator):
        log.warning(warning)
