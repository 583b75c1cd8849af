"""The training step's internals that tests reach into, imported in this one place: when the code
is reorganised, only these imports change."""

from ganx import hardware as hardware_module
from ganx import launch as launch_module
from ganx import loop as loop_module
from ganx import step
from ganx.commands.export import export_hydra
from ganx.hardware import set_up_process
from ganx.metrics.evaluation import evaluate, generate
from ganx.rng import seed_everything
from ganx.step import (
    StepSettings,
    discriminator_loss,
    discriminator_step,
    ema_decay,
    generator_backward,
    generator_loss,
    training_iteration,
    update_ema,
)
from ganx.trackers import build_trackers

__all__ = [
    "StepSettings",
    "discriminator_loss",
    "discriminator_step",
    "disable_per_step_check",
    "ema_decay",
    "evaluate",
    "export_hydra",
    "build_trackers",
    "hardware_module",
    "launch_module",
    "generate",
    "generator_backward",
    "generator_loss",
    "loop_module",
    "seed_everything",
    "set_up_process",
    "training_iteration",
    "poison_d_loss",
    "update_ema",
]


def disable_per_step_check(monkeypatch) -> None:
    """Run the CPU loop as it runs on a GPU without ``on_nonfinite=skip``: no per-step NaN check,
    so non-finite values reach the log flush."""
    monkeypatch.setattr(step, "require_finite", lambda *args, **kwargs: None)


def poison_d_loss(monkeypatch, at_call: int) -> dict:
    """Make the non-saturating D loss NaN at its ``at_call``-th call. Returns the call counter
    (``counter["n"] = 0`` starts the count again for a second run)."""
    from ganx import losses

    original = losses.NonSaturatingLoss.d_loss
    counter = {"n": 0}

    def poisoned(self, real_logits, fake_logits):
        counter["n"] += 1
        value = original(self, real_logits, fake_logits)
        return value * float("nan") if counter["n"] == at_call else value

    monkeypatch.setattr(losses.NonSaturatingLoss, "d_loss", poisoned)
    return counter
