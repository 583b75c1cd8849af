"""One training iteration: n_dis D steps (each on a fresh real batch) and one G step (on a
real batch of its own too for the relativistic losses), alternating or simultaneous, under
autocast, with gradients averaged over data-parallel ranks; the EMA of G's weights; what
happens to a step whose loss is NaN/inf.

Depends on the built parts and the collectives only; the loop (:mod:`ganx.loop`) calls it, and
so do ``ganx-dirac`` and ``scripts/bench.py``.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .augment import augmented
from .build import Parts
from .collectives import any_rank, average_gradients
from .regularizers import DiscriminatorPass
from .sampling import latents


class Diverged(RuntimeError):
    """A loss or penalty became NaN/inf."""


@dataclass
class StepSettings:
    """What every D/G step needs besides the nets: fixed for a run."""

    total: int  # G steps of the whole run (annealing schedules span it)
    latent_dim: int
    amp: str = "off"
    check: bool = True  # check losses for NaN/inf on every step (a host sync)
    scaler: torch.amp.GradScaler | None = None
    world: int = 1  # data-parallel ranks: gradients are averaged over them before each step
    latent_distribution: str = "normal"  # G's prior: normal | uniform (model.latent_distribution)
    # this iteration ends at a log flush: only then are the gradient norms taken (set by the
    # loop from the schedule before each iteration, so every rank logs the same names)
    log_step: bool = True


def draw_latents(n: int, settings: StepSettings, device: torch.device) -> torch.Tensor:
    return latents(n, settings.latent_dim, settings.latent_distribution, device=device)


def autocast(device: torch.device, amp: str):
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def first_non_finite(terms: dict[str, torch.Tensor]) -> str | None:
    """The first term whose value is NaN or inf, one host read per term (on the CPU a read is
    cheap and stacking the terms is not)."""
    return next((name for name, value in terms.items() if not math.isfinite(value.item())), None)


def first_non_finite_in_one_read(terms: dict[str, torch.Tensor]) -> str | None:
    """As :func:`first_non_finite` with one device sync for all terms (on a GPU): a NaN or inf
    anywhere makes their sum so, and only then are the terms searched for its name. None also
    where finite terms' sum overflowed."""
    if math.isfinite(torch.stack([v.float() for v in terms.values()]).sum().item()):
        return None
    return next((name for name, value in terms.items() if not torch.isfinite(value).all()), None)


def require_finite(step: int, terms: dict[str, torch.Tensor], world: int = 1) -> None:
    """Raise :class:`Diverged` naming the first non-finite term (a host sync: called only where
    a check is wanted every step, i.e. on CPU or with ``on_nonfinite=skip``). With several ranks
    the verdict is agreed first, so every rank raises (and skips or stops) together: a rank that
    skipped alone would also skip the gradient all-reduce the others wait in."""
    device = next(iter(terms.values())).device
    bad = first_non_finite(terms) if device.type == "cpu" else first_non_finite_in_one_read(terms)
    if world > 1 and any_rank(bad is not None, device) and bad is None:
        raise Diverged(f"step {step}: a loss is non-finite on another rank")
    if bad is not None:
        raise Diverged(f"step {step}: {bad} is {terms[bad].item()} (non-finite)")


def skipping(skip: bool, on_skip: Callable[[], None]):
    """A runner for :func:`training_iteration`: with ``skip`` a step raising :class:`Diverged`
    is dropped (``on_skip`` counts it) and yields no terms; otherwise the error propagates."""

    def run(step_fn, *args) -> dict:
        try:
            return step_fn(*args)
        except Diverged:
            if not skip:
                raise
            on_skip()
            return {}

    return run


def backward(loss: torch.Tensor, settings: StepSettings) -> None:
    (settings.scaler.scale(loss) if settings.scaler is not None else loss).backward()


def gradient_norm(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """The L2 norm of all of an optimiser's gradients, on the device (no host sync)."""
    grads = [
        p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None
    ]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def optimizer_step(optimizer: torch.optim.Optimizer, settings: StepSettings) -> torch.Tensor | None:
    """Average the gradients over ranks, step, and return the gradient norm as applied on log
    steps (unscaled under fp16's GradScaler, whose ``step`` then skips its own unscaling; inf
    when the scaler skips an overflowing step), None on the others."""
    if settings.world > 1:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        average_gradients(params, settings.world)
    if settings.scaler is not None:
        settings.scaler.unscale_(optimizer)
    # of .grad tensors: no autograd history to detach
    norm = gradient_norm(optimizer) if settings.log_step else None
    if settings.scaler is not None:
        settings.scaler.step(optimizer)
        settings.scaler.update()
    else:
        optimizer.step()
    return norm


def penalties_due(parts: Parts, d_step: int, phase: str) -> dict:
    """The regularizers whose penalty D pass ``phase`` adds on D step ``d_step``. A penalty with
    ``interval`` k > 1 (lazy regularisation) is due on every k-th D step; with
    ``train.lazy_regularization=separate`` (StyleGAN2's Dmain / Dreg phases,
    NVlabs/stylegan2-ada-pytorch@d72cc7d:training/training_loop.py:197-208, 271) it leaves the
    main pass for a ``lazy`` pass and optimiser step of its own, with ``folded`` it joins D's
    main pass."""
    if not parts.regularizers:
        return {}
    separate = parts.lazy_regularization == "separate"
    return {
        name: reg
        for name, reg in parts.regularizers.items()
        if reg.applies_at(d_step) and (phase == "lazy") == (separate and reg.interval > 1)
    }


def discriminator_loss(
    parts: Parts,
    real: torch.Tensor,
    fake: torch.Tensor,
    step: int,
    d_step: int,
    total: int,
    phase: str = "main",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """D's loss plus every penalty due (weighted), and the terms for logging; ``phase="lazy"``:
    the separate lazy penalties alone (StyleGAN2's Dreg, no GAN loss).

    Input transforms (DAT, instance noise) change what D's GAN loss sees, and the penalties are
    taken at those same inputs (``reg=[r1,dat]``: R1 at DAT's perturbed reals). The model's
    auxiliary loss (SSGAN's rotation, InfoMax-GAN's InfoNCE) sees the reals as drawn, as the
    DAT-GAN code computes it on the clean reals.

    With ``augment=diffaug|ada`` D is called as ``D(T(x))`` (:func:`ganx.augment.augmented`)
    everywhere here: the GAN loss, the input transforms and every penalty, which differentiate
    through T w.r.t. the un-augmented inputs, as the ADA and DiffAugment code take R1."""
    D = augmented(parts.discriminator, parts.augment)
    clean_real = real
    for reg in parts.regularizers.values():  # DAT, instance noise: change what D sees
        real, fake = reg.transform_d_inputs(D, real, fake, step, total)
    active = penalties_due(parts, d_step, phase)
    need_real_grad = any(r.needs_real_grad for r in active.values())
    need_fake_grad = any(r.needs_fake_grad for r in active.values())
    if need_real_grad or real.requires_grad:  # a fresh leaf (a plain batch already is one)
        real = real.detach().requires_grad_(need_real_grad)
    if need_fake_grad or fake.requires_grad:
        fake = fake.detach().requires_grad_(need_fake_grad)
    # penalties on D's input gradient need a double backward, which compiled graphs do not
    # support: on those steps D runs eagerly (same weights), elsewhere the compiled wrapper
    fast = augmented(parts.discriminator_fast, parts.augment)
    forward = D if need_real_grad or need_fake_grad else fast
    if parts.concat_real_fake:  # one call: fewer launches, and compiled D sees one graph
        logits = forward(torch.cat([real, fake])).float()
        real_logits, fake_logits = logits.split([len(real), len(fake)])
    else:
        real_logits, fake_logits = forward(real).float(), forward(fake).float()
    terms = {"loss/D": parts.loss.d_loss(real_logits, fake_logits)} if phase == "main" else {}
    total_loss = terms.get("loss/D", 0.0)
    batch = (
        DiscriminatorPass(D, real, fake, real_logits, fake_logits, step, total) if active else None
    )
    for name, reg in active.items():
        penalty = reg.penalty(batch)
        if penalty is None:
            continue
        terms[f"reg/{name}"] = penalty
        # lazy regularisation: every `interval`-th D step, gain `interval` (as StyleGAN2's)
        total_loss = total_loss + reg.weight_at(step, total) * reg.interval * penalty
    if phase == "lazy":
        return total_loss, terms
    if parts.aux is not None:  # SSGAN's rotation or InfoMax-GAN's InfoNCE term
        # on the un-augmented images: the auxiliary task has its own transforms (rotations)
        terms["aux/D"] = parts.aux.d_term(parts.discriminator, clean_real.detach())
        total_loss = total_loss + terms["aux/D"]
    # logged only (detached: cheaper than entering no_grad for two means)
    terms["D/real"], terms["D/fake"] = real_logits.detach().mean(), fake_logits.detach().mean()
    if parts.augment is not None:  # ADA's r_t: the sign of D on the augmented reals
        terms["augment/real_sign"] = real_logits.detach().sign().mean()
        terms.update(parts.augment.logged())
    return total_loss, terms


def discriminator_step(
    parts: Parts,
    real: torch.Tensor,
    step: int,
    d_step: int,
    settings: StepSettings,
    fake: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One D update on ``real`` and a fresh fake batch (or the given one: ``g_first``)."""
    if fake is None:
        with torch.no_grad(), autocast(parts.device, settings.amp):
            latents = draw_latents(real.shape[0], settings, parts.device)
            fake = parts.generator_fast(latents)
    with autocast(parts.device, settings.amp):
        total_loss, terms = discriminator_loss(
            parts, real, fake.float(), step, d_step, settings.total
        )
    norm = d_update(parts, total_loss, terms, step, settings)
    if norm is not None:
        terms["grad_norm/D"] = norm
    if parts.augment is not None:  # after the step: a dropped (non-finite) step tells ADA nothing
        parts.augment.observe(terms["augment/real_sign"], len(real))
    if penalties_due(parts, d_step, "lazy"):
        terms |= lazy_regularization_step(parts, real, fake, step, d_step, settings)
    return terms


def lazy_regularization_step(
    parts: Parts,
    real: torch.Tensor,
    fake: torch.Tensor,
    step: int,
    d_step: int,
    settings: StepSettings,
) -> dict[str, torch.Tensor]:
    """StyleGAN2's Dreg phase: the lazy penalties (times their interval) on the same batches, and
    an optimiser step of their own, after D's main step
    (NVlabs/stylegan2-ada-pytorch@d72cc7d:training/training_loop.py:270-292)."""
    with autocast(parts.device, settings.amp):
        total_loss, terms = discriminator_loss(
            parts, real, fake.float(), step, d_step, settings.total, phase="lazy"
        )
    if terms:  # empty when every lazy penalty declined this step (LeCam before its start)
        d_update(parts, total_loss, terms, step, settings)
    return terms


def d_update(
    parts: Parts,
    total_loss: torch.Tensor,
    terms: dict[str, torch.Tensor],
    step: int,
    settings: StepSettings,
) -> torch.Tensor | None:
    """Check the terms, back-propagate and step D's optimiser (then the loss's own after-step,
    WGAN's clipping); returns the gradient norm as applied (None: not a log step)."""
    if settings.check:
        require_finite(step, terms, settings.world)
    parts.opt_d.zero_grad(set_to_none=True)
    backward(total_loss, settings)
    norm = optimizer_step(parts.opt_d, settings)
    parts.loss.after_d_step(parts.discriminator)
    return norm


def generator_loss(
    parts: Parts,
    batch_size: int,
    step: int,
    settings: StepSettings,
    fake: torch.Tensor | None = None,
    real: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's loss (plus the model's auxiliary term) and the terms for logging, on a fresh fake
    batch or on the given one (still attached to G's graph). ``real`` is the G step's real
    batch, used only by losses with ``needs_real_in_g`` (the relativistic ones). With
    augmentation D sees T(G(z)) (and T(real)) and G's gradient flows back through T
    (DiffAugment's and ADA's ``run_D`` in ``Gmain``)."""
    G, D = parts.generator_fast, augmented(parts.discriminator_fast, parts.augment)
    if fake is None:
        fake = G(draw_latents(batch_size, settings, parts.device))
    for reg in parts.regularizers.values():
        fake = reg.transform_g_input(fake, step, settings.total)
    if parts.loss.needs_real_in_g:
        fake_logits, real_logits = relativistic_logits(parts, fake, real, step, settings)
        terms = {"loss/G": parts.loss.g_loss(fake_logits, real_logits)}
    else:
        terms = {"loss/G": parts.loss.g_loss(D(fake).float())}
    total = terms["loss/G"]
    if parts.aux is not None:
        terms["aux/G"] = parts.aux.g_term(parts.discriminator, fake)
        total = total + terms["aux/G"]
    return total, terms


def relativistic_logits(
    parts: Parts, fake: torch.Tensor, real: torch.Tensor | None, step: int, settings: StepSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """D's logits on G's fake batch and on the G step's real batch, which sees the same input
    transforms as the fakes (instance noise reaches every input D sees); one D call on both
    when ``concat_real_fake`` is on, as in D's step."""
    if real is None:
        raise ValueError(f"loss={parts.loss.name}: G's step needs a real batch (next_real)")
    real = real.detach()
    for reg in parts.regularizers.values():
        real = reg.transform_g_input(real, step, settings.total)
    D = augmented(parts.discriminator_fast, parts.augment)
    if parts.concat_real_fake:
        logits = D(torch.cat([real, fake])).float()
        real_logits, fake_logits = logits.split([len(real), len(fake)])
    else:
        fake_logits, real_logits = D(fake).float(), D(real).float()
    return fake_logits, real_logits


@contextlib.contextmanager
def frozen(params: list[torch.Tensor]):
    """``requires_grad=False`` on ``params`` meanwhile, ``True`` after (as ``D.requires_grad_``
    twice, on the list :class:`~ganx.build.Parts` keeps): G's step needs no gradients for D's
    weights."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def generator_backward(
    parts: Parts,
    batch_size: int,
    step: int,
    settings: StepSettings,
    fake: torch.Tensor | None = None,
    real: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """G's loss and gradients (stored in G's .grad); ``optimizer_step`` applies them. Split so
    that simultaneous updates can take G's gradient before D moves."""
    with frozen(parts.discriminator_params), autocast(parts.device, settings.amp):
        loss, terms = generator_loss(parts, batch_size, step, settings, fake, real)
    if settings.check:
        require_finite(step, terms, settings.world)
    parts.opt_g.zero_grad(set_to_none=True)
    backward(loss, settings)
    return terms


def training_iteration(
    parts: Parts,
    settings: StepSettings,
    step: int,
    d_steps: int,
    n_dis: int,
    updates: str | bool,
    next_real,
    run=None,
):
    """One iteration = n_dis D steps (each on a fresh real batch from ``next_real()``) and one
    G step (with a fresh real batch of its own when the loss is relativistic). ``updates``:
    ``alternating`` (G's gradient is taken after D moved), ``simultaneous`` (before, so both
    players respond to the same state; ``True`` means this, ``False`` alternating) or
    ``g_first`` (:func:`g_first_iteration`). ``run(step_fn, *args)`` wraps each step (see
    :func:`skipping`). Returns the logged terms and the new D step count."""
    if isinstance(updates, bool):
        updates = "simultaneous" if updates else "alternating"
    run = run or (lambda fn, *args: fn(*args))
    if updates == "g_first":
        return g_first_iteration(parts, settings, step, d_steps, next_real, run)
    batch_size = parts.stream.batch_size
    terms = []
    if updates == "simultaneous":
        g_terms = run(
            generator_backward, parts, batch_size, step, settings, None, g_real(parts, next_real)
        )
    for _ in range(n_dis):
        terms.append(run(discriminator_step, parts, next_real(), step, d_steps, settings))
        d_steps += 1
    if updates != "simultaneous":
        g_terms = run(
            generator_backward, parts, batch_size, step, settings, None, g_real(parts, next_real)
        )
    if g_terms:  # empty when a non-finite G step was skipped (on every rank alike)
        norm = optimizer_step(parts.opt_g, settings)
        if norm is not None:
            g_terms["grad_norm/G"] = norm
        terms.append(g_terms)
    return terms, d_steps


def g_first_iteration(
    parts: Parts, settings: StepSettings, step: int, d_steps: int, next_real, run
):
    """PyTorch-GAN's order
    (eriklindernoren/PyTorch-GAN@36d3c77:implementations/gan/gan.py:131-161): G's step first on a
    fresh fake batch, then one D step on a real batch and that same fake batch
    (``gen_imgs.detach()``), drawn before G moved; G runs forward once per iteration."""
    batch_size = parts.stream.batch_size
    with autocast(parts.device, settings.amp):
        fake = parts.generator_fast(draw_latents(batch_size, settings, parts.device))
    terms = []
    g_terms = run(
        generator_backward, parts, batch_size, step, settings, fake, g_real(parts, next_real)
    )
    if g_terms:
        optimizer_step(parts.opt_g, settings)
    real = next_real()
    d_fake = fake.detach().float()
    terms.append(run(discriminator_step, parts, real, step, d_steps, settings, d_fake))
    if g_terms:
        terms.append(g_terms)
    return terms, d_steps + 1


def g_real(parts: Parts, next_real) -> torch.Tensor | None:
    """The G step's own real batch, drawn from the data stream (so the checkpoint's data
    position counts it) only for losses that compare with reals in G's loss; None otherwise,
    so every other loss draws exactly the batches it always did."""
    return next_real() if parts.loss.needs_real_in_g else None


def real_batches(parts: Parts, channels_last: bool) -> Callable[[], torch.Tensor]:
    """``next_real`` for :func:`training_iteration`: the next batch of the data stream."""

    def next_real() -> torch.Tensor:
        real = parts.stream.next()
        if channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        return real

    return next_real


# --- the EMA of G's weights ----------------------------------------------------------------------


def make_ema(generator: nn.Module) -> nn.Module:
    ema = copy.deepcopy(generator).eval()
    ema.requires_grad_(False)
    return ema


def ema_decay(decay: float, step: int, start: int) -> float:
    """The decay in force after G step ``step``: 0 (copy G) before ``start``, then warmed up
    as min(decay, (1 + t) / (10 + t)) with t counted from ``start`` (the num_updates rule of
    TensorFlow's ExponentialMovingAverage), so early averages are not dominated by G's random
    initial weights (with a fixed 0.999 the EMA of a 1,000-step run is still half init)."""
    if step < start:
        return 0.0
    t = step - start
    return min(decay, (1.0 + t) / (10.0 + t))


@torch.no_grad()
def update_ema(ema: nn.Module, generator: nn.Module, decay: float) -> None:
    """p_ema <- decay * p_ema + (1 - decay) * p; buffers (BatchNorm statistics) are copied."""
    for p_ema, p in zip(ema.parameters(), generator.parameters(), strict=True):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), generator.buffers(), strict=True):
        b_ema.copy_(b)
