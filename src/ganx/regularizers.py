"""Discriminator regularizers: gradient penalties, logit anchors and input transforms.

Weight convention (one for all): every regularizer adds ``weight * R`` to D's loss, where ``R``
is the penalty exactly as its paper writes it *without* the paper's coefficient, and ``weight``
is that coefficient. So:

- R1/R2 (Mescheder et al. 2018): R = 0.5 * E||grad D||^2 and weight = the paper's gamma.
  GAN_stability's ``reg_param`` multiplies E||grad||^2 directly: weight = 2 * reg_param.
  StyleGAN2's ``r1_gamma`` already means ``gamma / 2 * E||grad||^2``: weight = r1_gamma.
  R3GAN's gamma (``gamma / 2 * (E||grad_real||^2 + E||grad_fake||^2)``): r1 and r2 weight = gamma.
- GP/DRAGAN (Gulrajani et al. 2017, Kodali et al. 2017): R = E(||grad|| - k)^2, weight = lambda.
- JS (Roth et al. 2017): R = 0.5 * E[...], weight = gamma (their code adds gamma/2 * reg).
- R_LC/LeCam (Tseng et al. 2021): R as in the paper, weight = lambda.

Lazy regularisation (Karras et al. 2020, StyleGAN2 sec. B): with ``interval=k`` a penalty is
applied on every k-th D step only, multiplied by k so that its average strength is unchanged.

Input transforms (DAT, instance noise) act on D's inputs before the D loss; they add nothing to
the loss (no weight) and are wired through ``transform_d_inputs``/``transform_g_input``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import schema
from .schema import SettingError


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
    """Base class. Subclasses set the flags they need and override ``penalty`` or a transform.
    Each checks its own settings in ``__init__`` (:mod:`ganx.schema`: the builder names them
    under ``reg.<name>.``); nothing else does."""

    needs_real_grad = False  # D step must run on real inputs with requires_grad
    needs_fake_grad = False
    # what the method is, read from the config's _target_ before anything is built (ganx.methods)
    penalises_input_gradient = False  # differentiates D's output w.r.t. its input, per sample
    bounds_slope = False  # constrains D's slope: an unclipped WGAN critic is then constrained
    needs_sigmoid_loss = False  # its weights read D's output as the logit of P(real)
    zero_centred_on = None  # "real" (R1) or "fake" (R2): R3GAN trains RpGAN with both
    on_interpolates = False  # penalises between real and fake (WGAN-GP, Thanh-Tung et al.)

    def __init__(self, weight: float = 1.0, interval: int = 1):
        schema.non_negative("weight", weight)
        schema.positive("interval", interval, integer=True)
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

    def activity(self, step: int, total_steps: int) -> dict[str, float]:
        """What this regularizer is doing now, for tensorboard (``reg/<name>/<key>``): input
        transforms add no loss term, so this is where their effect shows."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def cosine_decay(start: float, end: float, step: int, steps: int) -> float:
    """start -> end along half a cosine over ``steps``, then ``end``: R3GAN's
    ``cosine_decay_with_warmup`` without warm-up
    (brownvc/R3GAN@19a7ddf:training/training_loop.py:29-38: decay = 0.5 (1 + cos(pi n / N)), value
    = start + (1 - decay) (end - start), ``end`` once n > N; they count n in images, ganx in G
    steps)."""
    progress = min(step / steps, 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


class ZeroCenteredPenalty(Regularizer):
    """R1/R2's weight and its schedule. ``schedule: constant`` (default) keeps ``weight``;
    ``cosine`` decays it to ``weight_end`` over ``schedule_steps`` G steps (null: the whole
    run, ``train.steps``) as R3GAN decays its gamma (Huang et al. 2024; their CIFAR-10 preset:
    0.05 -> 0.005 over 2e7 images, brownvc/R3GAN@19a7ddf:train.py:195, ``gamma_scheduler``), then
    keeps ``weight_end``.
    The weight depends only on the step counter, which the checkpoint holds."""

    SCHEDULES = ("constant", "cosine")

    def __init__(
        self,
        weight: float = 10.0,
        interval: int = 1,
        schedule: str = "constant",
        weight_end: float | None = None,
        schedule_steps: int | None = None,
    ):
        super().__init__(weight, interval)
        schema.choice("schedule", schedule, self.SCHEDULES)
        if weight_end is not None:
            schema.non_negative("weight_end", weight_end)
        schema.optional_positive("schedule_steps", schedule_steps)
        if schedule == "cosine" and weight_end is None:
            raise SettingError(
                "schedule",
                schedule,
                " needs {prefix}weight_end (the weight it decays to), "
                "e.g. {prefix}weight_end=0.005",
                shown=schedule,
            )
        for name, value in (("weight_end", weight_end), ("schedule_steps", schedule_steps)):
            if schedule == "constant" and value is not None:
                raise SettingError(
                    name,
                    value,
                    " has no effect with {prefix}schedule=constant; set {prefix}schedule=cosine "
                    "or drop it",
                )
        self.schedule = schedule
        self.weight_end = None if weight_end is None else float(weight_end)
        self.schedule_steps = schedule_steps

    def weight_at(self, step, total_steps):
        if self.schedule == "constant":
            return self.weight
        steps = self.schedule_steps or max(total_steps, 1)
        return cosine_decay(self.weight, self.weight_end, step, steps)


class R1Penalty(ZeroCenteredPenalty):
    """R1 = 0.5 * E_{x~P_data} ||grad_x D(x)||^2 (Mescheder et al. 2018, eq. 9).

    R3GAN adds (gamma / 2) * (R1 + R2) with R = E||grad||^2
    (brownvc/R3GAN@19a7ddf:R3GAN/Trainer.py:41, ``AccumulateDiscriminatorGradients``;
    ``ZeroCenteredGradientPenalty`` sums the squared gradient over C, H, W, :10-12): its gamma is
    this weight, for r1 and r2 alike."""

    needs_real_grad = True
    penalises_input_gradient = bounds_slope = True
    zero_centred_on = "real"

    def penalty(self, batch):
        return 0.5 * grad_norm_squared(batch.real_logits, batch.real).mean()


class R2Penalty(ZeroCenteredPenalty):
    """R2 = 0.5 * E_{x~P_G} ||grad_x D(x)||^2 (Mescheder et al. 2018, eq. 10)."""

    needs_fake_grad = True
    penalises_input_gradient = bounds_slope = True
    zero_centred_on = "fake"

    def penalty(self, batch):
        return 0.5 * grad_norm_squared(batch.fake_logits, batch.fake).mean()


def interpolate(real: Tensor, other: Tensor) -> Tensor:
    """x_hat = eps * real + (1 - eps) * other, eps ~ U[0, 1) per sample."""
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)
    return (eps * real + (1 - eps) * other).detach().requires_grad_(True)


class GradientPenalty(Regularizer):
    """WGAN-GP: R = E_{x_hat} (||grad D(x_hat)|| - target)^2 on random interpolates between
    real and generated samples (Gulrajani et al. 2017, Algorithm 1; lambda = 10).

    ``target=0`` gives the zero-centred penalty of Thanh-Tung et al. 2019 (``reg=gp0``).
    ``output`` says whose gradient is penalised: ``logit`` (D's raw output, WGAN-GP's critic)
    or ``sigmoid`` (sigmoid(D(x_hat)) = D's probability). Thanh-Tung et al.'s code penalises the
    probability's gradient for the GAN loss, grad sigmoid(l) = sigmoid'(l) grad l: a penalty that
    fades as D saturates; its WGAN runs use the ``Critic`` (no sigmoid): ``output=logit``. Their
    image script (MNIST / StackedMNIST): ``Discriminator`` ends in ``nn.Sigmoid``
    (htt210/GeneralizationAndStabilityInGANs@ed969b4:GradientPenaltiesGANImage.py:45),
    ``cal_gradpen`` differentiates that output with centre 0 (:79-97), LAMBDA 500 (:376,
    ``reg=gp0``); their 2-D script the same
    (htt210/GeneralizationAndStabilityInGANs@ed969b4:GradientPenaltiesGAN.py:59, :99-117) with
    LAMBDA 10 (:423, ``reg=gp0_2d``). WGAN-GP's lambda 10:
    igul222/improved_wgan_training@fa66c57:gan_mnist.py:26.
    """

    OUTPUTS = ("logit", "sigmoid")
    penalises_input_gradient = bounds_slope = on_interpolates = True

    def __init__(
        self, weight: float = 10.0, interval: int = 1, target: float = 1.0, output: str = "logit"
    ):
        super().__init__(weight, interval)
        schema.non_negative("target", target)
        schema.choice("output", output, self.OUTPUTS)
        self.target = float(target)
        self.output = output

    def penalty(self, batch):
        x_hat = interpolate(batch.real.detach(), batch.fake.detach())
        out = batch.discriminator(x_hat)
        if self.output == "sigmoid":
            out = torch.sigmoid(out)
        norms = input_gradient(out, x_hat).norm(dim=1)
        return ((norms - self.target) ** 2).mean()


class DraganPenalty(Regularizer):
    """DRAGAN: R = E (||grad D(x_hat)|| - 1)^2 around real data only (Kodali et al. 2017).

    As in the authors' code: x_p = x + noise_scale * std(x) * U[0, 1), and x_hat is a random
    point between x and x_p (lambda = 10, noise_scale c = 0.5).
    """

    penalises_input_gradient = bounds_slope = True

    def __init__(self, weight: float = 10.0, interval: int = 1, noise_scale: float = 0.5):
        super().__init__(weight, interval)
        schema.positive("noise_scale", noise_scale)
        self.noise_scale = float(noise_scale)

    def penalty(self, batch):
        real = batch.real.detach()
        perturbed = real + self.noise_scale * real.std() * torch.rand_like(real)
        x_hat = interpolate(real, perturbed)
        norms = input_gradient(batch.discriminator(x_hat), x_hat).norm(dim=1)
        return ((norms - 1.0) ** 2).mean()


class AnchoredLogitPenalty(Regularizer):
    """R_LC with fixed anchors, as in the Dirac-GAN code (its README table "R_LC regularization";
    ChristophReich1996/Dirac-GAN@a41cebe:dirac_gan/config.py:12-14: ``rlc_af`` 1.0, ``rlc_ar``
    1.0, ``rlc_w`` 0.15), after Tseng et al. 2021, eq. 3:

    R = E_x (D(x) - alpha_fake)^2 + E_z (D(G(z)) - alpha_real)^2,   weight 0.15,

    pulling real logits towards the fake anchor and fake logits towards the real one. The
    Dirac-GAN seed's README is that of the commits decb828 to a41cebe, which all set 0.15; 0.2
    is the value of the older 9fd4dcc and cd73b7c. LeCam's moving anchors are ``reg=lecam``.
    """

    def __init__(
        self,
        weight: float = 0.15,
        interval: int = 1,
        alpha_real: float = 1.0,
        alpha_fake: float = 1.0,
    ):
        super().__init__(weight, interval)
        for name, value in (("alpha_real", alpha_real), ("alpha_fake", alpha_fake)):
            if not schema.is_number(value):
                raise SettingError(name, value, ": must be a finite number")
        self.alpha_real = float(alpha_real)
        self.alpha_fake = float(alpha_fake)

    def penalty(self, batch):
        return ((batch.real_logits - self.alpha_fake) ** 2).mean() + (
            (batch.fake_logits - self.alpha_real) ** 2
        ).mean()


class LeCamPenalty(Regularizer):
    """LeCam regularization (Tseng et al. CVPR 2021, eq. 3), as google/lecam-gan runs it:

    R = E_x relu(D(x) - a_F)^2 + E_z relu(a_R - D(G(z)))^2,

    a_R, a_F exponential moving averages of the mean real/fake logits, updated on every D step
    before the penalty (google/lecam-gan@f9af948:biggan_cifar/losses.py:57-61, ``loss_hinge_dis``).
    Defaults = their BigGAN code: ``ema_losses`` decay 0.9, and before ``start_itr`` the
    averages just copy the batch means (google/lecam-gan@f9af948:third_party/utils.py:637-661);
    ``start_itr=1000`` (google/lecam-gan@f9af948:biggan_cifar/train.py:28); the penalty is added
    only when ``itr > start_itr`` (google/lecam-gan@f9af948:third_party/train_fns.py:59); lambda 0.3
    (google/lecam-gan@f9af948:biggan_cifar/scripts/lc-biggan-cifar10.sh:16, ``--LC 0.3``). Their
    ``itr`` starts at 0 for the first iteration and grows by one after each
    (google/lecam-gan@f9af948:third_party/run_train.py:99 and :232), as ganx's G step does: with
    ``start_step`` = their ``start_itr``, the averages decay from G step ``start_step`` on and the
    penalty applies from G step ``start_step + 1`` on, as theirs.

    Their StyleGAN2 code (google/lecam-gan@f9af948:stylegan2/lecam_loss.py:51-60) differs: decay
    0.99, zero-debiased (``assign_moving_average(..., zero_debias=True)``), averages and penalty
    from the first step: ``reg.lecam.decay=0.99 reg.lecam.start_step=null
    reg.lecam.zero_debias=true`` (``null``: no warm-up). Anchors (and the debiasing count) are part
    of the checkpoint.
    """

    def __init__(
        self,
        weight: float = 0.3,
        interval: int = 1,
        decay: float = 0.9,
        start_step: int | None = 1000,
        zero_debias: bool = False,
    ):
        super().__init__(weight, interval)
        schema.in_interval("decay", decay, "[0, 1)")
        if start_step is not None:
            schema.non_negative("start_step", start_step, integer=True)
        schema.flag("zero_debias", zero_debias)
        self.decay = float(decay)
        self.start_step = None if start_step is None else int(start_step)
        self.zero_debias = bool(zero_debias)
        self.anchor_real = 0.0
        self.anchor_fake = 0.0
        self.updates = 0  # EMA updates with decay in force (zero-debiasing divides by 1 - d^n)

    def _update(self, name: str, value: float, decay: float) -> None:
        biased = decay * getattr(self, name) + (1 - decay) * value
        setattr(self, name, biased)

    def anchors(self) -> tuple[float, float]:
        """(a_R, a_F) as the penalty uses them (debiased when ``zero_debias``)."""
        if not self.zero_debias or self.updates == 0:
            return self.anchor_real, self.anchor_fake
        correction = 1.0 - self.decay**self.updates
        return self.anchor_real / correction, self.anchor_fake / correction

    def penalty(self, batch):
        warm = self.start_step is None or batch.step >= self.start_step  # utils.py:648
        decay = self.decay if warm else 0.0
        if self.zero_debias and decay > 0:
            if self.updates == 0:  # debiasing divides by 1 - d^n: the average must start at 0,
                self.anchor_real = self.anchor_fake = 0.0  # not at a warm-up's batch means
            self.updates += 1
        # .item() is a host sync; the anchors must be plain floats to checkpoint them exactly.
        self._update("anchor_real", batch.real_logits.detach().mean().item(), decay)
        self._update("anchor_fake", batch.fake_logits.detach().mean().item(), decay)
        if self.start_step is not None and batch.step <= self.start_step:
            return None  # train_fns.py:59: the penalty only when itr > start_itr
        anchor_real, anchor_fake = self.anchors()
        return (F.relu(batch.real_logits - anchor_fake) ** 2).mean() + (
            F.relu(anchor_real - batch.fake_logits) ** 2
        ).mean()

    def activity(self, step, total_steps):
        anchor_real, anchor_fake = self.anchors()
        return {"anchor_real": anchor_real, "anchor_fake": anchor_fake}

    def state_dict(self):
        return {
            "anchor_real": self.anchor_real,
            "anchor_fake": self.anchor_fake,
            "updates": self.updates,
        }

    def load_state_dict(self, state):
        self.anchor_real = float(state["anchor_real"])
        self.anchor_fake = float(state["anchor_fake"])
        self.updates = int(state.get("updates", 0))


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
    penalises_input_gradient = needs_sigmoid_loss = True

    def __init__(
        self, weight: float = 2.0, interval: int = 1, anneal: bool = False, decay: float = 0.01
    ):
        super().__init__(weight, interval)
        schema.flag("anneal", anneal)
        schema.in_interval("decay", decay, "(0, 1]")
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
    """Direct Adversarial Training (Li 2020, arXiv:2008.09041; the ``advtrain_step`` of the
    DAT-GAN code, iceli1007/DAT-GAN, README "DAT for discriminator (SNGAN)").

    Before each D update, real and generated images are moved one step *against* the gradient
    of the gap between D's mean outputs, making them adversarial examples for D:

        x_real' = x_real - clamp(step_size * grad_x |mean D(x_real) - mean D(x_fake)|, -t, t)
        x_fake' = x_fake - clamp(step_size * grad_x |mean D(x_fake) - mean D(x_real)|, -t, t)

    (the other side's mean is a constant), and D's GAN loss is computed on x' only. Defaults
    reproduce that code: step_size 1, t = 1; generated samples are clamped to the data range
    before D sees them; real ones are not (the SNGAN code clamps them only after D's forward
    pass), except for SSGAN/InfoMax-GAN, whose DAT code clamps reals too and computes the
    rotation / InfoNCE loss on the clean reals (``clamp_real: auto`` = clamp when the model has
    an auxiliary loss; the loop hands the auxiliary loss the unperturbed batch).

    ``clamp_range`` null = the data set's value range (images [-1, 1]; for the toy mixtures and
    the Dirac the range of the stored points), set by the builder; the code's [-1, 1] assumes
    images. ``perturb`` picks the side(s): both, real or fake. DAT adds no loss term (no
    weight); a penalty combined with it (``reg=[r1,dat]``) sees the perturbed x' that D's loss
    saw. Logged: ``reg/dat/perturbation`` (mean per-sample L2 norm of the step), ``reg/dat/gap``
    (|mean D(x_real) - mean D(x_fake)| before the step).
    """

    def __init__(
        self,
        step_size: float = 1.0,
        clamp: float = 1.0,
        perturb: str = "both",
        clamp_real: bool | str = "auto",
        clamp_range: list[float] | None = None,
    ):
        super().__init__(weight=0.0)
        schema.choice("perturb", perturb, ("both", "real", "fake"))
        # the DAT-GAN code steps by the gradient clamped to [-t, t], t = 1 (iceli1007/DAT-GAN
        # @9d015d5:README.md, "DAT for discriminator (SNGAN)": ``t=1``,
        # ``fake_imgs_adv-fake_grad[0].clamp(-1*t,t)``): a step or a bound of 0 moves nothing,
        # which is no adversarial training; both are refused
        schema.positive("step_size", step_size)
        schema.positive("clamp", clamp)
        if clamp_real not in (True, False, "auto"):
            raise SettingError("clamp_real", clamp_real, "; allowed: true, false, auto")
        self.step_size = float(step_size)
        self.clamp = float(clamp)
        self.perturb = perturb
        self.clamp_real = clamp_real
        self.clamp_range = None if clamp_range is None else self._check_range(clamp_range)
        self._last: dict[str, Tensor] = {}

    @staticmethod
    def _check_range(value_range) -> tuple[float, float]:
        values = list(value_range)
        numbers = len(values) == 2 and all(schema.is_number(v) for v in values)
        if not numbers or values[0] >= values[1]:
            raise SettingError(
                "clamp_range", values, ": must be null or [low, high] with low < high"
            )
        low, high = (float(v) for v in values)
        return low, high

    def configure(self, value_range: tuple[float, float] | None, has_aux: bool) -> None:
        """Fill in what ``null``/``auto`` leave to the run: the data range and whether reals
        are clamped (the builder calls this once)."""
        if self.clamp_range is None and value_range is not None:
            self.clamp_range = self._check_range(value_range)
        if self.clamp_real == "auto":
            self.clamp_real = bool(has_aux)

    def _clamped(self, x: Tensor) -> Tensor:
        return x if self.clamp_range is None else x.clamp(*self.clamp_range)

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
                new_fake = self._clamped(new_fake)
            if self.perturb in ("both", "real"):
                new_real = self._step(real_in, (real_mean - fake_mean.detach()).abs())
                if self.clamp_real is True:
                    new_real = self._clamped(new_real)
        moved = torch.cat([(new_real - real).flatten(1), (new_fake - fake).flatten(1)])
        self._last = {
            "perturbation": moved.norm(dim=1).mean().detach(),
            "gap": (real_mean - fake_mean).abs().detach(),
        }
        return new_real, new_fake

    def transform_d_inputs(self, discriminator, real, fake, step, total_steps):
        return self.adversarial_pair(discriminator, real, fake)

    def activity(self, step, total_steps):
        return {key: value.item() for key, value in self._last.items()}


class InstanceNoise(Regularizer):
    """Instance noise (Sønderby et al. ICLR 2017, sec. 3.2 / appendix: noise on the inputs of
    D, annealed to zero during training; compared in Mescheder et al. 2018, sec. 3.2):
    Gaussian noise of std sigma_t is added to every input D sees, in D's and in G's step.

    ``anneal: linear`` (default): sigma_t = std * max(0, 1 - t / T), T = ``anneal_steps``
    G steps (null: the whole run, ``train.steps``). ``anneal: none``: constant std (what
    Mescheder et al.'s analysis of the Dirac-GAN assumes; ``ganx-dirac`` uses it). The current
    sigma is logged as ``reg/instance_noise/sigma``.
    """

    def __init__(self, std: float = 0.1, anneal: str = "linear", anneal_steps: int | None = None):
        super().__init__(weight=0.0)
        schema.non_negative("std", std)
        schema.choice("anneal", anneal, ("linear", "none"))
        schema.optional_positive("anneal_steps", anneal_steps)
        self.std = float(std)
        self.anneal = anneal
        self.anneal_steps = anneal_steps

    def std_at(self, step: int, total_steps: int) -> float:
        if self.anneal == "none":
            return self.std
        span = self.anneal_steps or max(total_steps, 1)
        return self.std * max(0.0, 1.0 - step / span)

    def _noisy(self, x, step, total_steps):
        sigma = self.std_at(step, total_steps)
        return x + sigma * torch.randn_like(x) if sigma > 0 else x

    def transform_d_inputs(self, discriminator, real, fake, step, total_steps):
        return self._noisy(real, step, total_steps), self._noisy(fake, step, total_steps)

    def transform_g_input(self, fake, step, total_steps):
        return self._noisy(fake, step, total_steps)

    def activity(self, step, total_steps):
        return {"sigma": self.std_at(step, total_steps)}
