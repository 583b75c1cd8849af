"""Each augmentation transform against the authors' formula, computed here from the same draws
of a generator with the same seed (the distributions' shapes are tested in test_augment; these
pin every operation and constant), and the draws' device and dtype whatever torch's defaults
(the edges mutmut found unguarded: scripts/mutmut_score.py augment)."""

from __future__ import annotations

import pytest
import torch

from ganx.augment import AdaptiveAugment, DiffAugment

CPU = torch.device("cpu")


def images(n=3, channels=3, size=8) -> torch.Tensor:
    """Distinct values per image, channel and pixel (no transform leaves them alike)."""
    x = torch.linspace(-1, 1, n * channels * size * size).view(n, channels, size, size)
    return x + 0.1 * torch.arange(n).view(n, 1, 1, 1) * torch.arange(channels).view(1, -1, 1, 1)


def bound(augment, seed=5):
    augment.bind(CPU, seed)
    return augment


def draws(seed=5) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_diffaugment_color_is_the_authors_brightness_saturation_contrast():
    """mit-han-lab/data-efficient-gans@0b63395:DiffAugment_pytorch.py:22-36: x + (U - 0.5);
    (x - mean_c) * 2U + mean_c; (x - mean_chw) * (U + 0.5) + mean_chw, one U per image each."""
    x = images()
    out = bound(DiffAugment(policy=["color"]))(x)
    g = draws()
    n = x.shape[0]
    want = x + (torch.rand(n, 1, 1, 1, generator=g) - 0.5)
    mean = want.mean(dim=1, keepdim=True)
    want = (want - mean) * (2 * torch.rand(n, 1, 1, 1, generator=g)) + mean
    mean = want.mean(dim=(1, 2, 3), keepdim=True)
    want = (want - mean) * (torch.rand(n, 1, 1, 1, generator=g) + 0.5) + mean
    torch.testing.assert_close(out, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "augment",
    [
        lambda: DiffAugment(),
        lambda: AdaptiveAugment(p=1.0),
    ],
    ids=["diffaug", "ada"],
)
def test_draws_follow_the_images_device_and_dtype_not_torchs_defaults(augment):
    """bf16 images stay bf16 (the draws are cast to them), and the draws come from the
    augmentation's own CPU generator on the images' device even when torch's default device is
    another one."""
    x = images(size=16).to(torch.bfloat16)
    transform = bound(augment())
    with torch.device("meta"):
        out = transform(x)
    assert out.dtype == torch.bfloat16 and out.device == x.device and out.shape == x.shape
    reference = bound(augment())(x)
    assert torch.equal(out, reference)
