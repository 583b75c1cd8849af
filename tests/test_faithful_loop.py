"""The loop-side parts of faithfulness: the start-of-run method line and its warnings,
regularizer activity in tensorboard, what DAT hands to penalties and auxiliary losses, and the
original GAN's update order (PyTorch-GAN's gan.py) reproduced step for step."""

import logging

import pytest
import torch
from conftest import compose_cfg
from internals import StepSettings, discriminator_loss, seed_everything, training_iteration

from ganx.build import build_all
from ganx.loop import train


def run_log(caplog, tmp_path, *overrides):
    with caplog.at_level(logging.INFO, logger="ganx"):
        result = train(compose_cfg(*overrides), tmp_path)
    assert result["status"] == "finished"
    return [r.getMessage() for r in caplog.records]


def test_method_line_and_batchnorm_warning_at_start(caplog, tmp_path):
    messages = run_log(caplog, tmp_path)
    method = [m for m in messages if m.startswith("method: ")]
    assert len(method) == 1
    line = method[0]
    for part in (
        "model=dcgan, D normalisation: BatchNorm",
        "loss=ns",
        "r1 (weight 10.0, interval 1, schedule constant",
        "EMA 0.999",
        "n_dis 1",
        "G Adam(lr 0.0002, betas [0.5, 0.999])",
        "D Adam(",
    ):
        assert part in line, (part, line)
    assert any("D has BatchNorm" in m and "r1" in m for m in messages)


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_unclipped_wgan_without_penalty_warns(caplog, tmp_path):
    messages = run_log(caplog, tmp_path, "loss=wgan", "reg=none")
    assert any("loss=wgan without loss.clip" in m for m in messages)
    caplog.clear()
    clean = run_log(caplog, tmp_path / "gp", "experiment=wgan_gp", "model=wgan_gp_mnist")
    assert not any("loss=wgan without" in m or "D has BatchNorm" in m for m in clean)


def test_regularizer_activity_reaches_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(compose_cfg("reg=[dat,instance_noise]", "train.steps=4", "log.every=1"), tmp_path)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"reg/dat/perturbation", "reg/dat/gap", "reg/instance_noise/sigma"} <= tags
    sigma = [e.value for e in events.Scalars("reg/instance_noise/sigma")]
    assert sigma == sorted(sigma, reverse=True) and sigma[0] > sigma[-1]  # annealed
    assert all(e.value > 0 for e in events.Scalars("reg/dat/perturbation"))


def d_pass(*overrides):
    cfg = compose_cfg(*overrides)
    seed_everything(0)
    parts = build_all(cfg, torch.device("cpu"))
    real = parts.stream.next()
    fake = parts.generator(torch.randn(len(real), cfg.model.latent_dim)).detach()
    return parts, real, fake


def test_penalty_with_dat_is_taken_at_the_perturbed_reals():
    parts, real, fake = d_pass("reg=[r1,dat]")
    dat = parts.regularizers["dat"]
    moved_real, _ = dat.adversarial_pair(parts.discriminator, real, fake)
    _, terms = discriminator_loss(parts, real, fake, 0, 0, 4)
    x = moved_real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(parts.discriminator(x).sum(), x)
    expect = 0.5 * grad.flatten(1).pow(2).sum(1).mean()
    assert terms["reg/r1"].item() == pytest.approx(expect.item(), rel=1e-4)
    assert not torch.allclose(moved_real, real)


def test_dat_auxiliary_loss_sees_the_clean_reals(monkeypatch):
    parts, real, fake = d_pass("model=ssgan", "dataset.resolution=32", "reg=dat")
    assert parts.regularizers["dat"].clamp_real is True  # DAT-GAN's SSGAN code clamps reals
    seen = {}

    def capture(discriminator, real_in):
        seen["real"] = real_in.detach().clone()
        return torch.zeros(())

    monkeypatch.setattr(parts.aux, "d_term", capture)
    discriminator_loss(parts, real, fake, 0, 0, 4)
    assert torch.equal(seen["real"], real)


def pytorch_gan_reference(generator, discriminator, batches, latent_dim, lr=2e-4):
    """PyTorch-GAN's gan.py training loop (l. 166-192) on the given nets: G first against
    `valid`, then D on the real batch and that same fake batch, d_loss = (real + fake) / 2;
    D ends in a Sigmoid there, so BCE is applied to sigmoid(logit)."""
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    bce = torch.nn.BCELoss()
    for real in batches:
        valid, fake_label = torch.ones(len(real)), torch.zeros(len(real))
        opt_g.zero_grad()
        gen_imgs = generator(torch.randn(len(real), latent_dim))
        g_loss = bce(torch.sigmoid(discriminator(gen_imgs)), valid)
        g_loss.backward()
        opt_g.step()
        opt_d.zero_grad()
        real_loss = bce(torch.sigmoid(discriminator(real)), valid)
        fake_loss = bce(torch.sigmoid(discriminator(gen_imgs.detach())), fake_label)
        d_loss = (real_loss + fake_loss) / 2
        d_loss.backward()
        opt_d.step()


def test_vanilla_gan_original_is_pytorch_gans_loop_step_for_step():
    cfg = compose_cfg(
        "experiment=vanilla_gan_original", "train.batch_size=16", "hardware=cpu", tiny=False
    )
    seed_everything(0)
    parts = build_all(cfg, torch.device("cpu"))
    g_ref, d_ref = build_all(cfg, torch.device("cpu")).generator, None
    g_ref.load_state_dict(parts.generator.state_dict())
    d_ref = build_all(cfg, torch.device("cpu")).discriminator
    d_ref.load_state_dict(parts.discriminator.state_dict())
    batches = [parts.stream.next() for _ in range(3)]
    settings = StepSettings(total=3, latent_dim=cfg.model.latent_dim)
    torch.manual_seed(123)
    feed = iter(batches)
    d_steps = 0
    for step in range(3):
        _, d_steps = training_iteration(
            parts, settings, step, d_steps, 1, cfg.train.updates, lambda: next(feed)
        )
    torch.manual_seed(123)
    pytorch_gan_reference(g_ref, d_ref, batches, cfg.model.latent_dim)
    for mine, ref in ((parts.generator, g_ref), (parts.discriminator, d_ref)):
        for (name, a), b in zip(mine.state_dict().items(), ref.state_dict().values(), strict=True):
            assert torch.allclose(a.float(), b.float(), atol=1e-5), name
    norms = [m for m in parts.generator.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms and all(m.eps == 0.8 and m.momentum == 0.1 for m in norms)  # (out_feat, 0.8)
