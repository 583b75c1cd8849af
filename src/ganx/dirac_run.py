"""One Dirac-GAN run by plain gradient descent: the step ``ganx-dirac`` and its explorer page
share (:func:`descend`), its parts (:func:`dirac_parts`) and its settings read once from the
composed config into plain values (:func:`read_plan`).

Mescheder et al.'s own Dirac-GAN simulation takes explicit steps, ``theta += h_g * v1;
psi += h_d * v2`` (LMescheder/GAN_stability@d9bd7a9:notebooks/diracgan/simulate.py:16-19,
simultaneous; :27-52 alternating, G before D there); the Dirac-GAN code steps
``torch.optim.SGD`` with ``momentum=0.`` (ChristophReich1996/Dirac-GAN@a41cebe:main.py:180-185).
``ganx-dirac`` composes that SGD, whose update of a parameter without momentum or weight decay
is ``p.add_(grad, alpha=-lr)`` (``torch.optim.sgd._single_tensor_sgd``, torch 2.14);
:func:`descend` applies exactly that update itself, without an optimizer: no ``zero_grad``, no
step hooks or profiler records, no gradient norms, one ``torch.autograd.grad`` call per
gradient taken. With simultaneous updates both players' gradients are taken at the same point,
so they come from one call over both losses (G's loss sees D frozen, D's loss a detached fake:
the two gradients do not mix).

The losses and penalties are ganx's own: ``parts.loss.d_loss``/``g_loss`` (G's through
:func:`ganx.step.generator_loss`), each regularizer's input transforms and ``penalty`` on a
:class:`~ganx.regularizers.DiscriminatorPass`, weighted by ``weight_at``, as
:func:`ganx.step.discriminator_loss` adds them; the random draws (latents, instance noise,
interpolation points) come in the same order as :func:`ganx.step.training_iteration` takes
them. ``tests/test_dirac_run.py`` checks that every cell of the study follows the same
trajectory, bit for bit, as ``training_iteration`` with the composed SGD optimizers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from .build import (
    Parts,
    build_data,
    build_loss,
    build_nets,
    build_regularizers,
    build_stream,
    training_data,
)
from .errors import ConfigError
from .regularizers import DiscriminatorPass
from .step import StepSettings, draw_latents, frozen, generator_loss

# what a plain gradient descent step leaves at torch.optim.SGD's defaults
PLAIN_SGD = {"momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False}


@dataclass(frozen=True)
class DiracPlan:
    """A run's settings as plain values, read once from its config (no lookups per step)."""

    steps: int
    n_dis: int
    simultaneous: bool
    lr_g: float
    lr_d: float
    latent_dim: int


def read_plan(run_cfg: DictConfig) -> DiracPlan:
    """The plan of ``run_cfg`` (a ``ganx-dirac`` cell config); one line naming the key when the
    config asks for something a plain gradient descent step does not do."""
    for player in ("g", "d"):
        node = run_cfg.optim[player]
        if node._target_ != "torch.optim.SGD":
            raise ConfigError(f"optim.{player}._target_={node._target_}: the Dirac-GAN uses SGD")
        for key, plain in PLAIN_SGD.items():
            if node.get(key, plain) != plain:
                raise ConfigError(f"optim.{player}.{key}={node[key]}: plain SGD has {plain}")
    for name, node in run_cfg.reg.items():
        if node is not None and node.get("interval", 1) != 1:
            raise ConfigError(
                f"reg.{name}.interval={node.interval}: the Dirac-GAN penalises every step"
            )
    return DiracPlan(
        steps=int(run_cfg.train.steps),
        n_dis=int(run_cfg.train.n_dis),
        simultaneous=run_cfg.train.updates == "simultaneous",
        lr_g=float(run_cfg.optim.g.lr),
        lr_d=float(run_cfg.optim.d.lr),
        latent_dim=int(run_cfg.model.latent_dim),
    )


def dirac_parts(run_cfg: DictConfig) -> Parts:
    """The data, nets, loss and regularizers of ``run_cfg`` by the builders of
    :func:`ganx.build.build_all`, on the CPU, without optimizers (:func:`descend` applies the
    updates; constructing a torch optimizer first imports torch._dynamo, seconds per
    process)."""
    device = torch.device("cpu")
    source = build_data(run_cfg)
    generator, discriminator = build_nets(run_cfg)
    parts = Parts(
        device,
        generator,
        discriminator,
        build_loss(run_cfg),
        build_regularizers(run_cfg),
        None,  # no optimizers: see descend
        None,
        source,
        build_stream(run_cfg, training_data(run_cfg, source), device),
    )
    for reg in parts.regularizers.values():  # as build_all: what a regularizer leaves to the run
        if hasattr(reg, "configure"):
            reg.configure(source.value_range, False)
    return parts


def discriminator_loss(parts: Parts, real, fake, step: int, total: int) -> torch.Tensor:
    """D's loss plus every penalty (weighted), as :func:`ganx.step.discriminator_loss` adds
    them for a D without augmentation or auxiliary loss whose penalties all run every step."""
    D = parts.discriminator
    regs = parts.regularizers.values()
    for reg in regs:  # instance noise: changes what D sees
        real, fake = reg.transform_d_inputs(D, real, fake, step, total)
    need_real_grad = any(r.needs_real_grad for r in regs)
    need_fake_grad = any(r.needs_fake_grad for r in regs)
    if need_real_grad or real.requires_grad:  # a fresh leaf
        real = real.detach().requires_grad_(need_real_grad)
    if need_fake_grad or fake.requires_grad:
        fake = fake.detach().requires_grad_(need_fake_grad)
    real_logits, fake_logits = D(real), D(fake)
    total_loss = parts.loss.d_loss(real_logits, fake_logits)
    batch = DiscriminatorPass(D, real, fake, real_logits, fake_logits, step, total)
    for reg in regs:
        penalty = reg.penalty(batch)
        if penalty is not None:
            total_loss = total_loss + reg.weight_at(step, total) * reg.interval * penalty
    return total_loss


def g_loss(parts: Parts, settings: StepSettings, step: int) -> torch.Tensor:
    """G's loss on a fresh fake batch, D frozen (its graph holds no path to psi)."""
    batch_size = parts.stream.batch_size
    real = parts.stream.next() if parts.loss.needs_real_in_g else None  # relativistic
    with frozen(parts.discriminator_params):
        loss, _ = generator_loss(parts, batch_size, step, settings, None, real)
    return loss


def d_loss(parts: Parts, settings: StepSettings, step: int) -> torch.Tensor:
    """D's loss on the next real batch and a fresh fake batch (drawn without a graph)."""
    real = parts.stream.next()
    with torch.no_grad():
        fake = parts.generator(draw_latents(len(real), settings, parts.device))
    return discriminator_loss(parts, real, fake, step, settings.total)


def descend(parts: Parts, plan: DiracPlan, start: tuple[float, float]) -> torch.Tensor:
    """The trajectory (steps + 1, 2) of (theta, psi) from ``start``: each iteration ``n_dis``
    D steps and one G step, G's gradient taken before D moves (simultaneous) or after."""
    theta, psi = parts.generator.theta, parts.discriminator.psi
    settings = StepSettings(plan.steps, plan.latent_dim, check=False, log_step=False)
    with torch.no_grad():
        theta.fill_(start[0])
        psi.fill_(start[1])
    points = [torch.cat([theta, psi]).detach()]
    for step in range(plan.steps):
        pending = g_loss(parts, settings, step) if plan.simultaneous else None
        for _ in range(plan.n_dis):
            loss = d_loss(parts, settings, step)
            if pending is not None:  # both gradients at the same point, in one call
                g_grad, d_grad = torch.autograd.grad((pending, loss), (theta, psi))
                pending = None
            else:
                (d_grad,) = torch.autograd.grad(loss, psi)
            with torch.no_grad():
                psi.add_(d_grad, alpha=-plan.lr_d)
            parts.loss.after_d_step(parts.discriminator)  # WGAN's clipping, if configured
        if not plan.simultaneous:
            pending = g_loss(parts, settings, step)
        if pending is not None:  # alternating (or no D step)
            (g_grad,) = torch.autograd.grad(pending, theta)
        with torch.no_grad():
            theta.add_(g_grad, alpha=-plan.lr_g)
            points.append(torch.cat([theta, psi]))
    return torch.stack(points)
