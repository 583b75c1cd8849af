"""Small pieces shared by the net families."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap a conv/linear layer in spectral normalisation (Miyato et al. 2018) when enabled.

    The parametrization-based version keeps its power-iteration vectors as buffers, so they are
    saved in the checkpoint and restored exactly on resume.
    """
    return spectral_norm(module) if enabled else module


def check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; allowed: {sorted(allowed)}")
