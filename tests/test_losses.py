"""Each loss against its closed form on logits where the answer is known by hand."""

import math

import pytest
import torch

from ganx.losses import (
    HingeLoss,
    LeastSquaresLoss,
    MinimaxLoss,
    NonSaturatingLoss,
    RelativisticAverageLoss,
    RelativisticPairingLoss,
    RelativisticStandardLoss,
    WassersteinLoss,
)

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


def test_rpgan_pairs_the_ith_real_with_the_ith_fake():
    loss = RelativisticPairingLoss()
    pairs = list(zip(REAL.tolist(), FAKE.tolist(), strict=True))
    # D: -log sigmoid(D(x_i) - D(G(z_i))); G: -log sigmoid(D(G(z_i)) - D(x_i))
    expect_d = mean([-math.log(sig(r - f)) for r, f in pairs])
    expect_g = mean([-math.log(sig(f - r)) for r, f in pairs])
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(expect_d, rel=1e-6)
    assert loss.g_loss(FAKE, REAL).item() == pytest.approx(expect_g, rel=1e-6)
    # pairing, not all-against-all: reversing one batch changes the value
    assert loss.d_loss(REAL, FAKE.flip(0)).item() != pytest.approx(expect_d, rel=1e-3)
    assert loss.needs_real_in_g and not NonSaturatingLoss().needs_real_in_g


def test_rsgan_is_rpgan_and_pairing_refuses_unequal_batches():
    for a, b in ((REAL, FAKE), (FAKE, REAL)):
        assert torch.equal(
            RelativisticStandardLoss().d_loss(a, b), RelativisticPairingLoss().d_loss(a, b)
        )
        assert torch.equal(
            RelativisticStandardLoss().g_loss(a, b), RelativisticPairingLoss().g_loss(a, b)
        )
    with pytest.raises(ValueError, match="as many real as fake"):
        RelativisticPairingLoss().d_loss(REAL, FAKE[:2])
    with pytest.raises(ValueError, match="real_logits"):
        RelativisticPairingLoss().g_loss(FAKE)


def ra_closed_form(high, low, own, other):
    """E high(own - mean other) + E low(other - mean own), written out on lists."""
    own, other = own.tolist(), other.tolist()
    return mean([high(o - mean(other)) for o in own]) + mean([low(o - mean(own)) for o in other])


RA_FORMS = {  # Jolicoeur-Martineau 2019: RaSGAN, RaLSGAN, RaHingeGAN
    "standard": (lambda t: -math.log(sig(t)), lambda t: -math.log(1 - sig(t))),
    "ls": (lambda t: (t - 1) ** 2, lambda t: (t + 1) ** 2),
    "hinge": (lambda t: max(0.0, 1 - t), lambda t: max(0.0, 1 + t)),
}


@pytest.mark.parametrize("variant", list(RA_FORMS))
def test_ragan_variants_against_the_paper(variant):
    high, low = RA_FORMS[variant]
    loss = RelativisticAverageLoss(variant)
    d = ra_closed_form(
        high, low, REAL, FAKE
    )  # reals above the mean fake, fakes below the mean real
    g = ra_closed_form(high, low, FAKE, REAL)  # the roles swapped
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert loss.g_loss(FAKE, REAL).item() == pytest.approx(g, rel=1e-6)
    half = RelativisticAverageLoss(variant, scale=0.5)  # AlexiaJM's code: (term1 + term2) / 2
    assert half.d_loss(REAL, FAKE).item() == pytest.approx(d / 2, rel=1e-6)
    assert half.g_loss(FAKE, REAL).item() == pytest.approx(g / 2, rel=1e-6)


def test_ragan_gradient_flows_through_the_other_batch_mean_and_bad_settings_are_refused():
    real = REAL.clone().requires_grad_(True)
    RelativisticAverageLoss().d_loss(real, FAKE).backward()
    # d/dr_j [E softplus(-(r - mean f)) + E softplus(f - mean r)], each mean over 3 samples
    r_bar = REAL.mean().item()
    expect = [
        -sig(-(r - FAKE.mean().item())) / 3 - mean([sig(f - r_bar) for f in FAKE.tolist()]) / 3
        for r in REAL.tolist()
    ]
    assert real.grad.tolist() == pytest.approx(expect, rel=1e-5)
    with pytest.raises(ValueError, match="^variant='wgan'; allowed: standard, ls, hinge$"):
        RelativisticAverageLoss("wgan")
    with pytest.raises(ValueError, match="^scale=0: "):
        RelativisticAverageLoss(scale=0)
    with pytest.raises(ValueError, match="real_logits"):
        RelativisticAverageLoss().g_loss(FAKE)


def test_loss_settings_at_their_edges_and_their_messages():
    """Found by mutmut (scripts/mutmut_score.py losses): a scale of exactly 0 is refused as
    well as a negative one, a scale of 2 is applied (not only values below 1), and each refusal
    says which key and what is allowed."""
    import re

    from ganx.losses import (
        LeastSquaresLoss,
        MinimaxLoss,
        RelativisticAverageLoss,
        WassersteinLoss,
        paired,
    )

    def whole(message: str) -> str:  # the message exactly, nothing around it
        return f"^{re.escape(message)}$"

    real, fake = torch.tensor([0.3, -1.2]), torch.tensor([-0.7, 0.4])
    with pytest.raises(ValueError, match=whole("d_scale=0: must be a positive finite number")):
        MinimaxLoss(d_scale=0)
    with pytest.raises(ValueError, match=whole("clip=0: must be a positive finite number")):
        WassersteinLoss(clip=0)
    with pytest.raises(ValueError, match=whole("scale=0: must be a positive finite number")):
        RelativisticAverageLoss(scale=0)
    with pytest.raises(
        ValueError,
        match=whole("a relativistic G loss needs D's logits on a real batch (real_logits)"),
    ):
        paired(None, fake)
    with pytest.raises(
        ValueError,
        match=whole("relativistic pairing needs as many real as fake logits, got (2,) and (1,)"),
    ):
        paired(real, fake[:1])
    with pytest.raises(
        ValueError,
        match=whole("loss=ragan: G's loss needs D's logits on a real batch (real_logits)"),
    ):
        RelativisticAverageLoss().g_loss(fake, None)
    doubled = MinimaxLoss(d_scale=2.0).d_loss(real, fake)
    assert doubled.item() == pytest.approx(2 * MinimaxLoss().d_loss(real, fake).item())
    ra = RelativisticAverageLoss(scale=2.0).d_loss(real, fake)
    assert ra.item() == pytest.approx(2 * RelativisticAverageLoss().d_loss(real, fake).item())
    plain = LeastSquaresLoss()  # the class's own defaults are the paper's 0-1 coding
    assert (plain.a, plain.b, plain.c) == (0.0, 1.0, 1.0)
    assert LeastSquaresLoss(c=0.5).g_loss(fake).item() == pytest.approx(
        (0.5 * (fake - 0.5) ** 2).mean().item()
    )
