"""The tools' keys away from their defaults, in this process: ganx-sample and ganx-eval through
their Hydra entry points (as a user's command line reaches them), ganx-dirac through its study
functions and its entry point."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest
import torch
from conftest import compose_cfg
from hydra import compose, initialize_config_module
from key_cover import override
from PIL import Image

from ganx.build import build_regularizers
from ganx.dirac_study import run_study, study_config
from ganx.loop import train


@pytest.fixture(scope="module")
def last_pt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train(compose_cfg("train.steps=4", "reg=none", "train.ema=0.5"), run_dir)
    return run_dir / "checkpoints" / "last.pt"


def run_tool(entry, *args: str, monkeypatch) -> None:
    """A tool's Hydra main with this command line (Hydra writes nothing: output_subdir null).
    The tools' ``hydra/job_logging: disabled`` disables every logger that exists (as a console
    script they are alone in their process); here the loggers are enabled again afterwards, so a
    later test's run still writes its train.log."""
    monkeypatch.setattr(sys, "argv", ["tool", *args])
    loggers = [x for x in logging.root.manager.loggerDict.values() if isinstance(x, logging.Logger)]
    enabled = [x for x in loggers if not x.disabled]
    root_level = logging.root.level
    try:
        entry()
    finally:
        for logger in enabled:
            logger.disabled = False
        logging.root.setLevel(root_level)


def sample(last_pt, tmp_path, monkeypatch, *args: str) -> np.ndarray:
    from ganx.commands.sample import sample_hydra

    out = tmp_path / f"s{len(list(tmp_path.iterdir()))}.npz"
    run_tool(
        sample_hydra, f"checkpoint={last_pt}", f"out={out}", "n=6", *args, monkeypatch=monkeypatch
    )
    return np.load(out)["images"]


def test_ganx_sample_ema_bn_stats_latents_out_device(last_pt, tmp_path, monkeypatch):
    from ganx.commands.sample import sample_hydra

    ema = sample(last_pt, tmp_path, monkeypatch, override("ganx-sample:device", "cpu"))
    raw = sample(last_pt, tmp_path, monkeypatch, override("ganx-sample:ema", False))
    running = sample(last_pt, tmp_path, monkeypatch, override("ganx-sample:bn_stats", "running"))
    assert ema.shape == (6, 28, 28, 1)
    assert not np.array_equal(ema, raw) and not np.array_equal(ema, running)
    png, z = tmp_path / "grid.png", tmp_path / "z.npy"
    run_tool(
        sample_hydra,
        override("ganx-sample:checkpoint", str(last_pt)),
        override("ganx-sample:out", str(png)),
        override("ganx-sample:latents", str(z)),
        "seed=3",
        monkeypatch=monkeypatch,
    )
    assert Image.open(png).size[0] > 28 and np.load(z).shape == (64, 100)


def evaluate_tool(last_pt, tmp_path, monkeypatch, *args: str) -> dict:
    from ganx.commands.eval import eval_hydra

    out = tmp_path / f"e{len(list(tmp_path.glob('e*.json')))}.json"
    run_tool(
        eval_hydra,
        f"checkpoint={last_pt}",
        f"out={out}",
        "device=cpu",
        f"settings.cache_dir={tmp_path / 'cache'}",
        *args,
        monkeypatch=monkeypatch,
    )
    return json.loads(out.read_text())


def test_ganx_eval_metrics_counts_and_settings(last_pt, tmp_path, monkeypatch):
    base = [
        override("ganx-eval:metrics", ["fid_mnist", "kid_mnist"]),
        override("ganx-eval:num_samples", 48),
    ]
    first = evaluate_tool(last_pt, tmp_path, monkeypatch, *base)
    assert set(first) == {"checkpoint", "step", "fid48_mnist", "kid48_mnist"}
    assert list((tmp_path / "cache").glob("real_mnist5k_mnist_48_*.pt"))
    fewer_real = evaluate_tool(
        last_pt, tmp_path, monkeypatch, *base, override("ganx-eval:settings.real_count", 32)
    )
    assert list((tmp_path / "cache").glob("real_mnist5k_mnist_32_*.pt"))
    assert fewer_real["fid48_mnist"] != first["fid48_mnist"]
    subsets = evaluate_tool(
        last_pt, tmp_path, monkeypatch, *base, override("ganx-eval:settings.kid_subset_size", 8)
    )
    assert subsets["kid48_mnist"] != first["kid48_mnist"]
    assert subsets["fid48_mnist"] == first["fid48_mnist"]
    chunked = evaluate_tool(
        last_pt, tmp_path, monkeypatch, *base, override("ganx-eval:settings.batch_size", 5)
    )
    assert chunked["fid48_mnist"] == pytest.approx(first["fid48_mnist"], rel=1e-4)
    raw = evaluate_tool(last_pt, tmp_path, monkeypatch, *base, override("ganx-eval:ema", False))
    running = evaluate_tool(
        last_pt, tmp_path, monkeypatch, *base, override("ganx-eval:bn_stats", "running")
    )
    assert raw["fid48_mnist"] != first["fid48_mnist"] != running["fid48_mnist"]


def study(*overrides: str):
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose("dirac_study", overrides=list(overrides))
        outcomes, _ = run_study(cfg)
    torch.set_num_threads(1)
    return {(o.loss, o.reg): o for o in outcomes}


def test_dirac_study_cells_start_steps_lr_tol_and_updates():
    cells = study(
        override("ganx-dirac:losses", ["ns"]),
        override("ganx-dirac:regs", ["none"]),
        override("ganx-dirac:steps", 5),
        override("ganx-dirac:start", [0.5, -0.5]),
        override("ganx-dirac:tol", 10.0),
    )
    assert list(cells) == [("ns", "none")]
    path = cells["ns", "none"].trajectory
    assert path.shape == (6, 2) and path[0].tolist() == [0.5, -0.5]
    assert cells["ns", "none"].converged  # within 10 of (0, 0): converged by that tolerance
    slow = study("losses=[ns]", "regs=[none]", "steps=5", override("ganx-dirac:lr", 0.1))
    default = study("losses=[ns]", "regs=[none]", "steps=5")
    step_slow = slow["ns", "none"].trajectory[1] - slow["ns", "none"].trajectory[0]
    step = default["ns", "none"].trajectory[1] - default["ns", "none"].trajectory[0]
    assert torch.allclose(step_slow, 0.5 * step)  # one gradient step from the same start
    alternating = study(
        "losses=[ns]", "regs=[none]", "steps=5", override("ganx-dirac:updates", "alternating")
    )
    twice = study("losses=[ns]", "regs=[none]", "steps=5", override("ganx-dirac:n_dis", 2))
    for other in (alternating, twice):
        assert not torch.equal(other["ns", "none"].trajectory, default["ns", "none"].trajectory)


def test_dirac_study_seed_moves_a_noisy_cells_draws():
    """The seed reaches the instance noise of a run (the Jacobian's field evaluations before the
    run reseed the CPU generator: with the run's seed, not with 0 whatever the seed)."""
    cell = ("ns", "instance_noise")
    default = study("losses=[ns]", "regs=[instance_noise]", "steps=5")[cell]
    seeded = study(
        "losses=[ns]", "regs=[instance_noise]", "steps=5", override("ganx-dirac:seed", 3)
    )
    again = study("losses=[ns]", "regs=[instance_noise]", "steps=5", "seed=3")[cell]
    assert not torch.equal(seeded[cell].trajectory, default.trajectory)
    assert torch.equal(seeded[cell].trajectory, again.trajectory)


def test_dirac_study_settings_reach_each_cells_training_config():
    settings = [
        override("ganx-dirac:batch_size", 16),
        override("ganx-dirac:seed", 3),
        override("ganx-dirac:reg_settings.r1.weight", 0.9),
        override("ganx-dirac:reg_settings.r2.weight", 0.7),
        override("ganx-dirac:reg_settings.gp0.weight", 0.5),
        override("ganx-dirac:reg_settings.gp0.output", "sigmoid"),
        override("ganx-dirac:reg_settings.gp.weight", 2.0),
        override("ganx-dirac:reg_settings.dragan.weight", 3.0),
        override("ganx-dirac:reg_settings.lecam.weight", 0.1),
        override("ganx-dirac:reg_settings.lecam.start_step", 5),
        override("ganx-dirac:reg_settings.instance_noise.std", 0.5),
        override("ganx-dirac:reg_settings.instance_noise.anneal", "linear"),
    ]
    regs = ["r1", "r2", "gp0", "gp", "dragan", "lecam", "instance_noise"]
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose("dirac_study", overrides=settings)
        base = study_config("ns", regs, cfg)
    assert base.train.batch_size == 16 and base.seed == 3
    built = build_regularizers(base)
    assert (built["r1"].weight, built["r2"].weight, built["gp0"].weight) == (0.9, 0.7, 0.5)
    assert built["gp0"].output == "sigmoid" and built["gp"].weight == 2.0
    assert built["dragan"].weight == 3.0 and built["lecam"].weight == 0.1
    assert built["lecam"].start_step == 5
    assert built["instance_noise"].std == 0.5 and built["instance_noise"].anneal == "linear"


def test_ganx_dirac_writes_its_tables_to_out_without_plots(tmp_path, monkeypatch):
    from ganx.dirac_study import hydra_main

    out = tmp_path / "study"
    run_tool(
        hydra_main,
        "losses=[ns]",
        "regs=[none]",
        "steps=3",
        override("ganx-dirac:out", str(out)),
        override("ganx-dirac:plot.enabled", False),
        monkeypatch=monkeypatch,
    )
    torch.set_num_threads(1)
    assert (out / "table.md").is_file() and (out / "table.csv").is_file()
    assert not list(out.glob("*.png"))


def test_ganx_eval_reads_its_checkpoint_device_out_and_cache(last_pt, tmp_path, monkeypatch):
    from ganx.commands.eval import eval_hydra

    out, cache = tmp_path / "sub" / "r.json", tmp_path / "features"
    run_tool(
        eval_hydra,
        override("ganx-eval:checkpoint", str(last_pt)),
        override("ganx-eval:out", str(out)),
        override("ganx-eval:device", "cpu"),
        override("ganx-eval:settings.cache_dir", str(cache)),
        "metrics=[fid_mnist]",
        "num_samples=32",
        monkeypatch=monkeypatch,
    )
    record = json.loads(out.read_text())
    assert record["checkpoint"] == str(last_pt) and record["step"] == 4
    assert len(list(cache.glob("real_mnist5k_mnist_32_*.pt"))) == 1


def test_ganx_export_writes_the_chosen_generator(last_pt, tmp_path, monkeypatch):
    import ganx
    from ganx.commands.export import export_hydra

    exported = {}
    for name, extra in (
        ("ema", []),
        ("raw", [override("ganx-export:ema", False)]),
        ("running", [override("ganx-export:bn_stats", "running")]),
    ):
        out = tmp_path / f"{name}.pt"
        run_tool(
            export_hydra,
            override("ganx-export:checkpoint", str(last_pt)),
            override("ganx-export:out", str(out)),
            *extra,
            monkeypatch=monkeypatch,
        )
        exported[name] = torch.jit.load(str(out))
    z = ganx.load_generator(last_pt).latents(4, seed=1)
    images = {name: module(z) for name, module in exported.items()}
    assert images["ema"].shape == (4, 1, 28, 28)
    assert not torch.equal(images["ema"], images["raw"])
    assert not torch.equal(images["ema"], images["running"])


def test_ganx_eval_takes_its_own_inception_weights(last_pt, tmp_path, monkeypatch, capsys):
    from ganx.commands.eval import eval_hydra

    with pytest.raises(SystemExit) as exit_:
        run_tool(
            eval_hydra,
            f"checkpoint={last_pt}",
            "metrics=[fid_inception]",
            "num_samples=8",
            override("ganx-eval:settings.inception_weights", str(tmp_path / "none.pth")),
            monkeypatch=monkeypatch,
        )
    assert f"no weights are at {tmp_path / 'none.pth'};" in str(exit_.value)


def test_ganx_dirac_plot_extent_and_arrows_set_the_field_grid(tmp_path, monkeypatch):
    from ganx import dirac_study

    grids = []
    monkeypatch.setattr(
        dirac_study, "draw_cell", lambda ax, o, cfg, grid, field=None: grids.append(grid)
    )
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose(
            "dirac_study",
            overrides=[
                "losses=[ns]",
                "regs=[none]",
                "steps=2",
                override("ganx-dirac:plot.extent", 3.0),
                override("ganx-dirac:plot.arrows", 5),
            ],
        )
        outcomes, _ = run_study(cfg)
    torch.set_num_threads(1)
    dirac_study.plot_outcomes(outcomes, tmp_path, cfg)
    assert grids and all(torch.equal(g, torch.linspace(-3.0, 3.0, 5)) for g in grids)
