"""Auxiliary losses that belong to a model family (``model.aux``), added to D's and G's losses.

- :class:`RotationLoss`: SSGAN (Chen et al. CVPR 2019), D learns to tell which of 0/90/180/270
  degrees an image was rotated by; G is rewarded when its samples' rotations are recognisable.
- :class:`InfoMaxLoss`: InfoMax-GAN (Lee et al. WACV 2021), an InfoNCE contrastive loss between
  each image's global and local D features.

Weights as in mimicry's implementations (the papers' settings): rotation 1.0 for D, 0.2 for G;
InfoMax 0.2 for both. Both compose with any loss and any ``reg``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import schema


class AuxiliaryLoss:
    name = "aux"

    def __init__(self, d_weight: float, g_weight: float):
        schema.non_negative("d_weight", d_weight)
        schema.non_negative("g_weight", g_weight)
        self.d_weight, self.g_weight = float(d_weight), float(g_weight)

    def d_term(self, discriminator: nn.Module, real: Tensor) -> Tensor:
        """D's auxiliary term on the real batch (SSGAN's and InfoMax-GAN's use the reals only)."""
        raise NotImplementedError

    def g_term(self, discriminator: nn.Module, fake: Tensor) -> Tensor:
        raise NotImplementedError


def rotate_quarters(images: Tensor) -> tuple[Tensor, Tensor]:
    """Image i of a batch of N is rotated by 90 * (4i // N) degrees (a quarter of the batch per
    angle, as in mimicry's SSGAN); returns the images and the rotation labels 0-3."""
    n = len(images)
    labels = torch.arange(n, device=images.device) * 4 // n
    rotated = torch.cat([torch.rot90(images[labels == k], k, dims=(2, 3)) for k in range(4)])
    return rotated, labels  # labels ascend, as the concatenation does


class RotationLoss(AuxiliaryLoss):
    """SSGAN's self-supervised rotation loss: d_weight * CE on rotated real images for D,
    g_weight * CE on rotated generated images for G (D needs ``rotation_logits``)."""

    name = "rotation"

    def __init__(self, d_weight: float = 1.0, g_weight: float = 0.2):
        super().__init__(d_weight, g_weight)

    def _ce(self, discriminator, images):
        rotated, labels = rotate_quarters(images)
        return F.cross_entropy(discriminator.rotation_logits(rotated).float(), labels)

    def d_term(self, discriminator, real):
        return self.d_weight * self._ce(discriminator, real.detach())

    def g_term(self, discriminator, fake):
        return self.g_weight * self._ce(discriminator, fake)


def infonce(local: Tensor, global_: Tensor) -> Tensor:
    """InfoNCE of DIM (Hjelm et al. 2019) as InfoMax-GAN uses it: for image n and location l,
    the positive score <global_n, local_n,l> competes with <global_n, local_m,k> for every other
    image m != n and every location k. local (N, R, L), global (N, R).

    Other images' scores are the negatives; image n's own other locations are excluded exactly
    (mimicry shifts them by -10 before the softmax instead)."""
    n, _, locations = local.shape
    positive = torch.einsum("nrl,nr->nl", local, global_)  # (N, L)
    negative = torch.einsum("mrk,nr->nmk", local, global_)  # (N, N, L)
    self_pairs = torch.eye(n, dtype=torch.bool, device=local.device)[:, :, None]
    negative = negative.masked_fill(self_pairs, float("-inf")).reshape(n, n * locations)
    logits = torch.cat(
        [positive.unsqueeze(-1), negative.unsqueeze(1).expand(n, locations, n * locations)], dim=-1
    )
    return -F.log_softmax(logits.float(), dim=-1)[..., 0].mean()


class InfoMaxLoss(AuxiliaryLoss):
    """InfoMax-GAN: weight * InfoNCE(local, global) of D's projected features, on real images
    for D and on generated images for G (D needs ``projected_features``)."""

    name = "infomax"

    def __init__(self, d_weight: float = 0.2, g_weight: float = 0.2):
        super().__init__(d_weight, g_weight)

    def d_term(self, discriminator, real):
        return self.d_weight * infonce(*discriminator.projected_features(real.detach()))

    def g_term(self, discriminator, fake):
        return self.g_weight * infonce(*discriminator.projected_features(fake))
