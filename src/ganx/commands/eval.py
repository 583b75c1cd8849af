"""``ganx-eval``: metrics of a checkpoint, with training's code, or of a folder of samples.

It draws the generator's noise exactly as training's evaluation does (seeded by the run's seed
and the checkpoint's step), so ``ganx-eval`` reproduces the values in ``metrics.jsonl`` and
scores the very samples ``ganx-sample out=x.npz n=N`` writes (:mod:`ganx.commands.sample`).
torch is imported inside the functions: ``--help``, ``--version`` and shell completion answer
without it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from .ganx import handle_version, with_paths_quoted


def score_folder(cfg: DictConfig) -> tuple[dict[str, float], int]:
    """``ganx-eval samples=DIR real=DIR2|dataset=NAME``: (results, number of samples)."""
    from hydra import compose

    from ..errors import ConfigError
    from ..hardware import device_from
    from ..imagesets import read_set, score_sets

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
    from ..api import load_generator
    from ..build import build_data
    from ..errors import CheckpointError, ConfigError, DataError, MetricError
    from ..metrics.evaluation import evaluate
    from ..validate import validate

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
        loaded = load_generator(cfg.checkpoint, cfg.ema, cfg.device)
        run_cfg, generator, step, device = loaded.config, loaded.module, loaded.step, loaded.device
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


def main() -> None:
    handle_version("ganx-eval")
    with_paths_quoted(eval_hydra)()
