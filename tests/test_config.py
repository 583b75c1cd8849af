"""Composition of every group choice, `--cfg job`, and bad input failing clearly."""

import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import compose_cfg, group_choices
from docs_pages import pages

from ganx.build import build_loss, build_nets, build_regularizers
from ganx.errors import ConfigError
from ganx.loop import train
from ganx.overrides import GROUPS

IMAGE_MODELS = {"dcgan": 28, "mlp": 28, "dragan_mlp": 28, "sngan": 32}


def run_cli(*args, cwd):
    env = {**os.environ, "HYDRA_FULL_ERROR": ""}
    return subprocess.run(
        [sys.executable, "-m", "ganx.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
@pytest.mark.parametrize("group", GROUPS)
def test_every_choice_composes(group):
    for choice in group_choices(group):
        # experiments may switch the model: compose them without the tiny dcgan widths
        cfg = compose_cfg(f"{group}={choice}", tiny=group != "experiment")
        assert cfg is not None
        if group == "loss":
            assert hasattr(build_loss(cfg), "d_loss")
        if group == "reg":
            regs = build_regularizers(cfg)
            # each file nests its node under the regularizer's name (js_annealed is "js")
            renamed = {"none": [], "js_annealed": ["js"], "js_3dgan": ["js"], "gp0_2d": ["gp0"]}
            expected = renamed.get(choice, [choice])
            assert list(regs) == expected


def test_multi_select_reg_and_override():
    cfg = compose_cfg("reg=[r1,lecam]", "reg.r1.weight=1")
    regs = build_regularizers(cfg)
    assert sorted(regs) == ["lecam", "r1"] and regs["r1"].weight == 1.0
    assert build_regularizers(compose_cfg("reg=[]")) == {}
    assert build_regularizers(compose_cfg("reg=none")) == {}
    assert list(build_regularizers(compose_cfg())) == ["r1"]  # the default (docs/studies.md)
    # presets of published protocols without R1 drop it; an explicit reg= still wins
    assert build_regularizers(compose_cfg("experiment=roth_js", tiny=False)) == {}
    assert list(build_regularizers(compose_cfg("experiment=roth_js", "reg=js_annealed"))) == ["js"]
    assert list(build_regularizers(compose_cfg("reg=r1"))) == ["r1"]


@pytest.mark.parametrize("model", sorted(IMAGE_MODELS))
def test_nets_shapes(model):
    cfg = compose_cfg(f"model={model}", f"dataset.resolution={IMAGE_MODELS[model]}")
    g, d = build_nets(cfg)
    z = torch.randn(4, cfg.model.latent_dim)
    x = g(z)
    assert x.shape == (4, 1, IMAGE_MODELS[model], IMAGE_MODELS[model])
    assert x.abs().max() <= 1.0
    assert d(x).shape == (4,)


def test_presets_set_loss_and_reg():
    cfg = compose_cfg("experiment=wgan_gp", tiny=False)
    assert cfg.loss._target_.endswith("WassersteinLoss") and list(cfg.reg) == ["gp"]
    assert cfg.train.n_dis == 5
    cfg = compose_cfg("experiment=dragan")
    assert list(cfg.reg) == ["dragan"]


def test_cfg_job_prints_composed_config(tmp_path):
    out = run_cli("--cfg", "job", "loss=hinge", "reg=dat", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "HingeLoss" in out.stdout and "DirectAdversarialTraining" in out.stdout


def test_unknown_choice_lists_what_exists(tmp_path):
    out = run_cli("loss=nope", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode != 0
    # one line naming the key and the value, then the choices as a comma-separated list (whole
    # names are compared: a bare "ns" would match "options" too)
    (line,) = [ln for ln in out.stderr.splitlines() if "loss=nope" in ln]
    listed = {name.strip() for name in line.rsplit(":", 1)[1].split(",")}
    assert {"hinge", "lsgan", "minimax", "ns", "wgan"} <= listed
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bad_value_gives_one_clear_message(tmp_path):
    out = run_cli("train.steps=0", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode != 0
    assert "train.steps=0: must be a positive integer" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.d.lr=-1"], "optim.d.lr=-1"),
        (["train.batch_size=0"], "train.batch_size=0"),
        (["train.n_dis=0"], "train.n_dis=0"),
        (["reg=r1", "reg.r1.weight=-2"], "reg.r1.weight=-2"),
        (["reg=js", "reg.js.weight=-0.5"], "reg.js.weight=-0.5"),
        (["model=sngan"], "model=sngan does not support dataset.resolution=28"),
        (["model=dirac"], "model=dirac cannot train on dataset=mnist5k"),
        (["hardware.amp=fp8"], "hardware.amp='fp8'; allowed: off, bf16, fp16"),
        (["train.ema=1.5"], "train.ema=1.5"),
        (["resume=/no/such/file.pt"], "no such checkpoint file"),
    ],
)
def test_validation_messages(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as err:
        train(compose_cfg(*overrides), tmp_path)
    assert message in str(err.value)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine(tmp_path):
    with pytest.raises(ConfigError, match="no CUDA device"):
        train(compose_cfg("hardware=cuda"), tmp_path)


# docs/models.md, "Models": G / D parameter counts at the stated settings
PARAMETER_COUNTS = [
    ("dcgan", [], "347,072 / 36,545"),
    (
        "dcgan",
        [
            "dataset.resolution=32",
            "dataset.channels=3",
            "model.generator.ngf=64",
            "model.discriminator.ndf=64",
        ],
        "1,068,928 / 663,297",
    ),
    ("mlp", [], "1,510,032 / 533,505"),
    ("dragan_mlp", [], "114,064 / 100,609"),
    ("sngan", ["dataset.resolution=32", "dataset.channels=3"], "4,276,739 / 1,053,825"),
    ("ssgan", ["dataset.resolution=32", "dataset.channels=3"], "4,276,739 / 1,054,341"),
    ("infomax", ["dataset.resolution=32", "dataset.channels=3"], "4,276,739 / 1,615,233"),
    # Roth et al.'s gan_64x64.py ResNet in regularized mode (tests/test_nets_reference.py)
    ("resnet64", ["dataset.resolution=64", "dataset.channels=3"], "8,540,483 / 7,491,841"),
    # mimicry's 48 px networks
    ("sngan", ["dataset.resolution=48", "dataset.channels=3"], "4,878,083 / 10,141,441"),
    ("ssgan", ["dataset.resolution=48", "dataset.channels=3"], "4,878,083 / 10,145,541"),
    ("infomax", ["dataset.resolution=48", "dataset.channels=3"], "4,878,083 / 14,603,521"),
    ("wgan_gp_mnist", [], "1,554,177 / 1,030,145"),
    ("toy3d", ["dataset=mog3d"], "17,283 / 17,153"),
    ("dirac", ["dataset=dirac"], "1 / 1"),
    # R3GAN: the CPU widths at 28 px and 32 px, and the paper's CIFAR-10 preset (train.py)
    ("r3gan", [], "84,288 / 82,272"),
    ("r3gan", ["dataset.resolution=32", "dataset.channels=3"], "110,176 / 108,160"),
    (
        "r3gan",
        [
            "dataset.resolution=32",
            "dataset.channels=3",
            "model.generator.width=768",
            "model.generator.cardinality=96",
        ],
        "20,732,160 / 20,683,776",
    ),
]


def documented_parameter_counts() -> dict[str, list[str]]:
    """Every "G / D" parameter count stated in a models table (a table with a "G / D parameters"
    column) on any page of the documentation, by model."""
    counts = {}
    for page in pages():
        header = None
        for line in page.read_text().splitlines():
            if not line.startswith("|"):
                header = None
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
            elif "G / D parameters" in header and line.startswith("| `"):
                model = cells[0].split()[0].strip("`")
                stated = cells[header.index("G / D parameters")]
                counts.setdefault(model, []).extend(
                    re.findall(r"\d(?:[\d,]*\d)? / \d(?:[\d,]*\d)?", stated)
                )
    return counts


def test_readme_parameter_counts():
    """The counts of PARAMETER_COUNTS are what the nets have, and they are exactly the counts the
    documentation states (a stated count no test measures fails here too)."""
    stated = documented_parameter_counts()
    assert {"dcgan", "sngan", "r3gan"} <= set(stated)
    measured = {}
    for model, overrides, counts in PARAMETER_COUNTS:
        g, d = build_nets(compose_cfg(f"model={model}", *overrides, tiny=False))
        got = f"{sum(p.numel() for p in g.parameters()):,} / " + (
            f"{sum(p.numel() for p in d.parameters()):,}"
        )
        assert got == counts, (model, overrides)
        measured.setdefault(model, []).append(counts)
    assert {m: sorted(c) for m, c in stated.items() if c} == {
        m: sorted(c) for m, c in measured.items()
    }
