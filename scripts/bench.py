"""Training-step benchmark: iterations/s, images/s, achieved TFLOP/s and peak memory per model
family, for a plain eager fp32 baseline and each ``hardware`` preset, measured side by side in one
run, with the ratio to the baseline. One iteration = ``n_dis`` D steps + 1 G step; the data is
synthetic and already on the device (the loop itself is measured, not the loader).

    python scripts/bench.py                                   # CPU: the cpu preset
    python scripts/bench.py --families mlp dcgan sngan --batch 64 256 --presets cuda cuda_fast

FLOPs of one iteration are counted once with torch.utils.flop_counter (eager).
"""

from __future__ import annotations

import argparse
import time

import torch
from hydra import compose, initialize_config_module
from torch.utils.flop_counter import FlopCounterMode

from ganx.build import build_all
from ganx.data import DataSource
from ganx.loop import StepSettings, seed_everything, training_iteration

FAMILY_SETTINGS = {  # model, data shape, loss, n_dis (the SNGAN setting: hinge, 5)
    "mlp": (["model=mlp"], 1, 28, "ns", 1),
    "dcgan": (
        ["model=dcgan", "model.generator.ngf=64", "model.discriminator.ndf=64"],
        3,
        32,
        "ns",
        1,
    ),
    "sngan": (["model=sngan"], 3, 32, "hinge", 5),
    "ssgan": (["model=ssgan"], 3, 32, "hinge", 5),
    "infomax": (["model=infomax"], 3, 32, "hinge", 5),
    "resnet64": (["model=resnet64"], 3, 64, "ns", 1),
}


def build(family: str, batch: int, preset: str, device: torch.device):
    overrides, channels, res, loss, n_dis = FAMILY_SETTINGS[family]
    hardware = "cpu" if preset == "eager_fp32" else preset
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                *overrides,
                f"loss={loss}",
                f"hardware={hardware}",
                f"train.n_dis={n_dis}",
                f"train.batch_size={batch}",
                f"dataset.resolution={res}",
                f"dataset.channels={channels}",
                "eval.metrics=[]",
            ],
        )
    if preset == "eager_fp32":
        cfg.hardware.device = device.type
    seed_everything(0)
    parts = build_all(cfg, device)
    # replace the data with synthetic images on the device
    images = torch.rand(max(batch * 4, 256), channels, res, res, device=device) * 2 - 1
    parts.stream.source = DataSource("synthetic", channels, res, images=images)
    parts.stream.images = images
    parts.stream.batches_per_epoch = len(images) // batch
    settings = StepSettings(10**6, cfg.model.latent_dim, cfg.hardware.amp, check=False)
    return cfg, parts, settings


def run(parts, settings, cfg, iterations: int, device) -> float:
    d_steps = 0
    for step in range(iterations):
        _, d_steps = training_iteration(
            parts, settings, step, d_steps, cfg.train.n_dis, False, parts.stream.next
        )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return d_steps


def measure(family, batch, preset, device, seconds: float):
    cfg, parts, settings = build(family, batch, preset, device)
    run(parts, settings, cfg, 3, device)  # warm-up (and compilation)
    flops = 0
    if preset == "eager_fp32":
        with FlopCounterMode(display=False) as counter:
            run(parts, settings, cfg, 1, device)
        flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    iterations, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or iterations < 3:
        run(parts, settings, cfg, 1, device)
        iterations += 1
    elapsed = time.perf_counter() - started
    params = (
        sum(p.numel() for p in parts.generator.parameters()),
        sum(p.numel() for p in parts.discriminator.parameters()),
    )
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return iterations / elapsed, flops, params, peak, cfg.train.n_dis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["mlp", "dcgan", "sngan"])
    parser.add_argument("--batch", nargs="+", type=int, default=[64])
    parser.add_argument(
        "--presets",
        nargs="+",
        default=None,
        help="default: cpu on a CPU, cuda and cuda_fast on a GPU",
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    unknown = [f for f in args.families if f not in FAMILY_SETTINGS]
    if unknown:
        parser.error(f"unknown families {unknown}; allowed: {sorted(FAMILY_SETTINGS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    presets = args.presets or (["cuda", "cuda_fast"] if device.type == "cuda" else ["cpu"])
    name = (
        torch.cuda.get_device_name() if device.type == "cuda" else f"CPU x{torch.get_num_threads()}"
    )
    print(f"device: {name}; torch {torch.__version__}")
    print(
        "| family | batch | n_dis | G/D params | preset | it/s | images/s | TFLOP/s | "
        "peak GiB | x eager fp32 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for family in args.families:
        for batch in args.batch:
            base, flops, params, peak, n_dis = measure(
                family, batch, "eager_fp32", device, args.seconds
            )
            rows = [("eager_fp32", base, peak)]
            for preset in presets:
                if preset == "cpu" and device.type == "cpu":
                    continue  # the cpu preset is the eager fp32 baseline on a CPU
                its, _, _, peak, _ = measure(family, batch, preset, device, args.seconds)
                rows.append((preset, its, peak))
            for preset, its, peak in rows:
                images = its * batch * (n_dis + 1)
                print(
                    f"| {family} | {batch} | {n_dis} | {params[0]:,}/{params[1]:,} | {preset} "
                    f"| {its:.2f} | {images:.0f} | {its * flops / 1e12:.3f} | {peak:.2f} | "
                    f"{its / base:.2f} |"
                )


if __name__ == "__main__":
    main()
