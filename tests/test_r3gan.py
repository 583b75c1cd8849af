"""model=r3gan against the authors' code (brownvc/R3GAN, R3GAN/Networks.py, Resamplers.py):
shapes at 28 and 32 px, the fix-up style initialisation of every residual branch, the [1,2,1]
resampling, no normalisation, and bad settings refused in one line before training."""

import math

import pytest
import torch
from conftest import TINY, TINY_WIDTHS, compose_cfg
from ganx_cli import error_lines, ganx_train_here
from key_cover import override

from ganx.build import build_nets
from ganx.errors import ConfigError
from ganx.loop import train
from ganx.nets import r3gan
from ganx.preflight import dry_build


def blocks_of(net):
    return [m for m in net.modules() if isinstance(m, r3gan.ResidualBlock)]


def stages(layers):
    """A net's layer list in short: residual blocks (width, cardinality), resamplers (up or
    down) and the 1x1 convs between stages (widths in, out)."""
    seen = []
    for m in layers:
        if isinstance(m, r3gan.ResidualBlock):
            seen.append(("block", m.expand.in_channels, m.grouped.groups))
        elif isinstance(m, r3gan.Resample):
            seen.append(("up",) if m.up else ("down",))
        elif isinstance(m, torch.nn.Conv2d):
            seen.append(("conv", m.in_channels, m.out_channels))
    return seen


@pytest.mark.parametrize(("resolution", "channels"), [(28, 1), (32, 3)])
def test_shapes_and_a_backward_pass(resolution, channels):
    """What `ganx-train model=r3gan` builds (the CPU widths), at MNIST's and CIFAR's size."""
    cfg = compose_cfg(
        "model=r3gan",
        f"dataset.resolution={resolution}",
        f"dataset.channels={channels}",
        tiny=False,
    )
    g, d = build_nets(cfg)
    z = torch.randn(3, 64)
    x = g(z)
    assert x.shape == (3, channels, resolution, resolution)
    logits = d(x)
    assert logits.shape == (3,)
    (logits.sum() + d(torch.randn_like(x)).sum()).backward()
    for net in (g, d):
        assert all(p.grad is not None and p.grad.isfinite().all() for p in net.parameters())
        # 4 stages of 2 blocks at 32 px (4-8-16-32), 3 at 28 px (7-14-28)
        assert len(blocks_of(net)) == 2 * (4 if resolution == 32 else 3)
        names = {type(m).__name__ for m in net.modules()}
        assert not names & {"BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm2d"}
    grouped = [b.grouped for b in blocks_of(d)]
    assert all(c.groups == 4 and c.kernel_size == (3, 3) and c.in_channels == 64 for c in grouped)


def test_branch_gain_is_the_reference_formula():
    """Networks.py l. 31: BiasedActivation.Gain * L ** (-1 / (2 * 3 - 2)) with
    BiasedActivation.Gain = sqrt(2 / (1 + 0.2²)) (FusedOperators.py)."""
    for blocks in (1, 6, 8, 10):
        expected = math.sqrt(2 / (1 + 0.2**2)) * blocks ** (-0.25)
        assert r3gan.branch_gain(blocks) == pytest.approx(expected, rel=1e-12)


def test_residual_branches_start_scaled_and_zero():
    """Every branch: its first two convs ~ N(0, gain / sqrt(fan_in)) with the gain of the whole
    net's block count (6 blocks at 28 px), its last conv zero, so each block is the identity."""
    torch.manual_seed(0)
    g = r3gan.R3GANGenerator(64, 28, 1, width=64, cardinality=8)
    d = r3gan.R3GANDiscriminator(28, 1, width=64, cardinality=8)
    for net in (g, d):
        gain = r3gan.branch_gain(6)
        for block in blocks_of(net):
            assert block.project.weight.abs().max() == 0
            for layer, fan_in in ((block.expand, 64), (block.grouped, 16 * 9)):
                std = layer.weight.std().item()
                assert std == pytest.approx(gain / math.sqrt(fan_in), rel=0.05)
                assert layer.bias is None
            assert block.act1.bias.abs().max() == 0
            x = torch.randn(2, 64, 7, 7)
            assert torch.equal(block(x), x)
    # the other layers: gain 1 (MSRInitializer's default), the G basis N(0, 1)
    assert g.basis_scale.weight.std().item() == pytest.approx(1 / math.sqrt(64), rel=0.05)
    assert g.basis.std().item() == pytest.approx(1.0, rel=0.05)
    assert d.basis.weight.std().item() == pytest.approx(1 / 7, rel=0.1)  # depthwise 7x7


def test_branch_gain_follows_the_number_of_blocks():
    """The same block has a smaller gain in a deeper net (L = blocks of the whole net)."""
    torch.manual_seed(0)
    shallow = r3gan.R3GANGenerator(64, 32, 3, width=64, cardinality=8, blocks=1)
    deep = r3gan.R3GANGenerator(64, 32, 3, width=64, cardinality=8, blocks=4)
    ratio = blocks_of(deep)[0].expand.weight.std() / blocks_of(shallow)[0].expand.weight.std()
    assert ratio.item() == pytest.approx((16 / 4) ** -0.25, rel=0.05)


def test_resampling_is_the_1_2_1_lowpass():
    """Resamplers.py: [1,2,1] * [1,1] = [1,3,3,1], outer product / 64; up-sampling spreads each
    pixel with 4 x that kernel (the mean is kept), down-sampling averages with it."""
    row = torch.tensor([1.0, 3.0, 3.0, 1.0])
    assert torch.allclose(r3gan.lowpass_kernel(), torch.outer(row, row) / 64)
    up, down = r3gan.Resample(up=True), r3gan.Resample(up=False)
    flat = torch.full((1, 2, 7, 7), 3.0)
    assert up(flat).shape == (1, 2, 14, 14) and down(up(flat)).shape == (1, 2, 7, 7)
    assert torch.allclose(up(flat)[..., 1:-1, 1:-1], torch.tensor(3.0))  # away from the border
    assert torch.allclose(down(torch.full((1, 2, 8, 8), 3.0))[..., 1:-1, 1:-1], torch.tensor(3.0))
    impulse = torch.zeros(1, 1, 8, 8)
    impulse[..., 4, 4] = 1.0
    # output (i, j) weighs input (2i - 1 + a, 2j - 1 + b) by kernel[a, b]: the impulse at (4, 4)
    # reaches outputs 1 and 2 through the taps 3 and 1 of [1, 3, 3, 1]
    seen = torch.zeros(4, 4)
    seen[1:3, 1:3] = torch.outer(row[[3, 1]], row[[3, 1]]) / 64
    assert torch.allclose(down(impulse)[0, 0], seen)


def test_the_papers_cifar_widths_build():
    """The CIFAR-10 preset of the code (train.py): width 768, cardinality 96, 2 blocks, expansion
    2; on the meta device (no memory), with the parameter count in closed form."""
    with torch.device("meta"):
        g = r3gan.R3GANGenerator(64, 32, 3, width=768, cardinality=96)
        d = r3gan.R3GANDiscriminator(32, 3, width=768, cardinality=96)
    block = 768 * 1536 + 1536 * (1536 // 96) * 9 + 1536 * 768 + 2 * 1536
    assert sum(p.numel() for p in g.parameters()) == 8 * block + 768 * 16 + 64 * 768 + 768 * 3
    assert sum(p.numel() for p in d.parameters()) == 8 * block + 3 * 768 + 768 * 16 + 768


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.spectral_norm=true"], "spectral_norm=true is not supported"),
        (["model.generator.cardinality=5"], "cardinality 5 must divide the expanded width 64"),
        (["model.generator.width=[32,32]"], "width=[32, 32]: one positive integer, or a list of 3"),
    ],
)
def test_settings_the_net_cannot_take_are_one_line(overrides, message):
    cfg = compose_cfg("model=r3gan", *overrides, tiny=False)
    with pytest.raises(ConfigError) as err:
        dry_build(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_ganx_train_refuses_spectral_norm_before_writing(tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY, *TINY_WIDTHS["r3gan"], "model=r3gan", "model.spectral_norm=true"]
    code, stderr = ganx_train_here(*args, f"hydra.run.dir={run_dir}")
    assert code != 0 and "Traceback" not in stderr
    (line,) = error_lines(stderr)
    assert "model.discriminator" in line and "spectral_norm=true is not supported" in line
    assert not run_dir.exists()


def test_experiment_trains_with_the_scheduled_gamma(tmp_path):
    """`ganx-train experiment=r3gan dataset=mnist5k` (tiny widths, the cosine shortened to the
    run's 4 steps): RpGAN with R1 and R2, both weighted by the logged, scheduled gamma
    0.05 -> 0.005. Needs loss=rpgan (conf/loss/rpgan.yaml)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    span = [override("reg.r1.schedule_steps", 4), override("reg.r2.schedule_steps", 4)]
    cfg = compose_cfg("experiment=r3gan", "model=r3gan", "dataset=mnist5k", *span)
    assert cfg.loss._target_ == "ganx.losses.RelativisticPairingLoss"
    train(cfg, tmp_path)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    for name in ("r1", "r2"):
        logged = {e.step: e.value for e in events.Scalars(f"weight/{name}")}
        assert logged == pytest.approx({2: 0.0275, 4: 0.005})
        assert all(math.isfinite(e.value) for e in events.Scalars(f"reg/{name}"))


def test_forward_passes_are_the_references_sums_and_products():
    """brownvc/R3GAN@19a7ddf:R3GAN/Networks.py: BiasedActivation is leaky_relu(x + b, 0.2);
    a ResidualBlock returns x + its branch; the generator's basis is multiplied by the
    latent's per-channel scale (GenerativeBasis); the resampler runs in the input's dtype."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    act = r3gan.BiasedLeakyReLU(4)
    with torch.no_grad():
        act.bias.normal_()
    x = torch.randn(2, 4, 3, 3)
    assert torch.equal(act(x), F.leaky_relu(x + act.bias.view(1, -1, 1, 1), 0.2))
    assert r3gan.BiasedLeakyReLU(1)(torch.full((1, 1), -1.0)).item() == pytest.approx(-0.2)
    block = r3gan.ResidualBlock(4, 2, 2, total_blocks=2)
    with torch.no_grad():
        block.project.weight.normal_()  # the branch starts at zero: give it a value
    branch = block.project(block.act2(block.grouped(block.act1(block.expand(x)))))
    assert branch.abs().sum() > 0 and torch.equal(block(x), x + branch)
    low = r3gan.Resample(up=False)
    assert torch.allclose(low(x.double()), low(x).double(), atol=1e-6)
    g = r3gan.R3GANGenerator(latent_dim=4, resolution=32, width=8, cardinality=2, blocks=1)
    z = torch.randn(3, 4)
    scale = g.basis_scale(z)
    expected = g.to_image(g.layers(g.basis.unsqueeze(0) * scale[:, :, None, None]))
    assert torch.equal(g(z), expected)


def test_d_runs_g_s_stages_in_reverse_with_its_widths_and_blocks():
    """brownvc/R3GAN@19a7ddf:R3GAN/Networks.py, ``Discriminator``: G's per-stage widths,
    cardinalities and block counts read from the image down (reversed), a 1x1 conv where the
    width changes after each down-sampling, then the depthwise basis and the linear logit. Per
    stage settings that differ make the order visible; the defaults are the CIFAR preset."""
    d = r3gan.R3GANDiscriminator(
        32, 1, width=[16, 8, 8, 4], cardinality=[4, 2, 2, 2], blocks=[1, 1, 2, 1]
    )
    assert (d.from_image.in_channels, d.from_image.out_channels) == (1, 4)
    assert stages(d.layers) == [
        ("block", 4, 2), ("down",), ("conv", 4, 8),
        ("block", 8, 2), ("block", 8, 2), ("down",),
        ("block", 8, 2), ("down",), ("conv", 8, 16),
        ("block", 16, 4),
    ]  # fmt: skip
    assert (d.basis.in_channels, d.basis.groups, d.basis.kernel_size) == (16, 16, (4, 4))
    assert d.to_logit.in_features == 16
    assert d(torch.randn(2, 1, 32, 32)).shape == (2,)
    with torch.device("meta"):
        preset = r3gan.R3GANDiscriminator()
    block = 768 * 1536 + 1536 * (1536 // 96) * 9 + 1536 * 768 + 2 * 1536
    assert sum(p.numel() for p in preset.parameters()) == 8 * block + 3 * 768 + 768 * 16 + 768
    with pytest.raises(r3gan.schema.SettingError) as err:
        r3gan.R3GANDiscriminator(spectral_norm=True)
    assert str(err.value) == (
        "spectral_norm=true is not supported: R3GAN's D has no normalisation (the paper's "
        "design); set model.spectral_norm=false"
    )


def test_plain_convs_are_msr_with_gain_1_and_the_resampler_saves_no_kernel():
    """Networks.py's ``Convolution`` without a gain is MSRInitializer's N(0, 1 / sqrt(fan_in))
    with no bias; the resampler's fixed kernel is not a checkpoint entry (non-persistent)."""
    torch.manual_seed(0)
    layer = r3gan.conv(64, 96, 3)
    assert layer.bias is None
    assert layer.weight.std().item() == pytest.approx(1 / math.sqrt(64 * 9), rel=0.05)
    assert "kernel" not in r3gan.Resample(up=True).state_dict()


def test_g_defaults_and_every_stage_setting_refused_by_its_name():
    """R3GANGenerator() is the CIFAR preset (closed-form count on the meta device); each stage
    setting, one value or one per stage, must be positive integers, named in the refusal."""
    with torch.device("meta"):
        preset = r3gan.R3GANGenerator()
    block = 768 * 1536 + 1536 * (1536 // 96) * 9 + 1536 * 768 + 2 * 1536
    assert preset.latent_dim == 64 and preset.to_image.out_channels == 3
    assert sum(p.numel() for p in preset.parameters()) == 8 * block + 768 * 16 + 64 * 768 + 768 * 3
    bad = [
        ({"resolution": 48}, "resolution=48; allowed: 28, 32, 64"),
        ({"expansion": 0}, "expansion=0: must be a positive integer"),
        ({"width": [8, 8.5, 8, 8]}, "width=8.5: must be a positive integer"),
        ({"cardinality": [2, 0, 2, 2]}, "cardinality=0: must be a positive integer"),
        (
            {"cardinality": [2, 2]},
            "cardinality=[2, 2]: one positive integer, or a list of 4 (one per stage)",
        ),
        (
            {"blocks": [1, 1, 1]},
            "blocks=[1, 1, 1]: one positive integer, or a list of 4 (one per stage)",
        ),
    ]
    for kwargs, message in bad:
        with pytest.raises(r3gan.schema.SettingError) as err:
            r3gan.R3GANGenerator(**{"width": 8, "cardinality": 2, **kwargs})
        assert str(err.value) == message
    torch.manual_seed(0)
    weights = r3gan.conv(256, 256).weight
    assert abs(weights.mean().item()) < 0.01 and torch.equal(
        r3gan.conv(4, 4, gain=0.0).weight, torch.zeros(4, 4, 1, 1)
    )


def test_g_builds_its_stages_from_the_basis_up():
    """Networks.py ``Generator``: the 4 x 4 basis at the first stage's width, scaled per channel
    by a linear map of z, then per stage a 1x1 conv where the width changes, the up-sampler and
    that stage's blocks (their width and cardinality), and the image conv from the last width."""
    g = r3gan.R3GANGenerator(
        8, 32, 1, width=[16, 8, 8, 4], cardinality=[4, 2, 2, 2], blocks=[2, 1, 2, 1]
    )
    assert g.basis.shape == (16, 4, 4) and g.basis_scale.out_features == 16
    assert stages(g.layers) == [
        ("block", 16, 4), ("block", 16, 4),
        ("conv", 16, 8), ("up",), ("block", 8, 2),
        ("up",), ("block", 8, 2), ("block", 8, 2),
        ("conv", 8, 4), ("up",), ("block", 4, 2),
    ]  # fmt: skip
    assert g.to_image.in_channels == 4
    assert g(torch.randn(2, 8)).shape == (2, 1, 32, 32)
