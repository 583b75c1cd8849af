"""Test setup: no network (a hidden download fails loudly), one CPU thread, tiny configs."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf, open_dict

torch.set_num_threads(1)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# shrink any image model so a step takes milliseconds on one CPU thread
TINY = [
    "hardware=cpu",
    "train.steps=4",
    "train.batch_size=16",
    "log.every=2",
    "log.progress=false",
    "sample.every=2",
    "sample.n=16",
    "ckpt.every=2",
    "eval.metrics=[]",  # tests that measure something ask for their metrics
]
TINY_WIDTHS = {
    "dcgan": ["model.generator.ngf=8", "model.discriminator.ndf=8"],
    "sngan": ["model.generator.ngf=16", "model.discriminator.ndf=16"],
    "resnet64": ["model.generator.dim=4", "model.discriminator.dim=4"],
    "ssgan": ["model.generator.ngf=16", "model.discriminator.ndf=16"],
    "infomax": [
        "model.generator.ngf=16",
        "model.discriminator.ndf=16",
        "model.discriminator.nrkhs=32",
    ],
    "mlp": ["model.generator.widths=[16,32]", "model.discriminator.widths=[32,16]"],
    "dragan_mlp": ["model.generator.widths=[16]", "model.discriminator.widths=[16]"],
    "toy2d": ["model.generator.hidden=16", "model.discriminator.hidden=16"],
    "dirac": [],
    "r3gan": [
        "model.generator.width=8",
        "model.generator.cardinality=2",
        "model.generator.blocks=1",
    ],
}


# no network, in this process and in every Python subprocess a test starts (CLI runs, ranks)
NETBLOCK = Path(__file__).resolve().parent / "netblock"
os.environ["GANX_TESTS_BLOCK_NETWORK"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(NETBLOCK), *filter(None, [os.environ.get("PYTHONPATH")])]
)
sys.path.insert(0, str(NETBLOCK))
import sitecustomize as netblock  # noqa: E402

netblock.block_network()  # this process too, for the whole session
NetworkBlocked = netblock.NetworkBlocked


def load_script(name: str):
    """A script of scripts/ (not a package) loaded as a module, for its functions and main()."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # registered first: a script's dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


def group_choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def preset_model(overrides) -> str:
    """The model an ``experiment=`` preset selects (``override /model: X``), else dcgan."""
    preset = next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")), None)
    path = CONF_DIR / "experiment" / f"{preset}.yaml"
    found = re.search(r"override /model: (\w+)", path.read_text()) if preset else None
    return found.group(1) if found else "dcgan"


def compose_cfg(*overrides: str, tiny: bool = True):
    """The config ``ganx-train`` would see for these overrides (tiny widths unless told)."""
    overrides = list(overrides)
    if tiny:
        model = next((o.split("=", 1)[1] for o in overrides if o.startswith("model=")), None)
        model = model or preset_model(overrides)
        overrides = TINY + TINY_WIDTHS.get(model, []) + overrides
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def config_predating(key: str, *overrides: str) -> dict:
    """A checkpoint's config (resolved, as saved) from before ``key`` existed."""
    saved = OmegaConf.to_container(compose_cfg(*overrides), resolve=True)
    *parents, leaf = key.split(".")
    node = saved
    for name in parents:
        node = node[name]
    del node[leaf]
    return saved


@pytest.fixture
def tiny_cfg():
    return compose_cfg
