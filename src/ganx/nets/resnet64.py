"""The 64 px ResNet of Gulrajani et al. 2017 (igul222's gan_64x64.py ``ResNet``), which Roth et
al. NIPS'17 trained with the JS-regularizer on CelebA and LSUN.

G: linear z -> 4x4 x 8d, up-sampling residual blocks 8d->8d->4d->2d->d (to 64x64), BN-ReLU,
3x3 conv, tanh. D: 3x3 conv to d, down-sampling residual blocks d->2d->4d->8d->8d (to 4x4),
linear -> logit. ``dim`` d = 64 as in the original. The blocks are ganx's SNGAN blocks (BN in G,
no normalisation in D; ``spectral_norm`` optional).
"""

from __future__ import annotations

from itertools import pairwise

import torch.nn.functional as F
from torch import nn

from .common import check_choice, maybe_spectral_norm
from .sngan import DiscriminatorBlock, GeneratorBlock, xavier

RESOLUTIONS = (64,)


class ResNet64Generator(nn.Module):
    def __init__(
        self, latent_dim: int = 128, resolution: int = 64, channels: int = 3, dim: int = 64
    ):
        super().__init__()
        check_choice("model.resolution (resnet64)", resolution, RESOLUTIONS)
        self.latent_dim, self.dim = latent_dim, dim
        self.linear = xavier(nn.Linear(latent_dim, 4 * 4 * 8 * dim), 1.0)
        widths = [8 * dim, 8 * dim, 4 * dim, 2 * dim, dim]
        self.blocks = nn.Sequential(*(GeneratorBlock(a, b) for a, b in pairwise(widths)))
        self.bn = nn.BatchNorm2d(dim)
        self.to_rgb = xavier(nn.Conv2d(dim, channels, 3, 1, 1), 1.0)

    def forward(self, z):
        h = self.linear(z.flatten(1)).view(z.shape[0], 8 * self.dim, 4, 4)
        return self.to_rgb(F.relu(self.bn(self.blocks(h)))).tanh()


class ResNet64Discriminator(nn.Module):
    def __init__(
        self, resolution: int = 64, channels: int = 3, dim: int = 64, spectral_norm: bool = False
    ):
        super().__init__()
        check_choice("model.resolution (resnet64)", resolution, RESOLUTIONS)
        sn = spectral_norm
        self.stem = maybe_spectral_norm(xavier(nn.Conv2d(channels, dim, 3, 1, 1), 1.0), sn)
        widths = [dim, 2 * dim, 4 * dim, 8 * dim, 8 * dim]
        self.blocks = nn.Sequential(
            *(
                DiscriminatorBlock(a, b, downsample=True, first=False, sn=sn)
                for a, b in pairwise(widths)
            )
        )
        self.linear = maybe_spectral_norm(xavier(nn.Linear(4 * 4 * 8 * dim, 1), 1.0), sn)

    def forward(self, x):
        return self.linear(self.blocks(self.stem(x)).flatten(1)).flatten()
