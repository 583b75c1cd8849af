"""GAN losses as pure functions of the discriminator's logits.

Every loss has a D part, ``d_loss(real_logits, fake_logits)``, and a G part,
``g_loss(fake_logits)``; both return a scalar that the respective player *minimises*. The
relativistic losses compare real with fake logits in G's loss too: they set
``needs_real_in_g = True`` and take ``g_loss(fake_logits, real_logits)``; only for them does G's
step draw a real batch (from the same data stream as D's, so the checkpoint's data position
counts it) and run D on it.
"Logits" are D's raw outputs: the sigmoid is applied here, never inside the nets, so that the
same D serves every loss and ``softplus`` keeps the log-terms numerically stable
(``-log sigmoid(t) = softplus(-t)``, ``-log(1 - sigmoid(t)) = softplus(t)``).

WGAN-GP and DRAGAN are a loss plus a regularizer (``experiment=wgan_gp``, ``experiment=dragan``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import schema


class GANLoss:
    """Base class: subclasses define ``d_loss`` and ``g_loss``."""

    name = "base"
    needs_real_in_g = False  # True: G's loss also sees D's logits on a real batch
    # what the loss is, read from the config's _target_ before anything is built (ganx.methods)
    sigmoid_output = False  # D's output is the logit of P(real) (the JS-regularizer needs it)
    relativistic = False  # sees only differences of D's outputs: their offset is arbitrary

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """G's loss; ``real_logits`` is given only when ``needs_real_in_g`` is set."""
        raise NotImplementedError

    def after_d_step(self, discriminator: nn.Module) -> None:
        """Hook run after each D optimiser step (WGAN's weight clipping); nothing by default."""


class MinimaxLoss(GANLoss):
    """The original saturating GAN (Goodfellow et al. 2014, eq. 1).

    D maximises  E[log D(x)] + E[log(1 - D(G(z)))]  ->  d_loss = softplus(-r) + softplus(f).
    G minimises  E[log(1 - D(G(z)))]                ->  g_loss = -softplus(f),
    whose gradient vanishes when D confidently rejects fakes (the reason for ``ns``).
    ``d_scale`` multiplies D's loss: PyTorch-GAN averages its two BCE terms,
    ``d_loss = (real_loss + fake_loss) / 2``
    (eriklindernoren/PyTorch-GAN@36d3c77:implementations/gan/gan.py:158; d_scale 0.5; with Adam it
    only matters through epsilon and through the relative weight of any penalty).
    """

    name = "minimax"
    sigmoid_output = True

    def __init__(self, d_scale: float = 1.0):
        schema.positive("d_scale", d_scale)
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
        if clip is not None:
            schema.positive("clip", clip)
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
        for name, value in (("a", a), ("b", b), ("c", c)):
            if not schema.is_number(value):
                raise schema.SettingError(name, value, ": must be a finite number")
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


def paired(real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
    """The i-th real logit with the i-th fake one (as R3GAN's ``RealLogits - FakeLogits``
    subtracts two batches element-wise); both batches come from one step, so they are equally
    long, and a mismatch is a bug to report rather than broadcast."""
    if real_logits is None:
        raise ValueError("a relativistic G loss needs D's logits on a real batch (real_logits)")
    if real_logits.shape != fake_logits.shape:
        raise ValueError(
            "relativistic pairing needs as many real as fake logits, got "
            f"{tuple(real_logits.shape)} and {tuple(fake_logits.shape)}"
        )
    return real_logits, fake_logits


class RelativisticPairingLoss(GANLoss):
    """Relativistic pairing GAN, RpGAN (Huang et al. 2024, "The GAN is dead; long live the GAN!",
    sec. 2; the relativistic standard GAN of Jolicoeur-Martineau 2019, sec. 4.1, whose sec. 4.2
    generalises f).

    Each real sample is paired with one fake sample (the i-th of each batch) and D judges the
    difference of their logits:  d_loss = E[softplus(-(D(x_i) - D(G(z_i))))],
    g_loss = E[softplus(-(D(G(z_i)) - D(x_i)))], i.e. f(t) = -log sigmoid(t) = softplus(-t)
    applied by each player to "its" difference. G's step needs a real batch.

    Checked against the authors' code, brownvc/R3GAN@19a7ddf:R3GAN/Trainer.py:14-42: G, :21-22
    ``RelativisticLogits = FakeLogits - RealLogits; softplus(-RelativisticLogits)``; D, :38-39 the
    same with ``RealLogits - FakeLogits``; R1 and R2 are added as ``(Gamma / 2) * (R1Penalty +
    R2Penalty)`` (:41), which is ganx's ``reg=[r1,r2]`` with weight = Gamma. Its training loop
    (brownvc/R3GAN@19a7ddf:training/training_loop.py:287-290) draws G's phase a real batch of its
    own (``G_img, G_img_c = next(training_set_iterator)`` beside D's ``D_img``), as ganx's G step
    does. The same loss is RSGAN in
    AlexiaJM/RelativisticGAN@2646c0b:code/GAN_losses_iter.py:634-635 (``loss_D == 5``):
    ``BCE_stable(y_pred - y_pred_fake, y)`` for D and ``BCE_stable(y_pred_fake - y_pred, y)`` for G
    on a freshly drawn real batch (``random_sample.__next__()`` in the G update, :679); BCE with
    target 1 on logit t is softplus(-t), the mean over the batch.
    """

    name = "rpgan"
    needs_real_in_g = relativistic = True

    def d_loss(self, real_logits, fake_logits):
        real_logits, fake_logits = paired(real_logits, fake_logits)
        return F.softplus(fake_logits - real_logits).mean()

    def g_loss(self, fake_logits, real_logits=None):
        real_logits, fake_logits = paired(real_logits, fake_logits)
        return F.softplus(real_logits - fake_logits).mean()


class RelativisticStandardLoss(RelativisticPairingLoss):
    """RSGAN (Jolicoeur-Martineau 2019, sec. 4.1): the same loss as :class:`RelativisticPairingLoss`
    (RpGAN with f = softplus(-t) is RSGAN); a class of its own only so that the method line names
    the paper the YAML chose."""

    name = "rsgan"


# what each player asks of a relativistic logit t: "t should be high" / "t should be low"
RA_VARIANTS = {
    "standard": (lambda t: F.softplus(-t), lambda t: F.softplus(t)),
    "ls": (lambda t: (t - 1.0) ** 2, lambda t: (t + 1.0) ** 2),
    "hinge": (lambda t: F.relu(1.0 - t), lambda t: F.relu(1.0 + t)),
}


class RelativisticAverageLoss(GANLoss):
    """Relativistic average GAN (Jolicoeur-Martineau 2019, sec. 4.3 and its RaLSGAN/RaHingeGAN
    forms): each logit is compared with the *mean* logit of the other batch,
    r~ = D(x) - E[D(G(z))], f~ = D(G(z)) - E[D(x)] (no pairing; the means keep their gradient).

    ``variant`` (h = "should be high", l = "should be low"):
    standard (RaSGAN): h(t) = softplus(-t), l(t) = softplus(t)  (-log sigmoid, -log(1 - sigmoid));
    ls (RaLSGAN): h(t) = (t - 1)^2, l(t) = (t + 1)^2;  hinge (RaHingeGAN): h = relu(1 - t),
    l = relu(1 + t).  d_loss = scale * (E h(r~) + E l(f~)),  g_loss = scale * (E h(f~) + E l(r~)).

    The paper writes the two terms as a sum (scale 1);
    AlexiaJM/RelativisticGAN@2646c0b:code/GAN_losses_iter.py halves both players' losses (``/2`` in
    the ``loss_D == 6, 7, 8`` branches of the D update, :636-641, and the G update, :698-709, i.e.
    RaSGAN, RaLSGAN, RaHingeGAN): ``scale=0.5`` is that code. G's step needs a real batch (the code
    draws one with ``random_sample.__next__()``).
    """

    name = "ragan"
    needs_real_in_g = relativistic = True

    def __init__(self, variant: str = "standard", scale: float = 1.0):
        schema.choice("variant", variant, tuple(RA_VARIANTS))
        schema.positive("scale", scale)
        self.variant, self.scale = variant, float(scale)
        self.high, self.low = RA_VARIANTS[variant]

    def _loss(self, own: Tensor, other: Tensor) -> Tensor:
        """``own`` should look more real than the other batch on average, ``other`` less."""
        terms = self.high(own - other.mean()).mean() + self.low(other - own.mean()).mean()
        return terms if self.scale == 1.0 else self.scale * terms

    def d_loss(self, real_logits, fake_logits):
        return self._loss(real_logits, fake_logits)

    def g_loss(self, fake_logits, real_logits=None):
        if real_logits is None:
            raise ValueError("loss=ragan: G's loss needs D's logits on a real batch (real_logits)")
        return self._loss(fake_logits, real_logits)
