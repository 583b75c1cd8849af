"""R3GAN's modernised ResNet (Huang, Gokaslan, Kuleshov & Tompkin, NeurIPS 2024, "The GAN is
dead; long live the GAN! A Modern GAN Baseline", sec. 3-4), after the authors' code
(brownvc/R3GAN@19a7ddf:R3GAN/Networks.py, brownvc/R3GAN@19a7ddf:R3GAN/Resamplers.py,
brownvc/R3GAN@19a7ddf:R3GAN/FusedOperators.py; the line numbers below are Networks.py's. They were
first read in the fork Lemutisme/R3GAN @ 3b1496f, whose Networks.py has the same lines; the fork
JTCaldeira/R3GAN-gap turns gain 0 into 1 in ``MSRInitializer``: a later edit, not followed).

- Residual block (``ResidualBlock``, Networks.py:25-45): an inverted bottleneck of three bias-free
  convs, 1x1 width -> width * expansion, kxk *grouped* (``cardinality`` groups) at the
  expanded width, 1x1 back to width; a bias and Leaky ReLU (slope 0.2) after each of the
  first two (``BiasedActivation``, FusedOperators.py:6-7); identity shortcut; **no
  normalisation** anywhere.
- Initialisation (``MSRInitializer``, Networks.py:7-14): weights ~ N(0, gain / sqrt(fan_in)),
  biases 0. In a residual branch the first two convs get gain = sqrt(2 / (1 + 0.2^2)) *
  L^(-1/(2m-2)) with m = 3 linear layers and L = the number of residual blocks of the whole network
  (``VarianceScalingParameter = sum(BlocksPerStage)``, Networks.py:31, :133, :155), and the last
  conv gain 0, i.e. zero (Networks.py:35): every branch starts as the identity (fix-up style
  variance scaling). Every other layer has gain 1.
- Resampling (Resamplers.py:11 ``InterpolativeUpsamplerReference`` /
  :24 ``InterpolativeDownsamplerReference``, :6 ``CreateLowpassKernel``): the filter [1, 2, 1]
  convolved with [1, 1] gives the 4x4 separable low-pass kernel [1, 3, 3, 1]^T [1, 3, 3, 1] / 64;
  up-sampling is a stride-2 transposed depthwise conv with 4 x that kernel, down-sampling a
  stride-2 depthwise conv with it (padding 1). G changes width with a 1x1 conv *before*
  up-sampling, D *after* down-sampling (``UpsampleLayer`` Networks.py:47-60,
  ``DownsampleLayer`` Networks.py:62-75).
- G (``Generator`` Networks.py:129-149): z -> a learned basis of shape (width, b, b) ~ N(0, 1)
  scaled channel-wise by a bias-free linear map of z (``GenerativeBasis``, Networks.py:77-85),
  residual blocks at b x b, then per stage up-sampling + blocks; a 1x1 conv to the image
  (``AggregationLayer``), no tanh.
- D (``Discriminator`` Networks.py:151-173): 1x1 conv from the image (``ExtractionLayer``), per
  stage blocks + down-sampling, the last stage's blocks, then a depthwise b x b conv over the
  remaining map and a bias-free linear to the logit (``DiscriminativeBasis``, Networks.py:87-95).
  D's widths, cardinalities and blocks are G's reversed (brownvc/R3GAN@19a7ddf:train.py:275-277,
  ``[*reversed(WidthPerStage)]``).

The paper's basis is b = 4 (stages 4-8-16-32 at 32 px). At 28 px (MNIST) the stages are
7-14-28 and the basis 7x7; the code has no 28 px preset. Its CIFAR-10 preset (train.py:178-196,
``preset == 'CIFAR10'``): widths [768] * 4, cardinality [96] * 4, 2 blocks per stage,
expansion 2, z of dimension 64. ``width`` and ``cardinality`` take one number (every stage) or a
list (one per stage, from the bottom up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import schema
from .common import check_choice, check_widths

BASIS_SIZE = {28: 7, 32: 4, 64: 4}  # resolution -> the basis map's side (4 in the paper)
LEAKY_SLOPE = 0.2
# the Leaky ReLU's variance gain (FusedOperators.py:7, BiasedActivation.Gain)
ACTIVATION_GAIN = math.sqrt(2 / (1 + LEAKY_SLOPE**2))
LINEAR_LAYERS_PER_BLOCK = 3


def stage_count(resolution: int) -> int:
    return int(math.log2(resolution // BASIS_SIZE[resolution])) + 1


def branch_gain(total_blocks: int) -> float:
    """Gain of the first two convs of a residual branch: the activation's gain times
    L^(-1/(2m-2)) (Networks.py:31; m = 3 linear layers, L = residual blocks in the net)."""
    return ACTIVATION_GAIN * total_blocks ** (-1 / (2 * LINEAR_LAYERS_PER_BLOCK - 2))


def msr_init(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """N(0, gain / sqrt(fan_in)) weights, zero bias (Networks.py ``MSRInitializer``); fan_in
    counts one group's input channels times the kernel area. Gain 0 gives zero weights."""
    fan_in = layer.weight[0].numel()
    with torch.no_grad():
        layer.weight.normal_(0.0, gain / math.sqrt(fan_in)) if gain else layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


def conv(width_in: int, width_out: int, kernel: int = 1, groups: int = 1, gain: float = 1.0):
    """A bias-free, 'same'-padded conv with MSR init (Networks.py ``Convolution``)."""
    padding = (kernel - 1) // 2
    layer = nn.Conv2d(width_in, width_out, kernel, padding=padding, groups=groups, bias=False)
    return msr_init(layer, gain)


class BiasedLeakyReLU(nn.Module):
    """x + b, then Leaky ReLU(0.2); b starts at 0 (FusedOperators.py ``BiasedActivation``)."""

    def __init__(self, width: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return F.leaky_relu(x + self.bias.view(shape), LEAKY_SLOPE)


class ResidualBlock(nn.Module):
    """x + conv1x1(act(grouped convkxk(act(conv1x1(x))))): an inverted bottleneck, no norm."""

    def __init__(self, width, cardinality, expansion, total_blocks, kernel=3):
        super().__init__()
        expanded = width * expansion
        if expanded % cardinality:
            raise ValueError(
                f"cardinality {cardinality} must divide the expanded width {expanded} "
                f"(width {width} x expansion {expansion})"
            )
        gain = branch_gain(total_blocks)
        self.expand = conv(width, expanded, 1, gain=gain)
        self.grouped = conv(expanded, expanded, kernel, groups=cardinality, gain=gain)
        self.project = conv(expanded, width, 1, gain=0.0)  # the branch starts at zero
        self.act1, self.act2 = BiasedLeakyReLU(expanded), BiasedLeakyReLU(expanded)

    def forward(self, x):
        return x + self.project(self.act2(self.grouped(self.act1(self.expand(x)))))


def lowpass_kernel(taps=(1.0, 2.0, 1.0)) -> torch.Tensor:
    """Resamplers.py ``CreateLowpassKernel(.., Inplace=False)``: taps * [1, 1], outer product,
    normalised to sum 1 ([1, 3, 3, 1]^T [1, 3, 3, 1] / 64 for [1, 2, 1])."""
    row = torch.tensor(taps, dtype=torch.float32)
    row = F.conv1d(row.view(1, 1, -1), torch.ones(1, 1, 2), padding=1).flatten()
    kernel = torch.outer(row, row)
    return kernel / kernel.sum()


class Resample(nn.Module):
    """Depthwise stride-2 low-pass resampling (``up``: transposed conv with 4 x the kernel)."""

    def __init__(self, up: bool):
        super().__init__()
        self.up = up
        self.register_buffer("kernel", lowpass_kernel(), persistent=False)

    def forward(self, x):
        width = x.shape[1]
        kernel = self.kernel.to(x.dtype).expand(width, 1, *self.kernel.shape)
        if self.up:
            return F.conv_transpose2d(x, 4 * kernel, stride=2, padding=1, groups=width)
        return F.conv2d(x, kernel, stride=2, padding=1, groups=width)


def per_stage(value, stages: int, name: str) -> list[int]:
    values = list(value) if isinstance(value, Sequence) else [value] * stages
    for one in values:
        schema.positive(name, one, integer=True)
    if len(values) != stages:
        raise schema.SettingError(
            name, values, f": one positive integer, or a list of {stages} (one per stage)"
        )
    return values


def stage_plan(resolution, width, cardinality, blocks, expansion):
    """(widths, cardinalities, blocks per stage) from the bottom stage up, as G uses them."""
    check_choice("resolution", resolution, BASIS_SIZE)
    check_widths(expansion=expansion)
    stages = stage_count(resolution)
    return (
        per_stage(width, stages, "width"),
        per_stage(cardinality, stages, "cardinality"),
        per_stage(blocks, stages, "blocks"),
    )


def residual_blocks(count, width, cardinality, expansion, total_blocks) -> list[nn.Module]:
    return [ResidualBlock(width, cardinality, expansion, total_blocks) for _ in range(count)]


class R3GANGenerator(nn.Module):
    resolutions = tuple(BASIS_SIZE)  # read by ganx.methods through the config's _target_

    def __init__(
        self,
        latent_dim: int = 64,
        resolution: int = 32,
        channels: int = 3,
        width: int | list[int] = 768,
        cardinality: int | list[int] = 96,
        blocks: int | list[int] = 2,
        expansion: int = 2,
    ):
        super().__init__()
        widths, groups, counts = stage_plan(resolution, width, cardinality, blocks, expansion)
        total = sum(counts)
        self.latent_dim, self.side = latent_dim, BASIS_SIZE[resolution]
        self.basis = nn.Parameter(torch.randn(widths[0], self.side, self.side))
        self.basis_scale = msr_init(nn.Linear(latent_dim, widths[0], bias=False))
        layers = residual_blocks(counts[0], widths[0], groups[0], expansion, total)
        for i in range(1, len(widths)):
            if widths[i] != widths[i - 1]:
                layers.append(conv(widths[i - 1], widths[i]))
            layers.append(Resample(up=True))
            layers += residual_blocks(counts[i], widths[i], groups[i], expansion, total)
        self.layers = nn.Sequential(*layers)
        self.to_image = conv(widths[-1], channels)

    def forward(self, z):
        scale = self.basis_scale(z.flatten(1))
        return self.to_image(self.layers(self.basis.unsqueeze(0) * scale[:, :, None, None]))


class R3GANDiscriminator(nn.Module):
    def __init__(
        self,
        resolution: int = 32,
        channels: int = 3,
        width: int | list[int] = 768,
        cardinality: int | list[int] = 96,
        blocks: int | list[int] = 2,
        expansion: int = 2,
        spectral_norm: bool = False,
    ):
        super().__init__()
        if spectral_norm:  # the builder names it model.discriminator.spectral_norm
            raise schema.SettingError(
                "spectral_norm",
                spectral_norm,
                " is not supported: R3GAN's D has no normalisation (the paper's design); "
                "set model.spectral_norm=false",
            )
        widths, groups, counts = (
            v[::-1] for v in stage_plan(resolution, width, cardinality, blocks, expansion)
        )
        total, side = sum(counts), BASIS_SIZE[resolution]
        self.from_image = conv(channels, widths[0])
        layers = []
        for i, (w, g, n) in enumerate(zip(widths, groups, counts, strict=True)):
            layers += residual_blocks(n, w, g, expansion, total)
            if i + 1 < len(widths):
                layers.append(Resample(up=False))
                if widths[i + 1] != w:
                    layers.append(conv(w, widths[i + 1]))
        self.layers = nn.Sequential(*layers)
        self.basis = msr_init(
            nn.Conv2d(widths[-1], widths[-1], side, groups=widths[-1], bias=False)
        )
        self.to_logit = msr_init(nn.Linear(widths[-1], 1, bias=False))

    def forward(self, x):
        return self.to_logit(self.basis(self.layers(self.from_image(x))).flatten(1)).flatten()
