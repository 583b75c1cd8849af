"""Benchmark: the response time of ``ganx-dirac serve``'s endpoint for a Dirac-GAN run of
``--steps`` steps (500 by default), through HTTP from a separate server process as the page
asks it, side by side with the same run called in this process (no HTTP, no JSON). Each
request moves the start point, as a click on the plane does, so the run itself is never a
cached answer (the composed config, the field and the critical gamma are, after the first).

    python scripts/bench_dirac.py                       # ns + R1, 500 steps, 20 requests
    python scripts/bench_dirac.py --loss wgan --reg none --steps 500 --repeats 50
    python scripts/bench_dirac.py --profile 15         # and where a request's time goes

Issue target: a 500-step run answers within 100 ms on the 2-core CPU.

For ns + none and ns + r1 it also times ganx's step (``ganx.dirac_run.descend``) side by side
with a hand loop of the same torch operations written out here, with no ganx function around
them, checked to give the same trajectory bit for bit: the floor of a float32 step through
torch's autograd on this CPU, and ganx's overhead over it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

TARGET_MS = 100.0


def start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganx.commands.dirac", "serve", "port=0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("ganx-dirac serve: http"):
        proc.kill()
        sys.exit(f"bench_dirac: the server did not start: {line!r}")
    return proc, line.split()[2]


def timed_get(url: str) -> tuple[float, dict]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as response:
        body = json.loads(response.read())
    return (time.perf_counter() - started) * 1000, body


def in_process_ms(args, starts) -> tuple[list[float], list[float]]:
    """The same runs through :func:`ganx.dirac_explore.dirac_result` in this process: wall
    and CPU times (the CPU time is what the run costs on an idle core; the wall time on a
    loaded machine is larger by the share of the cores that other processes take)."""
    from hydra import compose, initialize_config_module

    from ganx.dirac_explore import dirac_result, dirac_settings

    times, cpu = [], []
    with initialize_config_module("ganx.conf", version_base="1.3"):
        defaults = compose("dirac_study")
        query = {"loss": args.loss, "reg": args.reg, "steps": str(args.steps)}
        dirac_result(dirac_settings({**query, "theta": "1", "psi": "1"}, defaults))  # warm up
        for theta, psi in starts:
            started, cpu_started = time.perf_counter(), time.process_time()
            dirac_result(dirac_settings({**query, "theta": theta, "psi": psi}, defaults))
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
    return times, cpu


def profile(args, lines: int) -> None:
    """cProfile of ``--repeats`` in-process requests: the ``lines`` functions of most
    cumulative time (the profiler's own cost inflates the many small calls of a step)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    in_process_ms(args, [("0.9", "1.1")] * args.repeats)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"ganx|autograd|json", lines)


def hand_loop(start, steps: int, lr: float, gamma: float | None, batch: int = 128):
    """ns (+ R1 of weight ``gamma``) on the Dirac-GAN, simultaneous plain gradient descent:
    the operations ganx's losses, penalty and step run, in their order, written out."""
    import torch
    import torch.nn.functional as F

    theta = torch.tensor([float(start[0])], requires_grad=True)
    psi = torch.tensor([float(start[1])], requires_grad=True)
    data = torch.zeros(batch, 1)  # the Dirac at 0
    points = [torch.cat([theta, psi]).detach()]
    for _ in range(steps):
        psi.requires_grad_(False)  # G's loss: D frozen
        g_loss = F.softplus(-(psi * theta.expand(batch, 1)).flatten()).mean()
        psi.requires_grad_(True)
        real = data.requires_grad_(gamma is not None)
        real_logits = (psi * real).flatten()
        fake_logits = (psi * theta.detach().expand(batch, 1)).flatten()
        d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        if gamma is not None:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            d_loss = d_loss + gamma * 1 * (0.5 * grad.flatten(1).pow(2).sum(1).mean())
        g_grad, d_grad = torch.autograd.grad((g_loss, d_loss), (theta, psi))
        with torch.no_grad():
            psi.add_(d_grad, alpha=-lr)
            theta.add_(g_grad, alpha=-lr)
            points.append(torch.cat([theta, psi]))
    return torch.stack(points)


def against_hand_loop(args, repeats: int = 7) -> tuple[list[float], list[float]] | None:
    """CPU times of ganx's step and the hand loop, alternating, from (1, 1); None where the hand
    loop has no counterpart (another loss or penalty, alternating updates)."""
    import torch
    from hydra import compose, initialize_config_module

    from ganx.dirac_run import descend, dirac_parts, read_plan
    from ganx.dirac_study import cell_config, study_config, study_regs
    from ganx.rng import seed_everything

    if args.loss != "ns" or args.reg not in ("none", "r1"):
        return None
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose("dirac_study", overrides=[f"steps={args.steps}"])
        run_cfg = cell_config(study_config("ns", study_regs(cfg), cfg), "ns", args.reg)
    if run_cfg.train.updates != "simultaneous":
        return None
    plan = read_plan(run_cfg)
    gamma = float(run_cfg.reg.r1.weight) if args.reg == "r1" else None
    ganx_ms, hand_ms = [], []
    for _ in range(repeats):
        seed_everything(run_cfg.seed)
        parts = dirac_parts(run_cfg)
        started = time.process_time()
        ours = descend(parts, plan, (1.0, 1.0))
        ganx_ms.append((time.process_time() - started) * 1000)
        started = time.process_time()
        hand = hand_loop((1.0, 1.0), plan.steps, plan.lr_d, gamma, run_cfg.train.batch_size)
        hand_ms.append((time.process_time() - started) * 1000)
        if not torch.equal(ours, hand):
            sys.exit("bench_dirac: the hand loop's trajectory is not ganx's")
    return ganx_ms, hand_ms


def summary(name: str, times: list[float]) -> str:
    p90 = sorted(times)[max(0, int(0.9 * len(times)) - 1)]
    return (
        f"{name:<24} median {statistics.median(times):7.1f} ms   min {min(times):7.1f} ms   "
        f"p90 {p90:7.1f} ms   (n={len(times)})"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", default="ns")
    parser.add_argument("--reg", default="r1")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--profile", type=int, default=0, metavar="LINES")
    args = parser.parse_args(argv)
    starts = [(f"{1 + 0.01 * i:.2f}", f"{1 - 0.01 * i:.2f}") for i in range(args.repeats)]
    load_before = os.getloadavg()[0]
    proc, url = start_server()
    try:
        base = f"{url}api/dirac?loss={args.loss}&reg={args.reg}&steps={args.steps}"
        first, body = timed_get(f"{base}&theta=1&psi=1")
        http = [timed_get(f"{base}&theta={t}&psi={p}")[0] for t, p in starts]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    direct, cpu = in_process_ms(args, starts)
    versus = against_hand_loop(args)
    load = os.getloadavg()[0]
    print(f"Dirac-GAN {args.loss} + {args.reg}, {args.steps} steps ({body['verdict']}); "
          f"load average {load_before:.2f} -> {load:.2f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'first request':<24} {first:7.1f} ms (composes, field, critical gamma)")
    print(summary("HTTP endpoint", http))
    print(summary("in process (no HTTP)", direct))
    print(summary("in process, CPU time", cpu))
    if versus:
        ganx_ms, hand_ms = versus
        print(summary("ganx's step, CPU time", ganx_ms))
        print(summary("hand loop, CPU time", hand_ms))
        ratio_hand = statistics.median(ganx_ms) / statistics.median(hand_ms)
        print(
            f"ganx's step / hand loop of the same operations = {ratio_hand:.2f} (same trajectory)"
        )
    median = statistics.median(http)
    ratio = median / TARGET_MS
    verdict = "meets" if ratio <= 1 else "misses"
    print(
        f"endpoint median {median:.1f} ms | target {TARGET_MS:.0f} ms | "
        f"endpoint median / target {TARGET_MS:.0f} ms = {ratio:.2f} ({verdict} the target)"
    )
    if args.profile:
        profile(args, args.profile)
    return {"first_ms": first, "http_ms": http, "direct_ms": direct, "cpu_ms": cpu, "ratio": ratio}


if __name__ == "__main__":
    main()
