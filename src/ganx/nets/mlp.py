"""The original GAN's MLP pair (Goodfellow et al. 2014) as in PyTorch-GAN's gan.py
(eriklindernoren/PyTorch-GAN@36d3c77:implementations/gan/gan.py:38-81): G 128-256-512-1024 with
BatchNorm and LeakyReLU(0.2), tanh output; D 512-256-1 with LeakyReLU(0.2). D returns a logit
(gan.py's final Sigmoid moves into the loss).

gan.py writes ``nn.BatchNorm1d(out_feat, 0.8)`` (gan.py:45): the second positional argument is
``eps``, so it normalises with eps = 0.8, almost certainly meant as Keras' momentum 0.8 (which is
PyTorch's momentum 0.2). ``model=mlp`` uses the intended value: eps 1e-5, momentum
``bn_momentum`` = 0.2. ``experiment=vanilla_gan_original`` reproduces gan.py literally (eps 0.8,
momentum 0.1).

``activation`` (``leaky_relu`` 0.2, gan.py's, or ``relu``) and ``init`` (``pytorch``: PyTorch's
default, as gan.py; ``he_normal``: weights ~ N(0, 2 / fan_in), biases 0, the DRAGAN notebook's
``xavier_init``, whose std is 1 / sqrt(fan_in / 2): kodalinaveen3/DRAGAN@5cf95ab:DRAGAN.ipynb,
cell 1) let ``model=dragan_mlp`` build the DRAGAN notebook's one-hidden-layer pair with the same
classes.
"""

from __future__ import annotations

import math

from torch import nn

from .. import schema
from .common import check_choice, check_widths, maybe_spectral_norm

ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU}
INITS = ("pytorch", "he_normal")


def initialised(layer: nn.Linear, init: str) -> nn.Linear:
    if init == "he_normal":
        nn.init.normal_(layer.weight, std=math.sqrt(2.0 / layer.in_features))
        nn.init.zeros_(layer.bias)
    return layer


def check_settings(activation: str, init: str, widths) -> None:
    if isinstance(widths, str) or not hasattr(widths, "__len__") or not len(widths):
        raise schema.SettingError("widths", widths, ": must be a non-empty list of widths")
    for i, width in enumerate(widths):
        check_widths(**{f"widths[{i}]": width})
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("init", init, INITS)


class MLPGenerator(nn.Module):
    def __init__(
        self,
        latent_dim: int,
        img_shape,
        widths=(128, 256, 512, 1024),
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.2,
        activation: str = "leaky_relu",
        init: str = "pytorch",
    ):
        super().__init__()
        check_settings(activation, init, widths)
        self.latent_dim = latent_dim
        self.img_shape = tuple(img_shape)
        layers, width_in = [], latent_dim
        for i, width in enumerate(widths):
            layers.append(initialised(nn.Linear(width_in, width), init))
            if i > 0:  # gan.py's first block has no normalisation
                layers.append(nn.BatchNorm1d(width, eps=bn_eps, momentum=bn_momentum))
            layers.append(ACTIVATIONS[activation]())
            width_in = width
        layers += [initialised(nn.Linear(width_in, math.prod(self.img_shape)), init), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z).view(z.shape[0], *self.img_shape)


class MLPDiscriminator(nn.Module):
    def __init__(
        self,
        img_shape,
        widths=(512, 256),
        spectral_norm: bool = False,
        activation: str = "leaky_relu",
        init: str = "pytorch",
    ):
        super().__init__()
        check_settings(activation, init, widths)
        layers, width_in = [], math.prod(img_shape)
        for width in widths:
            layers += [
                maybe_spectral_norm(initialised(nn.Linear(width_in, width), init), spectral_norm),
                ACTIVATIONS[activation](),
            ]
            width_in = width
        last = initialised(nn.Linear(width_in, 1), init)
        layers.append(maybe_spectral_norm(last, spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1)).flatten()
