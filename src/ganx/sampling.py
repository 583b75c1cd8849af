"""Noise and samples of a trained generator, as ``ganx-sample``, ``ganx-export`` and the Python
API draw them.

Without a seed the noise is the one training's evaluation used at that checkpoint (seeded by
the run's seed and the step, :func:`ganx.metrics.evaluation.sample_for_eval`), so samples match
``metrics.jsonl``; with ``seed`` it comes from a generator seeded by that value alone.

BatchNorm generators sample with one of three statistics choices: ``batch`` (training's
evaluation default: each batch's own statistics, so an image depends on the other latents of
its batch), ``running`` (the running averages training kept) and ``frozen`` (the statistics of
a fixed set of latents, computed once as ``batch`` would, then fixed: each latent gets its own
image, whatever the batch; what ``ganx-export`` writes by default for a ``batch`` run).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def eval_noise_seed(run_seed: int, step: int) -> int:
    """The seed of the evaluation noise at ``step`` (as ``evaluation.sample_for_eval`` draws it)."""
    return run_seed * 1_000_003 + step


LATENT_DISTRIBUTIONS = ("normal", "uniform")


def latent_distribution(cfg) -> str:
    """``model.latent_distribution`` of a run's config (``normal`` for runs from before it)."""
    return str(cfg.model.get("latent_distribution", "normal"))


def latents(
    n: int,
    latent_dim: int,
    distribution: str = "normal",
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """``n`` latents z from G's prior: ``normal`` N(0, I), or ``uniform`` U[-1, 1)^d, the prior
    of carpedm20's DCGAN-tensorflow as Roth et al. ran it
    (rothk/Stabilizing_GANs@023b84d:carpedm20_DCGAN/model.py:312-315, ``gaussian_prior`` off by
    default, rothk/Stabilizing_GANs@023b84d:carpedm20_DCGAN/main.py:24) and of the DRAGAN notebook
    (kodalinaveen3/DRAGAN@5cf95ab:DRAGAN.ipynb, cell 1 ``sample_z``: np.random.uniform(-1, 1))."""
    if distribution == "uniform":
        return 2 * torch.rand(n, latent_dim, generator=generator, device=device) - 1
    return torch.randn(n, latent_dim, generator=generator, device=device)


def draw_noise(n: int, latent_dim: int, seed: int, distribution: str = "normal") -> torch.Tensor:
    """``n`` latents from G's prior, on the CPU, from a generator seeded by ``seed`` alone."""
    return latents(n, latent_dim, distribution, torch.Generator().manual_seed(int(seed)))


def batch_stats_copy(generator: nn.Module) -> nn.Module:
    """An eval-mode copy whose BatchNorm layers normalise with each batch's own statistics and
    keep none: what ``sample.bn_stats=batch`` means (``loop.generate``), as a module that can be
    traced or exported and never changes its buffers."""
    probe = copy.deepcopy(generator).eval()
    for module in probe.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.track_running_stats = False
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None
    return probe


BN_CHOICES = ("batch", "running", "frozen")
FREEZE_SAMPLES, FREEZE_SEED, FREEZE_CHUNK = 2048, 0, 256


def has_batch_norm(generator: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in generator.modules())


@torch.no_grad()
def frozen_stats_copy(
    generator: nn.Module, latent_dim: int, n: int = FREEZE_SAMPLES, seed: int = FREEZE_SEED
) -> nn.Module:
    """An eval-mode copy whose BatchNorm layers normalise with fixed statistics: those that
    ``batch`` sampling computes, averaged over ``n`` latents from ``seed`` (chunks of 256, as
    evaluation draws them; cumulative averages, ``momentum=None``). Each latent then maps to
    one image whatever batch it is in, and the images stay close to ``batch`` sampling's."""
    module = copy.deepcopy(generator).eval()
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.track_running_stats = True
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    device = next(module.parameters()).device
    for z in draw_noise(n, latent_dim, seed).split(FREEZE_CHUNK):
        module(z.to(device))
    return module.eval()


def sampling_module(
    generator: nn.Module, bn_stats: str, latent_dim: int | None = None
) -> nn.Module:
    """The generator as ganx samples with it: ``batch``, ``running`` or ``frozen`` BatchNorm
    statistics (``frozen`` needs ``latent_dim``)."""
    if bn_stats == "batch":
        return batch_stats_copy(generator)
    if bn_stats == "frozen":
        return frozen_stats_copy(generator, int(latent_dim))
    return copy.deepcopy(generator).eval()


@torch.no_grad()
def images_from(
    generator: nn.Module, noise: torch.Tensor, bn_stats: str, device, chunk: int = 256
) -> torch.Tensor:
    """Images of ``noise`` in chunks (the chunk is one BatchNorm batch when ``bn_stats=batch``),
    float on the CPU in [-1, 1]."""
    module = sampling_module(generator, bn_stats, noise.shape[1]).to(device)
    return torch.cat([module(z.to(device)).float().cpu() for z in noise.split(chunk)])
