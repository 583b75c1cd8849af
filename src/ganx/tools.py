"""``ganx-sample`` and ``ganx-eval``: samples and metrics of a checkpoint, with training's code.

Both draw the generator's noise exactly as training's evaluation does (seeded by the run's seed
and the checkpoint's step), so ``ganx-eval`` reproduces the values in ``metrics.jsonl`` and
``ganx-sample out=x.npz n=N`` writes the very samples ``ganx-eval num_samples=N`` scores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from . import checkpoint as ckpt
from .build import ConfigError, build_data, build_nets, select_device
from .evaluation import evaluate, sample_for_eval


def load_generator(path: str, use_ema: bool, device: torch.device):
    """The run's config and its generator (EMA weights when asked and present)."""
    state = ckpt.load(Path(path))
    cfg = OmegaConf.create(state["config"])
    generator, _ = build_nets(cfg)
    weights = state["ema_generator"] if use_ema and state["ema_generator"] else state["generator"]
    generator.load_state_dict(weights)
    return cfg, generator.to(device).eval(), int(state["step"])


def _device(choice: str) -> torch.device:
    return select_device(OmegaConf.create({"device": choice}))


def to_uint8_nhwc(images: torch.Tensor) -> np.ndarray:
    x = ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def write_samples(images: torch.Tensor, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        np.savez_compressed(out, images=to_uint8_nhwc(images))
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


def with_paths_quoted(hydra_main):
    """A console entry point that quotes path values first: ``checkpoint=`` paths of sweep jobs
    contain ``=`` (``multirun/.../reg=r1/seed=0/checkpoints/last.pt``), which Hydra's override
    grammar would read as a second assignment."""

    def entry() -> None:
        from .overrides import quote_paths

        sys.argv[1:] = quote_paths(sys.argv[1:])
        hydra_main()

    entry.__doc__ = hydra_main.__doc__
    return entry


@hydra.main(version_base="1.3", config_path="pkg://ganx.conf", config_name="sample_tool")
def _sample_main(cfg: DictConfig) -> None:
    try:
        if cfg.n <= 0:
            raise ConfigError(f"n={cfg.n}: must be a positive integer")
        out = Path(cfg.out)
        if out.suffix not in (".png", ".npz"):
            raise ConfigError(f"out={out}: the file must end in .png or .npz")
        device = _device(cfg.device)
        run_cfg, generator, step = load_generator(cfg.checkpoint, cfg.ema, device)
        images = sample_for_eval(generator, run_cfg, step, device, n=cfg.n)
        write_samples(images, out)
    except (ConfigError, ckpt.CheckpointError) as err:
        sys.exit(f"ganx-sample: error: {err}")
    print(f"wrote {len(images)} samples of {cfg.checkpoint} (step {step}) to {out}")


@hydra.main(version_base="1.3", config_path="pkg://ganx.conf", config_name="eval_tool")
def _eval_main(cfg: DictConfig) -> None:
    from .fidelity import MetricError
    from .validate import validate

    try:
        device = _device(cfg.device)
        run_cfg, generator, step = load_generator(cfg.checkpoint, cfg.ema, device)
        with open_dict(run_cfg):
            if cfg.metrics is not None:
                run_cfg.eval.metrics = list(cfg.metrics)
            if cfg.num_samples is not None:
                run_cfg.eval.num_samples = cfg.num_samples
            if cfg.get("bn_stats") is not None:
                run_cfg.sample.bn_stats = cfg.bn_stats
            for key, value in cfg.settings.items():
                if value is not None:
                    run_cfg.metrics[key] = value
        validate(run_cfg)
        results = evaluate(generator, run_cfg, build_data(run_cfg), step, device, banks={})
    except (ConfigError, ckpt.CheckpointError, MetricError) as err:
        sys.exit(f"ganx-eval: error: {err}")
    width = max(len(k) for k in results) if results else 0
    print(f"{cfg.checkpoint} (step {step}, {run_cfg.eval.num_samples} samples)")
    for key, value in results.items():
        print(f"  {key:<{width}}  {value:.6g}")
    if cfg.out:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        record = {"checkpoint": str(cfg.checkpoint), "step": step, **results}
        Path(cfg.out).write_text(json.dumps(record, indent=2) + "\n")


sample_main = with_paths_quoted(_sample_main)
eval_main = with_paths_quoted(_eval_main)
