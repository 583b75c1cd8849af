"""The constructor is the schema (issue 27): a ``_target_`` node's settings are checked by its
constructor alone, named under the node's full key on every path (``ganx-train``'s pre-flight,
``ganx.fit``, ``build_all``), and what a method is (a trait) is read from its class."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_cfg
from ganx_cli import TINY_ARGS, error_lines, ganx_train_here
from omegaconf import OmegaConf, open_dict

import ganx
from ganx import methods, preflight, validate
from ganx.build import build_optimizer, instantiate_named
from ganx.errors import ConfigError
from ganx.regularizers import LeCamPenalty, R1Penalty

BASE: list[str] = []  # compose_cfg adds TINY and the model's tiny widths
# (overrides, the one line every path gives)
REFUSED = [
    (["reg=lecam", "reg.lecam.decay=1.5"], "reg.lecam.decay=1.5: must be a number in [0, 1)"),
    (["reg=dat", "reg.dat.step_size=0"], "reg.dat.step_size=0: must be a positive finite number"),
    (["model.discriminator.ndf=0"], "model.discriminator.ndf=0: must be a positive integer"),
    (["loss=ragan", "loss.scale=-1"], "loss.scale=-1: must be a positive finite number"),
    (["optim.g.lr=0"], "optim.g.lr=0: must be a positive finite number"),
]


@pytest.mark.parametrize(("overrides", "line"), REFUSED, ids=[o[-1] for o, _ in REFUSED])
def test_pre_flight_and_python_api_refuse_with_the_same_line(tmp_path, overrides, line):
    """The issue's disagreements (lecam's decay 1.5 passed validate.py and failed only while
    building; DAT's step 0 was allowed by one and refused by the other) and a net, a loss and an
    optimiser: pre-flight's dry build and ``ganx.fit`` give the same line, nothing written."""
    cfg = compose_cfg(*BASE, *overrides)
    with pytest.raises(ConfigError) as dry:
        preflight.dry_build(cfg)
    with pytest.raises(ConfigError) as fit:
        ganx.fit(compose_cfg(*BASE, *overrides), tmp_path / "run", progress=False)
    assert str(dry.value) == str(fit.value) == line
    assert not (tmp_path / "run").exists()  # fit checks before it records .hydra/


@pytest.mark.slow  # the console entry point in-process: a few seconds
def test_ganx_train_refuses_lecam_decay_before_anything_is_written(tmp_path):
    run_dir = tmp_path / "run"
    code, stderr = ganx_train_here(
        *TINY_ARGS, "reg=lecam", "reg.lecam.decay=1.5", f"hydra.run.dir={run_dir}"
    )
    assert code == 1
    assert error_lines(stderr) == [
        "ganx-train: error: reg.lecam.decay=1.5: must be a number in [0, 1)"
    ]
    assert not run_dir.exists()


def test_a_class_built_by_hand_names_its_setting_and_a_config_node_its_key():
    with pytest.raises(ConfigError, match=r"^decay=1.5: must be a number in \[0, 1\)$"):
        LeCamPenalty(decay=1.5)
    node = OmegaConf.create({"_target_": "ganx.regularizers.R1Penalty", "schedule": "cosine"})
    with pytest.raises(ConfigError) as err:
        instantiate_named("reg.r1", node)
    assert str(err.value).startswith("reg.r1.schedule=cosine needs reg.r1.weight_end")
    with pytest.raises(ConfigError, match=r"^optim.d.betas=\[0.5\]: must be two numbers"):
        adam = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3, "betas": [0.5]}
        build_optimizer("optim.d", OmegaConf.create(adam), [torch.zeros(1, requires_grad=True)])


def test_every_every_key_is_checked_by_its_pattern():
    """A periodic action's interval needs no line in validate.py: any ``*.every`` key is one."""
    cfg = compose_cfg(*BASE)
    with open_dict(cfg):
        cfg.outputs = {"histograms": {"every": 0}}
    with pytest.raises(ConfigError, match=r"^outputs.histograms.every=0: must be a positive"):
        validate.validate(cfg)


class SlopePenalty(R1Penalty):
    """A toy regularizer that only declares traits: the warnings find it through _target_."""

    penalises_input_gradient = bounds_slope = True
    zero_centred_on = None


def test_traits_are_read_through_target_without_a_list_of_names():
    cfg = compose_cfg(*BASE, "loss=wgan")
    with open_dict(cfg):
        cfg.reg = {"slope": {"_target_": f"{__name__}.SlopePenalty", "weight": 1.0}}
    assert not any("unconstrained" in w for w in methods.method_warnings(cfg))
    cfg.reg.slope._target_ = "ganx.regularizers.AnchoredLogitPenalty"
    assert any("unconstrained" in w for w in methods.method_warnings(cfg))
    assert methods.model_resolutions(cfg.model.generator) == (28, 32, 64)
