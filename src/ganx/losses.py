"""GAN losses as pure functions of the discriminator's logits.

Every loss has a D part, ``d_loss(real_logits, fake_logits)``, and a G part,
``g_loss(fake_logits)``; both return a scalar that the respective player *minimises*.
"Logits" are D's raw outputs: the sigmoid is applied here, never inside the nets, so that the
same D serves every loss and ``softplus`` keeps the log-terms numerically stable
(``-log sigmoid(t) = softplus(-t)``, ``-log(1 - sigmoid(t)) = softplus(t)``).

WGAN-GP and DRAGAN are a loss plus a regularizer (``experiment=wgan_gp``, ``experiment=dragan``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GANLoss:
    """Base class: subclasses define ``d_loss`` and ``g_loss``."""

    name = "base"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def after_d_step(self, discriminator: nn.Module) -> None:
        """Hook run after each D optimiser step (WGAN's weight clipping); nothing by default."""


class MinimaxLoss(GANLoss):
    """The original saturating GAN (Goodfellow et al. 2014, eq. 1).

    D maximises  E[log D(x)] + E[log(1 - D(G(z)))]  ->  d_loss = softplus(-r) + softplus(f).
    G minimises  E[log(1 - D(G(z)))]                ->  g_loss = -softplus(f),
    whose gradient vanishes when D confidently rejects fakes (the reason for ``ns``).
    ``d_scale`` multiplies D's loss: PyTorch-GAN's gan.py averages its two BCE terms,
    ``d_loss = (real_loss + fake_loss) / 2`` (d_scale 0.5; with Adam it only matters through
    epsilon and through the relative weight of any penalty).
    """

    name = "minimax"

    def __init__(self, d_scale: float = 1.0):
        if d_scale <= 0:
            raise ValueError(f"loss.d_scale must be > 0, got {d_scale}")
        self.d_scale = float(d_scale)

    def d_loss(self, real_logits, fake_logits):
        terms = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        return terms if self.d_scale == 1.0 else self.d_scale * terms

    def g_loss(self, fake_logits):
        return -F.softplus(fake_logits).mean()


class NonSaturatingLoss(MinimaxLoss):
    """Non-saturating GAN (Goodfellow et al. 2014, sec. 3): D as in minimax; G maximises
    E[log D(G(z))], i.e. g_loss = softplus(-f)."""

    name = "ns"

    def g_loss(self, fake_logits):
        return F.softplus(-fake_logits).mean()


class WassersteinLoss(GANLoss):
    """WGAN critic loss (Arjovsky et al. 2017, Algorithm 1).

    d_loss = E[D(G(z))] - E[D(x)], g_loss = -E[D(G(z))]. With ``clip`` set, every D parameter
    is clamped to [-clip, clip] after each D step (the paper's c = 0.01) to bound the Lipschitz
    constant; leave it ``None`` when a gradient penalty does that job (WGAN-GP).
    """

    name = "wgan"

    def __init__(self, clip: float | None = None):
        if clip is not None and clip <= 0:
            raise ValueError(f"loss.clip must be a positive number or null, got {clip}")
        self.clip = clip

    def d_loss(self, real_logits, fake_logits):
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits):
        return -fake_logits.mean()

    @torch.no_grad()
    def after_d_step(self, discriminator):
        if self.clip is not None:
            for p in discriminator.parameters():
                p.clamp_(-self.clip, self.clip)


class LeastSquaresLoss(GANLoss):
    """Least squares GAN (Mao et al. 2017, eq. 2) on D's raw output.

    d_loss = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2],  g_loss = 1/2 E[(D(G(z)) - c)^2].
    Defaults a=0, b=1, c=1 (the 0-1 coding of the paper's sec. 3.2.2); a=-1, b=1, c=0 is the
    Pearson chi^2 setting of its eq. 9.
    """

    name = "lsgan"

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0):
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real_logits, fake_logits):
        return (
            0.5 * ((real_logits - self.b) ** 2).mean() + 0.5 * ((fake_logits - self.a) ** 2).mean()
        )

    def g_loss(self, fake_logits):
        return 0.5 * ((fake_logits - self.c) ** 2).mean()


class HingeLoss(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018, eq. 16-17).

    d_loss = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))],  g_loss = -E[D(G(z))].
    """

    name = "hinge"

    def d_loss(self, real_logits, fake_logits):
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def g_loss(self, fake_logits):
        return -fake_logits.mean()
