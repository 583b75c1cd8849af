"""Settings tried away from their defaults, where the default coincides with another value (both
learning rates equal, LSGAN's targets the usual ones, a penalty's target the one the code would
use anyway): code that ignored the key would pass every test run at the default. Each test
builds the piece from a composed config, as a run does, and checks the key's effect on what it
computes (closed forms on the linear D of test_regularizers, where every input gradient is
w = (3, -4), ||w|| = 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import compose_cfg
from internals import StepSettings, ema_decay, generate, seed_everything, training_iteration
from key_cover import override
from test_regularizers import make_pass

from ganx.build import build_all, build_data, build_loss, build_nets, build_regularizers
from ganx.loop import train
from ganx.sampling import latent_distribution, latents

CPU = torch.device("cpu")
REAL = torch.tensor([0.3, -1.2, 2.0])
FAKE = torch.tensor([-0.7, 0.4, 1.5])


def test_g_and_d_get_their_own_learning_rates_and_betas():
    cfg = compose_cfg(
        "reg=none",
        override("optim.g.lr", 0.0001),
        override("optim.d.lr", 0.0003),
        override("optim.g.betas", [0.0, 0.9]),
        override("optim.d.betas", [0.3, 0.99]),
    )
    parts = build_all(cfg, CPU)
    g, d = parts.opt_g.param_groups[0], parts.opt_d.param_groups[0]
    assert (g["lr"], d["lr"]) == (0.0001, 0.0003)
    assert (tuple(g["betas"]), tuple(d["betas"])) == ((0.0, 0.9), (0.3, 0.99))
    assert {id(p) for p in g["params"]} == {id(p) for p in parts.generator.parameters()}


def test_lsgan_targets_a_b_c_each_reach_their_term():
    loss = build_loss(
        compose_cfg(
            "loss=lsgan", override("loss.a", -1.0), override("loss.b", 2.0), override("loss.c", 0.0)
        )
    )
    d = 0.5 * ((REAL - 2.0) ** 2).mean() + 0.5 * ((FAKE + 1.0) ** 2).mean()
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d.item())
    assert loss.g_loss(FAKE).item() == pytest.approx((0.5 * FAKE**2).mean().item())


@pytest.mark.parametrize("name", ["ns", "minimax"])
def test_d_scale_multiplies_d_loss_only(name):
    plain = build_loss(compose_cfg(f"loss={name}"))
    halved = build_loss(compose_cfg(f"loss={name}", override("loss.d_scale", 0.5)))
    assert halved.d_loss(REAL, FAKE).item() == pytest.approx(0.5 * plain.d_loss(REAL, FAKE).item())
    assert torch.equal(halved.g_loss(FAKE), plain.g_loss(FAKE))


def test_ragan_scale_and_variant():
    standard = build_loss(compose_cfg("loss=ragan"))
    halved = build_loss(compose_cfg("loss=ragan", override("loss.scale", 0.5)))
    least_squares = build_loss(compose_cfg("loss=ragan", override("loss.variant", "ls")))
    d = standard.d_loss(REAL, FAKE).item()
    assert halved.d_loss(REAL, FAKE).item() == pytest.approx(0.5 * d)
    assert halved.g_loss(FAKE, REAL).item() == pytest.approx(
        0.5 * standard.g_loss(FAKE, REAL).item()
    )
    # RaLSGAN: E (D(x) - E D(G(z)) - 1)^2 + E (D(G(z)) - E D(x) + 1)^2
    ls = ((REAL - FAKE.mean() - 1) ** 2).mean() + ((FAKE - REAL.mean() + 1) ** 2).mean()
    assert least_squares.d_loss(REAL, FAKE).item() == pytest.approx(ls.item())


def one_reg(group: str, *overrides: str):
    return build_regularizers(compose_cfg(f"reg={group}", *overrides))[group]


def test_gradient_penalty_target_output_weight_interval():
    gp = one_reg(
        "gp",
        override("reg.gp.target", 2.0),
        override("reg.gp.weight", 3.0),
        override("reg.gp.interval", 3),
    )
    assert gp.penalty(make_pass()).item() == pytest.approx((5 - 2.0) ** 2)
    assert gp.weight == 3.0
    assert [gp.applies_at(s) for s in range(6)] == [s % 3 == 0 for s in range(6)]
    sig = one_reg("gp", override("reg.gp.output", "sigmoid"))
    assert sig.penalty(make_pass()).item() < 1.0  # |sigmoid'| <= 1/4: norms <= 5/4, (n - 1)^2 < 1


def test_zero_centred_penalty_target_output_weight_interval():
    gp0 = one_reg(
        "gp0",
        override("reg.gp0.target", 1.0),
        override("reg.gp0.output", "logit"),
        override("reg.gp0.weight", 7.0),
        override("reg.gp0.interval", 2),
    )
    assert gp0.penalty(make_pass()).item() == pytest.approx((5 - 1.0) ** 2)
    assert gp0.weight == 7.0 and gp0.interval == 2


def test_dragan_noise_scale_weight_interval():
    dragan = one_reg(
        "dragan",
        override("reg.dragan.noise_scale", 2.0),
        override("reg.dragan.weight", 1.0),
        override("reg.dragan.interval", 4),
    )
    assert dragan.noise_scale == 2.0 and dragan.weight == 1.0
    assert [dragan.applies_at(s) for s in range(5)] == [True, False, False, False, True]
    seen = []

    class Recording(torch.nn.Module):
        def forward(self, x):
            seen.append(x.detach())
            return (x * torch.tensor([3.0, -4.0])).sum(1)

    batch = make_pass()
    torch.manual_seed(1)
    real = batch.real.detach()
    dragan.penalty(type(batch)(Recording(), real, batch.fake, None, None, 0, 10))
    # x_hat lies between x and x + 2.0 * std(x) * U[0, 1): up to twice the default's reach
    reach = (seen[0] - real).abs().max().item()
    assert 0.5 * real.std().item() < reach <= 2.0 * real.std().item()


def test_anchored_logit_penalty_anchors_and_weight():
    rlc = one_reg(
        "rlc",
        override("reg.rlc.alpha_real", 2.0),
        override("reg.rlc.alpha_fake", -1.0),
        override("reg.rlc.weight", 0.5),
        override("reg.rlc.interval", 2),
    )
    batch = make_pass()
    expected = ((batch.real_logits + 1.0) ** 2).mean() + ((batch.fake_logits - 2.0) ** 2).mean()
    assert rlc.penalty(batch).item() == pytest.approx(expected.item())
    assert rlc.weight == 0.5 and rlc.interval == 2


def test_js_anneal_decay_interval():
    js = one_reg(
        "js",
        override("reg.js.anneal", True, option="reg/js"),
        override("reg.js.decay", 0.5),
        override("reg.js.interval", 3),
    )
    assert js.weight_at(0, 10) == pytest.approx(2.0)
    assert js.weight_at(10, 10) == pytest.approx(2.0 * 0.5)
    assert js.interval == 3


def test_lecam_interval_and_zero_debias():
    lecam = one_reg(
        "lecam",
        override("reg.lecam.zero_debias", True),
        override("reg.lecam.interval", 2),
        "reg.lecam.start_step=null",
    )
    lecam.anchor_real, lecam.anchor_fake, lecam.updates = 0.19, -0.1, 2
    a_r, a_f = lecam.anchors()
    assert (a_r, a_f) == pytest.approx((0.19 / (1 - 0.9**2), -0.1 / (1 - 0.9**2)))
    assert lecam.interval == 2


def test_r2_weight_and_its_schedule():
    r2 = one_reg(
        "r2",
        override("reg.r2.weight", 4.0),
        override("reg.r2.schedule", "cosine"),
        override("reg.r2.weight_end", 1.0),
        override("reg.r2.interval", 2),
    )
    assert r2.weight_at(0, 10) == pytest.approx(4.0)
    assert r2.weight_at(5, 10) == pytest.approx(2.5)  # cosine half way: (4 + 1) / 2
    assert r2.weight_at(10, 10) == pytest.approx(1.0)
    assert r2.interval == 2


def test_instance_noise_without_annealing_keeps_its_std():
    noise = one_reg("instance_noise", override("reg.instance_noise.anneal", "none"))
    assert noise.std_at(0, 10) == noise.std_at(9, 10) == pytest.approx(0.1)


def test_dat_step_size_clamp_side_and_range():
    dat = one_reg(
        "dat",
        override("reg.dat.step_size", 0.01),
        override("reg.dat.clamp", 0.005),
        override("reg.dat.perturb", "real"),
        override("reg.dat.clamp_real", True),
        override("reg.dat.clamp_range", [-0.5, 0.5]),
    )
    dat.configure((-1.0, 1.0), has_aux=False)
    batch = make_pass()
    real, fake = batch.real.detach() * 0.1, batch.fake.detach()
    new_real, new_fake = dat.transform_d_inputs(batch.discriminator, real, fake, 0, 10)
    assert torch.equal(new_fake, fake)  # perturb=real: the fakes stay
    step = (new_real - real.clamp(-0.5, 0.5)).abs()
    assert step.max().item() <= 0.005 + 1e-7 and step.max().item() > 0
    assert new_real.abs().max().item() <= 0.5


def test_uniform_prior_draws_in_minus_one_one():
    cfg = compose_cfg(override("model.latent_distribution", "uniform", option="model/dcgan"))
    z = latents(2000, 8, latent_distribution(cfg), torch.Generator().manual_seed(0))
    assert z.min().item() >= -1.0 and z.max().item() < 1.0
    assert z.std().item() == pytest.approx(1 / 3**0.5, rel=0.05)


def test_ckpt_keep_one_keeps_one_step_file(tmp_path):
    train(compose_cfg("train.steps=6", "ckpt.every=2", override("ckpt.keep", 1)), tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt"))
    assert names == ["last.pt", "step_0000006.pt"]


def test_batch_size_is_the_real_batch_the_stream_gives():
    parts = build_all(compose_cfg(override("train.batch_size", 12)), CPU)
    assert parts.stream.next().shape[0] == 12


def test_seed_sets_the_initial_weights():
    def first_weight(*overrides):
        cfg = compose_cfg(*overrides)
        seed_everything(cfg.seed)
        return next(build_all(cfg, CPU).generator.parameters()).detach().clone()

    assert torch.equal(first_weight(), first_weight())
    assert not torch.equal(first_weight(), first_weight(override("seed", 3)))


def test_ema_start_copies_g_until_then():
    cfg = compose_cfg(override("train.ema_start", 5), "train.ema=0.9")
    assert ema_decay(cfg.train.ema, 4, cfg.train.ema_start) == 0.0
    assert ema_decay(cfg.train.ema, 5, cfg.train.ema_start) == pytest.approx(0.1)


def test_latent_dim_and_data_shape_reach_the_nets():
    cfg = compose_cfg(
        override("model.latent_dim", 7),
        override("dataset.resolution", 32, option="dataset/mnist5k"),
        override("dataset.channels", 3, option="dataset/mnist5k"),
    )
    parts = build_all(cfg, CPU)
    assert parts.source.images.shape[1:] == (3, 32, 32)
    fake = parts.generator(torch.randn(2, 7))
    assert fake.shape == (2, 3, 32, 32) and parts.discriminator(fake).shape == (2,)


def test_eval_samples_and_metrics_of_a_data_set_set_evaluations_defaults():
    cfg = compose_cfg(override("dataset.metrics", ["kid_mnist"]), tiny=False)
    assert list(cfg.eval.metrics) == ["kid_mnist"]
    stacked = compose_cfg(
        "dataset=stacked_mnist", override("dataset.eval_samples", 123), tiny=False
    )
    assert stacked.eval.num_samples == 123


def test_mixture_size_and_its_own_seed():
    base = build_data(compose_cfg("dataset=ring8", override("dataset.source.n", 500)))
    other = build_data(
        compose_cfg("dataset=ring8", "dataset.source.n=500", override("dataset.source.seed", 1))
    )
    assert len(base) == 500 and len(other) == 500
    assert not torch.equal(base.images, other.images)


def test_dcgan_widths():
    generator, discriminator = build_nets(
        compose_cfg(override("model.generator.ngf", 4), override("model.discriminator.ndf", 6))
    )
    last_g = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
    first_d = next(m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d))
    assert last_g.in_channels == 4 and first_d.out_channels == 6


def test_mlp_widths_and_activation():
    generator, discriminator = build_nets(
        compose_cfg(
            "model=mlp",
            override("model.generator.widths", [8, 16]),
            override("model.discriminator.widths", [12]),
        )
    )
    g = [m.out_features for m in generator.modules() if isinstance(m, torch.nn.Linear)]
    d = [m.out_features for m in discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert g == [8, 16, 784] and d == [12, 1]
    leaky = build_nets(
        compose_cfg(
            "model=dragan_mlp",
            override("model.generator.activation", "leaky_relu", option="model/dragan_mlp"),
            override("model.discriminator.activation", "leaky_relu", option="model/dragan_mlp"),
        )
    )
    for net in leaky:
        assert any(isinstance(m, torch.nn.LeakyReLU) for m in net.modules())
        assert not any(isinstance(m, torch.nn.ReLU) for m in net.modules())


def test_toy_widths_and_depths():
    generator, discriminator = build_nets(
        compose_cfg(
            "model=toy2d",
            "dataset=grid25",
            override("model.generator.hidden", 5),
            override("model.generator.depth", 2, option="model/toy2d"),
            override("model.discriminator.hidden", 6),
            override("model.discriminator.depth", 1),
        )
    )
    g = [m.out_features for m in generator.modules() if isinstance(m, torch.nn.Linear)]
    d = [m.out_features for m in discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert g == [5, 5, 2] and d == [6, 1]


def test_reg_weights_decay_and_r1_schedule():
    js = one_reg("js", override("reg.js.weight", 0.5))
    assert js.weight_at(0, 10) == 0.5
    lecam = one_reg(
        "lecam",
        override("reg.lecam.decay", 0.5),
        override("reg.lecam.weight", 0.7),
        "reg.lecam.start_step=null",
    )
    assert lecam.decay == 0.5 and lecam.weight == 0.7
    r1 = one_reg("r1", override("reg.r1.schedule", "cosine"), override("reg.r1.weight_end", 2.0))
    assert r1.weight_at(0, 10) == pytest.approx(10.0)
    assert r1.weight_at(10, 10) == pytest.approx(2.0)


def test_sample_grids_every_n_and_their_bn_stats(tmp_path):
    from PIL import Image

    cfg = compose_cfg(
        "train.steps=4", "reg=none", override("sample.every", 3), override("sample.n", 4)
    )
    train(cfg, tmp_path)
    grids = sorted(p.name for p in (tmp_path / "samples").glob("step_*.png"))
    assert grids == ["step_0000003.png", "step_0000004.png"]  # every 3 and the last step
    small = Image.open(tmp_path / "samples" / grids[0]).size
    assert small[0] < 4 * 28 + 20  # 2 x 2 grid of 28 px digits, not 4 x 4
    running = compose_cfg(override("sample.bn_stats", "running"))
    parts = build_all(running, CPU)
    noise = torch.randn(4, running.model.latent_dim)
    with_running = generate(parts.generator, noise, running.sample.bn_stats)
    assert not torch.allclose(with_running, generate(parts.generator, noise, "batch"))


def test_simultaneous_updates_let_g_see_the_d_before_its_step():
    def after_one_step(*overrides):
        sgd = ["optim.g._target_=torch.optim.SGD", "optim.d._target_=torch.optim.SGD"]
        sgd += ["~optim.g.betas", "~optim.d.betas", "optim.g.lr=0.2", "optim.d.lr=0.2"]
        cfg = compose_cfg(
            "model=dirac", "dataset=dirac", "reg=none", "train.ema=null", *sgd, *overrides
        )
        parts = build_all(cfg, CPU)
        settings = StepSettings(total=1, latent_dim=cfg.model.latent_dim)
        simultaneous = cfg.train.updates == "simultaneous"
        training_iteration(parts, settings, 0, 0, 1, simultaneous, parts.stream.next)
        return parts.generator.theta.item(), parts.discriminator.psi.item()

    alternating = after_one_step()
    simultaneous = after_one_step(override("train.updates", "simultaneous"))
    assert alternating[1] == simultaneous[1]  # D's step is the same
    assert alternating[0] != simultaneous[0]  # G's step saw the old psi


def test_concat_real_fake_and_channels_last_reach_the_built_run():
    concat = build_all(
        compose_cfg(
            "model=mlp", override("hardware.concat_real_fake", True, option="hardware/cpu")
        ),
        CPU,
    )
    assert concat.concat_real_fake
    nhwc = build_all(
        compose_cfg(override("hardware.channels_last", True, option="hardware/cpu")), CPU
    )
    convs = [m for m in nhwc.discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    weight = convs[1].weight  # the first has one input channel: both layouts coincide
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()


def test_stacked_mnist_size_and_thread_count():
    stacked = build_data(compose_cfg("dataset=stacked_mnist", override("dataset.n", 40)))
    assert len(stacked) == 40 and stacked.images.shape[1] == 3
    from ganx.hardware import set_up_process

    try:
        set_up_process(compose_cfg(override("hardware.threads", 2)), Path("unused"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_log_progress_off_prints_no_progress_lines(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="ganx")

    def progress_lines(*overrides):
        caplog.clear()
        run_dir = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        train(compose_cfg("train.steps=4", "reg=none", *overrides), run_dir)
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]

    lines = progress_lines("log.progress=true")
    assert [line.split()[1] for line in lines] == ["2/4", "4/4"]  # log.every=2 in TINY
    assert progress_lines(override("log.progress", False)) == []


def test_diffaugment_policy_cutout_and_translation_sizes():
    from ganx.build import build_augment

    def augment(*overrides):
        return build_augment(compose_cfg("augment=diffaug", *overrides), CPU)

    ones = torch.ones(64, 1, 28, 28)
    cut = augment(override("augment.policy", ["cutout"]), override("augment.cutout", 0.25))(ones)
    zeros = (cut == 0).flatten(1).sum(1)
    assert set(cut.unique().tolist()) == {0.0, 1.0}  # no colour change: cutout only
    assert zeros.max().item() <= 7 * 7 and zeros.min().item() > 0  # 0.25 x 28 -> a 7 px square
    dot = torch.zeros(256, 1, 28, 28)
    dot[:, :, 14, 14] = 1.0
    moved = augment("augment.policy=[translation]", override("augment.translation", 0.25))(dot)
    rows, cols = (moved[:, 0] == 1).nonzero()[:, 1:].T
    shifts = torch.maximum((rows - 14).abs(), (cols - 14).abs())
    assert shifts.max().item() == 7  # int(28 x 0.25 + 0.5); the default 0.125 reaches 4


def test_ada_transforms_and_target():
    from ganx.build import build_augment

    flip = build_augment(
        compose_cfg("augment=ada", override("augment.transforms", ["xflip"]), "augment.p=1.0"), CPU
    )
    x = torch.arange(28.0).repeat(8, 1, 28, 1)
    out = flip(x)
    assert all(torch.equal(o, x[0]) or torch.equal(o, x[0].flip(-1)) for o in out)
    assert any(torch.equal(o, x[0].flip(-1)) for o in out)
    high = build_augment(
        compose_cfg("augment=ada", override("augment.target", 0.9), "augment.interval=1"), CPU
    )
    high.observe(torch.tensor(0.8), 16)  # r_t 0.8: above ADA's 0.6, below this target
    assert float(high.p) == 0.0  # p fell (clamped at 0) instead of rising
    usual = build_augment(compose_cfg("augment=ada", "augment.interval=1"), CPU)
    usual.observe(torch.tensor(0.8), 16)
    assert float(usual.p) > 0.0
