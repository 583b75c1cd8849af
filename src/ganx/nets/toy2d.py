"""MLP pair for 2-D toy data (mixtures of Gaussians), in the spirit of the unrolled-GAN paper
(Metz et al. 2017): fully connected ReLU layers of width ``hidden``."""

from __future__ import annotations

from torch import nn

from .common import maybe_spectral_norm


def mlp(width_in: int, width_out: int, hidden: int, depth: int, sn: bool = False):
    layers = []
    for _ in range(depth):
        layers += [maybe_spectral_norm(nn.Linear(width_in, hidden), sn), nn.ReLU()]
        width_in = hidden
    layers.append(maybe_spectral_norm(nn.Linear(width_in, width_out), sn))
    return nn.Sequential(*layers)


class Toy2dGenerator(nn.Module):
    def __init__(self, latent_dim: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp(latent_dim, 2, hidden, depth)

    def forward(self, z):
        return self.net(z)


class Toy2dDiscriminator(nn.Module):
    def __init__(self, hidden: int = 128, depth: int = 3, spectral_norm: bool = False):
        super().__init__()
        self.net = mlp(2, 1, hidden, depth, spectral_norm)

    def forward(self, x):
        return self.net(x).flatten()
