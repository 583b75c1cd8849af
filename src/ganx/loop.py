"""The training loop: n_dis D steps (each on a fresh real batch) per G step, EMA of G, logging,
sample grids, checkpoints and exact resume. Reads top to bottom: helpers first, ``train`` last.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from . import checkpoint as ckpt
from .build import ConfigError, Parts, build_all, select_device
from .data import DataError
from .regularizers import DiscriminatorPass
from .validate import validate

log = logging.getLogger("ganx")


class Diverged(RuntimeError):
    """A loss or penalty became NaN/inf."""


# --- small helpers ------------------------------------------------------------------------------


class NullWriter:
    """Stands in for the tensorboard writer on ranks other than 0."""

    def add_scalar(self, *args, **kwargs):
        pass

    add_image = add_figure = add_scalar

    def close(self):
        pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


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


def draw_latents(n: int, latent_dim: int, device: torch.device) -> torch.Tensor:
    return torch.randn(n, latent_dim, device=device)


def autocast(device: torch.device, amp: str):
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def require_finite(step: int, terms: dict[str, torch.Tensor]) -> None:
    """Raise :class:`Diverged` naming the first non-finite term (a host sync: called only where
    a check is wanted every step, i.e. on CPU or with ``on_nonfinite=skip``)."""
    for name, value in terms.items():
        if not torch.isfinite(value).all():
            raise Diverged(f"step {step}: {name} is {value.item()} (non-finite)")


class Accumulator:
    """Sums scalars on the device; read once per ``log.every`` steps (one host sync)."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self, world: int = 1) -> dict[str, float]:
        """Means since the last call; with several ranks, averaged over them (every rank calls
        this at the same steps)."""
        if not self.sums:
            return {}
        names = list(self.sums)
        stacked = torch.stack([self.sums[n] for n in names])
        if world > 1:
            from .distributed import average_values

            stacked = average_values(stacked, world)
        totals = stacked.tolist()
        out = {n: t / self.counts[n] for n, t in zip(names, totals, strict=True)}
        self.sums, self.counts = {}, {}
        return out


# --- one D step and one G step ------------------------------------------------------------------


@dataclass
class StepSettings:
    """What every D/G step needs besides the nets: fixed for a run."""

    total: int  # G steps of the whole run (annealing schedules span it)
    latent_dim: int
    amp: str = "off"
    check: bool = True  # check losses for NaN/inf on every step (a host sync)
    scaler: torch.amp.GradScaler | None = None
    world: int = 1  # data-parallel ranks: gradients are averaged over them before each step


def backward(loss: torch.Tensor, settings: StepSettings) -> None:
    (settings.scaler.scale(loss) if settings.scaler is not None else loss).backward()


def optimizer_step(optimizer: torch.optim.Optimizer, settings: StepSettings) -> None:
    if settings.world > 1:
        from .distributed import average_gradients

        params = [p for group in optimizer.param_groups for p in group["params"]]
        average_gradients(params, settings.world)
    if settings.scaler is not None:
        settings.scaler.step(optimizer)
        settings.scaler.update()
    else:
        optimizer.step()


def discriminator_loss(
    parts: Parts, real: torch.Tensor, fake: torch.Tensor, step: int, d_step: int, total: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """D's loss plus every active penalty (weighted), and the terms for logging."""
    D = parts.discriminator
    for reg in parts.regularizers.values():  # DAT, instance noise: change what D sees
        real, fake = reg.transform_d_inputs(D, real, fake, step, total)
    active = {n: r for n, r in parts.regularizers.items() if r.applies_at(d_step)}
    need_real_grad = any(r.needs_real_grad for r in active.values())
    need_fake_grad = any(r.needs_fake_grad for r in active.values())
    real = real.detach().requires_grad_(need_real_grad)
    fake = fake.detach().requires_grad_(need_fake_grad)
    # penalties on D's input gradient need a double backward, which compiled graphs do not
    # support: on those steps D runs eagerly (same weights), elsewhere the compiled wrapper
    forward = D if need_real_grad or need_fake_grad else parts.discriminator_fast
    if parts.concat_real_fake:  # one call: fewer launches, and compiled D sees one graph
        logits = forward(torch.cat([real, fake])).float()
        real_logits, fake_logits = logits.split([len(real), len(fake)])
    else:
        real_logits, fake_logits = forward(real).float(), forward(fake).float()
    terms = {"loss/D": parts.loss.d_loss(real_logits, fake_logits)}
    total_loss = terms["loss/D"]
    batch = DiscriminatorPass(D, real, fake, real_logits, fake_logits, step, total)
    for name, reg in active.items():
        penalty = reg.penalty(batch)
        if penalty is None:
            continue
        terms[f"reg/{name}"] = penalty
        # lazy regularisation: every `interval`-th D step, with gain `interval`
        total_loss = total_loss + reg.weight_at(step, total) * reg.interval * penalty
    if parts.aux is not None:  # SSGAN's rotation or InfoMax-GAN's InfoNCE term
        terms["aux/D"] = parts.aux.d_term(D, real, fake)
        total_loss = total_loss + terms["aux/D"]
    terms["D/real"], terms["D/fake"] = real_logits.detach().mean(), fake_logits.detach().mean()
    return total_loss, terms


def discriminator_step(
    parts: Parts, real: torch.Tensor, step: int, d_step: int, settings: StepSettings
) -> dict[str, torch.Tensor]:
    with torch.no_grad(), autocast(parts.device, settings.amp):
        fake = parts.generator_fast(draw_latents(real.shape[0], settings.latent_dim, parts.device))
    with autocast(parts.device, settings.amp):
        total_loss, terms = discriminator_loss(
            parts, real, fake.float(), step, d_step, settings.total
        )
    if settings.check:
        require_finite(step, terms)
    parts.opt_d.zero_grad(set_to_none=True)
    backward(total_loss, settings)
    optimizer_step(parts.opt_d, settings)
    parts.loss.after_d_step(parts.discriminator)
    return terms


def generator_loss(
    parts: Parts, batch_size: int, step: int, settings: StepSettings
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's loss (plus the model's auxiliary term) and the terms for logging."""
    G, D = parts.generator_fast, parts.discriminator_fast
    fake = G(draw_latents(batch_size, settings.latent_dim, parts.device))
    for reg in parts.regularizers.values():
        fake = reg.transform_g_input(fake, step, settings.total)
    terms = {"loss/G": parts.loss.g_loss(D(fake).float())}
    total = terms["loss/G"]
    if parts.aux is not None:
        terms["aux/G"] = parts.aux.g_term(parts.discriminator, fake)
        total = total + terms["aux/G"]
    return total, terms


def generator_backward(
    parts: Parts, batch_size: int, step: int, settings: StepSettings
) -> dict[str, torch.Tensor]:
    """G's loss and gradients (stored in G's .grad); ``optimizer_step`` applies them. Split so
    that simultaneous updates can take G's gradient before D moves."""
    D = parts.discriminator
    D.requires_grad_(False)  # G's step needs no gradients for D's weights
    try:
        with autocast(parts.device, settings.amp):
            loss, terms = generator_loss(parts, batch_size, step, settings)
    finally:
        D.requires_grad_(True)
    if settings.check:
        require_finite(step, terms)
    parts.opt_g.zero_grad(set_to_none=True)
    backward(loss, settings)
    return terms


def training_iteration(
    parts: Parts,
    settings: StepSettings,
    step: int,
    d_steps: int,
    n_dis: int,
    simultaneous: bool,
    next_real,
    run=None,
):
    """One iteration = n_dis D steps (each on a fresh real batch from ``next_real()``) and one
    G step. Alternating: G's gradient is taken after D moved; simultaneous: before, so both
    players respond to the same state. ``run(step_fn, *args)`` wraps each step (skip logic).
    Returns the logged terms and the new D step count."""
    run = run or (lambda fn, *args: fn(*args))
    batch_size = parts.stream.batch_size
    terms = []
    if simultaneous:
        g_terms = run(generator_backward, parts, batch_size, step, settings)
    for _ in range(n_dis):
        terms.append(run(discriminator_step, parts, next_real(), step, d_steps, settings))
        d_steps += 1
    if not simultaneous:
        g_terms = run(generator_backward, parts, batch_size, step, settings)
    if g_terms:  # empty when a non-finite G step was skipped
        optimizer_step(parts.opt_g, settings)
        terms.append(g_terms)
    return terms, d_steps


# --- outputs: samples, metrics, checkpoints ----------------------------------------------------


@torch.no_grad()
def generate(generator: nn.Module, noise: torch.Tensor, bn_stats: str = "batch") -> torch.Tensor:
    """Samples for grids and metrics, changing no state and drawing no training RNG.

    ``bn_stats="batch"`` normalises with the statistics of this batch (train-mode BatchNorm on a
    throw-away copy): the EMA generator's averaged weights do not match the running statistics
    copied from G, and sampling with them gives grey, blurred images. ``"running"`` uses eval
    mode as is.
    """
    if bn_stats == "batch":
        probe = copy.deepcopy(generator).train()
        return probe(noise).float()
    was_training = generator.training
    generator.eval()
    images = generator(noise).float()
    generator.train(was_training)
    return images


def save_samples(images: torch.Tensor, path: Path, writer, step: int, source_name: str) -> None:
    """A PNG grid (images) or scatter plot (2-D points) in ``path`` and in tensorboard."""
    images = images.cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    if images.dim() == 4:
        from torchvision.utils import make_grid, save_image

        grid = make_grid(
            images, nrow=int(math.sqrt(len(images))), normalize=True, value_range=(-1, 1)
        )
        save_image(grid, path)
        writer.add_image("samples", grid, step)
    elif images.shape[-1] == 2:  # 2-D toy data: a scatter plot
        from .plots import scatter_2d

        figure = scatter_2d(images.numpy(), source_name, path)
        writer.add_figure("samples", figure, step)


def evaluate(
    generator: nn.Module, cfg: DictConfig, source, step: int, device: torch.device, banks: dict
) -> dict[str, float]:
    """The ``eval.metrics`` of ``eval.num_samples`` samples. Their noise comes from a generator
    seeded by (seed, step): the same at that step on any resume or in ``ganx-eval``, and no
    training RNG drawn. ``banks`` keeps feature extractors alive between evaluations."""
    from .metrics import EvalContext, compute_metrics

    samples = sample_for_eval(generator, cfg, step, device)
    m = cfg.metrics
    ctx = EvalContext(
        samples,
        source,
        device,
        cache_dir=Path(m.cache_dir).expanduser() if m.cache_dir else None,
        inception_weights=m.inception_weights,
        kid_subset_size=m.kid_subset_size,
        batch_size=m.batch_size,
        real_count=m.real_count,
        banks=banks,
    )
    return compute_metrics(list(cfg.eval.metrics), ctx)


def sample_for_eval(
    generator: nn.Module, cfg: DictConfig, step: int, device: torch.device, n: int | None = None
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    noise = torch.randn(n or cfg.eval.num_samples, cfg.model.latent_dim, generator=gen)
    chunks = [
        generate(generator, z.to(device), cfg.sample.bn_stats).cpu()
        for z in noise.split(max(cfg.train.batch_size, 256))
    ]
    return torch.cat(chunks)


def checkpoint_state(
    cfg: DictConfig,
    parts: Parts,
    ema,
    scaler,
    schedulers,
    step: int,
    d_steps: int,
    skipped: int,
    fixed_noise: torch.Tensor,
) -> dict:
    return {
        "format": 1,
        "step": step,
        "d_steps": d_steps,
        "skipped_steps": skipped,
        "generator": parts.generator.state_dict(),
        "discriminator": parts.discriminator.state_dict(),
        "ema_generator": ema.state_dict() if ema is not None else None,
        "opt_g": parts.opt_g.state_dict(),
        "opt_d": parts.opt_d.state_dict(),
        "schedulers": [s.state_dict() for s in schedulers],
        "scaler": scaler.state_dict() if scaler is not None else None,
        "regularizers": {n: r.state_dict() for n, r in parts.regularizers.items()},
        "data": parts.stream.state_dict(),
        "rng": ckpt.rng_state(),
        "fixed_noise": fixed_noise.cpu(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def _flatten(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


# where the data lives and how it is loaded may change between a run and its resume
RESUME_FREE_KEYS = {"root", "num_workers", "on_device", "in_memory", "download", "metrics"}


def check_compatible(saved: dict, cfg: DictConfig, path: Path) -> None:
    """Refuse a checkpoint whose model or data set differs from this run's config."""
    current = OmegaConf.to_container(cfg, resolve=True)
    differing = []
    for section in ("model", "dataset"):
        old, new = _flatten(saved["config"].get(section, {})), _flatten(current[section])
        for key in sorted(set(old) | set(new)):
            if key.split(".")[-1] in RESUME_FREE_KEYS:
                continue
            if old.get(key) != new.get(key):
                differing.append(
                    f"{section}.{key}: checkpoint {old.get(key)!r}, now {new.get(key)!r}"
                )
    if differing:
        raise ckpt.CheckpointError(
            f"cannot resume from {path}: its model/data config differs "
            "from this run's:\n  " + "\n  ".join(differing)
        )


def restore(state: dict, parts: Parts, ema, scaler, schedulers, path: Path) -> None:
    try:
        parts.generator.load_state_dict(state["generator"])
        parts.discriminator.load_state_dict(state["discriminator"])
        if ema is not None and state["ema_generator"] is not None:
            ema.load_state_dict(state["ema_generator"])
        elif ema is not None:  # EMA switched on at resume: start it from G
            ema.load_state_dict(parts.generator.state_dict())
    except RuntimeError as err:
        raise ckpt.CheckpointError(
            f"cannot resume from {path}: the network shapes differ ({str(err).splitlines()[0]} ...)"
        ) from err
    parts.opt_g.load_state_dict(state["opt_g"])
    parts.opt_d.load_state_dict(state["opt_d"])
    for sched, sched_state in zip(schedulers, state["schedulers"], strict=False):
        sched.load_state_dict(sched_state)
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    for name, reg in parts.regularizers.items():
        if name in state["regularizers"]:
            reg.load_state_dict(state["regularizers"][name])
    parts.stream.load_state_dict(state["data"])
    ckpt.set_rng_state(state["rng"])


class StopRequest:
    """SIGINT/SIGTERM (SLURM's pre-emption warning) set a flag; the loop then checkpoints and
    exits cleanly after the current step, so ``resume=auto`` continues."""

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread: no handlers
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signal = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def finite_or_none(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_status(run_dir: Path, values: dict) -> None:
    """``status.json``: running, then finished / diverged / interrupted / paused. A run that
    stays "running" with no live process crashed (ganx-report says so)."""
    record = {k: finite_or_none(v) for k, v in values.items()}
    tmp = run_dir / ".status.json.tmp"
    tmp.write_text(json.dumps(record) + "\n")
    tmp.replace(run_dir / "status.json")


def is_better(value: float, best: float | None, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def resolve_resume(resume, run_dir: Path) -> Path | None:
    if resume is None:
        return None
    if resume == "auto":
        last = run_dir / "checkpoints" / "last.pt"
        return last if last.exists() else None
    path = Path(resume).expanduser()
    if not path.is_file():
        raise ConfigError(f"resume={resume!r}: no such checkpoint file")
    return path


# --- the loop -----------------------------------------------------------------------------------


def train(cfg: DictConfig, run_dir: Path) -> dict:
    """Train per ``cfg``, writing everything under ``run_dir``; returns the last logged values
    (``diverged``/``interrupted`` flags included)."""
    from . import distributed

    validate(cfg)
    device = select_device(cfg.hardware)
    ranks = distributed.from_environment(device.type)
    if ranks.active:
        if device.type == "cuda":
            device = torch.device("cuda", ranks.local_rank)
            torch.cuda.set_device(device)
        run_dir = Path(distributed.broadcast_object(str(run_dir)))  # rank 0's run dir for all
    main = ranks.is_main
    resume_path = resolve_resume(cfg.resume, run_dir)
    if cfg.hardware.threads:
        torch.set_num_threads(int(cfg.hardware.threads))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(cfg.hardware.tf32)
        torch.backends.cudnn.allow_tf32 = bool(cfg.hardware.tf32)
        torch.backends.cudnn.benchmark = bool(cfg.hardware.cudnn_benchmark)

    seed_everything(cfg.seed)
    try:
        parts = build_all(cfg, device, ranks.rank, ranks.world)
    except DataError:
        raise
    except (ValueError, TypeError) as err:  # a constructor refused a configured value
        raise ConfigError(str(err)) from err
    if ranks.active:  # identical starting weights on every rank
        distributed.broadcast_state(parts.generator)
        distributed.broadcast_state(parts.discriminator)
    total, n_dis = cfg.train.steps, cfg.train.n_dis
    latent_dim = cfg.model.latent_dim
    amp = cfg.hardware.amp
    use_ema = bool(cfg.train.ema)
    ema = make_ema(parts.generator) if use_ema else None
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    schedulers = []
    if cfg.train.lr_decay:
        schedulers = [
            torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / total)
            for opt in (parts.opt_g, parts.opt_d)
        ]
    # the sample-grid noise comes from its own generator: it never touches the training streams
    fixed_noise = torch.randn(
        cfg.sample.n, latent_dim, generator=torch.Generator().manual_seed(cfg.seed + 7919)
    )

    step, d_steps, skipped = 0, 0, 0
    if resume_path is not None:
        state = ckpt.load(resume_path)
        check_compatible(state, cfg, resume_path)
        restore(state, parts, ema, scaler, schedulers, resume_path)
        step, d_steps, skipped = state["step"], state["d_steps"], state["skipped_steps"]
        fixed_noise = state["fixed_noise"]
        log.info("resumed from %s at step %d", resume_path, step)
    fixed_noise = fixed_noise.to(device)
    if ranks.rank > 0:  # each rank draws its own noise; rank 0 keeps the checkpointed stream
        torch.manual_seed(cfg.seed * 1_000_003 + ranks.rank * 7919 + step)

    from torch.utils.tensorboard import SummaryWriter

    ckpt_dir, sample_dir = run_dir / "checkpoints", run_dir / "samples"
    try:
        if main:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            sample_dir.mkdir(parents=True, exist_ok=True)
            writer = SummaryWriter(str(run_dir / "tb"), purge_step=step if step else None)
        else:
            writer = NullWriter()
    except OSError as err:
        raise ConfigError(f"cannot write to the run directory {run_dir}: {err}") from err
    metrics_file = run_dir / "metrics.jsonl"
    # stop_at ends this invocation early (a time-sliced cluster job); schedules still span `total`
    stop_at = cfg.train.get("stop_at") or total
    # checking every step costs a host sync: free on CPU, and needed to skip a bad step
    check_each_step = device.type == "cpu" or cfg.train.on_nonfinite == "skip"
    acc = Accumulator()
    settings = StepSettings(total, latent_dim, amp, check_each_step, scaler, ranks.world)
    simultaneous = cfg.train.updates == "simultaneous"
    eval_at = set(cfg.eval.get("at") or ())

    def guarded(step_fn, *args) -> dict:
        """Run one D or G step; with on_nonfinite=skip a NaN/inf step is dropped and counted."""
        nonlocal skipped
        try:
            return step_fn(*args)
        except Diverged:
            if cfg.train.on_nonfinite != "skip":
                raise
            skipped += 1
            return {}

    def next_real() -> torch.Tensor:
        real = parts.stream.next()
        if cfg.hardware.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        return real

    last_values: dict = {"step": step}
    status = "finished"
    started = time.time()
    if main:
        write_status(run_dir, {"status": "running", "step": step})

    def save_checkpoint(at_step: int, keep_copy: bool, name: str = "last.pt") -> None:
        if not main:
            return
        state = checkpoint_state(
            cfg, parts, ema, scaler, schedulers, at_step, d_steps, skipped, fixed_noise
        )
        state["best"] = best["value"]
        ckpt.atomic_save(state, ckpt_dir / name)
        if keep_copy and cfg.ckpt.keep > 0:
            ckpt.atomic_save(state, ckpt_dir / f"step_{at_step:07d}.pt")
            ckpt.keep_latest(ckpt_dir, cfg.ckpt.keep)

    banks: dict = {}  # feature extractors, built at the first evaluation and kept
    best = {"value": None}
    if resume_path is not None and state.get("best") is not None:
        best["value"] = state["best"]

    def flush_logs(at_step: int, evaluated: dict | None = None) -> dict:
        means = acc.means(ranks.world)
        bad = [n for n, v in means.items() if not math.isfinite(v)]
        if bad:
            raise Diverged(f"steps up to {at_step}: non-finite {', '.join(bad)}")
        for name, value in means.items():
            writer.add_scalar(name, value, at_step)
        for name, reg in parts.regularizers.items():
            if reg.weight:
                writer.add_scalar(f"weight/{name}", reg.weight_at(at_step, total), at_step)
        writer.add_scalar("lr/G", parts.opt_g.param_groups[0]["lr"], at_step)
        writer.add_scalar("lr/D", parts.opt_d.param_groups[0]["lr"], at_step)
        for name, value in (evaluated or {}).items():
            if math.isfinite(value):
                writer.add_scalar(f"metrics/{name}", value, at_step)
        record = {
            "step": at_step,
            "time_s": round(time.time() - started, 3),
            **means,
            **(evaluated or {}),
        }
        if skipped:
            record["skipped_steps"] = skipped
        if not main:
            return record
        with open(metrics_file, "a") as f:  # JSON has no NaN/inf: undefined values are null
            f.write(json.dumps({k: finite_or_none(v) for k, v in record.items()}) + "\n")
        return record

    bar = tqdm(
        total=total,
        initial=step,
        disable=not (cfg.log.progress and main),
        dynamic_ncols=True,
        desc="train",
    )
    with StopRequest() as stop:
        try:
            while step < total:
                # 1. n_dis D steps and one G step (alternating or simultaneous)
                terms, d_steps = training_iteration(
                    parts, settings, step, d_steps, n_dis, simultaneous, next_real, guarded
                )
                for t in terms:
                    acc.add(t)
                # 2. the EMA and the learning rates follow G
                if ema is not None:
                    update_ema(
                        ema, parts.generator, ema_decay(cfg.train.ema, step, cfg.train.ema_start)
                    )
                for sched in schedulers:
                    sched.step()
                if ranks.active:  # BatchNorm statistics are per rank: take rank 0's
                    distributed.broadcast_buffers(parts.generator)
                    distributed.broadcast_buffers(parts.discriminator)
                step += 1
                bar.update(1)
                # 3. the schedule of logs, samples and checkpoints (none draws training RNG)
                final = step in (total, stop_at) or stop.signal is not None
                # eval.at steps keep a checkpoint copy too: the weights behind those metrics
                keep_copy = step % cfg.ckpt.every == 0 or step in eval_at
                checkpoint_due = keep_copy or final
                eval_due = (
                    main
                    and bool(cfg.eval.metrics)
                    and (step % cfg.eval.every == 0 or step in eval_at or final)
                )
                evaluated = (
                    evaluate(
                        ema if ema is not None else parts.generator,
                        cfg,
                        parts.source,
                        step,
                        device,
                        banks,
                    )
                    if eval_due
                    else None
                )
                # logs are flushed (and checked for NaN/inf) before any checkpoint is written
                if step % cfg.log.every == 0 or checkpoint_due or eval_due:
                    last_values = flush_logs(step, evaluated)
                    bar.set_postfix(
                        {k: f"{v:.3f}" for k, v in last_values.items() if k.startswith("loss/")}
                    )
                if main and (step % cfg.sample.every == 0 or final):
                    images = generate(
                        ema if ema is not None else parts.generator,
                        fixed_noise,
                        cfg.sample.bn_stats,
                    )
                    save_samples(
                        images, sample_dir / f"step_{step:07d}.png", writer, step, parts.source.name
                    )
                objective = cfg.eval.objective
                new_best = (
                    bool(evaluated)
                    and objective in evaluated
                    and is_better(evaluated[objective], best["value"], cfg.eval.mode)
                )
                if new_best:
                    best["value"] = evaluated[objective]
                if checkpoint_due:
                    save_checkpoint(step, keep_copy=keep_copy)
                if new_best:
                    save_checkpoint(step, keep_copy=False, name="best.pt")
                if step == stop_at and stop_at < total:
                    status = "paused"
                    break
                if stop.signal is not None:
                    status = "interrupted"
                    log.warning(
                        "signal %d: checkpoint saved at step %d; resume=auto continues",
                        stop.signal,
                        step,
                    )
                    break
        except Diverged as err:
            status = "diverged"
            log.error(
                "training diverged: %s. Stopped; the last good checkpoint is %s",
                err,
                ckpt_dir / "last.pt",
            )
            last_values = {"step": step, "error": str(err)}
        finally:
            bar.close()
            writer.close()
    last_values["status"] = status
    last_values["best"] = best["value"]
    last_values["wall_time_s"] = round(time.time() - started, 3)
    if ranks.active:
        checksum = sum(float(p.detach().double().sum()) for p in parts.generator.parameters())
        log.info("rank %d of %d: G parameter checksum %.10e", ranks.rank, ranks.world, checksum)
    if main:
        write_status(run_dir, last_values)
    return last_values
