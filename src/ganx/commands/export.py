"""``ganx-export``: a checkpoint's generator as a file other programs can run without ganx.

``format=torchscript`` (default) traces the generator as ganx samples with it (EMA weights when
present, ``sampling.sampling_module``) into a TorchScript file: ``torch.jit.load(path)(z)``
maps latents (N x latent_dim) to images (N x C x H x W in [-1, 1]). ``format=onnx`` writes the
same function as ONNX (needs the ``onnx`` package: ``pip install 'ganx[onnx]'``). The file
carries ``ganx.json``: latent size, step, bn_stats.

The exported function is per-sample by default: a BatchNorm generator whose run samples with
``batch`` statistics is exported with ``frozen`` ones (``sampling.frozen_stats_copy``), so a
latent gives the same image alone as in a batch of 16. ``bn_stats=batch`` exports the
batch-dependent function anyway, with a warning.

    ganx-export checkpoint=outputs/.../checkpoints/last.pt out=generator.pt
    ganx-export checkpoint=... format=onnx out=generator.onnx
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from .ganx import handle_version, with_paths_quoted

FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}


def export_generator(
    checkpoint: str, out: Path, fmt: str = "torchscript", ema: bool = True, bn_stats=None
) -> dict:
    """Write the generator of ``checkpoint`` to ``out``; returns its metadata."""
    import torch

    from .. import sampling
    from ..api import load_generator
    from ..errors import ConfigError

    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise ConfigError("format=onnx needs the onnx package: pip install 'ganx[onnx]'")
    loaded = load_generator(checkpoint, ema, "cpu")
    run_cfg, generator, step = loaded.config, loaded.module, loaded.step
    if bn_stats is not None and bn_stats not in sampling.BN_CHOICES:
        raise ConfigError(f"bn_stats={bn_stats!r}; allowed: null, {', '.join(sampling.BN_CHOICES)}")
    batch_norm = sampling.has_batch_norm(generator)
    choice = bn_stats or run_cfg.sample.get("bn_stats", "batch")
    if bn_stats is None and choice == "batch" and batch_norm:
        choice = "frozen"  # per-sample by default: the same latent, the same image
    if choice == "batch" and batch_norm:
        print(
            "ganx-export: warning: bn_stats=batch: this generator's BatchNorm layers normalise "
            "with each batch's statistics, so a latent gives a different image alone than in a "
            "batch; bn_stats=frozen (the default) exports a per-sample generator",
            file=sys.stderr,
        )
    latent_dim = int(run_cfg.model.latent_dim)
    module = sampling.sampling_module(generator, choice, latent_dim)
    meta = {"latent_dim": latent_dim, "step": step, "bn_stats": choice, "checkpoint": checkpoint}
    if choice == "frozen":
        meta["frozen_from"] = {"latents": sampling.FREEZE_SAMPLES, "seed": sampling.FREEZE_SEED}
    example = sampling.draw_noise(8, latent_dim, 0, sampling.latent_distribution(run_cfg))
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torchscript":
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
            traced = torch.jit.trace(module, example, check_inputs=[(example[:3],)])
        torch.jit.save(traced, str(out), _extra_files={"ganx.json": json.dumps(meta)})
    else:
        export_onnx(module, example, out, meta)
    return meta


def export_onnx(module, example, out: Path, meta: dict) -> None:
    import onnx
    import torch

    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        module,
        (example,),
        dynamo=True,
        input_names=["latents"],
        output_names=["images"],
        dynamic_shapes=({0: batch},),
        external_data=False,
    )
    model = program.model_proto
    entry = model.metadata_props.add()
    entry.key, entry.value = "ganx.json", json.dumps(meta)
    onnx.save(model, str(out))


@hydra.main(version_base="1.3", config_path="pkg://ganx.conf", config_name="export_tool")
def export_hydra(cfg: DictConfig) -> None:
    from ..errors import CheckpointError, ConfigError

    out = Path(cfg.out or f"generator{FORMATS.get(cfg.format, '')}")
    try:
        meta = export_generator(str(cfg.checkpoint), out, cfg.format, cfg.ema, cfg.bn_stats)
    except (CheckpointError, ConfigError) as err:
        sys.exit(f"ganx-export: error: {err}")
    print(
        f"wrote {cfg.format} generator of {cfg.checkpoint} (step {meta['step']}, latents of "
        f"size {meta['latent_dim']}, bn_stats={meta['bn_stats']}) to {out}"
    )


def main() -> None:
    handle_version("ganx-export")
    with_paths_quoted(export_hydra)()


if __name__ == "__main__":
    main()
