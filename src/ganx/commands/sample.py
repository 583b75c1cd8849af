"""``ganx-sample``: samples of a checkpoint, with training's code.

It draws the generator's noise exactly as training's evaluation does (seeded by the run's seed
and the checkpoint's step), so ``ganx-sample out=x.npz n=N`` writes the very samples
``ganx-eval num_samples=N`` scores (:mod:`ganx.commands.eval`). ``ganx-sample seed=S`` draws
the noise from ``S`` instead. torch is imported inside the functions: ``--help``, ``--version``
and shell completion answer without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from .ganx import handle_version, with_paths_quoted


def to_uint8_nhwc(images):
    import torch

    x = ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def write_samples(images, out: Path, latents=None) -> None:
    """A PNG grid or an ``.npz`` with ``images`` (uint8 NHWC) and, when given, ``latents``."""
    import numpy as np

    from ..errors import ConfigError

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        arrays = {"images": to_uint8_nhwc(images)}
        if latents is not None:
            arrays["latents"] = latents.numpy()
        np.savez_compressed(out, **arrays)
    elif out.suffix == ".png":
        from torchvision.utils import save_image

        save_image(
            images,
            out,
            nrow=int(np.ceil(np.sqrt(len(images)))),
            normalize=True,
            value_range=(-1, 1),
        )
    else:
        raise ConfigError(f"out={out}: the file must end in .png or .npz")


def sample_checkpoint(cfg: DictConfig):
    """(images, latents, step) as ``ganx-sample`` writes them."""
    from .. import sampling
    from ..api import load_generator
    from ..errors import ConfigError

    if not isinstance(cfg.n, int) or cfg.n <= 0:
        raise ConfigError(f"n={cfg.n}: must be a positive integer")
    if cfg.seed is not None and not isinstance(cfg.seed, int):
        raise ConfigError(f"seed={cfg.seed!r}: must be an integer or null")
    if cfg.get("bn_stats") not in (None, *sampling.BN_CHOICES):
        raise ConfigError(
            f"bn_stats={cfg.bn_stats!r}; allowed: null, {', '.join(sampling.BN_CHOICES)}"
        )
    for key, suffixes in (("out", (".png", ".npz")), ("latents", (".npy",))):
        if cfg.get(key) is not None and Path(cfg[key]).suffix not in suffixes:
            raise ConfigError(f"{key}={cfg[key]}: the file must end in {' or '.join(suffixes)}")
    loaded = load_generator(cfg.checkpoint, cfg.ema, cfg.device)
    run_cfg, generator, step, device = loaded.config, loaded.module, loaded.step, loaded.device
    seed = cfg.seed
    if seed is None:  # the noise training's evaluation drew at this step
        seed = sampling.eval_noise_seed(int(run_cfg.seed), step)
    latents = sampling.draw_noise(
        cfg.n, int(run_cfg.model.latent_dim), seed, sampling.latent_distribution(run_cfg)
    )
    bn_stats = cfg.get("bn_stats") or run_cfg.sample.get("bn_stats", "batch")
    chunk = max(int(run_cfg.train.batch_size), 256)  # as training's evaluation chunks it
    if bn_stats == "batch" and sampling.has_batch_norm(generator):
        print(
            f"ganx-sample: bn_stats=batch (the run's, as its evaluation sampled): each image "
            f"depends on the others of its batch of up to {chunk}; bn_stats=frozen gives each "
            "latent its own image",
            file=sys.stderr,
        )
    images = sampling.images_from(generator, latents, bn_stats, device, chunk)
    return images, latents, step


@hydra.main(version_base="1.3", config_path="pkg://ganx.conf", config_name="sample_tool")
def sample_hydra(cfg: DictConfig) -> None:
    import numpy as np

    from ..errors import CheckpointError, ConfigError

    try:
        images, latents, step = sample_checkpoint(cfg)
        out = Path(cfg.out)
        write_samples(images, out, latents)
        if cfg.get("latents"):
            Path(cfg.latents).parent.mkdir(parents=True, exist_ok=True)
            np.save(cfg.latents, latents.numpy())
    except (ConfigError, CheckpointError) as err:
        sys.exit(f"ganx-sample: error: {err}")
    extra = f", latents in {cfg.latents}" if cfg.get("latents") else ""
    print(f"wrote {len(images)} samples of {cfg.checkpoint} (step {step}) to {out}{extra}")


def main() -> None:
    handle_version("ganx-sample")
    with_paths_quoted(sample_hydra)()
