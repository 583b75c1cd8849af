"""Every check on the config, from the error side: a bad value is refused before any training with
one line that names the key and the value, and nothing is written."""

import copy
from functools import lru_cache

import pytest
import yaml
from conftest import compose_cfg
from omegaconf import OmegaConf

from ganx.errors import ConfigError
from ganx.loop import train

GROUPS = ("model", "loss", "reg", "dataset", "augment", "hardware", "experiment")


@lru_cache
def composed(*choices):
    return compose_cfg(*choices)


def bad_config(overrides):
    """``compose_cfg(*overrides)``, composed once per set of group choices (composing is most of
    this file's time) with the other values set on a copy as Hydra sets them."""
    choices = tuple(o for o in overrides if o.split("=")[0] in GROUPS)
    cfg = copy.deepcopy(composed(*choices))
    for override in overrides:
        key, value = override.split("=", 1)
        if key not in GROUPS:
            OmegaConf.update(cfg, key, yaml.safe_load(value), merge=False)
    return cfg


BAD = [
    # (overrides, what the one line must contain)
    (["train.steps=0"], "train.steps=0"),
    (["train.batch_size=-3"], "train.batch_size=-3"),
    (["train.n_dis=0"], "train.n_dis=0"),
    (["optim.g.lr=0"], "optim.g.lr=0"),
    (["optim.d.lr=-1"], "optim.d.lr=-1"),
    (["train.ema=1.0"], "train.ema=1.0"),
    (["train.updates=sideways"], "train.updates='sideways'; allowed: alternating, simultaneous"),
    (["train.on_nonfinite=ignore"], "train.on_nonfinite='ignore'; allowed: stop, skip"),
    (["sample.every=0"], "sample.every=0"),
    (["ckpt.every=0"], "ckpt.every=0"),
    (["log.every=-1"], "log.every=-1"),
    (["sample.bn_stats=mean"], "sample.bn_stats='mean'; allowed: batch, running"),
    (["ckpt.keep=-1"], "ckpt.keep=-1"),
    (["eval.metrics=[fid_nope]"], "eval.metrics: unknown ['fid_nope']"),
    (["eval.every=0"], "eval.every=0"),
    (["eval.at=[100,0]"], "eval.at[1]=0"),
    (["eval.num_samples=0"], "eval.num_samples=0"),
    (["eval.metrics=[modes]"], "modes needs a Gaussian mixture (ring8, grid25, mog3d)"),
    (["eval.mode=median"], "eval.mode='median'; allowed: min, max"),
    (["reg=r1", "reg.r1.weight=-2"], "reg.r1.weight=-2"),
    (["reg=r1", "reg.r1.interval=0"], "reg.r1.interval=0"),
    (["reg=r1", "reg.r1.schedule=linear"], "reg.r1.schedule='linear'; allowed: constant, cosine"),
    (["reg=r2", "reg.r2.schedule=cosine"], "reg.r2.schedule=cosine needs reg.r2.weight_end"),
    (["reg=r1", "reg.r1.weight_end=-1"], "reg.r1.weight_end=-1"),
    (["reg=r1", "reg.r1.weight_end=1"], "reg.r1.weight_end=1 has no effect with reg.r1.schedule=c"),
    (["reg=r2", "reg.r2.schedule_steps=0"], "reg.r2.schedule_steps=0"),
    (["reg=instance_noise", "reg.instance_noise.std=-0.1"], "reg.instance_noise.std=-0.1"),
    (["reg=lecam", "reg.lecam.decay=-0.5"], "reg.lecam.decay=-0.5"),
    (["reg=dat", "reg.dat.step_size=-1"], "reg.dat.step_size=-1"),
    (["reg=dat", "reg.dat.clamp=-1"], "reg.dat.clamp=-1"),
    (["reg=dragan", "reg.dragan.noise_scale=-1"], "reg.dragan.noise_scale=-1"),
    (["model=sngan"], "model=sngan does not support dataset.resolution=28"),
    (["model=dirac"], "model=dirac cannot train on dataset=mnist5k"),
    (["model=r3gan", "dataset.resolution=48"], "model=r3gan does not support dataset.resolution"),
    (["model=r3gan", "model.generator.cardinality=0"], "model.generator.cardinality=0"),
    (["model=r3gan", "model.discriminator.blocks=[2,-1,2]"], "model.discriminator.blocks=-1"),
    (["hardware.amp=fp8"], "hardware.amp='fp8'; allowed: off, bf16, fp16"),
    (["hardware.compile=fast"], "hardware.compile='fast'; allowed: off, default, reduce-overhead"),
    (["hardware.processes=0"], "hardware.processes=0"),
    (["hardware.device=tpu"], "hardware.device='tpu'; allowed: auto, cpu, cuda, cuda:N"),
    (["resume=7"], "resume=7"),
    (["resume=/no/such/file.pt"], "resume='/no/such/file.pt': no such checkpoint file"),
    # refused by the constructors while building, before training: named all the same
    (["loss=wgan", "loss.clip=0"], "loss.clip"),
    (["loss=ragan", "loss.variant=wgan"], "loss.variant='wgan'; allowed: standard, ls, hinge"),
    (["loss=ragan", "loss.scale=0"], "loss.scale=0: must be a positive finite number"),
    (["reg=js", "reg.js.decay=0"], "reg.js.decay=0: must be a number in (0, 1]"),
    (["reg=lecam", "reg.lecam.decay=1.0"], "reg.lecam.decay=1.0: must be a number in [0, 1)"),
    (["reg=dat", "reg.dat.step_size=0"], "reg.dat.step_size=0: must be a positive finite number"),
    (
        ["reg=dat", "reg.dat.perturb=neither"],
        "reg.dat.perturb='neither'; allowed: both, real, fake",
    ),
    (
        ["reg=dragan", "reg.dragan.noise_scale=0"],
        "reg.dragan.noise_scale=0: must be a positive finite number",
    ),
    (
        ["model=ssgan", "dataset.resolution=32", "model.aux.g_weight=-1"],
        "model.aux.g_weight=-1: must be a finite number >= 0",
    ),
    # issue 27: validate.py and the constructors disagreed; the constructor's rule is the one
    (["reg=lecam", "reg.lecam.decay=1.5"], "reg.lecam.decay=1.5: must be a number in [0, 1)"),
    (["reg=dat", "reg.dat.clamp=0"], "reg.dat.clamp=0: must be a positive finite number"),
    (
        ["reg=instance_noise", "reg.instance_noise.anneal_steps=0"],
        "reg.instance_noise.anneal_steps=0: must be a positive integer",
    ),
    (["model.discriminator.ndf=0"], "model.discriminator.ndf=0: must be a positive integer"),
    (
        ["model=sngan", "dataset.resolution=32", "model.generator.upsample=cubic"],
        "model.generator.upsample='cubic'; allowed: bilinear, nearest",
    ),
    (["augment=ada", "augment.kimg=0"], "augment.kimg=0: must be a positive finite number"),
    (["augment=diffaug", "augment.cutout=0"], "augment.cutout=0: must be a number in (0, 1]"),
    (["optim.d.betas=[0.5,1.0]"], "optim.d.betas=[0.5, 1.0]: must be two numbers in [0, 1)"),
    # augmentation, limited data, StackedMNIST
    (["augment=ada", "augment.target=1.5"], "augment.target=1.5: must be a number in [0, 1]"),
    (["augment=ada", "augment.interval=0"], "augment.interval=0: must be a positive integer"),
    (
        ["augment=ada", "augment.transforms=[xflip,shear]"],
        "augment.transforms=['xflip', 'shear']; allowed: a non-empty list of xflip, rotate90",
    ),
    (["augment=diffaug", "augment.policy=[]"], "augment.policy=[]; allowed: a non-empty list"),
    (
        ["model=toy2d", "dataset=ring8", "augment=diffaug"],
        "augment=diffaug with dataset=ring8: augmentation transforms images",
    ),
    (["dataset.subset=0"], "dataset.subset=0: must be a positive integer"),
    # a larger seed overflowed torch.Generator's seed at the first evaluation, after training
    (["seed=4294967296"], "seed=4294967296: must be an integer in [0, 2**32)"),
    (["seed=-1"], "seed=-1: must be an integer in [0, 2**32)"),
    (["dataset.subset_seed=-1", "dataset.subset=10"], "dataset.subset_seed=-1"),
    (["dataset=stacked_mnist", "dataset.n=10000000"], "dataset.n=10000000: at most 200,000"),
    (["augment.name=crop"], "augment.name='crop'; allowed: none, diffaug, ada"),
    (
        ["eval.metrics=[modes_stacked_mnist]"],
        "modes_stacked_mnist scores the 1,000 digit triples of dataset=stacked_mnist",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_value_is_refused_naming_key_and_value(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as err:
        train(bad_config(overrides), tmp_path)
    text = str(err.value)
    assert message in text
    assert "\n" not in text  # one line
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_bad_config_is_what_compose_gives():
    for overrides in (["reg=lecam", "reg.lecam.decay=-0.5"], ["eval.at=[100,0]", "resume=7"]):
        assert bad_config(overrides) == compose_cfg(*overrides)
