"""Training-step benchmark: iterations/s, images/s, achieved TFLOP/s and peak memory per model
family, for a plain eager fp32 baseline and each ``hardware`` preset, measured side by side in one
run, with the ratio to the baseline. One iteration = ``n_dis`` D steps + 1 G step; the data is
synthetic and already on the device (the loop itself is measured, not the loader).

    python scripts/bench.py                                   # CPU: the cpu preset
    python scripts/bench.py --families mlp dcgan sngan --batch 64 256 --presets cuda cuda_fast
    python scripts/bench.py --presets cpu+amp=bf16 --curves 300   # + the loss-curve check

A preset is a ``hardware`` choice, optionally with changed keys: ``cuda_fast+compile=off``.
FLOPs of one iteration are counted once with torch.utils.flop_counter (eager).

``--curves N`` also trains each family N iterations on the embedded MNIST (real data, seed 0)
with the baseline and with each preset, plus the baseline with seeds 1 and 2, and compares
five windowed means of loss/D and loss/G: a preset's curves "match within noise" when they
differ from the baseline's no more than the baseline's seed-to-seed differences do.
"""

from __future__ import annotations

import argparse
import time

import torch
from hydra import compose, initialize_config_module
from torch.utils.flop_counter import FlopCounterMode

from ganx.build import build_all
from ganx.data import DataSource
from ganx.rng import seed_everything
from ganx.step import StepSettings, training_iteration

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


def preset_overrides(preset: str) -> list[str]:
    """``eager_fp32`` (the cpu preset's plain settings) or ``NAME[+key=value...]``."""
    name, *changes = preset.split("+")
    hardware = "cpu" if name == "eager_fp32" else name
    return [f"hardware={hardware}", *(f"hardware.{c}" for c in changes)]


def build(
    family: str,
    batch: int,
    preset: str,
    device: torch.device,
    synthetic: bool = True,
    seed: int = 0,
):
    overrides, channels, res, loss, n_dis = FAMILY_SETTINGS[family]
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                *overrides,
                f"loss={loss}",
                "reg=none",  # the plain step of the measurements (no penalty)
                *preset_overrides(preset),
                f"train.n_dis={n_dis}",
                f"train.batch_size={batch}",
                f"dataset.resolution={res}",
                f"dataset.channels={channels}",
                "eval.metrics=[]",
                f"seed={seed}",
            ],
        )
    if preset.split("+")[0] == "eager_fp32":
        cfg.hardware.device = device.type
    seed_everything(seed)
    parts = build_all(cfg, device)
    if synthetic:  # replace the data with synthetic images on the device
        images = torch.rand(max(batch * 4, 256), channels, res, res, device=device) * 2 - 1
        parts.stream.source = DataSource("synthetic", channels, res, images=images)
        parts.stream.images = images
        parts.stream.batches_per_epoch = len(images) // batch
    settings = StepSettings(10**6, cfg.model.latent_dim, cfg.hardware.amp, check=False)
    return cfg, parts, settings


def loss_curves(family, batch, preset, device, iterations: int, seed: int = 0):
    """Per-iteration loss/D (mean over the n_dis D steps) and loss/G on real data."""
    cfg, parts, settings = build(family, batch, preset, device, synthetic=False, seed=seed)
    d_curve, g_curve, d_steps = [], [], 0
    for step in range(iterations):
        terms, d_steps = training_iteration(
            parts, settings, step, d_steps, cfg.train.n_dis, False, parts.stream.next
        )
        d_terms = [float(t["loss/D"].detach()) for t in terms if "loss/D" in t]
        d_curve.append(sum(d_terms) / len(d_terms))
        g_curve.append(float(terms[-1]["loss/G"].detach()))
    return d_curve, g_curve


def windowed(curve: list[float], windows: int = 5) -> list[float]:
    size = max(1, len(curve) // windows)
    return [sum(curve[i : i + size]) / size for i in range(0, len(curve) - size + 1, size)]


def max_gap(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(windowed(a), windowed(b), strict=True))


def compare_curves(families, batch, presets, device, iterations: int) -> None:
    print(f"\nloss curves over {iterations} iterations (5 windowed means, {iterations // 5} each)")
    print("| family | preset | max gap loss/D | max gap loss/G | seed gap D / G | within noise |")
    print("|---|---|---|---|---|---|")
    for family in families:
        base = loss_curves(family, batch, "eager_fp32", device, iterations)
        # GAN training is chaotic: after a few hundred steps any change of float rounding
        # moves the curves as far as a new seed does, so the baseline's seed-to-seed gaps
        # (seeds 1 and 2 against 0) are the noise a preset is held to
        others = [
            loss_curves(family, batch, "eager_fp32", device, iterations, seed=s) for s in (1, 2)
        ]
        noise = [max(max_gap(base[i], o[i]) for o in others) for i in (0, 1)]
        for preset in presets:
            curves = loss_curves(family, batch, preset, device, iterations)
            gaps = [max_gap(base[i], curves[i]) for i in (0, 1)]
            ok = all(g <= n for g, n in zip(gaps, noise, strict=True))
            print(
                f"| {family} | {preset} | {gaps[0]:.4f} | {gaps[1]:.4f} | "
                f"{noise[0]:.4f} / {noise[1]:.4f} | {'yes' if ok else 'NO'} |"
            )


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
    parser.add_argument(
        "--curves", type=int, default=0, help="also compare loss curves over this many iterations"
    )
    args = parser.parse_args()
    unknown = [f for f in args.families if f not in FAMILY_SETTINGS]
    if unknown:
        parser.error(f"unknown families {unknown}; allowed: {sorted(FAMILY_SETTINGS)}")
    for preset in args.presets or []:  # a bad preset is named before anything is measured
        try:
            with initialize_config_module("ganx.conf", version_base="1.3"):
                compose("config", overrides=preset_overrides(preset))
        except Exception as err:
            parser.error(f"--presets {preset}: {str(err).splitlines()[0]}")
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
    if args.curves:
        curve_presets = [p for p in presets if not (p == "cpu" and device.type == "cpu")]
        compare_curves(args.families, args.batch[0], curve_presets, device, args.curves)


if __name__ == "__main__":
    main()
