"""The 64 px ResNet of Gulrajani et al. 2017 as Roth et al. NIPS'17 ran it with the
JS-regularizer on CelebA and LSUN (rothk/Stabilizing_GANs@023b84d:igul222_GANs/gan_64x64.py:
``ResNetGenerator`` :302, ``ResNetDiscriminator`` :455, ``ResidualBlock`` :264, ``Normalize`` :183).

G: linear z -> 4x4 x 8d, up-sampling residual blocks 8d->8d->4d->2d->d (to 64x64), BN-ReLU,
3x3 conv, tanh. D: 3x3 conv 3 -> d, down-sampling residual blocks d->2d->4d->8d->8d (to 4x4),
linear -> logit. ``dim`` d = 64.

A residual block is norm-ReLU-conv-norm-ReLU-conv plus a 1x1-conv shortcut. Up-sampling blocks
(G) up-sample (nearest, their depth-to-space of four copies) before the first conv
(``in -> out``, no bias) and the shortcut; down-sampling blocks (D) keep the first conv at the
input width (``in -> in``, no bias), average-pool after the second conv (``in -> out``), and pool
before the shortcut's conv: about 7.49M D parameters at d = 64.

D's normalisation (``norm``) follows their ``Normalize``: BatchNorm in the ``regularized_gan``
mode Roth et al. used (``batch``, the default), layer norm over (C, H, W) in WGAN-GP mode
(``layer``), or ``none``. Their ``he_init`` initialisation is replaced by ganx's Xavier-uniform
(gain sqrt(2) for residual convs, 1 elsewhere).
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch.nn.functional as F
from torch import nn

from .common import check_choice, check_widths, maybe_spectral_norm
from .sngan import xavier

RESOLUTIONS = (64,)
NORMS = ("batch", "layer", "none")


def norm_layer(kind: str, width: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(width)
    if kind == "layer":  # over (C, H, W) with a per-channel scale and shift, as tflib's Layernorm
        return nn.GroupNorm(1, width)
    return nn.Identity()


def conv(width_in: int, width_out: int, size: int, gain: float, bias: bool = True) -> nn.Conv2d:
    layer = nn.Conv2d(width_in, width_out, size, 1, size // 2, bias=bias)
    nn.init.xavier_uniform_(layer.weight, gain)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class UpBlock(nn.Module):
    """G's residual block: BN-ReLU-up-conv(in -> out, no bias)-BN-ReLU-conv(out -> out)."""

    def __init__(self, width_in: int, width_out: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(width_in), nn.BatchNorm2d(width_out)
        self.conv1 = conv(width_in, width_out, 3, math.sqrt(2), bias=False)
        self.conv2 = conv(width_out, width_out, 3, math.sqrt(2))
        self.shortcut = conv(width_in, width_out, 1, 1.0)

    def forward(self, x):
        h = self.conv1(F.interpolate(F.relu(self.bn1(x)), scale_factor=2))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DownBlock(nn.Module):
    """D's residual block: norm-ReLU-conv(in -> in, no bias)-norm-ReLU-conv(in -> out)-avgpool;
    shortcut avgpool-1x1 conv (their ``ConvMeanPool`` / ``MeanPoolConv``)."""

    def __init__(self, width_in: int, width_out: int, norm: str, sn: bool):
        super().__init__()
        self.norm1, self.norm2 = norm_layer(norm, width_in), norm_layer(norm, width_in)
        self.conv1 = maybe_spectral_norm(conv(width_in, width_in, 3, math.sqrt(2), False), sn)
        self.conv2 = maybe_spectral_norm(conv(width_in, width_out, 3, math.sqrt(2)), sn)
        self.shortcut = maybe_spectral_norm(conv(width_in, width_out, 1, 1.0), sn)

    def forward(self, x):
        h = self.conv1(F.relu(self.norm1(x)))
        h = F.avg_pool2d(self.conv2(F.relu(self.norm2(h))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class ResNet64Generator(nn.Module):
    resolutions = RESOLUTIONS  # read by ganx.methods through the config's _target_

    def __init__(
        self, latent_dim: int = 128, resolution: int = 64, channels: int = 3, dim: int = 64
    ):
        super().__init__()
        check_choice("resolution", resolution, RESOLUTIONS)
        check_widths(dim=dim)
        self.latent_dim, self.dim = latent_dim, dim
        self.linear = xavier(nn.Linear(latent_dim, 4 * 4 * 8 * dim), 1.0)
        widths = [8 * dim, 8 * dim, 4 * dim, 2 * dim, dim]
        self.blocks = nn.Sequential(*(UpBlock(a, b) for a, b in pairwise(widths)))
        self.bn = nn.BatchNorm2d(dim)
        self.to_rgb = conv(dim, channels, 3, 1.0)

    def forward(self, z):
        h = self.linear(z.flatten(1)).view(z.shape[0], 8 * self.dim, 4, 4)
        return self.to_rgb(F.relu(self.bn(self.blocks(h)))).tanh()


class ResNet64Discriminator(nn.Module):
    def __init__(
        self,
        resolution: int = 64,
        channels: int = 3,
        dim: int = 64,
        spectral_norm: bool = False,
        norm: str = "batch",
    ):
        super().__init__()
        check_choice("resolution", resolution, RESOLUTIONS)
        check_choice("norm", norm, NORMS)
        check_widths(dim=dim)
        sn = spectral_norm
        self.stem = maybe_spectral_norm(conv(channels, dim, 3, 1.0), sn)
        widths = [dim, 2 * dim, 4 * dim, 8 * dim, 8 * dim]
        self.blocks = nn.Sequential(*(DownBlock(a, b, norm, sn) for a, b in pairwise(widths)))
        self.linear = maybe_spectral_norm(xavier(nn.Linear(4 * 4 * 8 * dim, 1), 1.0), sn)

    def forward(self, x):
        return self.linear(self.blocks(self.stem(x)).flatten(1)).flatten()
