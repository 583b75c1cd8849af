"""Samples and metrics of a generator, as training, ``ganx-eval`` and ``ganx-sample`` draw them:
no state changed and no training randomness drawn."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from ..rng import preserved_rng
from ..sampling import eval_noise_seed, latent_distribution, latents
from .registry import EvalContext, compute_metrics


@torch.no_grad()
def generate(generator: nn.Module, noise: torch.Tensor, bn_stats: str = "batch") -> torch.Tensor:
    """Samples for grids and metrics, changing no state and drawing no training RNG.

    ``bn_stats="batch"`` normalises with the statistics of this batch (train-mode BatchNorm on a
    throw-away copy): the EMA generator's averaged weights do not match the running statistics
    copied from G, and sampling with them gives grey, blurred images. ``"running"`` uses eval
    mode as is.
    """
    if bn_stats == "batch":
        probe = copy.deepcopy(generator).train()
        return probe(noise).float()
    was_training = generator.training
    generator.eval()
    images = generator(noise).float()
    generator.train(was_training)
    return images


def sample_for_eval(
    generator: nn.Module, cfg: DictConfig, step: int, device: torch.device, n: int | None = None
) -> torch.Tensor:
    """``n`` (default ``eval.num_samples``) samples whose noise comes from a generator seeded by
    (seed, step): the same at that step on any resume or in ``ganx-eval``/``ganx-sample``."""
    gen = torch.Generator().manual_seed(eval_noise_seed(cfg.seed, step))
    prior = latent_distribution(cfg)
    noise = latents(n or cfg.eval.num_samples, cfg.model.latent_dim, prior, generator=gen)
    chunks = [
        generate(generator, z.to(device), cfg.sample.bn_stats).cpu()
        for z in noise.split(max(cfg.train.batch_size, 256))
    ]
    return torch.cat(chunks)


def evaluate(
    generator: nn.Module, cfg: DictConfig, source, step: int, device: torch.device, banks: dict
) -> dict[str, float]:
    """The ``eval.metrics`` of ``eval.num_samples`` samples (:func:`sample_for_eval`).
    ``banks`` keeps feature extractors alive between evaluations. Every global random stream is
    left as it was (building a feature network runs a module's random init), so evaluating or
    not never changes training."""
    with preserved_rng():
        samples = sample_for_eval(generator, cfg, step, device)
        ctx = eval_context(samples, source, device, cfg.metrics, banks)
        return compute_metrics(list(cfg.eval.metrics), ctx)


def eval_context(samples, source, device, m: DictConfig, banks: dict | None = None) -> EvalContext:
    """What the metrics compare, with the settings of a config's ``metrics`` block ``m``:
    training's evaluation and ``ganx-eval samples=`` (:func:`ganx.imagesets.score_sets`) read
    them alike, so a data set's cached real features are shared."""
    return EvalContext(
        samples,
        source,
        device,
        cache_dir=Path(m.cache_dir).expanduser() if m.cache_dir else None,
        inception_weights=m.inception_weights,
        kid_subset_size=m.kid_subset_size,
        batch_size=m.batch_size,
        real_count=m.real_count,
        banks={} if banks is None else banks,
    )
