"""Everything a run carries from one step to the next, and therefore everything a checkpoint
holds: the nets, the EMA generator, optimisers, LR schedulers, the GradScaler, regularizer state,
the data position, every RNG stream, the step counters and the best ``eval.objective`` value.

Each stateful thing is registered once, by name, in :meth:`TrainingState._slots` (as
GAN_stability's ``CheckpointIO.register_modules`` and DINO's ``restart_from_checkpoint`` do);
saving and loading walk that registry, so a new one is one line there. The checkpoint is the
flat dict of those names plus ``format`` and ``config`` (format 1, unchanged since before the
registry existed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import checkpoint as ckpt
from .augment import stream_seed
from .build import Parts, build_all
from .collectives import Ranks, broadcast_state
from .errors import CheckpointError, ConfigError, DataError
from .resume_rules import allowed_changes
from .rng import rank_seed, rng_state, seed_everything, set_rng_state
from .sampling import latent_distribution, latents
from .step import make_ema

log = logging.getLogger("ganx")

FORMAT = 1


@dataclass
class Slot:
    """One named entry of the checkpoint: how to read it out and how to put it back."""

    save: Callable[[], object]
    load: Callable[[object], None]
    network: bool = False  # a load failure means the network shapes differ
    optional: bool = False  # absent from older checkpoints: keep the fresh value


class TrainingState:
    """The state of one run; :meth:`create` builds it fresh or from a checkpoint."""

    def __init__(self, cfg: DictConfig, parts: Parts):
        self.cfg, self.parts = cfg, parts
        self.ema = make_ema(parts.generator) if cfg.train.ema else None
        device = parts.device
        self.scaler = torch.amp.GradScaler(device.type) if cfg.hardware.amp == "fp16" else None
        total = cfg.train.steps
        self.schedulers = []
        if cfg.train.lr_decay:
            self.schedulers = [
                torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / total)
                for opt in (parts.opt_g, parts.opt_d)
            ]
        # the sample-grid noise comes from its own generator: it never touches the training RNG
        self.fixed_noise = latents(
            cfg.sample.n,
            cfg.model.latent_dim,
            latent_distribution(cfg),
            generator=torch.Generator().manual_seed(cfg.seed + 7919),
        )
        self.step = 0  # G steps done
        self.d_steps = 0  # D steps done (lazy regularisation counts them)
        self.skipped = 0  # non-finite D/G steps dropped (train.on_nonfinite=skip)
        self.best: float | None = None  # best eval.objective so far (best.pt holds its weights)
        self.elapsed_s = 0.0  # training wall time of every invocation so far (Outputs keeps it)
        self.slots = self._slots()

    def _slots(self) -> dict[str, Slot]:
        """The registry: every name the checkpoint holds (the RNG last: loading the others
        draws nothing, and the streams must be exactly as saved when training goes on)."""
        parts = self.parts

        def attribute(name: str, optional: bool = False) -> Slot:
            return Slot(
                lambda: getattr(self, name), lambda v: setattr(self, name, v), False, optional
            )

        def stateful(obj) -> Slot:
            return Slot(obj.state_dict, obj.load_state_dict)

        return {
            "step": attribute("step"),
            "d_steps": attribute("d_steps"),
            "skipped_steps": attribute("skipped"),
            "generator": Slot(parts.generator.state_dict, parts.generator.load_state_dict, True),
            "discriminator": Slot(
                parts.discriminator.state_dict, parts.discriminator.load_state_dict, True
            ),
            "ema_generator": Slot(self._ema_weights, self._load_ema, True),
            "opt_g": stateful(parts.opt_g),
            "opt_d": stateful(parts.opt_d),
            "schedulers": Slot(
                lambda: [s.state_dict() for s in self.schedulers], self._load_schedulers
            ),
            "scaler": Slot(lambda: self.scaler and self.scaler.state_dict(), self._load_scaler),
            "regularizers": Slot(
                lambda: {n: r.state_dict() for n, r in parts.regularizers.items()},
                self._load_regularizers,
            ),
            "data": stateful(parts.stream),
            # augment=diffaug|ada: its random stream (and ADA's p and running sums); optional:
            # checkpoints from before augmentation existed have none (and trained without)
            "augment": Slot(self._augment_state, self._load_augment, optional=True),
            "fixed_noise": Slot(lambda: self.fixed_noise.cpu(), self._load_fixed_noise),
            "best": attribute("best", optional=True),
            "elapsed_s": attribute("elapsed_s", optional=True),
            "rng": Slot(rng_state, set_rng_state),
        }

    def count_skipped(self) -> None:
        self.skipped += 1

    # --- the loaders that are more than load_state_dict ----------------------------------------

    def _ema_weights(self):
        return self.ema.state_dict() if self.ema is not None else None

    def _load_ema(self, weights) -> None:
        if self.ema is not None:  # EMA switched on at resume: start it from G
            self.ema.load_state_dict(weights or self.parts.generator.state_dict())

    def _load_schedulers(self, states) -> None:
        for sched, sched_state in zip(self.schedulers, states, strict=False):
            sched.load_state_dict(sched_state)

    def _load_scaler(self, saved) -> None:
        if self.scaler is not None and saved is not None:
            self.scaler.load_state_dict(saved)

    def _load_regularizers(self, saved: dict) -> None:
        for name, reg in self.parts.regularizers.items():
            if name in saved:
                reg.load_state_dict(saved[name])

    def _augment_state(self):
        return self.parts.augment.state_dict() if self.parts.augment is not None else None

    def _load_augment(self, saved) -> None:
        if self.parts.augment is not None and saved is not None:
            self.parts.augment.load_state_dict(saved)

    def _load_fixed_noise(self, noise: torch.Tensor) -> None:
        self.fixed_noise = noise.to(self.parts.device)

    # --- saving and loading --------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The checkpoint: plain types and tensors only (it loads with weights_only=True)."""
        state = {"format": FORMAT, **{name: slot.save() for name, slot in self.slots.items()}}
        state["config"] = OmegaConf.to_container(self.cfg, resolve=True)
        return state

    def load_state_dict(self, saved: dict, path: Path) -> None:
        for name, slot in self.slots.items():
            if slot.optional and name not in saved:
                continue
            try:
                slot.load(saved[name])
            except RuntimeError as err:
                if not slot.network:
                    raise
                first = str(err).splitlines()[0]
                raise CheckpointError(
                    f"cannot resume from {path}: the network shapes differ ({first} ...)"
                ) from err

    def load(self, path: Path) -> None:
        saved = ckpt.load(path)
        allowed_changes(saved["config"], self.cfg, path)  # refuses changed model, data, losses...
        self.load_state_dict(saved, path)
        log.info("resumed from %s at step %d", path, self.step)

    @property
    def eval_generator(self) -> torch.nn.Module:
        """The generator that grids and metrics show: the EMA one when EMA is on."""
        return self.ema if self.ema is not None else self.parts.generator

    @classmethod
    def create(cls, cfg: DictConfig, ranks: Ranks, device: torch.device, resume: Path | None):
        """Seed, build the parts, give every rank rank 0's weights, then continue ``resume``
        if given."""
        seed_everything(cfg.seed)
        try:
            parts = build_all(cfg, device, ranks.rank, ranks.world)
        except DataError:
            raise
        except (ValueError, TypeError) as err:  # a constructor refused a configured value
            raise ConfigError(str(err)) from err
        if ranks.active:  # identical starting weights on every rank
            broadcast_state(parts.generator)
            broadcast_state(parts.discriminator)
        state = cls(cfg, parts)
        if resume is not None:
            state.load(resume)
        state.fixed_noise = state.fixed_noise.to(device)
        if ranks.rank > 0:  # each rank draws its own noise; rank 0 keeps the checkpointed stream
            torch.manual_seed(rank_seed(cfg.seed, ranks.rank, state.step))
            if parts.augment is not None and resume is not None:  # not rank 0's augmentations
                parts.augment.generator.manual_seed(stream_seed(cfg.seed, ranks.rank) + state.step)
        return state


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
