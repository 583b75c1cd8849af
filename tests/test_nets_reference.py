"""The networks against their reference code's layer lists (parameter counts in closed form)."""

import itertools

import pytest
import torch

from ganx.nets.resnet64 import ResNet64Discriminator, ResNet64Generator
from ganx.nets.sngan import (
    InfoMaxDiscriminator,
    SNGANDiscriminator,
    SNGANGenerator,
    SSGANDiscriminator,
    upsampled,
)


def count(module):
    return sum(p.numel() for p in module.parameters())


def roth_resnet_d_params(d=64, channels=3):
    """gan_64x64.py ResNetDiscriminator in regularized_gan mode: 3x3 stem conv (bias), four
    ResidualBlock(resample='down'): BN1, conv1 a->a 3x3 no bias, BN2, ConvMeanPool a->b 3x3,
    MeanPoolConv shortcut a->b 1x1; linear 4*4*8d -> 1."""
    total = 9 * channels * d + d
    for a, b in [(d, 2 * d), (2 * d, 4 * d), (4 * d, 8 * d), (8 * d, 8 * d)]:
        total += 2 * a + 9 * a * a + 2 * a + 9 * a * b + b + a * b + b
    return total + 16 * 8 * d + 1


def roth_resnet_g_params(d=64, z=128, channels=3):
    total = z * 16 * 8 * d + 16 * 8 * d
    for a, b in [(8 * d, 8 * d), (8 * d, 4 * d), (4 * d, 2 * d), (2 * d, d)]:
        total += 2 * a + 9 * a * b + 2 * b + 9 * b * b + b + a * b + b
    return total + 2 * d + 9 * d * channels + channels


def test_resnet64_matches_roth_et_al_regularized_mode():
    d = ResNet64Discriminator()
    assert count(d) == roth_resnet_d_params() == 7_491_841
    assert count(ResNet64Generator()) == roth_resnet_g_params() == 8_540_483
    assert d.stem.out_channels == 64  # their 'Discriminator.Input' conv: 3 -> dim
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules()) == 8
    assert not any(
        isinstance(m, torch.nn.BatchNorm2d) for m in ResNet64Discriminator(norm="none").modules()
    )
    layer = ResNet64Discriminator(norm="layer")
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in layer.modules()) == 8


def test_wgan_gp_mnist_is_gan_mnists_generator_and_critic():
    """gan_mnist.py l. 55-101 (WGAN-GP mode, DIM 64): critic 5x5 convs 1-64-128-256 with
    biases, linear 4*4*256 -> 1; G linear 128 -> 4*4*256, 5x5 deconvs 256-128-64-1."""
    from ganx.nets.wgan_gp_mnist import WGANGPMnistCritic, WGANGPMnistGenerator

    critic, generator = WGANGPMnistCritic(), WGANGPMnistGenerator()
    convs = 1 * 64 * 25 + 64 + 64 * 128 * 25 + 128 + 128 * 256 * 25 + 256
    assert count(critic) == convs + 4 * 4 * 256 + 1 == 1_030_145
    deconvs = 256 * 128 * 25 + 128 + 128 * 64 * 25 + 64 + 64 * 25 + 1
    assert count(generator) == 128 * 4096 + 4096 + deconvs == 1_554_177
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    images = generator(torch.randn(2, 128))
    assert images.shape == (2, 1, 28, 28) and critic(images).shape == (2,)


def block_widths(blocks):
    return [b.conv2.out_channels for b in blocks]


def test_sngan_48_is_mimicrys_48_px_network():
    """mimicry sngan_48.py: G ngf 512, bottom 6, blocks 512->256->128->64; D ndf 1024,
    DBlockOptimized(3, 64), DBlock 64->128->256->512 (down), DBlock 512->1024 (no down)."""
    g = SNGANGenerator(resolution=48)
    assert g.bottom == 6 and g.linear.out_features == 36 * 512
    assert block_widths(g.blocks) == [256, 128, 64] and g.to_rgb.in_channels == 64
    d = SNGANDiscriminator(resolution=48)
    assert block_widths(d.local_blocks) == [64, 128, 256, 512]
    assert [b.downsample for b in d.local_blocks] == [True, True, True, True]
    assert d.global_block.conv2.out_channels == 1024 and not d.global_block.downsample
    assert SSGANDiscriminator(resolution=48).rotation_head.in_features == 1024
    info = InfoMaxDiscriminator(resolution=48)  # infomax_gan_48.py: local heads ndf >> 1 wide
    assert info.local_a.in_channels == 512 and info.global_a.in_features == 1024
    local, global_ = info.projected_features(torch.randn(2, 3, 48, 48))
    assert local.shape == (2, 1024, 9) and global_.shape == (2, 1024)


def mimicry_d_params(blocks, ndf):
    """mimicry's D (kwotsin/mimicry@a7fda06:torch_mimicry/modules/resblocks.py): the optimised
    first block (3x3 3->a, 3x3 a->a, 1x1 3->a, all with biases), then ``DBlock(a, b)`` whose
    hidden width is its input width (l. 184): 3x3 a->a, 3x3 a->b, and a 1x1 a->b shortcut when
    a != b or it down-samples; the final SNLinear(ndf, 1)."""
    first = blocks[0][0]
    total = 27 * first + first + 9 * first * first + first + 3 * first + first
    for (a, _), (b, down) in itertools.pairwise(blocks):
        total += 9 * a * a + a + 9 * a * b + b + ((a * b + b) if a != b or down else 0)
    return total + ndf + 1


def test_sngan_48_d_has_mimicrys_parameter_count():
    """sngan_48.py:72-77: DBlockOptimized(3, 64), DBlock 64->128->256->512 down, 512->1024."""
    plan = [(64, True), (128, True), (256, True), (512, True), (1024, False)]
    assert count(SNGANDiscriminator(resolution=48)) == mimicry_d_params(plan, 1024) == 10_141_441
    d = SNGANDiscriminator(resolution=48)
    assert [b.conv1.out_channels for b in d.local_blocks] == [64, 64, 128, 256]
    assert d.global_block.conv1.out_channels == 512
    old = SNGANDiscriminator(resolution=48, hidden_width="output")
    assert count(old) == 19_542_721 and old.global_block.conv1.out_channels == 1024
    plan32 = [(128, True), (128, True), (128, False), (128, False)]
    assert count(SNGANDiscriminator(resolution=32)) == mimicry_d_params(plan32, 128) == 1_053_825


def test_sngan_generator_upsamples_bilinearly_as_mimicry():
    """GBlock._upsample_conv (resblocks.py:104-112): bilinear, align_corners=False; nearest
    is ``model.generator.upsample=nearest``. Same weights, different images."""
    torch.manual_seed(0)
    g = SNGANGenerator(resolution=32, ngf=8).eval()
    x = torch.randn(1, 8, 4, 4)
    block = g.blocks[0]
    smooth = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
    assert torch.equal(block.shortcut(smooth), block.shortcut(upsampled(x, "bilinear")))
    z = torch.randn(2, 128)
    bilinear = g(z)
    for b in g.blocks:
        b.upsample = "nearest"
    assert not torch.allclose(bilinear, g(z))
    nearest = SNGANGenerator(resolution=32, ngf=8, upsample="nearest").blocks[0]
    assert nearest.upsample == "nearest"
    blocky = upsampled(x, "nearest")
    assert torch.equal(blocky[..., ::2, ::2], blocky[..., 1::2, 1::2])  # 2x2 copies


def test_sngan_32_unchanged():
    assert count(SNGANGenerator(resolution=32)) == 4_276_739
    assert count(SNGANDiscriminator(resolution=32)) == 1_053_825
    assert block_widths(SNGANDiscriminator(resolution=32).local_blocks) == [128, 128, 128]


def randomised_norms(module):
    """Non-trivial BatchNorm statistics and affine parameters, so a skipped or misplaced norm
    changes the output."""
    gen = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
            with torch.no_grad():
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=gen))
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return module.eval()


def test_resnet64_forward_is_roths_residual_blocks_written_out():
    """G and D at d = 2 against gan_64x64.py's forward written out with torch's functions
    (rothk/Stabilizing_GANs@023b84d:igul222_GANs/gan_64x64.py: ResidualBlock :264, with
    'up': norm-ReLU-UpsampleConv-norm-ReLU-conv plus the up-sampled 1x1 shortcut; 'down':
    norm-ReLU-conv-norm-ReLU-ConvMeanPool plus MeanPoolConv; ResNetGenerator :302 ends
    BN-ReLU-conv-tanh, ResNetDiscriminator :455 ends with the linear logit)."""
    import torch.nn.functional as F

    def norm(layer, x):
        if isinstance(layer, torch.nn.GroupNorm):
            return F.group_norm(x, 1, layer.weight, layer.bias, layer.eps)
        if isinstance(layer, torch.nn.Identity):
            return x
        return F.batch_norm(x, layer.running_mean, layer.running_var, layer.weight, layer.bias)

    def conv(layer, x):
        return F.conv2d(x, layer.weight, layer.bias, padding=layer.weight.shape[-1] // 2)

    def up_block(b, x):
        h = conv(b.conv1, F.interpolate(F.relu(norm(b.bn1, x)), scale_factor=2, mode="nearest"))
        h = conv(b.conv2, F.relu(norm(b.bn2, h)))
        return conv(b.shortcut, F.interpolate(x, scale_factor=2, mode="nearest")) + h

    def down_block(b, x):
        h = conv(b.conv1, F.relu(norm(b.norm1, x)))
        h = F.avg_pool2d(conv(b.conv2, F.relu(norm(b.norm2, h))), 2)
        return conv(b.shortcut, F.avg_pool2d(x, 2)) + h

    torch.manual_seed(0)
    g = randomised_norms(ResNet64Generator(latent_dim=8, dim=2))
    z = torch.randn(3, 8)
    h = F.linear(z, g.linear.weight, g.linear.bias).view(3, 16, 4, 4)
    for block in g.blocks:
        h = up_block(block, h)
    expected = conv(g.to_rgb, F.relu(norm(g.bn, h))).tanh()
    out = g(z)
    assert out.shape == (3, 3, 64, 64) and torch.allclose(out, expected, atol=1e-6)
    x = torch.randn(3, 3, 64, 64)
    for kind in ("batch", "layer", "none"):
        d = randomised_norms(ResNet64Discriminator(dim=2, norm=kind))
        h = conv(d.stem, x)
        for block in d.blocks:
            h = down_block(block, h)
        expected = F.linear(h.flatten(1), d.linear.weight, d.linear.bias).flatten()
        out = d(x)
        assert out.shape == (3,) and torch.allclose(out, expected, atol=1e-5), kind


def test_dirac_nets_are_the_papers_two_parameters():
    """Mescheder et al. 2018, sec. 2.2: every sample of G is theta (the latent is ignored) and
    D(x) = psi * x, one logit per sample."""
    from ganx.nets.dirac import DiracDiscriminator, DiracGenerator

    g, d = DiracGenerator(latent_dim=3, theta0=0.7), DiracDiscriminator(psi0=-2.0)
    fake = g(torch.randn(5, 3))
    assert fake.shape == (5, 1) and torch.equal(fake, torch.full((5, 1), 0.7))
    x = torch.tensor([[1.0], [-0.5], [3.0]])
    assert torch.equal(d(x), torch.tensor([-2.0, 1.0, -6.0]))
    fake.sum().backward()
    assert g.theta.grad.item() == 5.0  # each sample is theta itself, not a copy


def test_infomax_projections_are_residual_as_mimicrys():
    """kwotsin/mimicry@2c9a972:torch_mimicry/nets/infomax_gan/infomax_gan_base.py,
    ``_project_local`` and ``_project_global``: b(relu(a(x))) plus the skip projection sc(x),
    for the local (1x1 convs) and the global (linear) features."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    d = InfoMaxDiscriminator(resolution=32, channels=3, ndf=8, spectral_norm=False, nrkhs=16)
    x = torch.randn(2, 3, 32, 32)
    local, global_ = d.features(x)
    expected_local = d.local_b(F.relu(d.local_a(local))) + d.local_skip(local)
    expected_global = d.global_b(F.relu(d.global_a(global_))) + d.global_skip(global_)
    got_local, got_global = d.projected_features(x)
    assert torch.equal(got_local, expected_local.flatten(2))
    assert torch.equal(got_global, expected_global)


def test_sngan_blocks_are_mimicrys_residual_blocks_written_out():
    """kwotsin/mimicry@a7fda06:torch_mimicry/modules/resblocks.py: ``GBlock`` (BN-ReLU-up-conv-
    BN-ReLU-conv plus the up-sampled 1x1 shortcut), ``DBlock`` (ReLU-conv-ReLU-conv
    then average pooling when down-sampling, plus the 1x1 shortcut pooled after its conv, or x
    itself) and ``DBlockOptimized`` (no first ReLU; its shortcut pools before its conv)."""
    import torch.nn.functional as F

    from ganx.nets.sngan import DiscriminatorBlock, GeneratorBlock

    def conv(layer, x):
        return F.conv2d(x, layer.weight, layer.bias, padding=layer.weight.shape[-1] // 2)

    def bn(layer, x):
        return F.batch_norm(x, layer.running_mean, layer.running_var, layer.weight, layer.bias)

    def up(x, mode):
        return F.interpolate(
            x, scale_factor=2, mode=mode, align_corners=False if mode == "bilinear" else None
        )

    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    for mode in ("bilinear", "nearest"):
        g = randomised_norms(GeneratorBlock(4, 6, upsample=mode))
        h = conv(g.conv2, F.relu(bn(g.bn2, conv(g.conv1, up(F.relu(bn(g.bn1, x)), mode)))))
        assert torch.allclose(g(x), h + conv(g.shortcut, up(x, mode)), atol=1e-6), mode
    for first, down, width_out in (
        (True, True, 6),
        (False, True, 6),
        (False, False, 6),
        (False, False, 4),
    ):
        d = DiscriminatorBlock(4, width_out, down, first, sn=False)
        h = conv(d.conv2, F.relu(conv(d.conv1, x if first else F.relu(x))))
        h = F.avg_pool2d(h, 2) if down else h
        if first:
            skip = conv(d.shortcut, F.avg_pool2d(x, 2))
        elif d.shortcut is None:
            skip = x
        else:
            skip = conv(d.shortcut, x)
            skip = F.avg_pool2d(skip, 2) if down else skip
        assert torch.allclose(d(x), h + skip, atol=1e-6), (first, down, width_out)
    assert DiscriminatorBlock(4, 4, False, False, sn=False).shortcut is None  # x itself


def test_ssgan_and_infomax_defaults_and_the_rotation_heads_init():
    """Built with no arguments both are mimicry's 32 px SNGAN D with spectral norm on every layer;
    SSGAN's rotation head is Xavier-uniform with gain 1 (its raw weight within that bound)."""
    import math

    from ganx.nets.sngan import SSGANDiscriminator

    torch.manual_seed(0)
    for cls in (SSGANDiscriminator, InfoMaxDiscriminator):
        d = cls()
        assert d.global_width == 128 and cls(ndf=16).global_width == 16
        wide = cls(resolution=48, ndf=64, hidden_width="output")
        assert count(wide) > count(cls(resolution=48, ndf=64))  # widens in the first conv
        layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        assert layers and all(hasattr(m, "parametrizations") for m in layers), cls.__name__
        assert d(torch.randn(2, 3, 32, 32)).shape == (2,)
    head = SSGANDiscriminator().rotation_head
    raw = head.parametrizations.weight.original
    bound = math.sqrt(6 / (raw.shape[0] + raw.shape[1]))
    assert raw.shape[0] == 4 and raw.abs().max() <= bound and raw.abs().max() > 0.8 * bound


def test_sngan_defaults_and_infomax_heads():
    """SNGAN's G block up-samples bilinearly by default and G refuses another resolution by
    name; InfoMax's projection heads are Xavier-uniform with gain 1 and nrkhs must be positive."""
    import math

    from ganx.nets.sngan import GeneratorBlock
    from ganx.schema import SettingError

    assert GeneratorBlock(4, 4).upsample == "bilinear"
    from ganx.nets.sngan import DiscriminatorBlock

    # mimicry's DBlock: hidden width = input width, so a widening block widens in its 2nd conv
    widening = DiscriminatorBlock(4, 8, downsample=True, first=False, sn=False)
    assert (widening.conv1.out_channels, widening.conv2.out_channels) == (4, 8)
    assert SNGANGenerator(latent_dim=8, ngf=8).blocks[0].upsample == "bilinear"
    with pytest.raises(SettingError, match=r"^resolution=64; allowed: 32, 48$"):
        SNGANGenerator(resolution=64)
    with pytest.raises(SettingError, match=r"^upsample='bicubic'; allowed: bilinear, nearest$"):
        SNGANGenerator(upsample="bicubic")
    with pytest.raises(SettingError, match=r"^ngf=0: must be a positive integer$"):
        SNGANGenerator(ngf=0)
    with pytest.raises(SettingError, match=r"^nrkhs=0: must be a positive integer$"):
        InfoMaxDiscriminator(nrkhs=0)
    for kwargs, message in (
        ({"resolution": 64}, r"^resolution=64; allowed: 32, 48$"),
        ({"hidden_width": "x"}, r"^hidden_width='x'; allowed: input, output$"),
        ({"ndf": 0}, r"^ndf=0: must be a positive integer$"),
    ):
        with pytest.raises(SettingError, match=message):
            SNGANDiscriminator(**kwargs)
    plain = SNGANDiscriminator()  # 32 px, mimicry's ndf, spectral norm on every layer
    layers = [m for m in plain.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert plain.global_width == 128 and all(hasattr(m, "parametrizations") for m in layers)
    torch.manual_seed(0)
    d = InfoMaxDiscriminator(ndf=64, nrkhs=256)
    for head in (d.local_b, d.global_b, d.global_skip):
        raw = head.parametrizations.weight.original.flatten(1)
        bound = math.sqrt(6 / (raw.shape[0] + raw.shape[1]))
        assert bound * 0.8 < raw.abs().max() <= bound
