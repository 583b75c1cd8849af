"""Small pieces shared by the net families."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .. import schema


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap a conv/linear layer in spectral normalisation (Miyato et al. 2018) when enabled.

    The parametrization-based version keeps its power-iteration vectors as buffers, so they are
    saved in the checkpoint and restored exactly on resume.
    """
    return spectral_norm(module) if enabled else module


def check_choice(name: str, value, allowed) -> None:
    """``name`` is the constructor's argument; the builder names it under the net's config key
    (``model.generator.upsample='x'; allowed: bilinear, nearest``)."""
    schema.choice(name, value, sorted(allowed))


def check_widths(**widths) -> None:
    """Each width (or count) a positive integer; ``None`` where the net picks its own."""
    for name, value in widths.items():
        schema.optional_positive(name, value)
