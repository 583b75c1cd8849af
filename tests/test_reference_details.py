"""Details checked against the reference code (issue 28): the DRAGAN notebook's protocol, G's
prior (carpedm20's DCGAN and the DRAGAN notebook draw z from U[-1, 1)), and old checkpoints
resuming with the settings that reproduce what they ran."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import compose_cfg, config_predating
from ganx_cli import TINY_ARGS, ganx_train_here
from internals import StepSettings, seed_everything, step
from key_cover import override

from ganx.build import build_all, build_nets
from ganx.metrics.evaluation import sample_for_eval
from ganx.resume_rules import ADDED_SETTINGS, allowed_changes
from ganx.sampling import draw_noise
from ganx.state import TrainingState

CPU = torch.device("cpu")
NOTEBOOK = "kodalinaveen3/DRAGAN@5cf95ab:DRAGAN.ipynb"


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_dragan_preset_is_the_notebooks_protocol():
    """DRAGAN.ipynb, cell 1: mb_size 128, z_dim 100 from U[-1, 1), h_dim 128, one ReLU layer in
    G and D, weights N(0, 2 / fan_in) and zero biases, Adam 1e-4 (0.5, 0.9), lambda 10, one D
    step per G step, the non-saturating GAN loss."""
    cfg = compose_cfg("experiment=dragan", tiny=False)
    assert cfg.model.name == "dragan_mlp" and cfg.model.latent_dim == 100
    assert cfg.model.latent_distribution == "uniform"
    assert cfg.train.batch_size == 128 and cfg.train.n_dis == 1 and cfg.train.ema is None
    for player in ("g", "d"):
        assert cfg.optim[player].lr == 1e-4 and list(cfg.optim[player].betas) == [0.5, 0.9]
    assert list(cfg.reg) == ["dragan"] and cfg.reg.dragan.weight == 10.0
    assert cfg.reg.dragan.noise_scale == 0.5 and cfg.loss._target_.endswith("NonSaturatingLoss")
    torch.manual_seed(0)
    g, d = build_nets(cfg)
    assert count(g) == 100 * 128 + 128 + 128 * 784 + 784  # G_W1, G_b1, G_W2, G_b2
    assert count(d) == 784 * 128 + 128 + 128 + 1  # D_W1, D_b1, D_W2, D_b2
    assert [type(m).__name__ for m in g.net] == ["Linear", "ReLU", "Linear", "Tanh"]
    assert [type(m).__name__ for m in d.net] == ["Linear", "ReLU", "Linear"]
    first = d.net[0]
    assert first.bias.abs().max() == 0
    assert abs(first.weight.std().item() / math.sqrt(2 / 784) - 1) < 0.02


@pytest.mark.parametrize("model", ["mlp", "dcgan", "dragan_mlp"])
def test_the_dragan_penalty_on_another_model_composes_and_builds(model):
    """``experiment=dragan model=mlp`` failed on the preset's ``model.discriminator.norm``."""
    cfg = compose_cfg("experiment=dragan", f"model={model}")
    assert cfg.model.name == model and list(cfg.reg) == ["dragan"]
    g, d = build_nets(cfg)
    assert d(g(torch.randn(2, cfg.model.latent_dim))).shape == (2,)


@pytest.mark.parametrize("extra", [[], ["model=mlp"]])
def test_dragan_from_the_command_line(tmp_path, extra):
    tiny = [a for a in TINY_ARGS if not a.startswith("model.")]
    code, stderr = ganx_train_here(
        "experiment=dragan", *extra, *tiny, "train.steps=2", f"hydra.run.dir={tmp_path}"
    )
    assert code == 0, stderr
    assert (tmp_path / "checkpoints" / "last.pt").exists()


def assert_uniform(z):
    assert z.min() >= -1 and z.max() < 1
    assert abs(z.mean().item()) < 0.02 and abs(z.var().item() - 1 / 3) < 0.02


def test_roth_js_draws_z_uniformly_as_carpedm20s_dcgan():
    """rothk/Stabilizing_GANs@023b84d:carpedm20_DCGAN/model.py:312-315 (``gaussian_prior`` off
    by default, main.py:24): U[-1, 1) for D's and G's batches; every draw of z follows it."""
    cfg = compose_cfg("experiment=roth_js", tiny=False)
    assert cfg.model.latent_distribution == "uniform"
    assert compose_cfg().model.latent_distribution == "normal"
    settings = StepSettings(4, 64, latent_distribution="uniform")
    assert_uniform(step.draw_latents(20000, settings, CPU))
    normal = step.draw_latents(20000, StepSettings(4, 64), CPU)
    assert normal.min() < -1 and abs(normal.var().item() - 1) < 0.05
    assert_uniform(draw_noise(20000, 8, seed=0, distribution="uniform"))


def test_evaluation_and_sample_grids_draw_from_the_same_prior(tmp_path):
    cfg = compose_cfg("model.latent_distribution=uniform", "eval.num_samples=4000")
    seen = []

    class Record(torch.nn.Module):
        def forward(self, z):
            seen.append(z)
            return z

    sample_for_eval(Record(), cfg, 0, CPU)
    assert_uniform(torch.cat(seen))
    grid = compose_cfg("model.latent_distribution=uniform", "sample.n=64")
    state = TrainingState(grid, build_all(grid, CPU))
    assert state.fixed_noise.min() >= -1 and state.fixed_noise.max() < 1


NEW_SETTINGS = {
    "model.generator.upsample": ("bilinear", "nearest"),
    "model.discriminator.hidden_width": ("input", "output"),
    "model.latent_distribution": ("uniform", "normal"),
    "train.lazy_regularization": ("separate", "folded"),
}
# where the new value would change what the checkpoint ran (48 px: D blocks widen; a lazy R1)
WHERE_IT_MATTERS = {
    "model.discriminator.hidden_width": ["dataset.resolution=48"],
    "train.lazy_regularization": ["reg=r1", "reg.r1.interval=4"],
}


@pytest.mark.parametrize("key", sorted(NEW_SETTINGS))
def test_a_checkpoint_from_before_the_setting_resumes_as_it_ran(key, tmp_path):
    """A checkpoint whose config predates ``key`` resumes with the value that reproduces what
    it ran (``ADDED_SETTINGS``); the reference's new default is refused, naming that value."""
    other, neutral = NEW_SETTINGS[key]
    assert ADDED_SETTINGS[key] == neutral
    run = ["model=sngan", "dataset.resolution=32", "dataset.channels=3"]
    run += WHERE_IT_MATTERS.get(key, [])
    saved = config_predating(key, *run)
    assert allowed_changes(saved, compose_cfg(*run, f"{key}={neutral}"), tmp_path) == {}
    with pytest.raises(Exception, match=f"{key}={neutral} resumes it as it ran"):
        allowed_changes(saved, compose_cfg(*run, f"{key}={other}"), tmp_path)


@pytest.mark.parametrize("key", sorted(WHERE_IT_MATTERS))
def test_where_the_setting_changes_nothing_the_old_checkpoint_resumes_with_the_default(
    key, tmp_path
):
    """At 32 px no D block widens; with every interval 1 nothing is lazy: either value is the
    same computation, so the default config resumes such checkpoints."""
    run = ["model=sngan", "dataset.resolution=32", "dataset.channels=3"]
    saved = config_predating(key, *run)
    assert allowed_changes(saved, compose_cfg(*run), tmp_path) == {}


@pytest.mark.parametrize(
    ("choice", "dataset", "weight", "warned"),
    [
        ("gp0", "mnist5k", 500.0, False),  # GradientPenaltiesGANImage.py:376, LAMBDA 500
        ("gp0_2d", "ring8", 10.0, False),  # GradientPenaltiesGAN.py:423, LAMBDA 10
        ("gp0", "ring8", 500.0, True),
        ("gp0_2d", "mnist5k", 10.0, True),
    ],
)
def test_gp0_weight_is_the_authors_lambda_for_the_data(choice, dataset, weight, warned):
    """Thanh-Tung et al.'s image script (MNIST / StackedMNIST) defaults to LAMBDA 500, their
    2-D script to 10: ``reg=gp0`` is the first, ``reg=gp0_2d`` the second, and the start of a
    run names the mismatch when one is used on the other kind of data."""
    from ganx.methods import method_warnings

    model = "model=toy2d" if dataset == "ring8" else "model=dcgan"
    cfg = compose_cfg(f"reg={choice}", f"dataset={dataset}", model)
    assert list(cfg.reg) == ["gp0"] and cfg.reg.gp0.weight == weight
    assert cfg.reg.gp0.target == 0.0 and cfg.reg.gp0.output == "sigmoid"
    warnings = [w for w in method_warnings(cfg) if "Thanh-Tung" in w and "LAMBDA" in w]
    assert bool(warnings) == warned


def lazy_parts(*overrides):
    cfg = compose_cfg("reg=r1", "reg.r1.interval=4", "train.n_dis=1", *overrides)
    return cfg, build_all(cfg, CPU)


def adam_steps(optimizer) -> int:
    return int(next(iter(optimizer.state.values()))["step"])


def test_lazy_r1_takes_its_own_step_as_stylegan2():
    """NVlabs/stylegan2-ada-pytorch@d72cc7d: with D_reg_interval k, phases Dmain (every
    iteration) and Dreg (when batch_idx % k == 0, training_loop.py:271) each step D's optimiser;
    Dreg's loss is the R1 term alone times k (loss.py:121-131, gain = interval at :283); D's
    Adam runs at lr * k/(k+1) with betas ** (k/(k+1)) (training_loop.py:202-205)."""
    cfg, parts = lazy_parts()
    group = parts.opt_d.param_groups[0]
    assert group["lr"] == pytest.approx(2e-4 * 4 / 5)
    assert group["betas"] == pytest.approx((0.5**0.8, 0.999**0.8))
    assert parts.opt_g.param_groups[0]["lr"] == 2e-4  # G has no lazy penalty: as set
    settings = StepSettings(8, cfg.model.latent_dim)
    logged = []
    for d_step in range(8):
        terms = step.discriminator_step(parts, parts.stream.next(), d_step, d_step, settings)
        logged.append("reg/r1" in terms)
    assert logged == [True, False, False, False, True, False, False, False]
    assert adam_steps(parts.opt_d) == 8 + 2  # 8 main steps, 2 regularisation steps
    real, fake = parts.stream.next(), torch.randn(16, 1, 28, 28)
    main, main_terms = step.discriminator_loss(parts, real, fake, 0, 4, 8)
    assert "reg/r1" not in main_terms and "loss/D" in main_terms  # R1 left the main pass
    lazy, lazy_terms = step.discriminator_loss(parts, real, fake, 0, 4, 8, phase="lazy")
    assert set(lazy_terms) == {"reg/r1"}  # no GAN loss in the regularisation pass
    assert lazy.item() == pytest.approx(4 * 10.0 * lazy_terms["reg/r1"].item(), rel=1e-5)
    assert step.discriminator_loss(parts, real, fake, 0, 5, 8, phase="lazy")[1] == {}


def test_folded_lazy_regularisation_keeps_one_step_and_the_optimiser():
    """``train.lazy_regularization=folded`` (ganx before issue 28): k x R1 inside every k-th D
    step's loss, one optimiser step per D step, lr and betas as set."""
    cfg, parts = lazy_parts(override("train.lazy_regularization", "folded"))
    group = parts.opt_d.param_groups[0]
    assert group["lr"] == 2e-4 and group["betas"] == (0.5, 0.999)
    settings = StepSettings(8, cfg.model.latent_dim)
    for d_step in range(8):
        step.discriminator_step(parts, parts.stream.next(), d_step, d_step, settings)
    assert adam_steps(parts.opt_d) == 8
    real, fake = parts.stream.next(), torch.randn(16, 1, 28, 28)
    total, terms = step.discriminator_loss(parts, real, fake, 0, 4, 8)
    assert {"loss/D", "reg/r1"} <= set(terms)
    expected = terms["loss/D"] + 4 * 10.0 * terms["reg/r1"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)


def test_every_interval_one_is_the_same_computation_in_both_modes():
    results = []
    for mode in ("separate", "folded"):
        cfg = compose_cfg("reg=r1", f"train.lazy_regularization={mode}")
        seed_everything(0)
        parts = build_all(cfg, CPU)
        settings = StepSettings(4, cfg.model.latent_dim)
        for d_step in range(3):
            step.discriminator_step(parts, parts.stream.next(), d_step, d_step, settings)
        results.append(torch.cat([p.flatten() for p in parts.discriminator.parameters()]))
    assert torch.equal(*results)


def test_separate_lazy_steps_need_one_interval(tmp_path):
    from ganx.errors import ConfigError
    from ganx.validate import validate

    cfg = compose_cfg("reg=[r1,r2]", "reg.r1.interval=4", "reg.r2.interval=8")
    with pytest.raises(ConfigError, match="reg.r1.interval=4, reg.r2.interval=8 with train"):
        validate(cfg)
    validate(compose_cfg("reg=[r1,r2]", "reg.r1.interval=4", "reg.r2.interval=4"))
    folded = ["train.lazy_regularization=folded"]
    validate(compose_cfg("reg=[r1,r2]", "reg.r1.interval=4", "reg.r2.interval=8", *folded))
    with pytest.raises(ConfigError, match="train.lazy_regularization='sometimes'"):
        validate(compose_cfg("train.lazy_regularization=sometimes"))


def test_the_start_of_a_run_names_the_prior_and_the_lazy_schedule():
    from ganx.methods import describe_method

    line = describe_method(compose_cfg("experiment=roth_js", "reg=r1", "reg.r1.interval=4"))
    assert "z ~ U[-1, 1)" in line and "lazy: separate" in line
    plain = describe_method(compose_cfg())
    assert "z ~" not in plain and "lazy" not in plain


def test_a_checkpoints_prior_reaches_the_python_api(tmp_path):
    """``ganx.load_generator(...).latents`` (as ``ganx-sample`` and ``ganx-export``) draws from
    the run's prior: the evaluation noise of a uniform-prior run is uniform."""
    from ganx.api import load_generator
    from ganx.loop import train

    train(compose_cfg("model.latent_distribution=uniform", "train.steps=2"), tmp_path)
    handle = load_generator(tmp_path / "checkpoints" / "last.pt")
    assert_uniform(handle.latents(20000))
    assert handle.sample(4).shape == (4, 1, 28, 28)
