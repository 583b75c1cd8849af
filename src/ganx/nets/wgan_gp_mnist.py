"""The MNIST generator and critic of Gulrajani et al. 2017
(igul222/improved_wgan_training@fa66c57:gan_mnist.py:55-101), in WGAN-GP mode: no BatchNorm
anywhere (its Batchnorm layers run only for ``MODE == 'wgan'``, gan_mnist.py:60-61, :66-67, :73-74,
:89-90, :94-95).

G: linear z (128) -> 4x4 x 4d, ReLU, 5x5 transposed conv to 8x8 x 2d, ReLU, crop to 7x7,
5x5 transposed conv to 14x14 x d, ReLU, 5x5 transposed conv to 28x28 x 1.
D: 5x5 convs with stride 2, 1 -> d -> 2d -> 4d (28 -> 14 -> 7 -> 4), LeakyReLU(0.2), linear
4*4*4d -> logit. d = 64 (DIM).

Differences, for ganx's data in [-1, 1]: G ends in tanh (theirs in a sigmoid for data in
[0, 1]); weights use PyTorch's default initialisation (theirs tflib's He/Glorot uniform).
"""

from __future__ import annotations

from torch import nn

from .common import check_choice, check_widths, maybe_spectral_norm

RESOLUTIONS = (28,)


def up(width_in: int, width_out: int) -> nn.ConvTranspose2d:
    """tflib's Deconv2D: 5x5, doubles the size (TF 'SAME' padding)."""
    return nn.ConvTranspose2d(width_in, width_out, 5, stride=2, padding=2, output_padding=1)


class WGANGPMnistGenerator(nn.Module):
    resolutions = RESOLUTIONS  # read by ganx.methods through the config's _target_

    def __init__(
        self, latent_dim: int = 128, resolution: int = 28, channels: int = 1, dim: int = 64
    ):
        super().__init__()
        check_choice("resolution", resolution, RESOLUTIONS)
        check_widths(dim=dim)
        self.latent_dim, self.dim = latent_dim, dim
        self.linear = nn.Linear(latent_dim, 4 * 4 * 4 * dim)
        self.up1, self.up2, self.up3 = up(4 * dim, 2 * dim), up(2 * dim, dim), up(dim, channels)

    def forward(self, z):
        h = self.linear(z.flatten(1)).relu().view(z.shape[0], 4 * self.dim, 4, 4)
        h = self.up1(h).relu()[:, :, :7, :7]  # gan_mnist.py:70: output[:, :, :7, :7]
        return self.up3(self.up2(h).relu()).tanh()


class WGANGPMnistCritic(nn.Module):
    def __init__(
        self, resolution: int = 28, channels: int = 1, dim: int = 64, spectral_norm: bool = False
    ):
        super().__init__()
        check_choice("resolution", resolution, RESOLUTIONS)
        check_widths(dim=dim)
        layers, width_in = [], channels
        for width in (dim, 2 * dim, 4 * dim):
            conv = nn.Conv2d(width_in, width, 5, stride=2, padding=2)
            layers += [maybe_spectral_norm(conv, spectral_norm), nn.LeakyReLU(0.2)]
            width_in = width
        self.convs = nn.Sequential(*layers)
        self.linear = maybe_spectral_norm(nn.Linear(4 * 4 * 4 * dim, 1), spectral_norm)

    def forward(self, x):
        return self.linear(self.convs(x).flatten(1)).flatten()
