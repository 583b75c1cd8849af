"""DCGAN (Radford et al. 2016) for 28, 32 and 64 px images.

G: project z with a 4x4 (7x7 for 28 px) transposed conv, then stride-2 transposed convs
(kernel 4) that halve the width and double the size, BatchNorm + ReLU, tanh output.
D mirrors it: stride-2 convs (kernel 4) with LeakyReLU(0.2), BatchNorm on all but the first
layer, then one conv over the final 4x4 (7x7) map to a logit. ``ngf``/``ndf`` are the widths of
the last G / first D layer (the CIFAR-10 DCGAN notebook's ``channel_factor``; 64 in the paper).
``norm`` picks D's normalisation: ``batch`` (the paper's BatchNorm) or ``none`` (the critics of
GAN_stability, WGAN-GP and DRAGAN have none: an input-gradient penalty is defined per sample
only when samples are not coupled through batch statistics). With ``spectral_norm`` D drops
BatchNorm, as SNGAN's "standard CNN" does.
Weights are drawn from N(0, 0.02) (BatchNorm scale N(1, 0.02)), as the paper prescribes.
"""

from __future__ import annotations

from torch import nn

from .common import check_choice, check_widths, maybe_spectral_norm

RESOLUTIONS = {28: (7, 2), 32: (4, 3), 64: (4, 4)}  # resolution -> (base size, upsamplings)


def dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            # a spectrally normalised layer keeps its raw weight under ``parametrizations``
            weight = (
                m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            )
            nn.init.normal_(weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    resolutions = tuple(RESOLUTIONS)  # read by ganx.methods through the config's _target_

    def __init__(self, latent_dim: int, resolution: int = 32, channels: int = 3, ngf: int = 64):
        super().__init__()
        check_choice("resolution", resolution, RESOLUTIONS)
        check_widths(ngf=ngf)
        base, n_up = RESOLUTIONS[resolution]
        self.latent_dim = latent_dim
        width = ngf * 2 ** (n_up - 1)
        layers = [
            nn.ConvTranspose2d(latent_dim, width, base, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(n_up - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z):
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(
        self,
        resolution: int = 32,
        channels: int = 3,
        ndf: int = 64,
        spectral_norm: bool = False,
        norm: str = "batch",
    ):
        super().__init__()
        check_choice("resolution", resolution, RESOLUTIONS)
        check_widths(ndf=ndf)
        check_choice("norm", norm, ("batch", "none"))
        base, n_down = RESOLUTIONS[resolution]
        use_bn = norm == "batch" and not spectral_norm
        layers, width_in, width = [], channels, ndf
        for i in range(n_down):
            layers.append(
                maybe_spectral_norm(
                    nn.Conv2d(width_in, width, 4, 2, 1, bias=not use_bn), spectral_norm
                )
            )
            if use_bn and i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2, True))
            width_in, width = width, width * 2
        layers.append(maybe_spectral_norm(nn.Conv2d(width_in, 1, base, 1, 0), spectral_norm))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x):
        return self.net(x).flatten()
