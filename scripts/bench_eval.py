"""Benchmark: a FID evaluation inside ganx (real statistics cached, generation included) against
torch-fidelity's plain ``calculate_metrics`` on the same samples (both feature passes), side by
side in one run. Prints the times, their ratio and both FIDs (they must agree).

    python scripts/bench_eval.py --checkpoint outputs/.../checkpoints/last.pt --n 10000
    python scripts/bench_eval.py --checkpoint ... --n 50000 --extractor inception --device cuda

Issue target (GPU): ganx's cached FID-50k at most half the time of the uncached
torch-fidelity path, with the same value.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch_fidelity

from ganx.api import load_generator
from ganx.build import build_data
from ganx.metrics.evaluation import evaluate, sample_for_eval
from ganx.metrics.fidelity import EXTRACTORS, real_images, register_extractors


class Uint8Images(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--extractor", choices=sorted(EXTRACTORS), default="mnist")
    parser.add_argument("--inception-weights", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    device = torch.device(args.device)
    loaded = load_generator(args.checkpoint, True, args.device)
    cfg, generator, step = loaded.config, loaded.module, loaded.step
    cfg.eval.metrics = [f"fid_{args.extractor}"]
    cfg.eval.num_samples = args.n
    cfg.metrics.batch_size = args.batch_size
    cfg.metrics.real_count = args.n
    if args.inception_weights:
        cfg.metrics.inception_weights = args.inception_weights
    source = build_data(cfg)
    with tempfile.TemporaryDirectory() as cache:
        cfg.metrics.cache_dir = cache
        banks: dict = {}
        evaluate(generator, cfg, source, step, device, banks)  # warm: extractor + real cache
        started = time.perf_counter()
        ours = evaluate(generator, cfg, source, step, device, banks)
        ours_s = time.perf_counter() - started

    fake = sample_for_eval(generator, cfg, step, device)
    from ganx.metrics.fidelity import to_uint8

    register_extractors()
    kwargs = {
        "feature_extractor": EXTRACTORS[args.extractor],
        "cuda": device.type == "cuda",
        "save_cpu_ram": True,
        "cache": False,
        "verbose": False,
        "fid": True,
        "batch_size": args.batch_size,
    }
    if args.extractor == "inception" and cfg.metrics.inception_weights:
        kwargs["feature_extractor_weights_path"] = str(Path(cfg.metrics.inception_weights))
    started = time.perf_counter()
    reference = torch_fidelity.calculate_metrics(
        input1=Uint8Images(to_uint8(fake)),
        input2=Uint8Images(real_images(source, args.n)),
        **kwargs,
    )
    plain_s = time.perf_counter() - started
    fid_ours = next(v for k, v in ours.items() if k.startswith("fid"))
    fid_plain = reference["frechet_inception_distance"]
    print(f"device {device}, torch {torch.__version__}, extractor {args.extractor}, n {args.n}")
    print("| path | time s | FID |")
    print("|---|---|---|")
    print(
        f"| torch-fidelity calculate_metrics (samples given, 2 feature passes) | "
        f"{plain_s:.2f} | {fid_plain:.4f} |"
    )
    print(f"| ganx evaluate (generation + 1 pass, real cached) | {ours_s:.2f} | {fid_ours:.4f} |")
    print(
        f"ratio ganx / plain: {ours_s / plain_s:.3f}; |FID difference| "
        f"{abs(fid_ours - fid_plain):.2e}"
    )


if __name__ == "__main__":
    main()
