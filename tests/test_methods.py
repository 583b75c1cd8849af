"""methods.py: the method line, the warnings for unreferenced combinations, the refusals."""

import pytest
from conftest import compose_cfg

from ganx.build import build_nets
from ganx.errors import ConfigError
from ganx.methods import describe_method, method_warnings, refuse_unsupported


def warnings_for(*overrides, tiny=True):
    cfg = compose_cfg(*overrides, tiny=tiny)
    return method_warnings(cfg, build_nets(cfg)[1])


def test_warnings_name_each_unreferenced_combination():
    assert any("loss=wgan without loss.clip" in w for w in warnings_for("loss=wgan", "reg=none"))
    assert not warnings_for("loss=wgan", "reg=none", "loss.clip=0.01")
    assert not warnings_for("loss=wgan", "reg=gp", "model.discriminator.norm=none")
    assert any("D has BatchNorm" in w for w in warnings_for("reg=gp"))
    assert any("output=sigmoid with loss=hinge" in w for w in warnings_for("loss=hinge", "reg=gp0"))
    assert not warnings_for("reg=gp0", "model.discriminator.norm=none")  # ns + sigmoid form
    assert not warnings_for("experiment=wgan_gp", tiny=False)


@pytest.mark.parametrize("loss", ["wgan", "hinge", "lsgan", "rsgan", "rpgan", "ragan"])
def test_js_regularizer_refused_with_non_sigmoid_losses(loss):
    with pytest.raises(ConfigError, match=f"reg=js with loss={loss}") as err:
        refuse_unsupported(compose_cfg(f"loss={loss}", "reg=js"))
    relativistic = loss.startswith("r")
    assert ("only differences of D's outputs" in str(err.value)) == relativistic
    refuse_unsupported(compose_cfg("loss=minimax", "reg=js"))  # allowed


def test_rpgan_without_r1_and_r2_is_named_and_the_method_line_shows_ragan_settings():
    plain_d = "model.discriminator.norm=none"
    for regs in ("reg=r1", "reg=r2", "reg=none"):
        assert any(
            "loss=rpgan without both" in w for w in warnings_for("loss=rpgan", regs, plain_d)
        )
    gamma_1 = ("reg.r1.weight=1", "reg.r2.weight=1")
    assert not warnings_for("loss=rpgan", "reg=[r1,r2]", *gamma_1, plain_d)
    # at ganx's default gamma 10 the study (docs/studies.md) found the pair not to train: said
    (warning,) = warnings_for("loss=rpgan", "reg=[r1,r2]", plain_d)
    assert "reg.r1.weight=10, reg.r2.weight=10: at gamma 10" in warning
    large = compose_cfg("loss=rpgan", "reg=[r1,r2]", plain_d, "dataset.resolution=128")
    assert not method_warnings(large)  # R3GAN's 256 px preset uses gamma 150
    assert not warnings_for("loss=rsgan", "reg=r1", plain_d)  # RSGAN's paper: no R1+R2 rule
    cfg = compose_cfg("loss=ragan", "loss.variant=ls", "loss.scale=0.5")
    assert "loss=ragan (variant ls, scale 0.5)" in describe_method(cfg)


def test_method_line_lists_every_setting():
    cfg = compose_cfg("experiment=vanilla_gan_original", tiny=False)
    line = describe_method(cfg, build_nets(cfg)[1])
    for part in ("model=mlp", "loss=ns (d_scale 0.5)", "reg: none", "EMA off", "updates g_first"):
        assert part in line, (part, line)


@pytest.mark.parametrize("loss", ["rsgan", "rpgan", "ragan"])
def test_ada_with_a_relativistic_loss_is_named(loss):
    """ADA's r_t = E[sign(D(real))] needs D's outputs centred; relativistic losses leave their
    offset free (measured: r_t = 1 on every seed of the study, docs/studies.md)."""
    plain = ["model.discriminator.norm=none", "reg=[r1,r2]"]
    assert any(
        f"augment=ada with loss={loss}" in w
        for w in warnings_for(f"loss={loss}", "augment=ada", *plain)
    )
    assert not any(
        "augment=ada" in w for w in warnings_for(f"loss={loss}", "augment=diffaug", *plain)
    )
    assert not any("augment=ada" in w for w in warnings_for("augment=ada", *plain))
