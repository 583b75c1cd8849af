"""Each penalty against its closed form. With a linear D(x) = w.x + b the input gradient is w
everywhere, so every gradient norm in these formulas is ||w||."""

import math

import pytest
import torch
from torch import nn

from ganx.regularizers import (
    AnchoredLogitPenalty,
    DirectAdversarialTraining,
    DiscriminatorPass,
    DraganPenalty,
    GradientPenalty,
    InstanceNoise,
    JSRegularizer,
    LeCamPenalty,
    R1Penalty,
    R2Penalty,
    interpolate,
)

W = torch.tensor([[3.0, -4.0]])  # ||w|| = 5


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        with torch.no_grad():
            self.lin.weight.copy_(W)
            self.lin.bias.fill_(0.5)

    def forward(self, x):
        return self.lin(x).flatten()


def make_pass(step=0, total=10):
    torch.manual_seed(0)
    d = Linear()
    real = torch.randn(6, 2).requires_grad_(True)
    fake = torch.randn(6, 2).requires_grad_(True)
    return DiscriminatorPass(d, real, fake, d(real), d(fake), step, total)


def test_r1_r2_are_half_squared_norm():
    batch = make_pass()
    assert R1Penalty().penalty(batch).item() == pytest.approx(0.5 * 25)
    assert R2Penalty().penalty(batch).item() == pytest.approx(0.5 * 25)
    assert R1Penalty.needs_real_grad and not R1Penalty.needs_fake_grad
    assert R2Penalty.needs_fake_grad and not R2Penalty.needs_real_grad


def test_r1_is_differentiable_in_d_weights():
    batch = make_pass()
    penalty = R1Penalty().penalty(batch)
    (grad_w,) = torch.autograd.grad(penalty, batch.discriminator.lin.weight)
    # d/dw 0.5 ||w||^2 = w
    assert torch.allclose(grad_w, W)


def test_gp_two_sided_and_zero_centred():
    batch = make_pass()
    assert GradientPenalty(target=1.0).penalty(batch).item() == pytest.approx((5 - 1) ** 2)
    assert GradientPenalty(target=0.0).penalty(batch).item() == pytest.approx(25)


def test_dragan_penalty():
    assert DraganPenalty().penalty(make_pass()).item() == pytest.approx(16)
    with pytest.raises(ValueError, match="noise_scale"):
        DraganPenalty(noise_scale=0)


def test_js_regularizer_formula():
    batch = make_pass()
    sig = torch.sigmoid
    expect = 0.5 * ((1 - sig(batch.real_logits)) ** 2 * 25 + sig(batch.fake_logits) ** 2 * 25)
    got = JSRegularizer().penalty(batch)
    assert got.item() == pytest.approx(expect.mean().item(), rel=1e-5)


def test_js_annealing_schedule():
    reg = JSRegularizer(weight=2.0, anneal=True, decay=0.01)
    assert reg.weight_at(0, 100) == pytest.approx(2.0)
    assert reg.weight_at(50, 100) == pytest.approx(2.0 * 0.1)
    assert reg.weight_at(100, 100) == pytest.approx(2.0 * 0.01)
    assert JSRegularizer(weight=2.0).weight_at(100, 100) == 2.0


def test_rlc_defaults_are_the_dirac_gan_codes():
    reg = (
        AnchoredLogitPenalty()
    )  # Dirac-GAN@a41cebe config.py:12-14: rlc_af 1, rlc_ar 1, rlc_w 0.15
    assert (reg.alpha_real, reg.alpha_fake, reg.weight) == (1.0, 1.0, 0.15)


def test_rlc_fixed_anchors():
    batch = make_pass()
    reg = AnchoredLogitPenalty(alpha_real=1.0, alpha_fake=-1.0)
    expect = ((batch.real_logits + 1) ** 2).mean() + ((batch.fake_logits - 1) ** 2).mean()
    assert reg.penalty(batch).item() == pytest.approx(expect.item())


def test_lecam_ema_anchors_and_state():
    batch = make_pass(step=5)
    reg = LeCamPenalty(decay=0.9, start_step=None)
    reg.anchor_real, reg.anchor_fake = 1.0, -1.0
    value = reg.penalty(batch)
    a_r = 0.9 * 1.0 + 0.1 * batch.real_logits.mean().item()
    a_f = 0.9 * -1.0 + 0.1 * batch.fake_logits.mean().item()
    assert reg.anchor_real == pytest.approx(a_r) and reg.anchor_fake == pytest.approx(a_f)
    expect = (torch.relu(batch.real_logits - a_f) ** 2).mean() + (
        torch.relu(a_r - batch.fake_logits) ** 2
    ).mean()
    assert value.item() == pytest.approx(expect.item(), rel=1e-6)
    restored = LeCamPenalty()
    restored.load_state_dict(reg.state_dict())
    assert restored.state_dict() == reg.state_dict()


def test_lecam_defaults_follow_lecam_gan_biggan_code():
    """google/lecam-gan@f9af948: ema_losses(decay=0.9, start_itr=1000) (third_party/utils.py:
    637-651, biggan_cifar/train.py:28); the anchors copy the batch means while itr < start_itr;
    the penalty only when itr > start_itr (third_party/train_fns.py:59); itr is 0 in the first
    iteration (third_party/run_train.py:99, incremented after each at :232), as ganx's G step."""
    reg = LeCamPenalty()
    assert (reg.decay, reg.start_step, reg.weight, reg.zero_debias) == (0.9, 1000, 0.3, False)
    early = make_pass(step=999)  # itr 999 < 1000: anchors = batch means, no penalty
    assert reg.penalty(early) is None
    assert reg.anchor_real == pytest.approx(early.real_logits.mean().item())
    at_start = make_pass(step=1000)  # itr 1000: the EMA decays, still no penalty (not > 1000)
    previous = reg.anchor_real
    assert reg.penalty(at_start) is None
    assert reg.anchor_real == pytest.approx(
        0.9 * previous + 0.1 * at_start.real_logits.mean().item()
    )
    after = make_pass(step=1001)  # itr 1001 > 1000: penalty on
    previous = reg.anchor_real
    assert reg.penalty(after) is not None
    assert reg.anchor_real == pytest.approx(0.9 * previous + 0.1 * after.real_logits.mean().item())


def test_lecam_starts_when_lecam_gans_schedule_does():
    """lecam-gan's loop, replayed: for itr = 0, 1, ... the EMA decays iff itr >= start_itr and
    the penalty is on iff itr > start_itr; ganx's G step plays itr, for any start_itr."""
    for start in (0, 1, 5):
        reg = LeCamPenalty(start_step=start)
        for itr in range(8):
            batch = make_pass(step=itr)
            batch.real_logits = batch.real_logits + itr + 1  # a new mean each iteration
            before = reg.anchor_real
            on = reg.penalty(batch) is not None
            assert on == (itr > start), (start, itr)
            copied = reg.anchor_real == pytest.approx(batch.real_logits.mean().item())
            decayed = reg.anchor_real == pytest.approx(
                0.9 * before + 0.1 * batch.real_logits.mean().item()
            )
            assert decayed if itr >= start else copied, (start, itr)
    always = LeCamPenalty(start_step=None)  # their StyleGAN2 code: no warm-up
    assert always.penalty(make_pass(step=0)) is not None


def test_lecam_stylegan2_variant_is_zero_debiased():
    """stylegan2/lecam_loss.py: assign_moving_average(decay=0.99, zero_debias=True) from step 0:
    after one update the debiased anchor equals the first batch mean exactly."""
    reg = LeCamPenalty(decay=0.99, start_step=None, zero_debias=True)
    batch = make_pass(step=0)
    reg.penalty(batch)
    a_r, a_f = reg.anchors()
    assert a_r == pytest.approx(batch.real_logits.mean().item(), rel=1e-6)
    second = make_pass(step=1)
    reg.penalty(second)
    biased = 0.99 * 0.01 * batch.real_logits.mean().item() + 0.01 * second.real_logits.mean().item()
    assert reg.anchors()[0] == pytest.approx(biased / (1 - 0.99**2), rel=1e-6)
    restored = LeCamPenalty(decay=0.99, start_step=None, zero_debias=True)
    restored.load_state_dict(reg.state_dict())
    assert restored.anchors() == reg.anchors()


def test_gp0_sigmoid_output_is_thanh_tung_form():
    """With a linear D, grad sigmoid(D(x)) = sigmoid'(D(x)) w: the penalty is
    E[(s(1 - s))^2] * ||w||^2 at the interpolates, not ||w||^2."""
    batch = make_pass()
    torch.manual_seed(1)
    got = GradientPenalty(target=0.0, output="sigmoid").penalty(batch)
    torch.manual_seed(1)
    x_hat = interpolate(batch.real.detach(), batch.fake.detach())
    s = torch.sigmoid(batch.discriminator(x_hat))
    expect = ((s * (1 - s)) ** 2 * 25).mean()
    assert got.item() == pytest.approx(expect.item(), rel=1e-5)
    assert got.item() < GradientPenalty(target=0.0, output="logit").penalty(batch).item()
    with pytest.raises(ValueError, match="output"):
        GradientPenalty(output="prob")


def test_dat_moves_samples_against_the_gap_gradient():
    d = Linear()
    real = torch.zeros(4, 2)
    fake = torch.zeros(4, 2) - torch.tensor([[0.03, -0.04]])  # D(fake) < D(real)
    dat = DirectAdversarialTraining(step_size=1.0, clamp=1.0)
    new_real, new_fake = dat.transform_d_inputs(d, real, fake, 0, 1)
    # grad_fake |mean D(fake) - mean D(real)| = -w / B: the fake moves along +w/B (towards real)
    assert torch.allclose(new_fake - fake, W / 4 * torch.ones(4, 1))
    # grad_real |mean D(real) - mean D(fake)| = +w / B: the real moves along -w/B
    assert torch.allclose(new_real - real, -W / 4 * torch.ones(4, 1))
    # a small step shrinks the gap |mean D(real) - mean D(fake)| (0.25) to first order
    small_real, small_fake = DirectAdversarialTraining(step_size=0.01).transform_d_inputs(
        d, real, fake, 0, 1
    )
    gap_after = (d(small_real).mean() - d(small_fake).mean()).abs()
    assert gap_after.item() == pytest.approx(0.25 - 2 * 0.01 * 25 / 4)


def test_dat_step_clamp_image_clamp_and_sides():
    d = Linear()
    real = torch.full((2, 2), 0.9)
    fake = torch.full((2, 2), 0.9)
    fake[:, 0] = 0.0
    big = DirectAdversarialTraining(step_size=100.0, clamp=0.25, clamp_range=[-1, 1])
    big.configure((-1.0, 1.0), has_aux=False)
    new_real, new_fake = big.transform_d_inputs(d, real, fake, 0, 1)
    assert (new_fake - fake).abs().max().item() <= 0.25 + 1e-6
    assert new_fake.max().item() <= 1.0  # fakes clamped to [-1, 1]
    assert new_real.max().item() > 1.0  # reals not clamped (the paper's SNGAN code)
    clamped = DirectAdversarialTraining(step_size=100.0, clamp=0.25, clamp_real=True)
    clamped.configure((-1.0, 1.0), has_aux=False)
    assert clamped.transform_d_inputs(d, real, fake, 0, 1)[0].max().item() <= 1.0
    only_fake = DirectAdversarialTraining(perturb="fake")
    assert torch.equal(only_fake.transform_d_inputs(d, real, fake, 0, 1)[0], real)
    with pytest.raises(ValueError, match="perturb"):
        DirectAdversarialTraining(perturb="neither")


def test_dat_clamps_to_the_data_range_and_reals_for_aux_models():
    d = Linear()
    real = torch.full((2, 2), 3.9)
    fake = torch.full((2, 2), 3.9)
    fake[:, 0] = 0.0
    ring = DirectAdversarialTraining(step_size=100.0, clamp=0.25)
    ring.configure((-4.5, 4.5), has_aux=False)  # e.g. grid25's points span about [-4.1, 4.1]
    new_real, new_fake = ring.transform_d_inputs(d, real, fake, 0, 1)
    assert new_fake.max().item() > 1.0  # not clipped to the image range
    assert new_fake.max().item() <= 4.5
    assert ring.clamp_real is False and new_real.max().item() > 3.9
    ssgan = DirectAdversarialTraining(step_size=100.0, clamp=0.25)
    ssgan.configure((-1.0, 1.0), has_aux=True)  # DAT-GAN's SSGAN/InfoMax code clamps reals
    assert ssgan.clamp_real is True
    image_real = torch.full((2, 2), 0.9)
    assert ssgan.transform_d_inputs(d, image_real, fake.clamp(-1, 1), 0, 1)[0].max() <= 1.0
    dirac = DirectAdversarialTraining()
    dirac.configure(None, has_aux=False)  # unbounded data: nothing clamped
    assert dirac.clamp_range is None
    activity = ring.activity(0, 1)
    assert set(activity) == {"perturbation", "gap"} and activity["perturbation"] > 0
    with pytest.raises(ValueError, match="clamp_real"):
        DirectAdversarialTraining(clamp_real="sometimes")


def test_instance_noise_anneals_to_zero():
    noise = InstanceNoise(std=0.5, anneal_steps=10)
    assert noise.std_at(0, 100) == 0.5 and noise.std_at(5, 100) == 0.25
    assert noise.std_at(20, 100) == 0.0
    x = torch.zeros(1000, 2)
    torch.manual_seed(0)
    noisy, _ = noise.transform_d_inputs(None, x, x, 0, 10)
    assert noisy.std().item() == pytest.approx(0.5, rel=0.1)
    assert torch.equal(noise.transform_g_input(x, 10, 10), x)


def test_instance_noise_default_anneals_linearly_over_the_run():
    noise = InstanceNoise()  # conf/reg/instance_noise.yaml: std 0.1, linear, over train.steps
    assert noise.anneal == "linear"
    assert [noise.std_at(t, 400) for t in (0, 100, 200, 400)] == pytest.approx(
        [0.1, 0.075, 0.05, 0.0]
    )
    assert noise.activity(200, 400) == {"sigma": pytest.approx(0.05)}
    constant = InstanceNoise(std=1.0, anneal="none")
    assert constant.std_at(399, 400) == 1.0
    with pytest.raises(ValueError, match="anneal"):
        InstanceNoise(anneal="cosine")


def test_lazy_interval_and_bad_weights():
    reg = R1Penalty(weight=1.0, interval=4)
    assert [reg.applies_at(i) for i in range(5)] == [True, False, False, False, True]
    with pytest.raises(ValueError, match="weight"):
        R1Penalty(weight=-1.0)
    with pytest.raises(ValueError, match="interval"):
        R1Penalty(interval=0)
    assert math.isclose(GradientPenalty().weight, 10.0)


def test_r1_r2_weight_schedules():
    """Constant by default; cosine from weight to weight_end over the run (schedule_steps null)
    or over schedule_steps, then weight_end (R3GAN's gamma schedule)."""
    assert R2Penalty(weight=3.0).weight_at(100, 10) == 3.0
    over_run = R1Penalty(weight=2.0, schedule="cosine", weight_end=0.0)
    assert [over_run.weight_at(t, 4) for t in (0, 1, 2, 4, 8)] == pytest.approx(
        [2.0, 1.0 + 2**-0.5, 1.0, 0.0, 0.0]
    )
    spanned = R2Penalty(weight=1.0, schedule="cosine", weight_end=0.5, schedule_steps=10)
    assert [spanned.weight_at(t, 1000) for t in (0, 5, 10, 500)] == pytest.approx(
        [1.0, 0.75, 0.5, 0.5]
    )
    for bad, match in (
        ({"schedule": "linear"}, "^schedule='linear'; allowed: constant, cosine$"),
        ({"schedule": "cosine"}, "^schedule=cosine needs weight_end"),
        ({"weight_end": 1.0}, "^weight_end=1.0 has no effect with schedule=constant"),
        ({"schedule_steps": 5}, "^schedule_steps=5 has no effect with schedule=constant"),
        ({"schedule": "cosine", "weight_end": 1.0, "schedule_steps": 0}, "schedule_steps=0"),
        ({"schedule": "cosine", "weight_end": -1.0}, "^weight_end=-1.0: must be a finite"),
    ):
        with pytest.raises(ValueError, match=match):
            R1Penalty(**bad)


# --- a non-linear D: where the gradient is taken matters ----------------------------------------


class Quadratic(nn.Module):
    """D(x) = 0.5 ||x||^2 per sample: grad_x D = x, so the gradient norm at a point is the
    point's own norm (unlike a linear D, whose gradient is the same everywhere)."""

    def forward(self, x):
        return 0.5 * x.flatten(1).pow(2).sum(1)


def quadratic_pass(real, fake):
    d = Quadratic()
    real, fake = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    return DiscriminatorPass(d, real, fake, d(real), d(fake), 0, 10)


def test_penalties_are_taken_where_their_papers_say():
    """R1 on the reals (||x||^2 = 8 here), R2 on the fakes (||x||^2 = 2), JS on both."""
    batch = quadratic_pass(torch.full((8, 2), 2.0), torch.full((8, 2), 1.0))
    assert R1Penalty().penalty(batch).item() == pytest.approx(0.5 * 8)
    assert R2Penalty().penalty(batch).item() == pytest.approx(0.5 * 2)
    sig = torch.sigmoid(torch.tensor([4.0, 1.0]))  # D(real) = 4, D(fake) = 1
    expect = 0.5 * ((1 - sig[0]) ** 2 * 8 + sig[1] ** 2 * 2)
    assert JSRegularizer().penalty(batch).item() == pytest.approx(expect.item(), rel=1e-5)


def test_gp_is_taken_on_interpolates():
    """Reals at +3 e1, fakes at -3 e1: x_hat = (2 eps - 1) 3 e1 has gradient norm 3u with
    u ~ U[0, 1], so E(3u - 1)^2 = 1 and E(3u)^2 = 3; at the reals or the fakes alone both
    would be 4 and 9."""
    torch.manual_seed(0)
    n = 20_000
    real = torch.zeros(n, 2)
    real[:, 0] = 3.0
    batch = quadratic_pass(real, -real)
    assert GradientPenalty(target=1.0).penalty(batch).item() == pytest.approx(1.0, rel=0.05)
    assert GradientPenalty(target=0.0).penalty(batch).item() == pytest.approx(3.0, rel=0.05)


def test_dragan_is_taken_around_the_reals():
    """Reals at +-1 (1-D): x_hat = x + eps * 0.5 * std(x) * u moves |x| by d = 0.5 s eps u
    (towards 0 for -1, away for +1), so the penalty E(|x_hat| - 1)^2 = E d^2 = 0.25 s^2 / 9,
    where the reals themselves would give exactly 0."""
    torch.manual_seed(0)
    n = 20_000
    real = torch.tensor([1.0, -1.0]).repeat(n // 2).view(n, 1)
    batch = quadratic_pass(real, real)
    expect = 0.25 * real.std().item() ** 2 / 9
    assert DraganPenalty().penalty(batch).item() == pytest.approx(expect, rel=0.05)


def test_dat_clamps_adversarial_fakes_to_the_image_range():
    """D(fake) = -0.25 < D(real) = 0.5: the step moves fakes by clamp(100 * [-1.5, 2]) =
    [-0.25, 0.25] against the gradient, to [1.2, 0.65], and 1.2 is clamped to 1."""
    d = Linear()
    real = torch.zeros(2, 2)
    fake = torch.tensor([[0.95, 0.9], [0.95, 0.9]])
    dat = DirectAdversarialTraining(step_size=100.0, clamp=0.25)
    dat.configure((-1.0, 1.0), has_aux=False)  # the builder passes the image data's range
    _, new_fake = dat.transform_d_inputs(d, real, fake, 0, 1)
    assert new_fake[:, 0].tolist() == [1.0, 1.0]
    assert new_fake[:, 1].tolist() == pytest.approx([0.65, 0.65])
