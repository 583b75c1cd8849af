"""The training step's internals that tests reach into, imported in this one place: when the loop
is reorganised, only these imports change."""

from ganx import loop
from ganx.loop import (
    StepSettings,
    discriminator_loss,
    discriminator_step,
    ema_decay,
    evaluate,
    generate,
    generator_backward,
    generator_loss,
    seed_everything,
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
    monkeypatch.setattr(loop, "require_finite", lambda step, terms: None)
