"""Each augmentation transform against the authors' formula, computed here from the same draws
of a generator with the same seed (the distributions' shapes are tested in test_augment; these
pin every operation and constant), and the draws' device and dtype whatever torch's defaults
(the edges mutmut found unguarded: scripts/mutmut_score.py augment)."""

from __future__ import annotations

import pytest
import torch

from ganx.augment import AdaptiveAugment, DiffAugment, scaling_matrix

CPU = torch.device("cpu")


def images(n=3, channels=3, size=8, width=None) -> torch.Tensor:
    """Distinct values per image, channel and pixel (no transform leaves them alike)."""
    width = width or size
    x = torch.linspace(-1, 1, n * channels * size * width).view(n, channels, size, width)
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


def test_diffaugment_translation_shifts_each_image_with_zeros_outside():
    """DiffAugment_pytorch.py:39-52: per image an integer shift in [-int(s/8 + 0.5), +...] for
    rows, then one for columns; out[i] = in[i - shift], zero where that is outside."""
    x = images(n=4, size=8)
    out = bound(DiffAugment(policy=["translation"]))(x)
    g = draws()
    want = x.clone()
    for dim in (2, 3):
        shifts = torch.randint(-1, 2, (4,), generator=g)  # int(8 * 0.125 + 0.5) = 1
        moved = torch.zeros_like(want)
        for i, s in enumerate(shifts.tolist()):
            for j in range(8):
                if 0 <= j - s < 8:
                    moved[i].select(dim - 1, j).copy_(want[i].select(dim - 1, j - s))
        want = moved
    torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_diffaugment_cutout_zeroes_a_half_side_square_around_a_uniform_centre():
    """DiffAugment_pytorch.py:55-69: a square of int(s/2 + 0.5) px, its centre uniform over the
    image (offsets in [0, s + (1 - size % 2)) less size // 2), cut off at the border. 6 x 10
    images: a 3 x 5 hole (odd sides, where the offsets' range depends on the parity)."""
    x = torch.linspace(1, 2, 6 * 2 * 6 * 10).view(6, 2, 6, 10)  # no zero of its own
    out = bound(DiffAugment(policy=["cutout"]))(x)
    g = draws()
    tops = torch.randint(0, 6, (6,), generator=g) - 3 // 2
    lefts = torch.randint(0, 10, (6,), generator=g) - 5 // 2
    want = x.clone()
    for i in range(6):
        rows = slice(max(int(tops[i]), 0), max(int(tops[i]) + 3, 0))
        cols = slice(max(int(lefts[i]), 0), max(int(lefts[i]) + 5, 0))
        want[i, :, rows, cols] = 0
    torch.testing.assert_close(out, want, rtol=0, atol=0)


def ada_case(name: str, n=8, size=8, seed=5, width=None):
    """ADA with one transform at p = 0.5: (input, output, generator at the transform's own
    draws, which images were chosen). The chosen ones are those whose first draw is < p."""
    x = images(n=n, size=size, width=width)
    out = bound(AdaptiveAugment(transforms=[name], p=0.5), seed)(x)
    g = draws(seed)
    chosen = torch.rand(n, generator=g) < 0.5
    assert chosen.any() and not chosen.all()
    return x, out, g, chosen


def reflect(index: int, size: int) -> int:
    while not 0 <= index < size:
        index = -index if index < 0 else 2 * (size - 1) - index
    return index


def test_ada_xflip_and_rotate90_of_the_chosen_images():
    x, out, g, chosen = ada_case("xflip", n=16, seed=8)
    flip = chosen & (torch.rand(16, generator=g) < 0.5)
    assert flip.any()
    want = torch.stack([xi.flip(2) if f else xi for xi, f in zip(x, flip, strict=True)])
    assert torch.equal(out, want)
    x, out, g, chosen = ada_case("rotate90", n=16, seed=8)
    turns = torch.randint(0, 4, (16,), generator=g) * chosen
    assert set(turns.tolist()) == {0, 1, 2, 3}
    want = torch.stack(
        [torch.rot90(xi, int(k), dims=(1, 2)) for xi, k in zip(x, turns, strict=True)]
    )
    assert torch.equal(out, want)


def test_ada_translate_is_an_eighth_of_the_side_mirrored_at_the_border():
    """ADA's xint: shift uniform in +-0.125 of the side, rounded to pixels, columns then rows,
    with the mirror image outside (ADA pads by reflection)."""
    x, out, g, chosen = ada_case("translate", size=16)
    want = x.clone()
    for dim in (3, 2):
        shifts = torch.round((torch.rand(8, generator=g) * 2 - 1) * 0.125 * 16).long() * chosen
        moved = torch.empty_like(want)
        for i, s in enumerate(shifts.tolist()):
            for j in range(16):
                moved[i].select(dim - 1, j).copy_(want[i].select(dim - 1, reflect(j - s, 16)))
        want = moved
    assert (shifts != 0).any()
    torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_ada_scale_is_a_mirrored_bilinear_zoom_about_the_centre():
    """Zoom by 2^N(0, 0.2^2) (ADA's scale_std): the same as grid_sample's bilinear sampling at
    (output position) / scale with reflection at the border pixels' centres."""
    import torch.nn.functional as F

    x, out, g, chosen = ada_case("scale", width=12)  # not square: rows and columns apart
    scale = torch.where(chosen, torch.exp2(torch.randn(8, generator=g) * 0.2), torch.ones(8))
    theta = torch.zeros(8, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    want = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-5)
    assert torch.equal(out[~chosen], x[~chosen])


def test_ada_scale_leaves_an_image_it_did_not_choose_exactly_as_it_was_at_every_side():
    """Scale 1 (an image not chosen) resamples through the identity matrix, exactly, on every
    side length (a 1-pixel side included)."""
    for size in range(1, 7):
        want = torch.eye(size).expand(2, size, size)
        assert torch.equal(scaling_matrix(torch.ones(2), size), want), size


def test_ada_brightness_and_contrast_are_adas_normal_draws():
    """brightness + N(0, 0.2^2), contrast x 2^N(0, 0.5^2) about 0 (ADA's brightness_std,
    contrast_std), on the chosen images only."""
    x, out, g, chosen = ada_case("brightness")
    shift = torch.randn(8, generator=g) * 0.2 * chosen
    torch.testing.assert_close(out, x + shift.view(-1, 1, 1, 1), rtol=0, atol=0)
    x, out, g, chosen = ada_case("contrast")
    factor = torch.where(chosen, torch.exp2(torch.randn(8, generator=g) * 0.5), torch.ones(8))
    torch.testing.assert_close(out, x * factor.view(-1, 1, 1, 1), rtol=0, atol=0)


@pytest.mark.parametrize("option", ["diffaug", "ada"])
def test_the_python_defaults_are_the_configs(option):
    """ganx.augment.X() (the Python API) is the augmentation augment=X configures."""
    import inspect
    from pathlib import Path

    from omegaconf import OmegaConf

    from ganx import augment

    path = Path(__file__).resolve().parents[1] / "conf" / "augment" / f"{option}.yaml"
    node = OmegaConf.to_container(OmegaConf.load(path))
    cls = getattr(augment, node.pop("_target_").rsplit(".", 1)[1])
    assert node.pop("name") == cls.name == option
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    assert set(node) == set(defaults)
    assert node == {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}
    built = cls()  # what the signature says is also what the instance holds
    assert {k: getattr(built, k) for k in node} == node


def test_ada_state_loads_onto_the_augmentations_device():
    """p and the running sign sum of a checkpoint read on the CPU land on the device the run
    augments on (the meta device stands in for a GPU here)."""
    saved = bound(AdaptiveAugment(p=0.3))
    saved.observe(torch.tensor(0.5), 16)
    resumed = bound(AdaptiveAugment())
    resumed.p, resumed.sign_sum = resumed.p.to("meta"), resumed.sign_sum.to("meta")
    resumed.load_state_dict(saved.state_dict())
    assert resumed.p.device.type == "meta" and resumed.sign_sum.device.type == "meta"
    assert (resumed.seen, resumed.d_steps) == (16, 1)


def test_ada_controller_stays_on_the_augmentations_device():
    """Adjusting p mixes no host tensor into the sums kept on the device (on a GPU that is an
    error; the meta device stands in for one)."""
    ada = bound(AdaptiveAugment(interval=1))
    ada.p, ada.sign_sum = ada.p.to("meta"), ada.sign_sum.to("meta")
    ada.observe(torch.tensor(0.5, device="meta"), 16)  # interval 1: adjusts at once
    assert ada.p.device.type == "meta" and ada.sign_sum.device.type == "meta"
    assert (ada.seen, ada.d_steps) == (0, 0)


def test_ada_controller_sums_over_ranks_before_it_moves_p(monkeypatch):
    """With several ranks the sign sums and image counts are all-reduced before r_t and the
    step: two ranks alike (the all-reduce doubles both sums) keep r_t (0.5, under the target
    0.6) and move p by both ranks' reals, 2 x 32 / (0.32 * 1000) = 0.2."""
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "all_reduce", lambda sums: sums.mul_(2))
    ada = bound(AdaptiveAugment(interval=2, kimg=0.32, p=0.5))
    ada.observe(torch.tensor(0.5), 16)
    ada.observe(torch.tensor(0.5), 16)
    assert float(ada.p) == pytest.approx(0.3)


def refused(cls, message: str, **kwargs) -> None:
    import re

    # the end anchored, not the start: a message may gain the key's full name in front
    with pytest.raises(ValueError, match=f"{re.escape(message)}$"):
        cls(**kwargs)


def test_refusals_name_the_key_and_what_is_allowed_and_the_ranges_ends_are_right():
    """The constructors' refusals as the schema helpers word them (one line: the key, the value,
    what is allowed), at both ends of every range."""
    policies = "a non-empty list of color, translation, cutout"
    refused(DiffAugment, f"policy=[]; allowed: {policies}", policy=[])
    refused(DiffAugment, f"policy=['color', 'blur']; allowed: {policies}", policy=["color", "blur"])
    allowed = "a non-empty list of xflip, rotate90, translate, scale, brightness, contrast"
    refused(AdaptiveAugment, f"transforms=['hue']; allowed: {allowed}", transforms=["hue"])
    for key, value, interval in (
        ("translation", 0.6, "[0, 0.5]"),
        ("translation", -0.1, "[0, 0.5]"),
        ("cutout", 0, "(0, 1]"),
        ("cutout", 1.5, "(0, 1]"),
    ):
        refused(DiffAugment, f"{key}={value}: must be a number in {interval}", **{key: value})
    for fine in ({"translation": 0}, {"translation": 0.5}, {"cutout": 1}):
        assert DiffAugment(**fine)
    for key, value in (("target", 1.5), ("target", -0.1), ("p", 1.5), ("p", -0.1)):
        refused(AdaptiveAugment, f"{key}={value}: must be a number in [0, 1]", **{key: value})
    refused(AdaptiveAugment, "kimg=0: must be a positive finite number", kimg=0)
    refused(AdaptiveAugment, "interval=0: must be a positive integer", interval=0)
    refused(AdaptiveAugment, "interval=1.5: must be a positive integer", interval=1.5)
    for fine in ({"target": 0}, {"target": 1}, {"p": 1}, {"p": 0}):
        assert AdaptiveAugment(**fine)
