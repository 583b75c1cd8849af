"""Each loss against its closed form on logits where the answer is known by hand."""

import math

import pytest
import torch

from ganx.losses import HingeLoss, LeastSquaresLoss, MinimaxLoss, NonSaturatingLoss, WassersteinLoss

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.0])


def sig(t):
    return 1 / (1 + math.exp(-t))


def mean(xs):
    return sum(xs) / len(xs)


def test_minimax_d_and_g_match_log_sigmoid_forms():
    loss = MinimaxLoss()
    expect_d = mean([-math.log(sig(r)) for r in REAL.tolist()]) + mean(
        [-math.log(1 - sig(f)) for f in FAKE.tolist()]
    )
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(expect_d, rel=1e-6)
    # G minimises log(1 - D(G(z))): negative, saturating as D(G(z)) -> 0
    expect_g = mean([math.log(1 - sig(f)) for f in FAKE.tolist()])
    assert loss.g_loss(FAKE).item() == pytest.approx(expect_g, rel=1e-6)


def test_minimax_generator_gradient_saturates_but_ns_does_not():
    very_fake = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(MinimaxLoss().g_loss(very_fake), very_fake)
    (g_ns,) = torch.autograd.grad(NonSaturatingLoss().g_loss(very_fake), very_fake)
    assert abs(g_mm.item()) < 1e-4 < abs(g_ns.item())
    # both push the fake logit up (gradient descent on the loss)
    assert g_mm.item() < 0 and g_ns.item() < 0


def test_ns_g_loss_is_minus_log_d():
    expect = mean([-math.log(sig(f)) for f in FAKE.tolist()])
    assert NonSaturatingLoss().g_loss(FAKE).item() == pytest.approx(expect, rel=1e-6)
    assert NonSaturatingLoss().d_loss(REAL, FAKE) == MinimaxLoss().d_loss(REAL, FAKE)


def test_wgan_and_clipping():
    loss = WassersteinLoss(clip=0.01)
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(FAKE.mean() - REAL.mean())
    assert loss.g_loss(FAKE).item() == pytest.approx(-FAKE.mean().item())
    layer = torch.nn.Linear(3, 1)
    torch.nn.init.constant_(layer.weight, 5.0)
    loss.after_d_step(layer)
    assert layer.weight.abs().max().item() == pytest.approx(0.01)
    WassersteinLoss().after_d_step(layer)  # no clip: untouched
    assert layer.weight.abs().max().item() == pytest.approx(0.01)
    with pytest.raises(ValueError, match="clip"):
        WassersteinLoss(clip=-1)


def test_lsgan_targets():
    loss = LeastSquaresLoss(a=-1.0, b=1.0, c=0.0)
    expect_d = 0.5 * mean([(r - 1) ** 2 for r in REAL.tolist()]) + 0.5 * mean(
        [(f + 1) ** 2 for f in FAKE.tolist()]
    )
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(expect_d)
    assert loss.g_loss(FAKE).item() == pytest.approx(0.5 * mean([f**2 for f in FAKE.tolist()]))


def test_hinge():
    loss = HingeLoss()
    expect = mean([max(0, 1 - r) for r in REAL.tolist()]) + mean(
        [max(0, 1 + f) for f in FAKE.tolist()]
    )
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(expect)
    assert loss.g_loss(FAKE).item() == pytest.approx(-FAKE.mean().item())
