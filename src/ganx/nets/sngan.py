"""The ResNet SNGAN of Miyato et al. 2018 (appendix B.4) with mimicry's networks
(kwotsin/mimicry, torch_mimicry/nets/sngan/):

- 32 px (kwotsin/mimicry@a7fda06:torch_mimicry/nets/sngan/sngan_32.py:22-36 and :68-80): G linear z
  -> 4x4 x ngf, three up-sampling blocks ngf -> ngf (ngf 256); D an "optimised" first block, one
  down-sampling and two plain blocks, all ndf wide (ndf 128).
- 48 px (kwotsin/mimicry@a7fda06:torch_mimicry/nets/sngan/sngan_48.py:22-31 and :68-77; STL-10):
  G linear z -> 6x6 x ngf, blocks ngf -> ngf/2 -> ngf/4 -> ngf/8 (ngf 512); D one more block:
  optimised 3 -> ndf/16, down-sampling ndf/16 -> ndf/8 -> ndf/4 -> ndf/2, plain ndf/2 -> ndf
  (ndf 1024). SSGAN and InfoMax-GAN use the same backbones
  (kwotsin/mimicry@a7fda06:torch_mimicry/nets/infomax_gan/infomax_gan_48.py:80-87: local features
  after the fourth block, ndf/2 wide). 4,878,083 / 10,141,441 parameters, as mimicry's.

``ngf``/``ndf`` null = mimicry's value for the resolution. G blocks: BN-ReLU-up-conv-BN-ReLU-conv,
shortcut up + 1x1 conv; then BN-ReLU, 3x3 conv, tanh. D blocks: (ReLU)-conv-ReLU-conv(-avgpool),
shortcut 1x1 conv (+ avgpool); then ReLU, global sum pooling, linear -> logit.
Spectral norm on every D layer by default (``spectral_norm``). Residual convs use Xavier-uniform
init with gain sqrt(2), shortcuts and the ends gain 1, as in the authors' Chainer code.

Two settings follow mimicry's blocks (kwotsin/mimicry@a7fda06:torch_mimicry/modules/resblocks.py):
- ``upsample`` (G): ``bilinear`` (default; ``F.interpolate(..., mode='bilinear',
  align_corners=False)`` in ``GBlock._upsample_conv``, resblocks.py:104-112) or ``nearest`` (the
  original Chainer SNGAN code, and what ganx did before this setting existed).
- ``hidden_width`` (D): the width of a D block's first conv. ``input`` (default): mimicry's
  ``DBlock`` sets ``hidden_channels`` to ``in_channels`` (resblocks.py:184), so a widening block
  widens in its second conv; ``output`` widens in the first (what ganx did before: 19,542,721
  parameters at 48 px). The two differ only where a block widens, i.e. at 48 px; the optimised
  first block's hidden width is its output width in both (``DBlockOptimized``, resblocks.py:265).
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch.nn.functional as F
from torch import nn

from .common import check_choice, check_widths, maybe_spectral_norm

RESOLUTIONS = (32, 48)
MIMICRY_WIDTHS = {32: (256, 128), 48: (512, 1024)}  # resolution -> (ngf, ndf)


def generator_widths(resolution: int, ngf: int) -> list[int]:
    """Channel widths from the bottom map to the last block (mimicry's sngan_32 / sngan_48)."""
    if resolution == 48:
        return [ngf, ngf >> 1, ngf >> 2, ngf >> 3]
    return [ngf] * 4


def discriminator_plan(resolution: int, ndf: int) -> tuple[list[tuple[int, bool]], int]:
    """((width, downsample) of each local block, the global block's width)."""
    if resolution == 48:
        return [(ndf >> 4, True), (ndf >> 3, True), (ndf >> 2, True), (ndf >> 1, True)], ndf
    return [(ndf, True), (ndf, True), (ndf, False)], ndf


def xavier(layer: nn.Module, gain: float) -> nn.Module:
    nn.init.xavier_uniform_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


UPSAMPLING = ("bilinear", "nearest")
HIDDEN_WIDTHS = ("input", "output")


def upsampled(x, mode: str):
    if mode == "bilinear":
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return F.interpolate(x, scale_factor=2, mode="nearest")


class GeneratorBlock(nn.Module):
    def __init__(self, width_in: int, width_out: int, upsample: str = "bilinear"):
        super().__init__()
        self.upsample = upsample
        self.bn1, self.bn2 = nn.BatchNorm2d(width_in), nn.BatchNorm2d(width_out)
        self.conv1 = xavier(nn.Conv2d(width_in, width_out, 3, 1, 1), math.sqrt(2))
        self.conv2 = xavier(nn.Conv2d(width_out, width_out, 3, 1, 1), math.sqrt(2))
        self.shortcut = xavier(nn.Conv2d(width_in, width_out, 1), 1.0)

    def forward(self, x):
        h = upsampled(F.relu(self.bn1(x)), self.upsample)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(upsampled(x, self.upsample))


class DiscriminatorBlock(nn.Module):
    def __init__(
        self,
        width_in: int,
        width_out: int,
        downsample: bool,
        first: bool,
        sn: bool,
        hidden_width: str = "input",
    ):
        super().__init__()
        self.first, self.downsample = first, downsample
        hidden = width_in if hidden_width == "input" and not first else width_out
        self.conv1 = maybe_spectral_norm(
            xavier(nn.Conv2d(width_in, hidden, 3, 1, 1), math.sqrt(2)), sn
        )
        self.conv2 = maybe_spectral_norm(
            xavier(nn.Conv2d(hidden, width_out, 3, 1, 1), math.sqrt(2)), sn
        )
        learn_shortcut = first or downsample or width_in != width_out
        self.shortcut = (
            maybe_spectral_norm(xavier(nn.Conv2d(width_in, width_out, 1), 1.0), sn)
            if learn_shortcut
            else None
        )

    def forward(self, x):
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        skip = x
        if self.first:  # the optimised block pools before its 1x1 conv
            skip = self.shortcut(F.avg_pool2d(x, 2))
        elif self.shortcut is not None:
            skip = self.shortcut(x)
            if self.downsample:
                skip = F.avg_pool2d(skip, 2)
        return h + skip


class SNGANGenerator(nn.Module):
    resolutions = RESOLUTIONS  # read by ganx.methods through the config's _target_

    def __init__(
        self,
        latent_dim: int = 128,
        resolution: int = 32,
        channels: int = 3,
        ngf: int | None = None,
        upsample: str = "bilinear",
    ):
        super().__init__()
        check_choice("resolution", resolution, RESOLUTIONS)
        check_choice("upsample", upsample, UPSAMPLING)
        check_widths(ngf=ngf)
        ngf = ngf or MIMICRY_WIDTHS[resolution][0]
        widths = generator_widths(resolution, ngf)
        self.latent_dim, self.ngf, self.bottom = latent_dim, ngf, resolution // 8
        self.linear = xavier(nn.Linear(latent_dim, self.bottom**2 * ngf), 1.0)
        self.blocks = nn.Sequential(*(GeneratorBlock(a, b, upsample) for a, b in pairwise(widths)))
        self.bn = nn.BatchNorm2d(widths[-1])
        self.to_rgb = xavier(nn.Conv2d(widths[-1], channels, 3, 1, 1), 1.0)

    def forward(self, z):
        h = self.linear(z.flatten(1)).view(z.shape[0], self.ngf, self.bottom, self.bottom)
        return self.to_rgb(F.relu(self.bn(self.blocks(h)))).tanh()


class SNGANDiscriminator(nn.Module):
    def __init__(
        self,
        resolution: int = 32,
        channels: int = 3,
        ndf: int | None = None,
        spectral_norm: bool = True,
        hidden_width: str = "input",
    ):
        super().__init__()
        check_choice("resolution", resolution, RESOLUTIONS)
        check_choice("hidden_width", hidden_width, HIDDEN_WIDTHS)
        check_widths(ndf=ndf)
        sn = self.sn = spectral_norm
        ndf = self.ndf = ndf or MIMICRY_WIDTHS[resolution][1]
        local_plan, self.global_width = discriminator_plan(resolution, ndf)
        self.local_width = local_plan[-1][0]
        # split as in mimicry's InfoMax-GAN: the local blocks give the "local" feature map, the
        # last block and the global sum pooling the "global" feature vector
        blocks, width_in = [], channels
        for i, (width, down) in enumerate(local_plan):
            blocks.append(
                DiscriminatorBlock(width_in, width, down, i == 0, sn, hidden_width=hidden_width)
            )
            width_in = width
        self.local_blocks = nn.Sequential(*blocks)
        self.global_block = DiscriminatorBlock(
            width_in, self.global_width, False, False, sn, hidden_width=hidden_width
        )
        self.linear = maybe_spectral_norm(xavier(nn.Linear(self.global_width, 1), 1.0), sn)

    def features(self, x):
        """(local feature map (B, local width, h, w), global feature vector (B, global width))."""
        local = self.local_blocks(x)
        return local, F.relu(self.global_block(local)).sum(dim=(2, 3))

    def forward(self, x):
        return self.linear(self.features(x)[1]).flatten()


class SSGANDiscriminator(SNGANDiscriminator):
    """SNGAN's D plus a 4-way rotation classifier on the global features (Chen et al. 2019,
    SSGAN); :class:`ganx.aux.RotationLoss` trains it."""

    def __init__(
        self,
        resolution: int = 32,
        channels: int = 3,
        ndf: int | None = None,
        spectral_norm: bool = True,
        hidden_width: str = "input",
    ):
        super().__init__(resolution, channels, ndf, spectral_norm, hidden_width)
        self.rotation_head = maybe_spectral_norm(
            xavier(nn.Linear(self.global_width, 4), 1.0), self.sn
        )

    def rotation_logits(self, x):
        return self.rotation_head(self.features(x)[1])


class InfoMaxDiscriminator(SNGANDiscriminator):
    """SNGAN's D plus the InfoMax-GAN critic heads (Lee et al. 2021): residual projections of the
    local features (1x1 convs) and the global features (linear) into an ``nrkhs``-dimensional
    space, scored by :class:`ganx.aux.InfoMaxLoss`."""

    def __init__(
        self,
        resolution: int = 32,
        channels: int = 3,
        ndf: int | None = None,
        spectral_norm: bool = True,
        nrkhs: int = 1024,
        hidden_width: str = "input",
    ):
        super().__init__(resolution, channels, ndf, spectral_norm, hidden_width)
        check_widths(nrkhs=nrkhs)

        def sn(layer):
            return maybe_spectral_norm(xavier(layer, 1.0), self.sn)

        loc, glob = self.local_width, self.global_width
        self.local_a, self.local_b = sn(nn.Conv2d(loc, loc, 1)), sn(nn.Conv2d(loc, nrkhs, 1))
        self.local_skip = sn(nn.Conv2d(loc, nrkhs, 1))
        self.global_a, self.global_b = sn(nn.Linear(glob, glob)), sn(nn.Linear(glob, nrkhs))
        self.global_skip = sn(nn.Linear(glob, nrkhs))

    def projected_features(self, x):
        """(local (B, nrkhs, H*W/16), global (B, nrkhs))."""
        local, global_ = self.features(x)
        local = self.local_b(F.relu(self.local_a(local))) + self.local_skip(local)
        global_ = self.global_b(F.relu(self.global_a(global_))) + self.global_skip(global_)
        return local.flatten(2), global_
