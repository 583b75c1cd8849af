"""The regularizers' edges that mutmut found unguarded (scripts/mutmut_score.py regularizers):
the Python API's defaults are the configs', each refusal says exactly what is allowed and
where the allowed range ends, the schedules at their last step, the DAT step computed by
hand on a linear D, LeCam's anchors before their first update and across old checkpoints,
instance noise that stops drawing once its sigma is 0, and DRAGAN's one-sided perturbation."""

from __future__ import annotations

import inspect
import math
import re

import pytest
import torch
from omegaconf import OmegaConf

from ganx import regularizers as regs
from ganx.regularizers import (
    DirectAdversarialTraining,
    DiscriminatorPass,
    DraganPenalty,
    InstanceNoise,
    JSRegularizer,
    LeCamPenalty,
    R1Penalty,
)

CONF_REG = "conf/reg"
# the option that holds each class's reference defaults (gp0 and js_3dgan are variants)
REFERENCE_OPTIONS = ["r1", "r2", "gp", "dragan", "js", "lecam", "dat", "instance_noise", "rlc"]


@pytest.mark.parametrize("option", REFERENCE_OPTIONS)
def test_the_python_defaults_are_the_configs(option):
    """ganx.regularizers.X() (the Python API) is the method reg=X configures."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / CONF_REG / f"{option}.yaml"
    (node,) = OmegaConf.to_container(OmegaConf.load(path)).values()
    cls = getattr(regs, node.pop("_target_").rsplit(".", 1)[1])
    defaults = {
        name: p.default
        for name, p in inspect.signature(cls).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    assert node == {k: v for k, v in defaults.items() if k in node} and set(node) <= set(defaults)
    built = cls()  # what the signature says is also what the instance holds
    assert {k: getattr(built, k) for k in node if hasattr(built, k)} == {
        k: v for k, v in node.items() if hasattr(built, k)
    }
    assert built.interval == 1 and built.applies_at(1)  # every D step unless told
    if "weight" not in defaults:  # input transforms: no loss term, no weight
        assert built.weight == 0.0


def refused(cls, message: str, **kwargs) -> None:
    # the end anchored, not the start: a message may gain the key's full name in front
    with pytest.raises(ValueError, match=f"{re.escape(message)}$"):
        cls(**kwargs)


def test_refusals_name_the_allowed_range_and_its_ends_are_right():
    refused(
        R1Penalty,
        "schedule=cosine needs weight_end (the weight it decays to), e.g. weight_end=0.005",
        schedule="cosine",
    )
    refused(
        R1Penalty,
        "weight_end=1.0 has no effect with schedule=constant; set schedule=cosine or drop it",
        weight_end=1.0,
    )
    assert R1Penalty(schedule="cosine", weight_end=1.0, schedule_steps=1).schedule_steps == 1
    message = "{}: must be a positive finite number"
    refused(DirectAdversarialTraining, message.format("step_size=0"), step_size=0)
    refused(DirectAdversarialTraining, message.format("clamp=0"), clamp=0)
    refused(DirectAdversarialTraining, message.format("clamp=-1"), clamp=-1)
    assert DirectAdversarialTraining(clamp_real=False).clamp_real is False
    refused(
        DirectAdversarialTraining,
        "clamp_range=[1, 1]: must be null or [low, high] with low < high",
        clamp_range=[1, 1],
    )
    refused(InstanceNoise, "anneal_steps=1.5: must be a positive integer", anneal_steps=1.5)
    refused(InstanceNoise, "anneal_steps=0: must be a positive integer", anneal_steps=0)
    assert InstanceNoise(anneal_steps=1).anneal_steps == 1
    refused(InstanceNoise, "std=-0.1: must be a finite number >= 0", std=-0.1)
    assert InstanceNoise(std=0).std == 0.0
    for decay in (0.0, 1.5):
        refused(JSRegularizer, f"decay={decay}: must be a number in (0, 1]", decay=decay)
    assert JSRegularizer(decay=1.0).decay == 1.0
    for decay in (1.0, 1.5):
        refused(LeCamPenalty, f"decay={decay}: must be a number in [0, 1)", decay=decay)
    assert LeCamPenalty(decay=0.0).decay == 0.0
    for start in (1.5, -1):
        refused(
            LeCamPenalty,
            f"start_step={start}: must be an integer >= 0",
            start_step=start,
        )


@pytest.mark.parametrize("total", [1, 2, 5])
def test_every_schedule_has_reached_its_end_at_the_last_step(total):
    r1 = R1Penalty(weight=10.0, schedule="cosine", weight_end=1.0)
    assert r1.weight_at(0, total) == 10.0 and r1.weight_at(total, total) == pytest.approx(1.0)
    js = JSRegularizer(weight=2.0, anneal=True, decay=0.01)
    assert js.weight_at(total, total) == pytest.approx(0.02)
    noise = InstanceNoise(std=0.1)
    assert noise.std_at(0, total) == 0.1 and noise.std_at(total, total) == 0.0


def test_interpolates_are_drawn_on_the_datas_device_whatever_the_default():
    real, fake = torch.zeros(4, 2), torch.ones(4, 2)
    with torch.device("meta"):  # torch's default device is not the data's
        x_hat = regs.interpolate(real, fake)
    assert x_hat.device.type == "cpu" and ((x_hat >= 0) & (x_hat <= 1)).all()


def linear_d() -> torch.nn.Module:
    d = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[1.0, 2.0, -1.0]]))
    return d


def test_dat_steps_against_the_gap_by_hand_and_logs_step_and_gap():
    """Linear D(x) = w.x, two samples a side, mean D(real) = 1, mean D(fake) = -3: the gradient
    of |mean D(real) - mean D(fake)| w.r.t. each real sample is +w/2, of |mean D(fake) -
    mean D(real)| w.r.t. each fake one -w/2 (unclamped: clamp 10, no data range)."""
    w = torch.tensor([1.0, 2.0, -1.0])
    real = torch.tensor([[1.0, 0.0, 0.0]] * 2)
    fake = torch.tensor([[-3.0, 0.0, 0.0]] * 2)
    dat = DirectAdversarialTraining(clamp=10.0)
    assert dat.activity(0, 1) == {}  # nothing logged before the first step
    new_real, new_fake = dat.transform_d_inputs(linear_d(), real, fake, 0, 1)
    torch.testing.assert_close(new_real, real - w / 2, rtol=0, atol=1e-6)
    torch.testing.assert_close(new_fake, fake + w / 2, rtol=0, atol=1e-6)
    logged = dat.activity(0, 1)
    assert logged["gap"] == pytest.approx(4.0)
    assert logged["perturbation"] == pytest.approx(math.sqrt(6) / 2)
    fake_only = DirectAdversarialTraining(clamp=10.0, perturb="fake")
    new_real, new_fake = fake_only.transform_d_inputs(linear_d(), real, fake, 0, 1)
    assert torch.equal(new_real, real) and not torch.equal(new_fake, fake)


def test_dat_clamp_range_given_is_the_range_fakes_are_clamped_to():
    dat = DirectAdversarialTraining(clamp=10.0, clamp_range=[-2.5, 2.5])
    dat.configure((-1.0, 1.0), has_aux=False)  # the data's range does not replace it
    assert dat.clamp_range == (-2.5, 2.5)
    real = torch.tensor([[1.0, 0.0, 0.0]] * 2)
    fake = torch.tensor([[-3.0, 0.0, 0.0]] * 2)
    _, new_fake = dat.transform_d_inputs(linear_d(), real, fake, 0, 1)
    assert new_fake[:, 0].tolist() == [-2.5, -2.5] and new_fake[:, 1].tolist() == [1.0, 1.0]


def lecam_pass(step: int, real_mean: float, fake_mean: float) -> DiscriminatorPass:
    real_logits, fake_logits = torch.full((4, 1), real_mean), torch.full((4, 1), fake_mean)
    return DiscriminatorPass(None, None, None, real_logits, fake_logits, step, 10)


def test_lecam_anchors_start_at_zero_and_count_only_decaying_updates():
    """lecam-gan's ema_losses start at 0 (google/lecam-gan@f9af948:third_party/utils.py:637-661):
    the first decaying update gives (1 - decay) x the batch mean; zero-debiasing counts the
    updates made with the decay in force (not the warm-up's copies), and its average starts at
    0 when they start, so the debiased anchor after a warm-up is the batch mean (it was the
    warm-up's copy divided by 1 - decay: 100 x the mean at decay 0.99)."""
    lecam = LeCamPenalty(start_step=None)
    lecam.penalty(lecam_pass(0, 2.0, -4.0))
    assert (lecam.anchor_real, lecam.anchor_fake) == pytest.approx((0.2, -0.4))
    assert lecam.state_dict()["updates"] == 0  # not debiased: nothing counted
    debiased = LeCamPenalty(decay=0.99, start_step=2, zero_debias=True)
    assert debiased.activity(0, 10) == {"anchor_real": 0.0, "anchor_fake": 0.0}
    for step in (0, 1):
        debiased.penalty(lecam_pass(step, 2.0, -4.0))
    assert debiased.updates == 0
    debiased.penalty(lecam_pass(2, 2.0, -4.0))
    assert debiased.updates == 1 and debiased.anchors() == pytest.approx((2.0, -4.0))


def test_lecam_loads_a_checkpoint_from_before_the_update_count():
    lecam = LeCamPenalty(zero_debias=True)
    lecam.updates = 5
    lecam.load_state_dict({"anchor_real": 0.5, "anchor_fake": -0.5})
    assert lecam.updates == 0 and lecam.anchors() == (0.5, -0.5)


def test_instance_noise_is_sigma_times_the_draw_and_stops_drawing_at_zero():
    noise = InstanceNoise(std=0.5)  # anneal over the run: sigma 0.25 halfway
    x = torch.zeros(3, 2)
    torch.manual_seed(1)
    real, fake = noise.transform_d_inputs(None, x, x, 5, 10)
    torch.manual_seed(1)
    torch.testing.assert_close(real, 0.25 * torch.randn(3, 2), rtol=0, atol=0)
    torch.testing.assert_close(fake, 0.25 * torch.randn(3, 2), rtol=0, atol=0)
    torch.manual_seed(2)
    g_input = noise.transform_g_input(x, 5, 10)
    torch.manual_seed(2)
    torch.testing.assert_close(g_input, 0.25 * torch.randn(3, 2), rtol=0, atol=0)
    before = torch.get_rng_state()
    assert noise.transform_d_inputs(None, x, x, 10, 10) == (x, x)  # annealed away
    assert torch.equal(torch.get_rng_state(), before)  # and no noise drawn


def test_dragan_perturbs_real_data_upwards_only():
    """DRAGAN's x_p = x + c std(x) U[0, 1) (kodalinaveen3/DRAGAN@5cf95ab:DRAGAN.ipynb): D sees
    points between x and x + 0.5 std(x), never below x."""
    seen = []

    class Recording(torch.nn.Module):
        def forward(self, x):
            seen.append(x.detach().clone())
            return x.sum(1, keepdim=True)

    real = torch.randn(64, 3)
    batch = DiscriminatorPass(Recording(), real, None, None, None, 0, 1)
    DraganPenalty().penalty(batch)
    (x_hat,) = seen
    assert (x_hat >= real - 1e-6).all() and (x_hat <= real + 0.5 * real.std() + 1e-6).all()
    assert (x_hat - real).mean() > 0.05 * real.std()
