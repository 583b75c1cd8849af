"""The Dirac-GAN's own gradient descent step (``ganx.dirac_run.descend``, what ``ganx-dirac``
and its explorer run) follows the trajectory of the image GANs' ``training_iteration`` with the
composed SGD optimizers bit for bit, in every cell of the study, so the two cannot drift."""

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import open_dict

from ganx.build import ConfigError, build_all
from ganx.dirac_run import descend, dirac_parts, read_plan
from ganx.dirac_study import STUDY_LOSSES, STUDY_REGS, cell_config, study_config
from ganx.rng import seed_everything
from ganx.step import StepSettings, training_iteration


def through_training_iteration(run_cfg, start) -> torch.Tensor:
    """The trajectory as the training loop steps it: build_all's SGD optimizers, backward,
    optimizer.step (what ganx-dirac ran before it had a step of its own)."""
    seed_everything(run_cfg.seed)
    parts = build_all(run_cfg, torch.device("cpu"))
    settings = StepSettings(run_cfg.train.steps, run_cfg.model.latent_dim, check=False)
    simultaneous = run_cfg.train.updates == "simultaneous"
    with torch.no_grad():
        parts.generator.theta.fill_(start[0])
        parts.discriminator.psi.fill_(start[1])
    points = [torch.cat([parts.generator.theta, parts.discriminator.psi]).detach()]
    d_steps = 0
    for step in range(run_cfg.train.steps):
        _, d_steps = training_iteration(
            parts, settings, step, d_steps, run_cfg.train.n_dis, simultaneous, parts.stream.next
        )
        points.append(torch.cat([parts.generator.theta, parts.discriminator.psi]).detach())
    return torch.stack(points)


def through_descend(run_cfg, start) -> torch.Tensor:
    seed_everything(run_cfg.seed)
    return descend(dirac_parts(run_cfg), read_plan(run_cfg), start)


def assert_cells_follow_training_iteration(losses, regs, updates: str, n_dis: int) -> None:
    torch.set_num_threads(1)
    overrides = [f"updates={updates}", f"n_dis={n_dis}", "steps=8", "lr=0.3"]
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose("dirac_study", overrides=overrides + [f"regs=[{','.join(regs)}]"])
        for loss in losses:
            base = study_config(loss, regs, cfg)
            for reg in regs:
                run_cfg = cell_config(base, loss, reg)
                start = (0.7, -1.3)
                expected = through_training_iteration(run_cfg, start)
                got = through_descend(run_cfg, start)
                torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)
                assert len(got) == 9, (loss, reg)


@pytest.mark.parametrize("updates,n_dis", [("simultaneous", 1), ("alternating", 2)])
def test_a_penalty_a_noise_and_a_relativistic_loss_follow_training_iteration(updates, n_dis):
    """The fast share of the check below: R1 (a double backward), R1+R2, instance noise (random
    draws on both players' inputs) and RpGAN (G's own real batch)."""
    assert_cells_follow_training_iteration(
        ["ns", "rpgan"], ["none", "r1+r2", "instance_noise"], updates, n_dis
    )


@pytest.mark.slow  # 240 cells, each run twice: make test (CI) runs it
@pytest.mark.parametrize(
    "updates,n_dis", [("simultaneous", 1), ("alternating", 2), ("simultaneous", 2)]
)
def test_every_cell_follows_training_iteration_bit_for_bit(updates, n_dis):
    # every regularizer the study offers, not only its default columns
    assert_cells_follow_training_iteration(list(STUDY_LOSSES), list(STUDY_REGS), updates, n_dis)


def test_the_plan_refuses_what_plain_gradient_descent_does_not_do():
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose("dirac_study", overrides=["steps=7", "lr=0.05", "updates=alternating"])
        run_cfg = cell_config(study_config("ns", ["r1"], cfg), "ns", "r1")
    plan = read_plan(run_cfg)
    assert (plan.steps, plan.n_dis, plan.simultaneous) == (7, 1, False)
    assert plan.lr_g == plan.lr_d == 0.05
    bad = run_cfg.copy()
    with open_dict(bad):
        bad.optim.d.momentum = 0.9
    with pytest.raises(ConfigError, match=r"optim\.d\.momentum=0\.9: plain SGD has 0"):
        read_plan(bad)
    lazy = run_cfg.copy()
    lazy.reg.r1.interval = 4
    with pytest.raises(ConfigError, match=r"reg\.r1\.interval=4"):
        read_plan(lazy)


def test_ganx_dirac_refuses_a_lazy_penalty_in_one_line_before_it_runs():
    from ganx.dirac_study import check_study

    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose("dirac_study", overrides=["+reg_settings.r1.interval=2"])
    with pytest.raises(ConfigError, match=r"^reg_settings\.r1\.interval=2: the Dirac-GAN study"):
        check_study(cfg)
