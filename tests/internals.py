"""The training step's internals that tests reach into, imported in this one place: when the code
is reorganised, only these imports change."""

from ganx import step
from ganx.evaluation import evaluate, generate
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

__all__ = [
    "StepSettings",
    "discriminator_loss",
    "discriminator_step",
    "disable_per_step_check",
    "ema_decay",
    "evaluate",
    "generate",
    "generator_backward",
    "generator_loss",
    "seed_everything",
    "training_iteration",
    "update_ema",
]


def disable_per_step_check(monkeypatch) -> None:
    """Run the CPU loop as it runs on a GPU without ``on_nonfinite=skip``: no per-step NaN check,
    so non-finite values reach the log flush."""
    monkeypatch.setattr(step, "require_finite", lambda *args, **kwargs: None)
