"""Differentiable augmentation of every image D sees (``augment=diffaug`` or ``augment=ada``).

D is trained and queried through ``x -> D(T(x))`` with ``T`` a random, differentiable transform
drawn afresh for every call: on the reals and fakes of each D step, on the fakes of each G step
(G's gradient flows back through ``T``), and inside every penalty, which therefore sees the
augmented inputs and differentiates through ``T`` as the authors' code does (R1 is taken w.r.t.
the un-augmented reals fed through the augmenting ``run_D``:
NVlabs/stylegan2-ada-pytorch@d72cc7d:training/loss.py:50-56 (``run_D``) and :107-131 (the ``Dr1``
block);
mit-han-lab/data-efficient-gans@0b63395:DiffAugment-stylegan2-pytorch/training/loss.py:53-55,
``run_D``).

Every random draw comes from the augmentation's own ``torch.Generator``, seeded from the run's
seed and rank and saved in the checkpoint, so a seed fixes the augmentations and a resumed run
draws exactly what the uninterrupted one would have drawn.

- :class:`DiffAugment` (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"; mit-han-lab/data-efficient-gans@0b63395:DiffAugment_pytorch.py): policy ``color``
  (brightness +U[-0.5, 0.5), saturation x U[0, 2), contrast x U[0.5, 1.5), :22-36),
  ``translation`` (integer shifts up to int(s / 8 + 0.5) px, zero padding, :39-52), ``cutout``
  (a square of half the side zeroed, :55-69), applied to every image, every call.
- :class:`AdaptiveAugment` (Karras et al. 2020, "Training Generative Adversarial Networks with
  Limited Data"): each transform applied to each image with probability ``p``
  (NVlabs/stylegan2-ada-pytorch@d72cc7d:training/augment.py:181, ``AugmentPipe.forward``), ``p``
  steered by the sign of D's real logits
  (NVlabs/stylegan2-ada-pytorch@d72cc7d:training/training_loop.py:311-315, "Execute ADA heuristic").
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import schema


class Augment:
    """The interface the training step uses; subclasses draw from ``self.generator``."""

    name = "augment"

    def __init__(self):
        self.generator: torch.Generator | None = None

    def bind(self, device: torch.device, seed: int) -> None:
        """Create the augmentation's own random stream on ``device`` (before the first call)."""
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def uniform(self, *shape: int, device: torch.device) -> Tensor:
        return torch.rand(*shape, generator=self.generator, device=device)

    def normal(self, *shape: int, device: torch.device) -> Tensor:
        return torch.randn(*shape, generator=self.generator, device=device)

    def integers(self, low: int, high: int, n: int, device: torch.device) -> Tensor:
        """``n`` integers uniform in [low, high]."""
        return torch.randint(low, high + 1, (n,), generator=self.generator, device=device)

    def __call__(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def observe(self, real_sign_mean: Tensor, count: int) -> None:
        """What one D step's real logits said (ADA's controller reads it); others ignore it."""

    def logged(self) -> dict[str, Tensor]:
        return {}

    def state_dict(self) -> dict:
        return {"rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["rng"])


# --- shared geometric helpers ---------------------------------------------------------------


def shifted_rows(images: Tensor, shift: Tensor, dim: int, reflect: bool) -> Tensor:
    """Each image moved by its own integer ``shift`` along ``dim`` (2: rows, 3: columns):
    out[i] = in[i - shift]. Outside the image: 0 (DiffAugment) or the mirror image
    (``reflect``, as ADA pads). An index gather: differentiable, and linear in the images, so
    penalties may differentiate through it twice."""
    size = images.shape[dim]
    index = torch.arange(size, device=images.device).view(1, size) - shift.view(-1, 1)
    if reflect:
        period = max(2 * (size - 1), 1)
        index = index.remainder(period)
        index = torch.where(index >= size, period - index, index)
        valid = None
    else:
        valid = (index >= 0) & (index < size)
        index = index.clamp(0, size - 1)
    view = [-1, 1, 1, 1]
    view[dim] = size
    expand = list(images.shape)
    out = images.gather(dim, index.view(view).expand(expand))
    if valid is not None:
        out = out * valid.view(view).to(out.dtype)
    return out


def scaling_matrix(scale: Tensor, size: int) -> Tensor:
    """Per-image (B, size, size) bilinear resampling matrices that zoom by ``scale`` about the
    image centre, mirrored at the border: row i of the output reads the input at
    c + (i - c) / scale. Applied separably (rows, then columns) an isotropic scaling is two
    batched matrix products, linear in the image (so R1 can differentiate through it twice;
    ``grid_sample``'s backward has no derivative of its own)."""
    centre = (size - 1) / 2
    out_pos = torch.arange(size, device=scale.device, dtype=scale.dtype)
    src = centre + (out_pos.view(1, -1) - centre) / scale.view(-1, 1)  # (B, size)
    period = max(2 * (size - 1), 1)
    src = src.remainder(period)
    src = torch.where(src > size - 1, period - src, src)
    low = src.floor().clamp(0, size - 1)
    frac = src - low
    high = (low + 1).clamp(max=size - 1)
    matrix = torch.zeros(scale.shape[0], size, size, device=scale.device, dtype=scale.dtype)
    matrix.scatter_add_(2, low.long().unsqueeze(2), (1 - frac).unsqueeze(2))
    matrix.scatter_add_(2, high.long().unsqueeze(2), frac.unsqueeze(2))
    return matrix


def per_image(flags: Tensor, changed: Tensor, images: Tensor) -> Tensor:
    """``changed`` where an image's flag is set, else ``images`` (gradient flows through both)."""
    return torch.where(flags.view(-1, 1, 1, 1), changed, images)


# --- DiffAugment ------------------------------------------------------------------------------

DIFFAUG_POLICIES = ("color", "translation", "cutout")


class DiffAugment(Augment):
    """DiffAugment's three policies, each transform on every image (data-efficient-gans,
    DiffAugment_pytorch.py, pinned above; the CIFAR and few-shot runs use
    ``color,translation,cutout``).
    Our own implementation of the same distributions; it draws from its own generator."""

    name = "diffaug"

    def __init__(self, policy=DIFFAUG_POLICIES, translation: float = 0.125, cutout: float = 0.5):
        super().__init__()
        policy = schema.names_from("policy", policy, DIFFAUG_POLICIES)
        schema.in_interval("translation", translation, "[0, 0.5]")
        schema.in_interval("cutout", cutout, "(0, 1]")
        self.policy, self.translation, self.cutout = policy, translation, cutout

    def __call__(self, images: Tensor) -> Tensor:
        for name in DIFFAUG_POLICIES:  # the authors' order: colour, translation, cutout
            if name in self.policy:
                images = getattr(self, f"_{name}")(images)
        return images

    def _color(self, x: Tensor) -> Tensor:
        n, dev = x.shape[0], x.device
        x = x + (self.uniform(n, 1, 1, 1, device=dev).to(x.dtype) - 0.5)  # brightness
        mean = x.mean(dim=1, keepdim=True)  # saturation (identity on one channel)
        x = (x - mean) * (2 * self.uniform(n, 1, 1, 1, device=dev).to(x.dtype)) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)  # contrast
        return (x - mean) * (self.uniform(n, 1, 1, 1, device=dev).to(x.dtype) + 0.5) + mean

    def _translation(self, x: Tensor) -> Tensor:
        n, dev = x.shape[0], x.device
        for dim in (2, 3):
            # rounded half up as the authors' code: int(s * ratio + 0.5), 4 px at 28 px
            limit = int(x.shape[dim] * self.translation + 0.5)
            x = shifted_rows(x, self.integers(-limit, limit, n, dev), dim, reflect=False)
        return x

    def _cutout(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        dev = x.device
        size_h, size_w = int(h * self.cutout + 0.5), int(w * self.cutout + 0.5)
        # the square's centre, anywhere in the image (it may stick out and be cut off)
        top = self.integers(0, h - (size_h % 2), n, dev) - size_h // 2
        left = self.integers(0, w - (size_w % 2), n, dev) - size_w // 2
        rows = torch.arange(h, device=dev).view(1, h)
        cols = torch.arange(w, device=dev).view(1, w)
        in_rows = (rows >= top.view(-1, 1)) & (rows < (top + size_h).view(-1, 1))
        in_cols = (cols >= left.view(-1, 1)) & (cols < (left + size_w).view(-1, 1))
        hole = in_rows.unsqueeze(2) & in_cols.unsqueeze(1)  # (N, H, W)
        return x * (~hole).unsqueeze(1).to(x.dtype)


# --- ADA ----------------------------------------------------------------------------------------

ADA_TRANSFORMS = ("xflip", "rotate90", "translate", "scale", "brightness", "contrast")


class AdaptiveAugment(Augment):
    """ADA (Karras et al. 2020) on small greyscale and RGB images: each listed transform is
    applied to each image independently with probability ``p`` (AugmentPipe.forward: every
    ``torch.where(rand < prob * p, ...)``), in ADA's order, with ADA's parameters:

    - ``xflip``: with probability p, a mirror image with chance 1/2;
    - ``rotate90``: with probability p, a rotation by 0, 90, 180 or 270 degrees, uniform;
    - ``translate``: with probability p, an integer shift uniform in +-1/8 of the side per axis
      (``xint_max`` 0.125), mirrored at the border as ADA pads;
    - ``scale``: with probability p, an isotropic zoom by 2^N(0, 0.2^2) (``scale_std``) about the
      centre, bilinear, mirrored at the border;
    - ``brightness``: with probability p, + N(0, 0.2^2) (``brightness_std``);
    - ``contrast``: with probability p, x 2^N(0, 0.5^2) (``contrast_std``), about 0, the middle
      of [-1, 1], as ADA's colour matrix scales.

    This is ADA's "bgc" pipeline less what does not suit 28-32 px images or greyscale: arbitrary
    rotation, anisotropic scaling and fractional translation need ADA's 2x-upsampled, wavelet-
    filtered resampling to avoid aliasing that D could learn to tell apart (and grid_sample's
    missing double backward, which ADA patches with its own op); luma flip, hue and saturation
    act on the colour of RGB images only. Every kept transform is linear in the image (index
    gathers, separable matrix products, affine colour maps), so gradients, and R1's double
    backward, pass through it exactly.

    The controller (NVlabs/stylegan2-ada-pytorch@d72cc7d:training/training_loop.py:311-315,
    "Execute ADA heuristic"; ``ada_target`` 0.6 at
    NVlabs/stylegan2-ada-pytorch@d72cc7d:train.py:233, ``ada_interval`` 4 and ``ada_kimg`` 500 at
    training_loop.py:110-111): every ``interval`` D steps, r_t = E[sign(D(augmented real))] over
    those steps, and p <- clamp(p + sign(r_t - target) * images / (kimg * 1000), 0, 1), ``images``
    the reals D saw in them (ADA: batch * interval), so p can move by 1 in ``kimg`` thousand
    images. ADA clamps at 0 only; at 1 every transform already applies to every image, and letting
    p grow past it would only delay its descent. p, the running sums and the stream are
    checkpointed.
    """

    name = "ada"

    def __init__(
        self,
        transforms=ADA_TRANSFORMS,
        target: float = 0.6,
        interval: int = 4,
        kimg: float = 500,
        p: float = 0.0,
    ):
        super().__init__()
        transforms = schema.names_from("transforms", transforms, ADA_TRANSFORMS)
        schema.in_interval("target", target, "[0, 1]")
        schema.in_interval("p", p, "[0, 1]")
        schema.positive("interval", interval, integer=True)
        schema.positive("kimg", kimg)
        self.transforms, self.target, self.interval, self.kimg = transforms, target, interval, kimg
        self.p = torch.tensor(float(p))
        self.sign_sum = torch.zeros(())  # sum of sign(D(real)) since the last adjustment
        self.seen = 0  # reals observed since the last adjustment
        self.d_steps = 0  # D steps observed since the last adjustment

    def bind(self, device: torch.device, seed: int) -> None:
        super().bind(device, seed)
        self.p, self.sign_sum = self.p.to(device), self.sign_sum.to(device)

    def __call__(self, images: Tensor) -> Tensor:
        for name in ADA_TRANSFORMS:  # ADA's order: blits, geometry, colour
            if name in self.transforms:
                chosen = self.uniform(images.shape[0], device=images.device) < self.p
                images = getattr(self, f"_{name}")(images, chosen)
        return images

    def _xflip(self, x: Tensor, chosen: Tensor) -> Tensor:
        flip = chosen & (self.uniform(x.shape[0], device=x.device) < 0.5)
        return per_image(flip, x.flip(3), x)

    def _rotate90(self, x: Tensor, chosen: Tensor) -> Tensor:
        turns = self.integers(0, 3, x.shape[0], x.device) * chosen
        for k in (1, 2, 3):
            x = per_image(turns == k, torch.rot90(x, k, dims=(2, 3)), x)
        return x

    def _translate(self, x: Tensor, chosen: Tensor) -> Tensor:
        for dim in (3, 2):
            size = x.shape[dim]
            shift = (self.uniform(x.shape[0], device=x.device) * 2 - 1) * 0.125 * size
            x = shifted_rows(x, torch.round(shift).long() * chosen, dim, reflect=True)
        return x

    def _scale(self, x: Tensor, chosen: Tensor) -> Tensor:
        scale = torch.exp2(self.normal(x.shape[0], device=x.device) * 0.2)
        scale = torch.where(chosen, scale, torch.ones_like(scale))
        rows = scaling_matrix(scale, x.shape[2]).to(x.dtype)  # (B, H, H)
        cols = scaling_matrix(scale, x.shape[3]).to(x.dtype)  # (B, W, W)
        return torch.einsum("bih,bchw,bjw->bcij", rows, x, cols)

    def _brightness(self, x: Tensor, chosen: Tensor) -> Tensor:
        shift = self.normal(x.shape[0], device=x.device) * 0.2 * chosen
        return x + shift.view(-1, 1, 1, 1).to(x.dtype)

    def _contrast(self, x: Tensor, chosen: Tensor) -> Tensor:
        factor = torch.exp2(self.normal(x.shape[0], device=x.device) * 0.5)
        factor = torch.where(chosen, factor, torch.ones_like(factor))
        return x * factor.view(-1, 1, 1, 1).to(x.dtype)

    # --- the controller ---------------------------------------------------------------------

    def observe(self, real_sign_mean: Tensor, count: int) -> None:
        """Add one D step's mean sign of the real logits; adjust p every ``interval`` D steps.
        On the device throughout (no host sync); with several ranks the sums are all-reduced
        first, so every rank moves p alike."""
        self.sign_sum = self.sign_sum + real_sign_mean.detach().float() * count
        self.seen += count
        self.d_steps += 1
        if self.d_steps % self.interval == 0:
            self.adjust()

    def adjust(self) -> None:
        import torch.distributed as dist

        sums = torch.stack([self.sign_sum, torch.tensor(float(self.seen), device=self.p.device)])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(sums)
        r_t = sums[0] / sums[1]
        step = sums[1] / (self.kimg * 1000)
        self.p = (self.p + torch.sign(r_t - self.target) * step).clamp(0.0, 1.0)
        self.sign_sum = torch.zeros_like(self.sign_sum)
        self.seen, self.d_steps = 0, 0

    def logged(self) -> dict[str, Tensor]:
        return {"augment/p": self.p}

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "p": self.p.cpu(),
            "sign_sum": self.sign_sum.cpu(),
            "seen": self.seen,
            "d_steps": self.d_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.p = state["p"].to(self.p.device)
        self.sign_sum = state["sign_sum"].to(self.sign_sum.device)
        self.seen, self.d_steps = int(state["seen"]), int(state["d_steps"])


def augmented(discriminator, augment: Augment | None):
    """D as the losses and penalties see it: ``x -> D(T(x))``, a fresh T per call."""
    if augment is None:
        return discriminator
    return lambda images: discriminator(augment(images))


def stream_seed(seed: int, rank: int) -> int:
    """The augmentation stream's seed: apart from the training RNG and from every rank's
    (:func:`ganx.rng.rank_seed`), and below 2**63, so that a resumed rank's ``stream_seed + step``
    (:meth:`ganx.state.TrainingState.create`) is still a seed torch accepts (< 2**64)."""
    return (seed * 1_000_003 + 0xA06 + 7919 * rank) % (2**63)
