"""What the README promises about one training step, checked as properties rather than as "the run
finished": a fresh real batch per D step, annealed and lazy weights in the D loss itself, instance
noise on every input D sees, a relativistic G loss on its own real batch, WGAN clipping in
training, the EMA, evaluation that changes nothing, the auxiliary term in G's update, mixed
precision inside the step, the NaN check at log flush."""

import copy
import json

import pytest
import torch
from conftest import compose_cfg
from internals import (
    StepSettings,
    disable_per_step_check,
    discriminator_loss,
    discriminator_step,
    generator_backward,
    generator_loss,
    poison_d_loss,
    seed_everything,
    training_iteration,
    update_ema,
)
from key_cover import override
from torch import nn

from ganx import checkpoint as ckpt
from ganx.build import build_all, build_nets
from ganx.loop import train

CPU = torch.device("cpu")


def built(*overrides):
    cfg = compose_cfg(*overrides)
    seed_everything(cfg.seed)
    return cfg, build_all(cfg, CPU)


def settings_for(cfg, **kwargs):
    return StepSettings(total=cfg.train.steps, latent_dim=cfg.model.latent_dim, **kwargs)


def record_inputs(module: nn.Module, into: list):
    return module.register_forward_pre_hook(lambda mod, args: into.append(args[0].detach()))


def fake_batch(parts, cfg, n=16):
    with torch.no_grad():
        return parts.generator(torch.randn(n, cfg.model.latent_dim))


def test_each_d_step_gets_a_fresh_real_batch(tmp_path):
    # the command a user runs: 2 G steps with n_dis=3 read 6 batches of the data stream
    train(compose_cfg(override("train.n_dis", 3), "train.steps=2", "reg=none"), tmp_path)
    state = ckpt.load(tmp_path / "checkpoints" / "last.pt")
    assert state["d_steps"] == 6 and state["data"] == {"epoch": 0, "batch": 6}
    # and D's real input in D step k is the k-th batch drawn (constant images mark them)
    cfg, parts = built(override("train.n_dis", 3), "reg=none")
    batches = iter(torch.full((16, 1, 28, 28), v) for v in (0.1, 0.2, 0.3))
    seen = []
    record_inputs(parts.discriminator, seen)
    training_iteration(parts, settings_for(cfg), 0, 0, 3, False, lambda: next(batches))
    reals = [x.flatten()[0].item() for x in seen if x.unique().numel() == 1]
    assert reals == pytest.approx([0.1, 0.2, 0.3])


def test_d_loss_uses_the_annealed_weight():
    """The weight in D's loss, not only the logged one, follows JS annealing."""
    cfg, parts = built("reg=js", "reg.js.anneal=true", "reg.js.decay=0.01")
    real, fake = parts.stream.next(), fake_batch(parts, cfg)
    added = {}
    for step in (0, 50, 100):
        total, terms = discriminator_loss(parts, real, fake, step, 0, 100)
        added[step] = (total - terms["loss/D"]).item()
        gamma = parts.regularizers["js"].weight_at(step, 100)
        assert added[step] == pytest.approx(gamma * terms["reg/js"].item(), rel=1e-5)
    # same D, same batch: the penalty is fixed, its weight decays as 0.01^(t/T)
    assert added[50] / added[0] == pytest.approx(0.1, rel=1e-4)
    assert added[100] / added[0] == pytest.approx(0.01, rel=1e-4)


@pytest.mark.parametrize("name", ["r1", "r2"])
def test_d_loss_uses_the_cosine_scheduled_weight(name):
    """R3GAN's gamma schedule (0.05 -> 0.005 along half a cosine, here over 100 steps): the
    weight D's loss adds is the scheduled one, and it stays at the end value after the span."""
    cfg, parts = built(
        f"reg={name}",
        f"reg.{name}.weight=0.05",
        f"reg.{name}.schedule=cosine",
        f"reg.{name}.weight_end=0.005",
        f"reg.{name}.schedule_steps=100",
    )
    real, fake = parts.stream.next(), fake_batch(parts, cfg)
    expected = {0: 0.05, 25: 0.005 + 0.045 * (1 + 2**-0.5) / 2, 50: 0.0275, 100: 0.005, 400: 0.005}
    for step, gamma in expected.items():
        total, terms = discriminator_loss(parts, real, fake, step, 0, 1000)
        assert parts.regularizers[name].weight_at(step, 1000) == pytest.approx(gamma, rel=1e-9)
        added = (total - terms["loss/D"]).item()
        # float32: D's loss (~1.4) minus the sum leaves the small weighted term to ~1e-7
        assert added == pytest.approx(gamma * terms[f"reg/{name}"].item(), rel=1e-4)


def test_penalty_steps_run_d_eagerly_and_the_others_through_the_fast_wrapper():
    """Compiled graphs have no double backward: on the D steps whose penalties need an input
    gradient D runs eagerly (same weights), elsewhere through ``discriminator_fast`` (the
    compiled wrapper with hardware.compile; a recording stand-in here), as does G's step."""
    cfg, parts = built("reg=r1", override("reg.r1.interval", 2), "train.lazy_regularization=folded")
    calls = []
    eager = parts.discriminator
    parts.discriminator_fast = lambda x: calls.append(len(x)) or eager(x)
    real, fake = parts.stream.next(), fake_batch(parts, cfg)
    assert "reg/r1" in discriminator_loss(parts, real, fake, 0, 0, 10)[1]  # R1 due: eager
    assert calls == []
    assert "reg/r1" not in discriminator_loss(parts, real, fake, 0, 1, 10)[1]
    assert calls == [16, 16]
    generator_loss(parts, 16, 0, settings_for(cfg), fake)
    assert calls == [16, 16, 16]


def test_a_regularizer_without_a_penalty_leaves_the_later_ones_in_d_loss():
    """reg=[lecam,r1] at G step 0, before LeCam's start_step: LeCam adds nothing yet, and R1,
    listed after it, still does."""
    cfg, parts = built("reg=[lecam,r1]")
    assert list(parts.regularizers) == ["lecam", "r1"]
    real, fake = parts.stream.next(), fake_batch(parts, cfg)
    total, terms = discriminator_loss(parts, real, fake, 0, 0, 10)
    assert "reg/lecam" not in terms and "reg/r1" in terms
    weight = parts.regularizers["r1"].weight
    added = (total - terms["loss/D"]).item()
    assert added == pytest.approx(weight * terms["reg/r1"].item(), rel=1e-4)


def test_a_penalty_sees_d_s_pass_and_the_training_progress():
    """The regularizer protocol: ``penalty(batch)`` gets the D pass (D, its inputs and logits)
    with the G steps done and the total, so a new penalty can follow the run's progress."""
    from ganx.regularizers import Regularizer

    seen = []

    class Progress(Regularizer):
        def penalty(self, batch):
            seen.append((batch.discriminator, batch.step, batch.total_steps))
            assert torch.equal(batch.real_logits, batch.discriminator(batch.real))
            return batch.fake_logits.mean() * 0

    cfg, parts = built("reg=none")
    parts.regularizers["progress"] = Progress(weight=1.0)
    real, fake = parts.stream.next(), fake_batch(parts, cfg)
    _, terms = discriminator_loss(parts, real, fake, 7, 0, 40)
    assert seen == [(parts.discriminator, 7, 40)] and "reg/progress" in terms


def test_d_loss_adds_the_aux_term_and_logs_d_s_mean_logits():
    """model=ssgan: D's total is its GAN loss plus the rotation term; D/real and D/fake are
    the means of D's logits on the batches it saw."""
    cfg, parts = built("model=ssgan", "dataset.resolution=32", "reg=none")
    real, fake = parts.stream.next(), fake_batch(parts, cfg)
    logits = []
    parts.discriminator.register_forward_hook(lambda mod, args, out: logits.append(out.detach()))
    total, terms = discriminator_loss(parts, real, fake, 0, 0, 10)
    real_logits, fake_logits = logits[:2]
    assert terms["aux/D"].item() != 0
    assert total.item() == pytest.approx((terms["loss/D"] + terms["aux/D"]).item(), rel=1e-6)
    assert terms["D/real"].item() == pytest.approx(real_logits.float().mean().item(), rel=1e-6)
    assert terms["D/fake"].item() == pytest.approx(fake_logits.float().mean().item(), rel=1e-6)


@pytest.mark.parametrize("mode", ["folded", "separate"])
def test_lazy_penalty_applies_every_kth_d_step_with_gain_k(mode):
    """Folded: in D's loss on every k-th D step; separate (StyleGAN2): in a pass of its own
    (``phase="lazy"``) on those steps, never in the main pass."""
    cfg, parts = built(
        "reg=r1",
        override("reg.r1.interval", 4),
        override("reg.r1.weight", 3),
        f"train.lazy_regularization={mode}",
    )
    real, fake = parts.stream.next(), fake_batch(parts, cfg)
    phase = "lazy" if mode == "separate" else "main"
    for d_step in range(5):
        total, terms = discriminator_loss(parts, real, fake, 0, d_step, 4, phase=phase)
        added = (total - terms.get("loss/D", 0.0)).item() if terms else 0.0
        if d_step % 4 == 0:
            assert added == pytest.approx(3 * 4 * terms["reg/r1"].item(), rel=1e-5)
        else:
            assert "reg/r1" not in terms and added == 0.0
        if mode == "separate":
            main = discriminator_loss(parts, real, fake, 0, d_step, 4)[1]
            assert "reg/r1" not in main and "loss/D" in main


def test_separate_lazy_pass_weights_its_penalty_at_the_g_step_and_names_it_on_nan(monkeypatch):
    """StyleGAN2's Dreg pass after D's main step: D's gradient is that of the penalty at the
    weight its schedule gives at this G step (same D, same batches: the gradient scales with
    it), the weights R1 does not reach (D's last bias) are left as the main step put them (no
    zero gradient for Adam's momentum to act on), and a non-finite penalty there stops naming
    the step and the term."""
    from ganx.regularizers import R1Penalty
    from ganx.step import Diverged

    # the schedule spans the run (schedule_steps unset): train.steps=100
    schedule = ("reg.r1.schedule=cosine", "reg.r1.weight_end=0.005", "train.steps=100")
    lazy = ("reg=r1", "reg.r1.weight=0.05", *schedule, override("reg.r1.interval", 2))
    grads = {}
    for step in (0, 50):
        cfg, parts = built(*lazy, "train.lazy_regularization=separate")
        real = parts.stream.next()
        after_main = {}  # D's weights after its first (main) optimiser step

        def keep(opt, args, kwargs, net=parts.discriminator, into=after_main):
            if not into:
                into.update({n: p.detach().clone() for n, p in net.named_parameters()})

        parts.opt_d.register_step_post_hook(keep)
        terms = discriminator_step(parts, real, step, 0, settings_for(cfg))
        assert "loss/D" in terms and "reg/r1" in terms
        reached = {n: p for n, p in parts.discriminator.named_parameters() if p.grad is not None}
        assert 0 < len(reached) < len(after_main)
        for name, param in parts.discriminator.named_parameters():
            if name not in reached:
                assert torch.equal(param, after_main[name]), name
        grads[step] = torch.cat([p.grad.flatten() for p in reached.values()])
    # cosine from 0.05 to 0.005 over 100 steps: 0.0275 at step 50
    torch.testing.assert_close(grads[50], grads[0] * (0.0275 / 0.05), rtol=1e-4, atol=1e-8)
    monkeypatch.setattr(R1Penalty, "penalty", lambda self, batch: torch.tensor(float("nan")))
    with pytest.raises(Diverged, match=r"^step 7: reg/r1 is nan"):
        discriminator_step(parts, real, 7, 0, settings_for(cfg))


def test_d_step_fakes_match_its_real_batch_and_norms_are_logged_as_applied():
    """D's step draws as many fakes as it has reals; the gradient norms of D and G are logged on
    log steps only, as the L2 norm of the gradients the optimisers applied (0 without any)."""
    from ganx.step import gradient_norm

    cfg, parts = built("reg=none", "dataset=stacked_mnist", override("dataset.n", 64))
    made = []
    parts.generator.register_forward_hook(lambda mod, args, out: made.append(out.shape[0]))
    real = parts.stream.next()[:5]
    discriminator_step(parts, real, 0, 0, settings_for(cfg))
    assert made == [5]
    settings = settings_for(cfg, log_step=False)
    terms, _ = training_iteration(parts, settings, 0, 0, 1, "alternating", parts.stream.next)
    assert not [k for t in terms for k in t if k.startswith("grad_norm/")]
    settings.log_step = True
    (d_terms, g_terms), _ = training_iteration(
        parts, settings, 1, 1, 1, "alternating", parts.stream.next
    )
    for name, net, logged in (("D", parts.discriminator, d_terms), ("G", parts.generator, g_terms)):
        grads = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
        torch.testing.assert_close(logged[f"grad_norm/{name}"], torch.linalg.vector_norm(grads))
    unused = torch.optim.SGD([nn.Parameter(torch.ones(2))], lr=1.0)
    assert torch.equal(gradient_norm(unused), torch.zeros(()))


def test_gradients_are_averaged_over_ranks_before_the_step(monkeypatch):
    """With world > 1 the optimiser applies the mean of every rank's gradient (the all-reduce
    here adds another rank's gradient, 3s); with one rank its own, and no all-reduce."""
    from ganx import collectives
    from ganx.step import optimizer_step

    monkeypatch.setattr(collectives.dist, "all_reduce", lambda flat: flat.add_(3.0))
    for world, moved in ((2, 2.0), (1, 1.0)):
        param = nn.Parameter(torch.zeros(2))
        param.grad = torch.ones(2)
        optimizer_step(torch.optim.SGD([param], lr=1.0), StepSettings(1, 1, world=world))
        assert torch.equal(param.detach(), torch.full((2,), -moved)), world


def test_updates_true_and_false_mean_simultaneous_and_alternating():
    """training_iteration's boolean form (scripts/bench.py passes False): True is
    ``simultaneous``, False ``alternating``, step for step."""
    g_after = {}
    for updates in (True, "simultaneous", False, "alternating"):
        cfg, parts = built("reg=none")
        training_iteration(parts, settings_for(cfg), 0, 0, 1, updates, parts.stream.next)
        g_after[updates] = torch.cat([p.flatten() for p in parts.generator.parameters()])
    assert torch.equal(g_after[True], g_after["simultaneous"])
    assert torch.equal(g_after[False], g_after["alternating"])
    assert not torch.equal(g_after[True], g_after[False])


def test_g_first_is_pytorch_gans_order():
    """updates=g_first (PyTorch-GAN gan.py:131-161): G runs forward once; G's step on that batch;
    then one D step on the next real batch and that same fake batch, detached, as drawn before G
    moved, with D's penalties due at its D step; the D step count grows by one and both steps'
    terms come back."""
    cfg, parts = built("reg=r1", override("reg.r1.interval", 2))
    made, seen = [], []
    parts.generator.register_forward_hook(lambda mod, args, out: made.append(out.detach()))
    record_inputs(parts.discriminator, seen)
    batches = []

    def next_real():
        batches.append(parts.stream.next())
        return batches[-1]

    settings = settings_for(cfg)
    terms, d_steps = training_iteration(parts, settings, 3, 4, 1, "g_first", next_real)
    assert d_steps == 5 and len(made) == 1 and len(batches) == 1
    (fake,), (real,) = made, batches
    # G's step: D(fake); D's step: D(real), D(fake); R1's separate lazy pass (the default
    # train.lazy_regularization) on the same two batches. The fake batch is G's step's own,
    # not a fresh one
    assert len(seen) == 5
    for x, want in zip(seen, [fake, real, fake, real, fake], strict=True):
        assert torch.equal(x, want)
    d_terms, g_terms = terms
    assert "loss/D" in d_terms and "reg/r1" in d_terms and set(g_terms) >= {"loss/G"}
    _, d_steps = training_iteration(parts, settings, 4, d_steps, 1, "g_first", next_real)
    assert d_steps == 6  # D step 5: R1 (interval 2) not due


@pytest.mark.parametrize("updates", ["alternating", "simultaneous", "g_first"])
def test_every_step_of_an_iteration_sees_its_g_step(updates):
    """Instance noise at G step 2 (std 0.5 annealed over the run's 10 steps: 0.4) on every input
    D sees, in G's step and in D's, whatever the order of the updates."""
    cfg, parts = built(
        "reg=instance_noise", override("reg.instance_noise.std", 0.5), "train.steps=10"
    )
    made, seen = [], []
    record_inputs(parts.discriminator, seen)
    parts.generator.register_forward_hook(lambda mod, args, out: made.append(out.detach()))
    zeros = torch.zeros(16, 1, 28, 28)
    training_iteration(parts, settings_for(cfg), 2, 0, 1, updates, lambda: zeros)
    # what D saw, and the same input before the noise
    clean = {
        "alternating": [zeros, made[0], made[-1]],  # D step (real, fake), then G's
        "simultaneous": [made[0], zeros, made[-1]],  # G's, then the D step
        "g_first": [made[0], zeros, made[0]],  # G's, then D's on G's batch
    }[updates]
    assert len(seen) == 3
    for x, before in zip(seen, clean, strict=True):
        assert (x - before).std().item() == pytest.approx(0.4, rel=0.05)


def test_a_skipping_runner_drops_the_diverged_step_of_an_iteration(monkeypatch):
    """train.on_nonfinite=skip: training_iteration runs each step through ``run``; a D step with
    a NaN loss is dropped and counted, G's step still goes ahead."""
    from ganx.step import skipping

    cfg, parts = built("reg=none")
    poison_d_loss(monkeypatch, at_call=1)
    skipped = []
    run = skipping(True, lambda: skipped.append(1))
    terms, d_steps = training_iteration(
        parts, settings_for(cfg), 0, 0, 1, "alternating", parts.stream.next, run
    )
    assert skipped == [1] and d_steps == 1
    assert terms[0] == {} and "loss/G" in terms[1]


def test_instance_noise_reaches_every_d_input_in_both_steps():
    """sigma_t = 0.5 * (1 - t / 10): at step 2 every input D sees carries noise of std 0.4, in
    D's step (reals and fakes) and in G's step; at step 10 none."""
    cfg, parts = built(
        "reg=instance_noise",
        override("reg.instance_noise.std", 0.5),
        override("reg.instance_noise.anneal_steps", 10),
    )
    seen = []
    record_inputs(parts.discriminator, seen)
    zeros = torch.zeros(16, 1, 28, 28)
    discriminator_loss(parts, zeros, zeros, 2, 0, 10)
    assert len(seen) == 2
    for x in seen:  # reals and fakes
        assert x.std().item() == pytest.approx(0.4, rel=0.05)
    made = []
    parts.generator.register_forward_hook(lambda mod, args, out: made.append(out.detach()))
    for step, sigma in ((2, 0.4), (10, 0.0)):
        seen.clear()
        made.clear()
        generator_loss(parts, 16, step, settings_for(cfg))
        (d_input,), (g_output,) = seen, made
        assert (d_input - g_output).std().item() == pytest.approx(sigma, rel=0.05, abs=1e-7)


def test_relativistic_g_loss_pairs_fakes_with_the_g_steps_real_batch():
    """loss=rpgan: G's loss is softplus(D(x_i) - D(G(z_i))) on the real batch its step drew,
    and that batch passes through the same input transforms as the fakes (instance noise)."""
    cfg, parts = built("loss=rpgan", "reg=none")
    fake = fake_batch(parts, cfg)
    real_a, real_b = parts.stream.next(), parts.stream.next()
    D = parts.discriminator
    loss_a, _ = generator_loss(parts, 16, 0, settings_for(cfg), fake, real_a)
    expect = torch.nn.functional.softplus(D(real_a) - D(fake)).mean()
    assert loss_a.item() == pytest.approx(expect.item(), rel=1e-6)
    loss_b, _ = generator_loss(parts, 16, 0, settings_for(cfg), fake, real_b)
    assert loss_b.item() != pytest.approx(loss_a.item(), rel=1e-4)
    needs_real = r"^loss=rpgan: G's step needs a real batch \(next_real\)$"
    with pytest.raises(ValueError, match=needs_real):
        generator_loss(parts, 16, 0, settings_for(cfg), fake)
    # one D call on cat(real, fake) (hardware.concat_real_fake, D without BatchNorm): same pairs
    no_bn = ("model.discriminator.norm=none", "hardware.concat_real_fake=true")
    cfg, parts = built("loss=rpgan", "reg=none", *no_bn)
    assert parts.concat_real_fake
    D, fake = parts.discriminator, fake_batch(parts, cfg)
    expect = torch.nn.functional.softplus(D(real_a) - D(fake)).mean()
    loss, _ = generator_loss(parts, 16, 0, settings_for(cfg), fake, real_a)
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)
    cfg, parts = built(
        "loss=ragan",
        "reg=instance_noise",
        "reg.instance_noise.std=0.5",
        "reg.instance_noise.anneal_steps=10",
    )
    seen = []
    record_inputs(parts.discriminator, seen)
    zeros = torch.zeros(16, 1, 28, 28)
    generator_loss(parts, 16, 2, settings_for(cfg), zeros, zeros)
    assert len(seen) == 2  # D on the fakes and on the G step's reals
    for x in seen:
        assert x.std().item() == pytest.approx(0.4, rel=0.05)


def test_wgan_clipping_bounds_d_weights_in_training(tmp_path):
    cfg = compose_cfg("loss=wgan", override("loss.clip", 0.01), "reg=none", "train.steps=2")
    train(cfg, tmp_path)
    state = ckpt.load(tmp_path / "checkpoints" / "last.pt")["discriminator"]
    names = [n for n, _ in build_nets(cfg)[1].named_parameters()]
    assert names and max(state[n].abs().max().item() for n in names) <= 0.01 + 1e-9
    # every parameter sits at the bound or inside it, and training moved them there
    assert any(state[n].abs().max().item() == pytest.approx(0.01) for n in names)


def test_ema_follows_g_with_its_decay():
    g = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = copy.deepcopy(g)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
        g[1].running_mean.fill_(7.0)
    old = [p.clone() for p in ema.parameters()]
    update_ema(ema, g, 0.9)
    for p_old, p_ema, p in zip(old, ema.parameters(), g.parameters(), strict=True):
        torch.testing.assert_close(p_ema, 0.9 * p_old + 0.1 * p)
    assert torch.equal(ema[1].running_mean, g[1].running_mean)  # buffers are copied


def test_the_ema_generator_is_a_frozen_copy_in_eval_mode():
    """make_ema: G's weights, BatchNorm in eval mode (its running statistics, not the batch's),
    and no autograd graph behind its samples (nothing trains it; update_ema moves it)."""
    from ganx.step import make_ema

    g = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = make_ema(g)
    z = torch.randn(4, 3)
    out = ema(z)
    assert not out.requires_grad and not ema.training and g.training
    torch.testing.assert_close(out, g.eval()(z))


def test_skipping_drops_a_diverged_step_only_when_asked():
    """train.on_nonfinite=skip: a step raising Diverged yields no terms and is counted; with
    stop the error propagates; a step that did not diverge returns its terms either way."""
    from ganx.step import Diverged, skipping

    def diverging():
        raise Diverged("step 3: loss/D is nan (non-finite)")

    skipped = []
    assert skipping(True, lambda: skipped.append(1))(diverging) == {}
    assert skipped == [1]
    with pytest.raises(Diverged, match="step 3: loss/D is nan"):
        skipping(False, lambda: skipped.append(1))(diverging)
    assert skipped == [1]
    for skip in (True, False):
        run = skipping(skip, lambda: skipped.append(1))
        assert run(lambda x: {"loss/D": x}, 2) == {"loss/D": 2}


def test_real_batches_reach_d_in_channels_last_only_when_asked_and_only_images():
    """hardware.channels_last: image batches come out of the stream in channels_last memory
    format (the layout D's weights are in; one channel is both layouts, so three here); without
    it as stored; 2-D toy points as they are."""
    from ganx.step import real_batches

    _, parts = built("reg=none", "dataset=stacked_mnist", override("dataset.n", 64))  # 3 channels
    assert real_batches(parts, True)().is_contiguous(memory_format=torch.channels_last)
    plain = real_batches(parts, False)()
    assert plain.is_contiguous() and not plain.is_contiguous(memory_format=torch.channels_last)
    _, toy = built("model=toy2d", "dataset=ring8", "reg=none")
    points = real_batches(toy, True)()
    assert points.dim() == 2 and points.is_contiguous()


def test_training_updates_the_ema(tmp_path):
    cfg = compose_cfg(override("train.ema", 0.9), "train.steps=3", "reg=none")
    train(cfg, tmp_path)
    state = ckpt.load(tmp_path / "checkpoints" / "last.pt")
    seed_everything(cfg.seed)
    initial = build_all(cfg, CPU).generator.state_dict()
    names = [n for n, _ in build_nets(cfg)[0].named_parameters()]
    ema, g = state["ema_generator"], state["generator"]
    assert any(not torch.equal(ema[n], initial[n]) for n in names)  # the EMA moved
    assert any(not torch.equal(ema[n], g[n]) for n in names)  # and lags G


def test_evaluation_leaves_training_unchanged(tmp_path):
    """Evaluating every 2 steps (a metric with a feature network, whose construction runs a
    random init) changes nothing about the training itself."""
    common = ["train.steps=4", "eval.every=2", "reg=none"]
    train(compose_cfg(*common, "eval.metrics=[]"), tmp_path / "plain")
    result = train(
        compose_cfg(*common, "eval.metrics=[classes_mnist]", "eval.num_samples=100"),
        tmp_path / "eval",
    )
    assert "classes100_mnist" in result  # the evaluation really ran
    plain = ckpt.load(tmp_path / "plain" / "checkpoints" / "last.pt")
    evaluated = ckpt.load(tmp_path / "eval" / "checkpoints" / "last.pt")
    for key in ("generator", "discriminator", "ema_generator"):
        for name, value in plain[key].items():
            assert torch.equal(value, evaluated[key][name]), (key, name)
    assert torch.equal(plain["rng"]["torch"], evaluated["rng"]["torch"])


@pytest.mark.parametrize("model", ["ssgan", "infomax"])
def test_aux_term_changes_the_g_update(model):
    """G's gradient with the auxiliary term differs from the one with its G weight set to 0."""

    def g_grads(*overrides):
        cfg, parts = built(f"model={model}", "dataset.resolution=32", *overrides)
        seed_everything(1)
        terms = generator_backward(parts, 16, 0, settings_for(cfg))
        assert "aux/G" in terms
        return torch.cat([p.grad.flatten() for p in parts.generator.parameters()])

    with_aux, without = g_grads(), g_grads(override("model.aux.g_weight", 0))
    assert not torch.allclose(with_aux, without)
    cfg, parts = built(f"model={model}", "dataset.resolution=32")
    total, terms = generator_loss(parts, 16, 0, settings_for(cfg))
    assert terms["aux/G"].item() != 0
    assert total.item() == pytest.approx((terms["loss/G"] + terms["aux/G"]).item(), rel=1e-6)


def test_g_step_takes_no_gradient_for_d_and_each_step_names_its_step_on_nan(monkeypatch):
    """G's backward leaves D's weights without gradients (it needs none: a cheaper backward)
    and D trainable again after it; a non-finite G or D loss stops naming the step and the
    term."""
    from ganx import losses
    from ganx.step import Diverged

    cfg, parts = built("reg=none")
    generator_backward(parts, 16, 0, settings_for(cfg))
    assert all(p.grad is None for p in parts.discriminator.parameters())
    assert all(p.grad is not None for p in parts.generator.parameters())
    assert all(p.requires_grad for p in parts.discriminator.parameters())
    monkeypatch.setattr(losses.NonSaturatingLoss, "g_loss", lambda self, f: f.sum() * torch.nan)
    with pytest.raises(Diverged, match=r"^step 7: loss/G is nan"):
        generator_backward(parts, 16, 7, settings_for(cfg))
    poison_d_loss(monkeypatch, at_call=1)
    with pytest.raises(Diverged, match=r"^step 8: loss/D is nan"):
        discriminator_step(parts, parts.stream.next(), 8, 0, settings_for(cfg))


def test_every_step_stops_when_another_rank_s_terms_are_non_finite(monkeypatch):
    """With several ranks a step whose own terms are finite still raises when another rank's
    are not (the verdict is agreed on the terms' device, ganx.collectives.any_rank: here
    another rank answers), so that every rank skips or stops together; when no rank has a
    non-finite term the step goes on; with one rank nothing is asked."""
    from ganx import step
    from ganx.step import Diverged

    cfg, parts = built("reg=none")
    asked, answer = [], [True]
    monkeypatch.setattr(
        step, "any_rank", lambda flag, device: asked.append((flag, device)) or answer[0]
    )
    two = settings_for(cfg, world=2)
    with pytest.raises(Diverged, match=r"^step 3: a loss is non-finite on another rank$"):
        generator_backward(parts, 16, 3, two)
    with pytest.raises(Diverged, match=r"^step 4: a loss is non-finite on another rank$"):
        discriminator_step(parts, parts.stream.next(), 4, 0, two)
    assert asked == [(False, CPU), (False, CPU)]  # each asked once, its own (finite) verdict
    answer[0] = False  # every rank finite: the step goes on (its all-reduce stood in for)
    monkeypatch.setattr(step, "average_gradients", lambda params, world: None)
    generator_backward(parts, 16, 5, two)
    discriminator_step(parts, parts.stream.next(), 5, 0, two)
    assert len(asked) == 4
    generator_backward(parts, 16, 6, settings_for(cfg))
    discriminator_step(parts, parts.stream.next(), 6, 0, settings_for(cfg))
    step.require_finite(7, {"loss/D": torch.tensor(1.0)})  # its default: one rank
    assert len(asked) == 4


def test_both_non_finite_checks_name_the_same_first_term(monkeypatch):
    """The per-term check (the CPU's) and the one-read check (a GPU's, run here on CPU tensors)
    give the same verdict: the first NaN or inf term by name, a bfloat16 one too, and none when
    only the sum of finite terms overflows; require_finite takes the per-term one on the CPU."""
    from ganx import step

    big = torch.tensor(3e38)
    cases = [
        ({"a": torch.tensor(1.0), "b": torch.tensor(2.0)}, None),
        ({"a": torch.tensor(1.0), "b": torch.tensor(float("nan")), "c": torch.tensor(-1.0)}, "b"),
        ({"a": torch.tensor(float("-inf")), "b": torch.tensor(float("nan"))}, "a"),
        ({"a": torch.tensor(1.0), "b": torch.tensor(float("inf"), dtype=torch.bfloat16)}, "b"),
        ({"a": torch.tensor(1.0, dtype=torch.bfloat16)}, None),
        ({"a": big, "b": big}, None),  # finite terms whose sum overflows float32
    ]
    for terms, expected in cases:
        assert step.first_non_finite(terms) == expected, terms
        assert step.first_non_finite_in_one_read(terms) == expected, terms

    def one_read(terms):
        raise AssertionError("the CPU reads each term")

    monkeypatch.setattr(step, "first_non_finite_in_one_read", one_read)
    with pytest.raises(step.Diverged, match=r"^step 2: b is nan \(non-finite\)$"):
        step.require_finite(2, cases[1][0])
    step.require_finite(3, cases[0][0])


def test_each_amp_setting_computes_in_its_own_precision():
    """hardware.amp: fp16 and bf16 make the step's matrix products float16 and bfloat16 (torch's
    CPU autocast does both); off leaves them float32."""
    from ganx.step import autocast

    for amp, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16), ("off", torch.float32)):
        with autocast(CPU, amp):
            assert (torch.randn(2, 3) @ torch.randn(3, 2)).dtype == dtype, amp


def test_amp_runs_the_nets_in_low_precision():
    """hardware.amp=bf16: D's output inside the D step, its separate lazy R1 pass and the G step
    is bfloat16 (autocast is on), and so are G's and D's in a g_first iteration."""
    cfg, parts = built("hardware.amp=bf16", "reg=r1", override("reg.r1.interval", 2))
    assert parts.lazy_regularization == "separate"
    dtypes = []
    parts.discriminator.register_forward_hook(lambda mod, args, out: dtypes.append(out.dtype))
    settings = settings_for(cfg, amp="bf16")
    terms = discriminator_step(parts, parts.stream.next(), 0, 0, settings)
    assert "reg/r1" in terms and len(dtypes) == 4  # main pass, then the lazy one: 2 D calls each
    generator_backward(parts, 16, 0, settings)
    parts.generator.register_forward_hook(lambda mod, args, out: dtypes.append(out.dtype))
    training_iteration(parts, settings, 1, 1, 1, "g_first", parts.stream.next)
    assert len(dtypes) == 9 and set(dtypes) == {torch.bfloat16}
    cfg, parts = built("hardware.amp=bf16", "reg=none")
    dtypes.clear()
    parts.discriminator.register_forward_hook(lambda mod, args, out: dtypes.append(out.dtype))
    dtypes.clear()
    parts.generator.register_forward_hook(lambda mod, args, out: dtypes.append(out.dtype))
    discriminator_step(parts, parts.stream.next(), 0, 0, settings_for(cfg, amp="off"))
    generator_backward(parts, 16, 0, settings_for(cfg, amp="off"))
    assert len(dtypes) == 5 and set(dtypes) == {torch.float32}  # G and D in each step


def test_nonfinite_means_stop_the_run_at_log_flush(tmp_path, monkeypatch):
    """Without the per-step check (a GPU run), a NaN is caught when the logged means are read:
    the run stops as diverged before writing the NaN anywhere; the last checkpoint is the last
    good one."""
    poison_d_loss(monkeypatch, at_call=3)
    disable_per_step_check(monkeypatch)
    cfg = compose_cfg("train.steps=6", "ckpt.every=1", override("log.every", 1), "reg=none")
    result = train(cfg, tmp_path)
    assert result["status"] == "diverged"
    assert "steps up to 3: non-finite" in result["error"] and "loss/D" in result["error"]
    assert ckpt.load(tmp_path / "checkpoints" / "last.pt")["step"] == 2
    logged = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in logged] == [1, 2]
