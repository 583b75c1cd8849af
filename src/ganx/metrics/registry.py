"""Evaluation metrics, by name, computed from generated samples.

``eval.metrics`` lists names. Two kinds:

- plain metrics registered with ``@register("name")``: a function ``(ctx) -> dict[str, float]``
  of an :class:`EvalContext` (samples on the CPU, the training data source, settings);
- torch-fidelity metrics ``<metric>_<extractor>`` with metric in fid, kid, is, pr, classes and
  extractor in mnist, inception (see :mod:`.fidelity`); all metrics of one extractor share
  one feature pass.

Result keys state their protocol (``modes_ring8``, ``fid2k_mnist``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data import DataSource, mixture_centres
from .stats import kl_from_uniform

FIDELITY_METRICS = ("fid", "kid", "is", "pr", "classes")
FIDELITY_EXTRACTORS = ("mnist", "inception")


@dataclass
class EvalContext:
    samples: torch.Tensor  # float, CPU: images in [-1, 1] or 2-D points
    source: DataSource
    device: torch.device = torch.device("cpu")
    cache_dir: Path | None = None
    inception_weights: str | None = None
    kid_subset_size: int = 1000
    batch_size: int = 256
    real_count: int | None = None
    banks: dict = field(default_factory=dict)  # reused FeatureBank across evaluations

    def bank(self):
        from .fidelity import FeatureBank

        if "bank" not in self.banks:
            self.banks["bank"] = FeatureBank(self.device, self.batch_size, self.inception_weights)
        return self.banks["bank"]


METRICS: dict[str, Callable[[EvalContext], dict[str, float]]] = {}


def register(name: str):
    def wrap(fn):
        METRICS[name] = fn
        return fn

    return wrap


def available_metrics() -> list[str]:
    fidelity = [
        f"{m}_{e}"
        for e in FIDELITY_EXTRACTORS
        for m in FIDELITY_METRICS
        if not (m == "classes" and e == "inception")
    ]
    return sorted(list(METRICS) + fidelity)


def compute_metrics(names: list[str], ctx: EvalContext) -> dict[str, float]:
    """Every metric in ``names``; torch-fidelity ones grouped by extractor."""
    from .fidelity import fidelity_metrics, to_uint8

    results: dict[str, float] = {}
    by_extractor: dict[str, set[str]] = {}
    for name in names:
        if name in METRICS:
            results.update(METRICS[name](ctx))
        else:
            metric, extractor = name.rsplit("_", 1)
            by_extractor.setdefault(extractor, set()).add(metric)
    if by_extractor:
        images = to_uint8(ctx.samples)
        for extractor, wanted in by_extractor.items():
            results.update(
                fidelity_metrics(
                    extractor,
                    wanted,
                    images,
                    ctx.source,
                    ctx.bank(),
                    ctx.cache_dir,
                    ctx.kid_subset_size,
                    ctx.real_count,
                )
            )
    return results


@register("modes")
def mixture_modes(ctx: EvalContext) -> dict[str, float]:
    """Mode coverage on Gaussian mixtures (Metz et al. 2017; Lin et al. 2018, PacGAN):
    a sample is *high quality* if it lies within 3 standard deviations of its nearest centre;
    a mode is *covered* if it holds at least 20% of the high-quality samples a uniform spread
    would give it (PacGAN's rule: 20 of 100 expected). Also the KL divergence of the mode
    histogram of high-quality samples from uniform. On ``mog3d`` (Roth et al.'s 3-D mixture on a
    tilted plane) also ``plane_distance_mog3d``: the mean distance of the samples from that
    plane (0 for the data)."""
    samples, source = ctx.samples, ctx.source
    name = source.name
    centres = source.extra["centres"] if "centres" in source.extra else mixture_centres(name)
    std = float(source.extra["std"])
    dist = torch.cdist(samples.double(), centres.double())
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(centres))
    threshold = 0.2 * len(samples) / len(centres)
    out = {
        f"modes_{name}": float((counts >= threshold).sum()),
        f"high_quality_{name}": float(good.double().mean()),
        f"mode_kl_{name}": kl_from_uniform(counts),
    }
    if "normal" in source.extra:
        offsets = (samples.double() - source.extra["shift"].double()) @ source.extra[
            "normal"
        ].double()
        out[f"plane_distance_{name}"] = float(offsets.abs().mean())
    return out


STACKED_MODES = 1000  # 10 digits in each of 3 channels


@register("modes_stacked_mnist")
def stacked_mnist_modes(ctx: EvalContext) -> dict[str, float]:
    """StackedMNIST mode coverage (Srivastava et al. 2017, VEEGAN, sec. 5.2 and Table 2; Lin et
    al. 2018, PacGAN, Table 2: 26,000 samples): each of the R, G, B channels is classified by
    the shipped MNIST network (:mod:`ganx.nets.mnist_cnn`, as ``classes_mnist`` uses it); the
    three digits name one of 1,000 modes. ``modes``: modes hit by at least one sample;
    ``mode_kl``: KL(mode histogram || uniform over 1,000), in nats (log 1000 = 6.91 for one
    mode). Keys state the sample count: ``modes26k_stacked_mnist``."""
    from .fidelity import load_mnist_cnn
    from .keys import count_label

    samples = ctx.samples
    if samples.dim() != 4 or samples.shape[1] != 3:
        raise ValueError(f"modes_stacked_mnist needs RGB images, got shape {tuple(samples.shape)}")
    net, _ = load_mnist_cnn()
    net = net.to(ctx.device)
    digits = []
    with torch.no_grad():
        for batch in samples.split(ctx.batch_size):
            channels = batch.to(ctx.device).float().flatten(0, 1).unsqueeze(1)  # (3B, 1, H, W)
            logits = net(net.prepare(channels.clamp(-1, 1)))
            digits.append(logits.argmax(1).view(-1, 3).cpu())
    d = torch.cat(digits)
    counts = torch.bincount(d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2], minlength=STACKED_MODES)
    tag = count_label(len(samples))
    return {
        f"modes{tag}_stacked_mnist": float((counts > 0).sum()),
        f"mode_kl{tag}_stacked_mnist": kl_from_uniform(counts),
    }
