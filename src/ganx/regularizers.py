"""Discriminator regularizers: gradient penalties, logit anchors and input transforms.

Weight convention (one for all): every regularizer adds ``weight * R`` to D's loss, where ``R``
is the penalty exactly as its paper writes it *without* the paper's coefficient, and ``weight``
is that coefficient. So:

- R1/R2 (Mescheder et al. 2018): R = 0.5 * E||grad D||^2 and weight = the paper's gamma.
  GAN_stability's ``reg_param`` multiplies E||grad||^2 directly: weight = 2 * reg_param.
  StyleGAN2's ``r1_gamma`` already means ``gamma / 2 * E||grad||^2``: weight = r1_gamma.
- GP/DRAGAN (Gulrajani et al. 2017, Kodali et al. 2017): R = E(||grad|| - k)^2, weight = lambda.
- JS (Roth et al. 2017): R = 0.5 * E[...], weight = gamma (their code adds gamma/2 * reg).
- R_LC/LeCam (Tseng et al. 2021): R as in the paper, weight = lambda.

Lazy regularisation (Karras et al. 2020, StyleGAN2 sec. B): with ``interval=k`` a penalty is
applied on every k-th D step only, multiplied by k so that its average strength is unchanged.

Input transforms (DAT, instance noise) act on D's inputs before the D loss; they add nothing to
the loss (no weight) and are wired through ``transform_d_inputs``/``transform_g_input``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class DiscriminatorPass:
    """What one D step saw: its inputs (with ``requires_grad`` where a penalty asked for it),
    its logits, and the training progress (G steps done, total G steps)."""

    discriminator: nn.Module
    real: Tensor
    fake: Tensor
    real_logits: Tensor
    fake_logits: Tensor
    step: int
    total_steps: int


def input_gradient(logits: Tensor, inputs: Tensor) -> Tensor:
    """Per-sample gradient of D's logits w.r.t. its inputs, kept in the graph (double backward).

    Summing the logits is exact because sample i's logit depends on input i only (true for
    every D here in eval-free use; BatchNorm in D couples samples, as in GAN_stability).
    """
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.flatten(1)


def grad_norm_squared(logits: Tensor, inputs: Tensor) -> Tensor:
    """||grad_x D(x)||^2 per sample, shape (B,)."""
    return input_gradient(logits, inputs).pow(2).sum(1)


class Regularizer:
    """Base class. Subclasses set the flags they need and override ``penalty`` or a transform."""

    needs_real_grad = False  # D step must run on real inputs with requires_grad
    needs_fake_grad = False

    def __init__(self, weight: float = 1.0, interval: int = 1):
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        if int(interval) != interval or interval < 1:
            raise ValueError(f"interval must be a positive integer, got {interval}")
        self.weight = float(weight)
        self.interval = int(interval)

    def applies_at(self, d_step: int) -> bool:
        """Whether the penalty runs on D step number ``d_step`` (counted from 0)."""
        return d_step % self.interval == 0

    def weight_at(self, step: int, total_steps: int) -> float:
        """The coefficient in force at G step ``step`` (annealed regularizers override)."""
        return self.weight

    def penalty(self, batch: DiscriminatorPass) -> Tensor | None:
        """The unweighted penalty R, or None if this regularizer adds nothing to the loss."""
        return None

    def transform_d_inputs(self, discriminator, real, fake, step, total_steps):
        return real, fake

    def transform_g_input(self, fake, step, total_steps):
        return fake

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class R1Penalty(Regularizer):
    """R1 = 0.5 * E_{x~P_data} ||grad_x D(x)||^2 (Mescheder et al. 2018, eq. 9)."""

    needs_real_grad = True

    def penalty(self, batch):
        return 0.5 * grad_norm_squared(batch.real_logits, batch.real).mean()


class R2Penalty(Regularizer):
    """R2 = 0.5 * E_{x~P_G} ||grad_x D(x)||^2 (Mescheder et al. 2018, eq. 10)."""

    needs_fake_grad = True

    def penalty(self, batch):
        return 0.5 * grad_norm_squared(batch.fake_logits, batch.fake).mean()


def interpolate(real: Tensor, other: Tensor) -> Tensor:
    """x_hat = eps * real + (1 - eps) * other, eps ~ U[0, 1) per sample."""
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)
    return (eps * real + (1 - eps) * other).detach().requires_grad_(True)


class GradientPenalty(Regularizer):
    """WGAN-GP: R = E_{x_hat} (||grad D(x_hat)|| - target)^2 on random interpolates between
    real and generated samples (Gulrajani et al. 2017, Algorithm 1; lambda = 10).
    ``target=0`` gives the zero-centred penalty of Thanh-Tung et al. 2019 (``reg=gp0``)."""

    def __init__(self, weight: float = 10.0, interval: int = 1, target: float = 1.0):
        super().__init__(weight, interval)
        self.target = float(target)

    def penalty(self, batch):
        x_hat = interpolate(batch.real.detach(), batch.fake.detach())
        norms = input_gradient(batch.discriminator(x_hat), x_hat).norm(dim=1)
        return ((norms - self.target) ** 2).mean()


class DraganPenalty(Regularizer):
    """DRAGAN: R = E (||grad D(x_hat)|| - 1)^2 around real data only (Kodali et al. 2017).

    As in the authors' code: x_p = x + noise_scale * std(x) * U[0, 1), and x_hat is a random
    point between x and x_p (lambda = 10, noise_scale c = 0.5).
    """

    def __init__(self, weight: float = 10.0, interval: int = 1, noise_scale: float = 0.5):
        super().__init__(weight, interval)
        if noise_scale <= 0:
            raise ValueError(f"noise_scale must be > 0, got {noise_scale}")
        self.noise_scale = float(noise_scale)

    def penalty(self, batch):
        real = batch.real.detach()
        perturbed = real + self.noise_scale * real.std() * torch.rand_like(real)
        x_hat = interpolate(real, perturbed)
        norms = input_gradient(batch.discriminator(x_hat), x_hat).norm(dim=1)
        return ((norms - 1.0) ** 2).mean()


class AnchoredLogitPenalty(Regularizer):
    """R_LC with fixed anchors, as in the Dirac-GAN seed (after Tseng et al. 2021, eq. 3):

    R = E_x (D(x) - alpha_fake)^2 + E_z (D(G(z)) - alpha_real)^2,

    pulling real logits towards the fake anchor and fake logits towards the real one.
    """

    def __init__(
        self,
        weight: float = 0.3,
        interval: int = 1,
        alpha_real: float = 0.0,
        alpha_fake: float = 0.0,
    ):
        super().__init__(weight, interval)
        self.alpha_real = float(alpha_real)
        self.alpha_fake = float(alpha_fake)

    def penalty(self, batch):
        return ((batch.real_logits - self.alpha_fake) ** 2).mean() + (
            (batch.fake_logits - self.alpha_real) ** 2
        ).mean()


class LeCamPenalty(Regularizer):
    """LeCam regularization (Tseng et al. CVPR 2021, eq. 3, as in google/lecam-gan):

    R = E_x relu(D(x) - a_F)^2 + E_z relu(a_R - D(G(z)))^2,

    where a_R, a_F are exponential moving averages of the mean real/fake logits (decay 0.99).
    Before ``start_step`` the averages simply track the current batch means (decay 0), as in
    the authors' BigGAN code. Anchors are part of the checkpoint.
    """

    def __init__(
        self, weight: float = 0.3, interval: int = 1, decay: float = 0.99, start_step: int = 1000
    ):
        super().__init__(weight, interval)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.start_step = int(start_step)
        self.anchor_real = 0.0
        self.anchor_fake = 0.0

    def penalty(self, batch):
        decay = self.decay if batch.step >= self.start_step else 0.0
        # .item() is a host sync; the anchors must be plain floats to checkpoint them exactly.
        real_mean = batch.real_logits.detach().mean().item()
        fake_mean = batch.fake_logits.detach().mean().item()
        self.anchor_real = decay * self.anchor_real + (1 - decay) * real_mean
        self.anchor_fake = decay * self.anchor_fake + (1 - decay) * fake_mean
        return (F.relu(batch.real_logits - self.anchor_fake) ** 2).mean() + (
            F.relu(self.anchor_real - batch.fake_logits) ** 2
        ).mean()

    def state_dict(self):
        return {"anchor_real": self.anchor_real, "anchor_fake": self.anchor_fake}

    def load_state_dict(self, state):
        self.anchor_real = float(state["anchor_real"])
        self.anchor_fake = float(state["anchor_fake"])


class JSRegularizer(Regularizer):
    """The JS-regularizer of Roth et al., NIPS 2017 ("Stabilizing Training of GANs through
    Regularization", eq. 16 / their ``Discriminator_Regularizer``):

    R = 0.5 * E[ (1 - sigmoid(D(x)))^2 ||grad_x D(x)||^2 + sigmoid(D(x~))^2 ||grad_x~ D(x~)||^2 ],

    x ~ P_data, x~ ~ P_G, D(.) the logit. The paper's code adds (gamma / 2) * E[...] to the D
    loss; with R's 0.5 our weight is their gamma. With ``anneal`` the weight decays as
    gamma_t = gamma0 * decay^(t / T) over the T G steps of the run (decay 0.01 in their code).
    The current gamma depends only on the step counter, which the checkpoint holds.
    """

    needs_real_grad = True
    needs_fake_grad = True

    def __init__(
        self, weight: float = 2.0, interval: int = 1, anneal: bool = False, decay: float = 0.01
    ):
        super().__init__(weight, interval)
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        self.anneal = bool(anneal)
        self.decay = float(decay)

    def weight_at(self, step, total_steps):
        if not self.anneal:
            return self.weight
        return self.weight * self.decay ** (step / max(total_steps, 1))

    def penalty(self, batch):
        real_term = (1 - torch.sigmoid(batch.real_logits.flatten())) ** 2 * grad_norm_squared(
            batch.real_logits, batch.real
        )
        fake_term = torch.sigmoid(batch.fake_logits.flatten()) ** 2 * grad_norm_squared(
            batch.fake_logits, batch.fake
        )
        return 0.5 * (real_term + fake_term).mean()


class DirectAdversarialTraining(Regularizer):
    """Direct Adversarial Training (Li 2020, arXiv:2008.09041, the DAT-GAN SNGAN code).

    Before each D update, real and generated images are moved one step *against* the gradient
    of the gap between D's mean outputs, making them adversarial examples for D:

        x_real' = x_real - clamp(step_size * grad_x |mean D(x_real) - mean D(x_fake)|, -t, t)
        x_fake' = x_fake - clamp(step_size * grad_x |mean D(x_fake) - mean D(x_real)|, -t, t)

    (the other side's mean is a constant), and D is trained on x' only. Defaults reproduce the
    paper's SNGAN code: step_size 1, t = 1; fake images are clamped to [-1, 1] before D sees
    them, real images are not (that code clamps them only after D's forward pass; set
    ``clamp_real=true`` to clamp both). ``perturb`` picks the side(s): both, real or fake.
    DAT adds nothing to the loss, so it has no weight.
    """

    def __init__(
        self,
        step_size: float = 1.0,
        clamp: float = 1.0,
        perturb: str = "both",
        clamp_real: bool = False,
    ):
        super().__init__(weight=0.0)
        if perturb not in ("both", "real", "fake"):
            raise ValueError(f"perturb must be one of both, real, fake; got {perturb!r}")
        if step_size <= 0 or clamp <= 0:
            raise ValueError(f"step_size and clamp must be > 0, got {step_size}, {clamp}")
        self.step_size = float(step_size)
        self.clamp = float(clamp)
        self.perturb = perturb
        self.clamp_real = bool(clamp_real)

    def _step(self, x: Tensor, gap: Tensor) -> Tensor:
        (grad,) = torch.autograd.grad(gap, x)
        return (x - (self.step_size * grad).clamp(-self.clamp, self.clamp)).detach()

    def adversarial_pair(self, discriminator, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            real_in = real.detach().requires_grad_(True)
            fake_in = fake.detach().requires_grad_(True)
            real_mean = discriminator(real_in).mean()
            fake_mean = discriminator(fake_in).mean()
            new_real, new_fake = real.detach(), fake.detach()
            if self.perturb in ("both", "fake"):
                new_fake = self._step(fake_in, (fake_mean - real_mean.detach()).abs())
                new_fake = new_fake.clamp(-1, 1)
            if self.perturb in ("both", "real"):
                new_real = self._step(real_in, (real_mean - fake_mean.detach()).abs())
                if self.clamp_real:
                    new_real = new_real.clamp(-1, 1)
        return new_real, new_fake

    def transform_d_inputs(self, discriminator, real, fake, step, total_steps):
        return self.adversarial_pair(discriminator, real, fake)


class InstanceNoise(Regularizer):
    """Instance noise (Sønderby et al. 2017; compared in Mescheder et al. 2018, sec. 3.2):
    Gaussian noise of std sigma_t is added to every input D sees, in D's and in G's step.
    sigma_t falls linearly from ``std`` to 0 over ``anneal_steps`` G steps (null: constant)."""

    def __init__(self, std: float = 0.1, anneal_steps: int | None = None):
        super().__init__(weight=0.0)
        if std < 0:
            raise ValueError(f"std must be >= 0, got {std}")
        self.std = float(std)
        self.anneal_steps = anneal_steps

    def std_at(self, step: int) -> float:
        if not self.anneal_steps:
            return self.std
        return self.std * max(0.0, 1.0 - step / self.anneal_steps)

    def _noisy(self, x, step):
        sigma = self.std_at(step)
        return x + sigma * torch.randn_like(x) if sigma > 0 else x

    def transform_d_inputs(self, discriminator, real, fake, step, total_steps):
        return self._noisy(real, step), self._noisy(fake, step)

    def transform_g_input(self, fake, step, total_steps):
        return self._noisy(fake, step)
