"""Every net's layers inspected, not only its outputs: which layers carry spectral norm and how
each is initialised, as the reference the net follows defines it (cited per test; the nets'
module docstrings give the full correspondence).

Initialisations are checked by their statistics on the nets at their configured widths: a
uniform U(-b, b) reaches close to b and never beyond it, a normal has its std; the tolerances
separate the reference's init from the alternatives (PyTorch's default, another gain)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import compose_cfg
from key_cover import override
from torch import nn

from ganx.build import build_nets

LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
MODELS = {  # model -> what it needs composed with (the data set's resolution)
    "dcgan": [],
    "sngan": ["dataset.resolution=32"],
    "ssgan": ["dataset.resolution=32"],
    "infomax": ["dataset.resolution=32"],
    "resnet64": ["dataset.resolution=64"],
    "wgan_gp_mnist": [],
    "mlp": [],
    "dragan_mlp": [],
    "toy2d": ["dataset=grid25"],
    "toy3d": ["dataset=mog3d"],
}


def nets(model: str, *overrides: str, tiny: bool = False):
    torch.manual_seed(0)
    return build_nets(compose_cfg(f"model={model}", *MODELS.get(model, []), *overrides, tiny=tiny))


def raw_weight(layer: nn.Module) -> torch.Tensor:
    """The weight as initialised (under spectral norm: the parametrization's original)."""
    if hasattr(layer, "parametrizations"):
        return layer.parametrizations.weight.original.detach()
    return layer.weight.detach()


def is_spectral(layer: nn.Module) -> bool:
    return hasattr(layer, "parametrizations") and any(
        type(p).__name__ == "_SpectralNorm" for p in layer.parametrizations.weight
    )


def layers(net: nn.Module, *names: str):
    """The conv/linear layers of ``net`` (those whose name ends in one of ``names``, if given)."""
    found = [(n, m) for n, m in net.named_modules() if isinstance(m, LAYERS)]
    return [m for n, m in found if not names or n.endswith(names)]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_spectral_norm_on_every_d_layer_exactly_when_configured(model):
    """Miyato et al. 2018 normalise every D layer, none of G's (sec. 2; mimicry's SNGAN D wraps
    each conv and the linear, kwotsin/mimicry@a7fda06:torch_mimicry/modules/resblocks.py,
    ``SNConv2d``/``SNLinear``). A key that no longer reached the net would leave D plain."""
    for enabled in (False, True):
        generator, discriminator = nets(model, f"model.spectral_norm={str(enabled).lower()}")
        d_layers = layers(discriminator)
        assert d_layers and all(is_spectral(m) == enabled for m in d_layers), (model, enabled)
        assert not any(is_spectral(m) for m in layers(generator))
        if enabled and model in ("dcgan",):  # SNGAN's "standard CNN": no BatchNorm in D
            assert not any(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules())


def test_the_configured_defaults_put_spectral_norm_where_the_references_do():
    for model in ("sngan", "ssgan", "infomax"):
        assert all(is_spectral(m) for m in layers(nets(model)[1])), model
    _, plain = nets("dcgan", override("model.spectral_norm", True, option="model/dcgan"))
    assert all(is_spectral(m) for m in layers(plain))


def test_dcgan_weights_are_normal_0_02_and_batchnorm_scales_normal_1_0_02():
    """pytorch/examples@00b1e34:dcgan/main.py:93-99 ``weights_init``: conv weights N(0, 0.02),
    BatchNorm weights N(1, 0.02), biases 0 (Radford et al. 2016, sec. 4)."""
    for net in nets("dcgan"):
        convs = torch.cat([raw_weight(m).flatten() for m in layers(net)])
        assert convs.std().item() == pytest.approx(0.02, rel=0.05)
        assert abs(convs.mean().item()) < 0.001
        norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        scales = torch.cat([m.weight.detach() for m in norms])
        assert scales.mean().item() == pytest.approx(1.0, abs=0.005)
        assert scales.std().item() == pytest.approx(0.02, rel=0.2)
        assert all(torch.all(m.bias == 0) for m in norms)
    _, d = nets("dcgan", override("model.discriminator.norm", "none"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def assert_xavier_uniform(layer_list, gain: float):
    """U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)): within b, and close to it."""
    for layer in layer_list:
        weight = raw_weight(layer)
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        assert weight.abs().max().item() <= bound * (1 + 1e-6)
        assert weight.abs().max().item() >= 0.95 * bound, (layer, gain)
        if layer.bias is not None:
            assert torch.all(layer.bias == 0)


@pytest.mark.parametrize("model", ["sngan", "resnet64"])
def test_residual_convs_xavier_gain_sqrt2_shortcuts_and_ends_gain_1(model):
    """The Chainer SNGAN code: GlorotUniform(sqrt(2)) for a block's two convs, GlorotUniform()
    for the shortcut (pfnet-research/sngan_projection@ab97f6b:dis_models/resblocks.py:16-17,
    :23-26); ganx's resnet64 uses the same init in place of their ``he_init`` (documented in
    ganx.nets.resnet64, rothk/Stabilizing_GANs@023b84d:igul222_GANs/gan_64x64.py:264)."""
    for net in nets(model):
        assert_xavier_uniform(layers(net, "conv1", "conv2"), math.sqrt(2))
        assert_xavier_uniform(layers(net, "shortcut", "linear", "to_rgb", "stem"), 1.0)


def test_r3gan_branch_init_is_fixup_scaled_and_its_last_conv_zero():
    """brownvc/R3GAN@19a7ddf:R3GAN/Networks.py:7-14 (``MSRInitializer``: N(0, gain/sqrt(fan_in)),
    bias 0) and :31-35 (branch gain sqrt(2 / (1 + 0.2^2)) * L^(-1/4) with L the blocks of the
    whole net; the third conv gain 0)."""
    generator, discriminator = nets(
        "r3gan",
        "dataset.resolution=32",
        "model.generator.width=64",
        "model.generator.cardinality=4",
        tiny=False,
    )
    for net in (generator, discriminator):
        blocks = [m for m in net.modules() if hasattr(m, "project") and hasattr(m, "expand")]
        total = len(blocks)
        gain = math.sqrt(2 / (1 + 0.2**2)) * total ** (-1 / 4)
        assert total >= 4
        for block in blocks:
            assert torch.all(block.project.weight == 0)
            for layer in (block.expand, block.grouped):
                fan_in = nn.init._calculate_fan_in_and_fan_out(layer.weight)[0]
                std = layer.weight.std().item()
                assert std == pytest.approx(gain / math.sqrt(fan_in), rel=0.15), layer


def test_mlp_batchnorm_momentum_and_eps_reach_every_layer():
    """eriklindernoren/PyTorch-GAN@36d3c77:implementations/gan/gan.py:45 passes 0.8 as eps;
    ganx's model=mlp uses the intended momentum (see ganx.nets.mlp); both are keys."""
    generator, _ = nets(
        "mlp", override("model.generator.bn_momentum", 0.3), override("model.generator.bn_eps", 0.8)
    )
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms and all(m.momentum == 0.3 and m.eps == 0.8 for m in norms)


def test_dragan_mlp_is_he_normal_and_mlp_pytorchs_default():
    """kodalinaveen3/DRAGAN@5cf95ab:DRAGAN.ipynb, cell 1 ``xavier_init``: N(0, 2 / fan_in),
    zero biases; PyTorch-GAN's gan.py keeps PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    for net in nets("dragan_mlp"):
        for layer in layers(net):
            if layer.in_features >= 64:
                std = math.sqrt(2.0 / layer.in_features)
                assert layer.weight.std().item() == pytest.approx(std, rel=0.1)
            assert torch.all(layer.bias == 0)
    for net in nets("mlp"):
        for layer in layers(net):
            bound = 1 / math.sqrt(layer.in_features)
            assert layer.weight.abs().max().item() <= bound
    _, pytorch_init = nets("dragan_mlp", override("model.discriminator.init", "pytorch"))
    assert not torch.all(layers(pytorch_init)[0].bias == 0)


def test_toy3d_weights_truncated_normal_and_zero_biases():
    """rothk/Stabilizing_GANs@023b84d:3DGAN/3DGAN.py:141-175: truncated normal (2 std) of std
    0.1, zero biases, tanh layers."""
    for net in nets("toy3d"):
        weights = torch.cat([m.weight.detach().flatten() for m in layers(net)])
        assert weights.abs().max().item() <= 0.2
        assert weights.std().item() == pytest.approx(0.1 * 0.8796, rel=0.1)  # 2-std truncation
        assert all(torch.all(m.bias == 0) for m in layers(net))
        assert any(isinstance(m, nn.Tanh) for m in net.modules())
    wide, _ = nets("toy3d", override("model.generator.init_std", 0.5))
    assert torch.cat([m.weight.flatten() for m in layers(wide)]).abs().max().item() > 0.2


def test_wgan_gp_mnist_has_no_batchnorm_and_pytorchs_default_init():
    """igul222/improved_wgan_training@fa66c57:gan_mnist.py:55-101 in WGAN-GP mode: no BatchNorm;
    ganx keeps PyTorch's default init (documented in ganx.nets.wgan_gp_mnist)."""
    for net in nets("wgan_gp_mnist"):
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
        for layer in layers(net):
            fan_in = nn.init._calculate_fan_in_and_fan_out(layer.weight)[0]
            assert layer.weight.abs().max().item() <= 1 / math.sqrt(fan_in) + 1e-7


def test_dirac_starts_at_its_configured_theta_and_psi():
    """Mescheder et al. 2018, sec. 2.2: the figures start from (1, 1); both are keys."""
    generator, discriminator = build_nets(
        compose_cfg(
            "model=dirac",
            "dataset=dirac",
            override("model.generator.theta0", 0.5),
            override("model.discriminator.psi0", -2.0),
        )
    )
    assert generator.theta.item() == 0.5 and discriminator.psi.item() == -2.0


def test_r3gan_width_cardinality_blocks_expansion_shape_its_blocks():
    generator, discriminator = nets(
        "r3gan",
        "dataset.resolution=32",
        override("model.generator.width", 12),
        override("model.generator.cardinality", 3),
        override("model.generator.blocks", 1),
        override("model.generator.expansion", 3),
        tiny=False,
    )
    for net in (generator, discriminator):
        blocks = [m for m in net.modules() if hasattr(m, "project") and hasattr(m, "expand")]
        assert len(blocks) == 4  # 4 stages at 32 px, 1 block each (D mirrors G)
        for block in blocks:
            assert block.expand.out_channels == 36 and block.grouped.groups == 3
            assert block.project.out_channels == 12


def test_resnet64_dim_and_sngan_upsampling_and_d_hidden_width():
    g, d = nets(
        "resnet64",
        override("model.generator.dim", 4),
        override("model.discriminator.dim", 8),
        tiny=False,
    )
    assert layers(d, "stem")[0].out_channels == 8 and layers(g, "to_rgb")[0].in_channels == 4
    g, _ = nets("sngan", override("model.generator.upsample", "nearest"), tiny=True)
    assert {b.upsample for b in g.blocks} == {"nearest"}
    _, wide_first = nets(
        "sngan",
        "dataset.resolution=48",
        "model.discriminator.ndf=64",
        override("model.discriminator.hidden_width", "output"),
        tiny=True,
    )
    _, wide_second = nets("sngan", "dataset.resolution=48", "model.discriminator.ndf=64", tiny=True)
    # a widening block: its first conv widens with "output", its second with mimicry's "input"
    first = [m.out_channels for m in layers(wide_first, "conv1")]
    second = [m.out_channels for m in layers(wide_second, "conv1")]
    assert first != second and sum(first) > sum(second)


def test_infomax_rkhs_width_and_toy3d_data_dim_and_d_init_std():
    _, d = nets("infomax", override("model.discriminator.nrkhs", 24), tiny=True)
    assert d.local_b.out_channels == 24
    g, d = nets(
        "toy3d",
        override("model.generator.data_dim", 4),
        override("model.discriminator.data_dim", 4),
        override("model.discriminator.init_std", 0.5),
    )
    assert g(torch.randn(5, 2)).shape == (5, 4) and d(torch.randn(5, 4)).shape == (5,)
    assert torch.cat([m.weight.flatten() for m in layers(d)]).abs().max().item() > 0.2


def test_dragan_mlp_generator_init_can_be_pytorchs():
    g, _ = nets("dragan_mlp", override("model.generator.init", "pytorch"))
    assert not torch.all(layers(g)[0].bias == 0)


def layer_list(net: nn.Module) -> list[tuple]:
    """Each layer of a Sequential as (type, widths, kernel, stride, padding, bias) or its
    activation's parameters, in order."""
    out = []
    for m in net:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            spec = (m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0])
            out.append((type(m).__name__, *spec, m.bias is not None))
        elif isinstance(m, nn.BatchNorm2d):
            out.append(("BatchNorm2d", m.num_features))
        elif isinstance(m, nn.LeakyReLU):
            out.append(("LeakyReLU", m.negative_slope))
        else:
            out.append((type(m).__name__,))
    return out


def test_dcgan_64_is_the_pytorch_examples_dcgan_layer_for_layer():
    """pytorch/examples@00b1e34:dcgan/main.py:101-124 (_netG) and :139-161 (_netD) at 64 px,
    nz 100, ngf = ndf = 64: G a 4x4 stride-1 projection then stride-2 4x4 transposed convs,
    no biases, BatchNorm + ReLU, tanh; D stride-2 4x4 convs without biases, LeakyReLU(0.2), no
    BatchNorm on the first layer, a 4x4 conv to one logit (no sigmoid: ganx's losses take
    logits). 32 and 28 px drop one upsampling (28 px: a 7x7 projection)."""
    from ganx.nets.dcgan import DCGANDiscriminator, DCGANGenerator

    g = DCGANGenerator(100, resolution=64, channels=3, ngf=64)
    up = [("ConvTranspose2d", 100, 512, 4, 1, 0, False), ("BatchNorm2d", 512), ("ReLU",)]
    for a, b in [(512, 256), (256, 128), (128, 64)]:
        up += [("ConvTranspose2d", a, b, 4, 2, 1, False), ("BatchNorm2d", b), ("ReLU",)]
    assert layer_list(g.net) == [*up, ("ConvTranspose2d", 64, 3, 4, 2, 1, False), ("Tanh",)]
    d = DCGANDiscriminator(resolution=64, channels=3, ndf=64)
    down = [("Conv2d", 3, 64, 4, 2, 1, False), ("LeakyReLU", 0.2)]
    for a, b in [(64, 128), (128, 256), (256, 512)]:
        down += [("Conv2d", a, b, 4, 2, 1, False), ("BatchNorm2d", b), ("LeakyReLU", 0.2)]
    assert layer_list(d.net)[:-1] == down
    assert layer_list(d.net)[-1][:6] == ("Conv2d", 512, 1, 4, 1, 0)
    assert g(torch.randn(2, 100)).shape == (2, 3, 64, 64) and d(
        torch.zeros(2, 3, 64, 64)
    ).shape == (2,)
    small = DCGANGenerator(16, resolution=28, channels=1, ngf=8)
    assert layer_list(small.net)[0] == ("ConvTranspose2d", 16, 16, 7, 1, 0, False)
    assert small(torch.randn(1, 16)).shape == (1, 1, 28, 28)
    # the classes' own defaults: the paper's 32 px CIFAR-10 nets (ngf = ndf = 64, BatchNorm)
    paper_d, paper_g = layer_list(DCGANDiscriminator().net), layer_list(DCGANGenerator(100).net)
    assert paper_d[:4] == [*down[:2], *down[2:4]] and len(paper_d) == 9
    assert paper_g[0] == ("ConvTranspose2d", 100, 256, 4, 1, 0, False) and len(paper_g) == 11
    assert paper_g[-2] == ("ConvTranspose2d", 64, 3, 4, 2, 1, False)
    thirty_two = DCGANDiscriminator(resolution=32, channels=1, ndf=8, norm="none")
    convs = [x for x in layer_list(thirty_two.net) if x[0] == "Conv2d"]
    assert convs == [
        ("Conv2d", 1, 8, 4, 2, 1, True),  # no BatchNorm: biases, as the critics' references
        ("Conv2d", 8, 16, 4, 2, 1, True),
        ("Conv2d", 16, 32, 4, 2, 1, True),
        ("Conv2d", 32, 1, 4, 1, 0, True),
    ]


def test_dcgan_spectral_norm_keeps_the_papers_init_and_bad_arguments_are_named():
    """Under spectral norm the raw weight (the parametrization's original) is what is drawn
    from N(0, 0.02), as without it; a bad resolution, width or norm is refused naming the
    argument (the builder renames it to its config key)."""
    from ganx.nets.dcgan import DCGANDiscriminator, DCGANGenerator
    from ganx.schema import SettingError

    torch.manual_seed(0)
    sn = DCGANDiscriminator(resolution=32, channels=3, ndf=64, spectral_norm=True)
    assert all(is_spectral(m) for m in layers(sn))
    raw = torch.cat([raw_weight(m).flatten() for m in layers(sn)])
    assert raw.std().item() == pytest.approx(0.02, rel=0.05)
    assert DCGANGenerator(7, resolution=28, ngf=8).latent_dim == 7
    bad = [
        (lambda: DCGANGenerator(8, resolution=48), "resolution=48; allowed: 28, 32, 64"),
        (lambda: DCGANGenerator(8, ngf=0), "ngf=0: must be a positive integer"),
        (lambda: DCGANDiscriminator(resolution=48), "resolution=48; allowed: 28, 32, 64"),
        (lambda: DCGANDiscriminator(ndf=0), "ndf=0: must be a positive integer"),
        (lambda: DCGANDiscriminator(norm="layer"), "norm='layer'; allowed: batch, none"),
    ]
    for build, message in bad:
        with pytest.raises(SettingError) as refused:
            build()
        assert str(refused.value) == message


def test_every_family_names_its_bad_arguments():
    """Each net refuses a bad argument naming it, in the schema's words (the builder renames the
    argument to its config key): the families beside DCGAN's (the test above)."""
    from ganx.nets.mlp import MLPDiscriminator, MLPGenerator
    from ganx.nets.resnet64 import ResNet64Discriminator, ResNet64Generator
    from ganx.nets.toy2d import Toy2dDiscriminator, Toy2dGenerator
    from ganx.nets.wgan_gp_mnist import WGANGPMnistCritic, WGANGPMnistGenerator
    from ganx.schema import SettingError

    bad = [
        (lambda: WGANGPMnistGenerator(resolution=32), "resolution=32; allowed: 28"),
        (lambda: WGANGPMnistGenerator(dim=0), "dim=0: must be a positive integer"),
        (lambda: WGANGPMnistCritic(resolution=32), "resolution=32; allowed: 28"),
        (lambda: WGANGPMnistCritic(dim=0), "dim=0: must be a positive integer"),
        (lambda: ResNet64Generator(resolution=32), "resolution=32; allowed: 64"),
        (lambda: ResNet64Generator(dim=0), "dim=0: must be a positive integer"),
        (lambda: ResNet64Discriminator(resolution=32), "resolution=32; allowed: 64"),
        (lambda: ResNet64Discriminator(norm="group"), "norm='group'; allowed: batch, layer, none"),
        (lambda: ResNet64Discriminator(dim=0), "dim=0: must be a positive integer"),
        (lambda: Toy2dGenerator(activation="gelu"), "activation='gelu'; allowed: relu, tanh"),
        (lambda: Toy2dGenerator(hidden=0), "hidden=0: must be a positive integer"),
        (lambda: Toy2dDiscriminator(depth=0), "depth=0: must be a positive integer"),
        (
            lambda: MLPGenerator(8, (1, 8, 8), widths=[]),
            "widths=[]: must be a non-empty list of widths",
        ),
        (
            lambda: MLPGenerator(8, (1, 8, 8), widths="ab"),
            "widths='ab': must be a non-empty list of widths",
        ),
        (
            lambda: MLPDiscriminator((1, 8, 8), widths=5),
            "widths=5: must be a non-empty list of widths",
        ),
        (
            lambda: MLPGenerator(8, (1, 8, 8), activation="x"),
            "activation='x'; allowed: leaky_relu, relu",
        ),
        (lambda: MLPGenerator(8, (1, 8, 8), init="x"), "init='x'; allowed: he_normal, pytorch"),
    ]
    for build, message in bad:
        with pytest.raises(SettingError) as refused:
            build()
        assert str(refused.value) == message


def test_the_small_nets_defaults_are_their_papers():
    """Built with no arguments: the Dirac-GAN's (theta, psi) = (1, 1) with a 1-D latent
    (Mescheder et al. 2018, sec. 2.2); the toy MLPs' 3 hidden layers of 128 ReLU units from a
    2-D latent to 2-D points, without spectral norm (conf/model/toy2d.yaml); the WGAN-GP MNIST
    critic and the ResNet-64 D without spectral norm; a toy net's data dimension is its
    data set's resolution."""
    from torch import nn

    from ganx.nets.dirac import DiracDiscriminator, DiracGenerator
    from ganx.nets.resnet64 import ResNet64Discriminator
    from ganx.nets.toy2d import Toy2dDiscriminator, Toy2dGenerator
    from ganx.nets.wgan_gp_mnist import WGANGPMnistCritic

    g, d = DiracGenerator(), DiracDiscriminator()
    assert (g.latent_dim, g.theta.item(), d.psi.item()) == (1, 1.0, 1.0)
    toy_g, toy_d = Toy2dGenerator(), Toy2dDiscriminator()
    assert toy_g.latent_dim == 2
    for net, ends in ((toy_g, (2, 2)), (toy_d, (2, 1))):
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        shapes = [(m.in_features, m.out_features) for m in linears]
        assert shapes == [(ends[0], 128), (128, 128), (128, 128), (128, ends[1])]
        assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 3
    for net in (toy_g, toy_d, WGANGPMnistCritic(dim=4), ResNet64Discriminator(dim=2)):
        assert not any(is_spectral(m) for m in net.modules()), type(net).__name__
    from ganx.nets.mlp import MLPDiscriminator, MLPGenerator

    mlp_g = MLPGenerator(8, (1, 4, 4), widths=[16, 32])
    norms = [m for m in mlp_g.modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms and {(m.eps, m.momentum) for m in norms} == {(1e-5, 0.2)}
    assert mlp_g.latent_dim == 8
    assert not any(is_spectral(m) for m in MLPDiscriminator((1, 4, 4), widths=[8]).modules())
    assert Toy2dGenerator.resolutions({}) == (2,)
    assert Toy2dGenerator.resolutions({"data_dim": 3}) == (3,)


def test_wgan_gp_critic_leaks_0_2_and_the_mlp_critic_reads_every_channel():
    """gan_mnist.py's critic: LeakyReLU(0.2) after each conv; the MLP D flattens C x H x W."""
    from torch import nn

    from ganx.nets.mlp import MLPDiscriminator
    from ganx.nets.wgan_gp_mnist import WGANGPMnistCritic

    slopes = [
        m.negative_slope for m in WGANGPMnistCritic(dim=4).modules() if isinstance(m, nn.LeakyReLU)
    ]
    assert slopes and set(slopes) == {0.2}
    d = MLPDiscriminator((3, 4, 4), widths=[8])
    x = torch.randn(2, 3, 4, 4)
    assert d(x).shape == (2,)
    assert torch.equal(d(x), d.net(x.reshape(2, 48)).flatten())
