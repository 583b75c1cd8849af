"""``ganx-sample`` and ``ganx-eval``: samples and metrics of a checkpoint, with training's code.

Both draw the generator's noise exactly as training's evaluation does (seeded by the run's seed
and the checkpoint's step), so ``ganx-eval`` reproduces the values in ``metrics.jsonl`` and
``ganx-sample out=x.npz n=N`` writes the very samples ``ganx-eval num_samples=N`` scores.
``ganx-sample seed=S`` draws the noise from ``S`` instead. torch is imported inside the
functions: ``--help``, ``--version`` and shell completion answer without it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from .cli import handle_version


def load_generator(path: str, use_ema: bool, device):
    """The run's config and its generator (EMA weights when asked and present)."""
    from . import checkpoint as ckpt
    from .build import build_nets

    state = ckpt.load(Path(path))
    cfg = OmegaConf.create(state["config"])
    generator, _ = build_nets(cfg)
    weights = state["ema_generator"] if use_ema and state["ema_generator"] else state["generator"]
    generator.load_state_dict(weights)
    return cfg, generator.to(device).eval(), int(state["step"])


def to_uint8_nhwc(images):
    import torch

    x = ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def write_samples(images, out: Path, latents=None) -> None:
    """A PNG grid or an ``.npz`` with ``images`` (uint8 NHWC) and, when given, ``latents``."""
    import numpy as np

    from .errors import ConfigError

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
    from . import sampling
    from .errors import ConfigError
    from .hardware import device_from

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
    device = device_from(cfg.device)
    run_cfg, generator, step = load_generator(cfg.checkpoint, cfg.ema, device)
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
def sample_hydra(cfg: DictConfig) -> None:
    import numpy as np

    from .errors import CheckpointError, ConfigError

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


def score_folder(cfg: DictConfig) -> tuple[dict[str, float], int]:
    """``ganx-eval samples=DIR real=DIR2|dataset=NAME``: (results, number of samples)."""
    from hydra import compose

    from .errors import ConfigError
    from .hardware import device_from
    from .imagesets import read_set, score_sets

    dataset = cfg.get("dataset")
    if (cfg.real is None) == (dataset is None):
        named = dataset.name if dataset is not None else None
        raise ConfigError(
            f"samples={cfg.samples}: compare them with real=DIR|FILE.npz or dataset=NAME "
            f"(one of them; got real={cfg.real}, dataset={named})"
        )
    if cfg.checkpoint is not None:
        raise ConfigError("checkpoint= and samples= cannot be combined: score one or the other")
    # the data set (as given, dataset.root included) and the metrics block as training has them
    run_cfg = compose("config", overrides=[f"dataset={dataset.name if dataset else 'mnist5k'}"])
    with open_dict(run_cfg):
        if dataset is not None:
            run_cfg.dataset = OmegaConf.merge(run_cfg.dataset, dataset)
        for key, value in cfg.settings.items():
            if value is not None:
                run_cfg.metrics[key] = value
    samples = read_set(cfg.samples, "samples")
    metrics = list(cfg.metrics) if cfg.metrics is not None else None
    return score_sets(samples, metrics, run_cfg, cfg.real, device_from(cfg.device)), len(samples)


@hydra.main(version_base="1.3", config_path="pkg://ganx.conf", config_name="eval_tool")
def eval_hydra(cfg: DictConfig) -> None:
    from .build import build_data
    from .errors import CheckpointError, ConfigError, DataError, MetricError
    from .hardware import device_from
    from .metrics.evaluation import evaluate
    from .validate import validate

    if cfg.get("samples") is not None:
        try:
            results, n = score_folder(cfg)
        except (ConfigError, DataError, MetricError) as err:
            sys.exit(f"ganx-eval: error: {err}")
        against = f"real={cfg.real}" if cfg.real is not None else f"dataset={cfg.dataset.name}"
        return report(results, f"samples={cfg.samples} ({n} images) vs {against}", cfg.out, {})
    if cfg.checkpoint is None or cfg.get("dataset") is not None:
        sys.exit("ganx-eval: error: give checkpoint=FILE.pt, or samples=DIR with real= or dataset=")
    try:
        device = device_from(cfg.device)
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
    except (ConfigError, CheckpointError, MetricError, DataError) as err:
        sys.exit(f"ganx-eval: error: {err}")
    title = f"{cfg.checkpoint} (step {step}, {run_cfg.eval.num_samples} samples)"
    report(results, title, cfg.out, {"checkpoint": str(cfg.checkpoint), "step": step})


def report(results: dict[str, float], title: str, out, record: dict) -> None:
    """The results on stdout, one per line, and in the JSON file ``out`` when given."""
    width = max(len(k) for k in results) if results else 0
    print(title)
    for key, value in results.items():
        print(f"  {key:<{width}}  {value:.6g}")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({**record, **results}, indent=2) + "\n")


def sample_main() -> None:
    handle_version("ganx-sample")
    with_paths_quoted(sample_hydra)()


def eval_main() -> None:
    handle_version("ganx-eval")
    with_paths_quoted(eval_hydra)()
