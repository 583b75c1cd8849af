"""MLP pairs for low-dimensional toy data.

- ``model=toy2d`` (2-D mixtures), in the spirit of the unrolled-GAN paper (Metz et al. 2017):
  fully connected ReLU layers of width ``hidden``, PyTorch's default initialisation.
- ``model=toy3d`` (``dataset=mog3d``): Roth et al. NIPS'17's 3-D nets
  (rothk/Stabilizing_GANs@023b84d:3DGAN/3DGAN.py:141-175, ``Generator`` / ``Discriminator``): two
  tanh layers of 128 units, z of dimension 2, weights from a normal truncated at 2 std (std 0.1),
  zero biases.
"""

from __future__ import annotations

from torch import nn

from .common import check_choice, check_widths, maybe_spectral_norm

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(
    width_in: int,
    width_out: int,
    hidden: int,
    depth: int,
    sn: bool,
    activation: str,
    init_std: float | None,
):
    check_choice("activation", activation, ACTIVATIONS)
    check_widths(hidden=hidden, depth=depth)
    layers, linears = [], []
    for _ in range(depth):
        linears.append(nn.Linear(width_in, hidden))
        layers += [maybe_spectral_norm(linears[-1], sn), ACTIVATIONS[activation]()]
        width_in = hidden
    linears.append(nn.Linear(width_in, width_out))
    layers.append(maybe_spectral_norm(linears[-1], sn))
    if init_std is not None:  # TF's truncated_normal_initializer: redraw beyond 2 std
        for layer in linears:
            nn.init.trunc_normal_(layer.weight, 0.0, init_std, -2 * init_std, 2 * init_std)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class Toy2dGenerator(nn.Module):
    data = "points"  # trains on the toy data sets, not images (read through _target_)

    @staticmethod
    def resolutions(settings) -> tuple[int, ...]:
        """The data set's dimension (its ``resolution``) must be the net's ``data_dim``."""
        return (settings.get("data_dim", 2),)

    def __init__(
        self,
        latent_dim: int = 2,
        hidden: int = 128,
        depth: int = 3,
        data_dim: int = 2,
        activation: str = "relu",
        init_std: float | None = None,
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp(latent_dim, data_dim, hidden, depth, False, activation, init_std)

    def forward(self, z):
        return self.net(z)


class Toy2dDiscriminator(nn.Module):
    def __init__(
        self,
        hidden: int = 128,
        depth: int = 3,
        spectral_norm: bool = False,
        data_dim: int = 2,
        activation: str = "relu",
        init_std: float | None = None,
    ):
        super().__init__()
        self.net = mlp(data_dim, 1, hidden, depth, spectral_norm, activation, init_std)

    def forward(self, x):
        return self.net(x).flatten()
