"""What ganx's loop and start-up cost: ganx against minimal hand-written loops of the same nets,
losses, optimisers, data and batch, side by side in one invocation, one thread, with the medians
of the rounds and their ratios (``--before SRC`` times an older ganx source tree alongside).

    python scripts/bench_overhead.py                        # everything, 3 rounds
    python scripts/bench_overhead.py --parts steps --nets toy mlp --rounds 3
    python scripts/bench_overhead.py --parts startup sweep --before /tmp/old/src

- ``steps``: ganx-train itself (its console entry point, in a fresh process per run) on the
  ring8 toy MLP (``experiment=toy_ring8 'reg=[]' 'eval.metrics=[]' eval.objective=null``), the
  MLP GAN (``experiment=vanilla_gan_original``) and the default DCGAN + R1 (+ EMA); inside the
  same process the hand loop runs, on its own copy of the state, in blocks of ``log.every`` =
  50 steps that alternate with ganx's blocks, so both see the machine at the same moment (the
  2-core machine these numbers come from is shared). Per-step CPU time of the thread (robust
  under load) per block; per run, the median over the block pairs (every ganx block holds one
  log flush; a block with a checkpoint or sample grid is an outlier the median leaves out).
- ``startup``: a 1-step toy run (the whole process: Hydra, pre-flight, building, one step, the
  sample plot, the checkpoint) against a process that only imports torch, and against one that
  imports torch and builds an Adam optimiser (torch imports torch._dynamo there: every training
  script pays it); the default job's time to its first step likewise.
- ``sweep``: ``ganx-train -m experiment=toy_ring8 train.steps=200 'reg=[]' 'eval.metrics=[]'
  eval.objective=null seed=0,...,19``: the share of its wall time spent outside training steps.

Each hand loop trains the same thing: it starts from the state ganx builds (same seed), draws
the same batches in the same order, and its loss curve equals ganx's for the first steps
(``--check-curves``; tests/test_bench_scripts.py checks it on a few steps).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve()
NOT_TIMED = ["'eval.metrics=[]'", "eval.objective=null"]
NETS = {  # ganx-train overrides, G steps of a timed run
    "toy": (["experiment=toy_ring8", "'reg=[]'", *NOT_TIMED], 1501),
    "mlp": (["experiment=vanilla_gan_original", *NOT_TIMED], 501),
    "dcgan": (NOT_TIMED, 151),
}
COMMON = ["hardware=cpu", "hardware.threads=1", "log.progress=false"]
DEFAULT_JOB: list[str] = []  # ganx-train as it comes (plus COMMON)
BLOCK = 50  # log.every: one flush per block


# --- the hand-written loops ----------------------------------------------------------------------


def hand_toy(G, D, opt_g, opt_d, next_real, latent_dim, batch, steps, clock, ema=None, first=0):
    """ring8: alternating D then G steps, non-saturating loss, Adam; no penalty, no EMA."""
    import torch
    import torch.nn.functional as F

    for step in range(first, first + steps):
        clock(step)
        real = next_real()
        with torch.no_grad():
            fake = G(torch.randn(batch, latent_dim))
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        g_loss = F.softplus(-D(G(torch.randn(batch, latent_dim)))).mean()
        D.requires_grad_(True)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        clock.losses(d_loss, g_loss)
    clock(first + steps)


def hand_mlp(G, D, opt_g, opt_d, next_real, latent_dim, batch, steps, clock, ema=None, first=0):
    """PyTorch-GAN's gan.py order: G's step first on a fake batch, then D on a real batch and
    that same fake batch; D's loss halved."""
    import torch
    import torch.nn.functional as F

    for step in range(first, first + steps):
        clock(step)
        fake = G(torch.randn(batch, latent_dim))
        D.requires_grad_(False)
        g_loss = F.softplus(-D(fake)).mean()
        D.requires_grad_(True)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        real = next_real()
        d_loss = 0.5 * (F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean())
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        clock.losses(d_loss, g_loss)
    clock(first + steps)


def hand_dcgan(G, D, opt_g, opt_d, next_real, latent_dim, batch, steps, clock, ema=None, first=0):
    """The default: alternating steps, non-saturating loss, R1 (weight 10) on every D step,
    the EMA of G (0.999, warmed up as min(0.999, (1 + t) / (10 + t)))."""
    import torch
    import torch.nn.functional as F

    for step in range(first, first + steps):
        clock(step)
        real = next_real().requires_grad_(True)
        with torch.no_grad():
            fake = G(torch.randn(batch, latent_dim))
        real_logits, fake_logits = D(real), D(fake)
        d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        r1 = 0.5 * grad.flatten(1).pow(2).sum(1).mean()
        opt_d.zero_grad()
        (d_loss + 10.0 * r1).backward()
        opt_d.step()
        D.requires_grad_(False)
        g_loss = F.softplus(-D(G(torch.randn(batch, latent_dim)))).mean()
        D.requires_grad_(True)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        with torch.no_grad():
            decay = min(0.999, (1.0 + step) / (10.0 + step))
            for p_ema, p in zip(ema.parameters(), G.parameters(), strict=True):
                p_ema.lerp_(p, 1.0 - decay)
            for b_ema, b in zip(ema.buffers(), G.buffers(), strict=True):
                b_ema.copy_(b)
        clock.losses(d_loss, g_loss)
    clock(first + steps)


HAND_LOOPS = {"toy": hand_toy, "mlp": hand_mlp, "dcgan": hand_dcgan}


def real_batches(images, batch: int, seed: int):
    """Batches in ganx's data order: one permutation per epoch from (seed, epoch), drop_last."""
    from ganx.data import epoch_order

    def batches():
        epoch = 0
        while True:
            order = epoch_order(len(images), seed, epoch)
            for start in range(0, len(images) - batch + 1, batch):
                yield images[order[start : start + batch]]
            epoch += 1

    return batches().__next__


# --- the child processes -------------------------------------------------------------------------


class Clock:
    """The start time of every step (and after the last), and the losses when asked."""

    def __init__(self, keep_losses: bool = False):
        self.starts: list[float] = []
        self.cpu: list[float] = []  # this thread's CPU time at each start: robust under load
        self.ends: list[float] = []  # ganx's steps: the end of the training step itself
        self.pairs: list = []  # with --interleave: (ganx, hand) CPU s per step, per block pair
        self.curve: list[tuple[float, float]] | None = [] if keep_losses else None

    def __call__(self, step: int) -> None:
        self.starts.append(time.time())
        self.cpu.append(time.thread_time())

    def losses(self, d_loss, g_loss) -> None:
        if self.curve is not None:
            self.curve.append((d_loss.item(), g_loss.item()))


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("ganx.conf", version_base="1.3"):
        return hydra_compose("config", overrides=[o.strip("'") for o in overrides])


def hand_runner(net: str, cfg):
    """``run(steps, first, clock)``: the hand loop on its own copy of the state ganx builds from
    the same config and seed, continuing where the last call stopped."""
    import torch

    from ganx.collectives import Ranks
    from ganx.state import TrainingState

    state = TrainingState.create(cfg, Ranks(), torch.device("cpu"), None)
    parts = state.parts
    ema = copy.deepcopy(parts.generator).eval().requires_grad_(False) if state.ema else None
    next_real = real_batches(parts.stream.images, cfg.train.batch_size, cfg.seed)
    args = (parts.generator, parts.discriminator, parts.opt_g, parts.opt_d, next_real)

    def run(steps: int, first: int, clock) -> None:
        size = (cfg.model.latent_dim, cfg.train.batch_size)
        HAND_LOOPS[net](*args, *size, steps, clock, ema, first)

    return run


def child_hand(net: str, overrides: list[str], steps: int, clock: Clock) -> None:
    import torch

    torch.set_num_threads(1)
    hand_runner(net, compose(overrides))(steps, 0, clock)


class Interleaved:
    """Blocks of BLOCK hand-loop steps run inside ganx-train's process between ganx's blocks
    (before ganx's steps 50, 100, ...), on the hand loop's own copy of the state: both see the
    same machine at nearly the same moment. Records each block's CPU time, ganx's without the
    hand block inside it. (The hand loop draws from the same global RNG, so ganx's run is not
    the one it would be alone; its cost is.)"""

    def __init__(self, net: str):
        self.net, self.run = net, None
        self.hand_cpu = 0.0
        self.marks: list[float] = []  # ganx's CPU time at each block boundary
        self.hand: list[float] = []

    def at(self, state) -> None:
        if self.run is None:
            self.run = hand_runner(self.net, state.cfg)
        if state.step % BLOCK or not state.step:
            return
        started = time.thread_time()
        self.marks.append(started - self.hand_cpu)
        self.run(BLOCK, state.step - BLOCK, Clock())  # a clock, as ganx's steps have
        spent = time.thread_time() - started
        self.hand.append(spent)
        self.hand_cpu += spent

    def pairs(self) -> list[tuple[float, float]]:
        """(ganx, hand) CPU seconds per step of each pair of blocks (ganx's first block, steps
        0-49, and the hand loop's first are warm-up; ganx's last step, with the run's final
        outputs, comes after the last boundary)."""
        ganx = [(b - a) / BLOCK for a, b in zip(self.marks, self.marks[1:], strict=False)]
        # ganx's block j, then the hand block run right after it (the hand's first: warm-up)
        return list(zip(ganx, [h / BLOCK for h in self.hand[1:]], strict=False))


def child_ganx(
    overrides: list[str], clock: Clock, stop_after_first: bool, paired: Interleaved | None = None
) -> None:
    """ganx-train itself (its console entry point), with a clock on each training step (and
    the hand loop's blocks in between, with ``paired``)."""
    import ganx.loop
    from ganx.train import main

    iterate = ganx.loop.iterate

    def timed_iterate(state, *args):
        if paired is not None:
            paired.at(state)
        clock(state.step)
        if stop_after_first:
            write_child_result(clock)
            os._exit(0)
        terms = iterate(state, *args)
        clock.ends.append(time.time())
        return terms

    ganx.loop.iterate = timed_iterate
    flags = [o for o in overrides if o == "-m"]  # Hydra's parser wants flags first
    sys.argv = ["ganx-train", *flags, *(o.strip("'") for o in overrides if o != "-m")]
    try:
        main()
    finally:
        clock(-1)  # the end of the last step's outputs


def write_child_result(clock: Clock) -> None:
    record = {"starts": clock.starts, "cpu": clock.cpu, "ends": clock.ends, "curve": clock.curve}
    record["cpu_process"] = time.process_time()  # this process's CPU time so far
    record["pairs"] = clock.pairs
    Path(os.environ["BENCH_RESULT"]).write_text(json.dumps(record))


def child(args) -> None:
    clock = Clock(keep_losses=args.curve)
    overrides = [*(DEFAULT_JOB if args.net == "default" else NETS[args.net][0]), *COMMON]
    overrides += args.overrides
    try:
        if args.kind == "hand":
            child_hand(args.net, overrides, args.steps, clock)
        else:
            paired = Interleaved(args.net) if args.interleave else None
            steps = [*overrides, f"train.steps={args.steps}"]
            try:
                child_ganx(steps, clock, args.first_step_only, paired)
            finally:
                clock.pairs = paired.pairs() if paired else []
    finally:
        write_child_result(clock)


def run_child(
    kind: str, net: str, steps: int, extra: list[str], first_only=False, interleave=False
) -> dict:
    """A fresh process; returns its wall and CPU time (user + system, of the process and its
    children: robust on a loaded machine) and its clock, times relative to its start. ``kind``
    ``before`` is ganx from the ``--before`` source tree (``BENCH_BEFORE``)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = ["--child", "hand" if kind == "hand" else "ganx", "--net", net, "--steps", str(steps)]
        cmd += ["--first-step-only"] * first_only + ["--interleave"] * interleave
        cmd += ["--overrides", *extra]
        if "-m" not in extra:
            cmd.append(f"hydra.run.dir={tmp}/run")
        env = dict(os.environ, BENCH_RESULT=str(result))
        if kind == "before":
            env["PYTHONPATH"] = os.environ["BENCH_BEFORE"]
        launched = time.time()
        wall, cpu = process_time([sys.executable, str(SCRIPT), *cmd], env, cwd=tmp)
        clock = json.loads(result.read_text())
    return dict(clock, wall=wall, cpu_total=cpu, launched=launched)


def process_time(cmd: list[str], env=None, cwd=None) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one process run to its end."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=cwd)
    wall, after = time.time() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def kinds(before: bool) -> list[str]:
    return ["ganx", "before", "hand"] if before else ["ganx", "hand"]


# --- the measurements ----------------------------------------------------------------------------


def measure_steps(nets: list[str], rounds: int, before: bool) -> None:
    print(
        "per-step CPU time in ms, ganx-train against the hand loop run in blocks of 50 steps "
        "inside the same process, alternating with ganx's blocks (one thread); per run the "
        "median over block pairs; ratios: the median of the runs' ratios, the runs in brackets"
    )
    for net in nets:
        steps = NETS[net][1]
        rows = {kind: [] for kind in kinds(before)[:-1]}
        for _ in range(rounds):
            for kind in rows:
                run = run_child(kind, net, steps, [], interleave=True)
                run["ganx_step"] = statistics.median(g for g, _ in run["pairs"])
                run["hand_step"] = statistics.median(h for _, h in run["pairs"])
                run["ratio"] = statistics.median(g / h for g, h in run["pairs"])
                rows[kind].append(run)
        print(f"  {net} ({steps} steps, {len(run['pairs'])} block pairs per run)")
        for kind, runs in rows.items():
            ratios = [r["ratio"] for r in runs]
            g = statistics.median(r["ganx_step"] for r in runs)
            h = statistics.median(r["hand_step"] for r in runs)
            print(
                f"    {kind:6s}: {1000 * g:8.3f} ms/step, hand loop {1000 * h:8.3f}: ratio "
                f"{statistics.median(ratios):.3f} ({', '.join(f'{r:.3f}' for r in ratios)}); "
                f"whole process {statistics.median(r['wall'] for r in runs):.1f} s wall",
                flush=True,
            )


def measure_startup(rounds: int, before: bool) -> None:
    """Whole processes: import torch; import torch and build an Adam optimiser (torch imports
    torch._dynamo there); a 1-step toy run; the default job up to its first step."""
    adam = "import torch; torch.optim.Adam([torch.zeros(1, requires_grad=True)])"
    rows: dict[str, list] = {}
    for _ in range(rounds):
        for name, code in (("import torch", "import torch"), ("torch + Adam", adam)):
            wall, cpu = process_time([sys.executable, "-c", code])
            rows.setdefault(name, []).append({"wall": wall, "cpu": cpu})
        for kind in kinds(before)[:-1]:
            run = run_child(kind, "toy", 1, [])
            rows.setdefault(f"{kind}: 1-step toy run", []).append(
                {"wall": run["wall"], "cpu": run["cpu_total"]}
            )
            run = run_child(kind, "default", 2, [], first_only=True)
            first = {"wall": run["starts"][0] - run["launched"], "cpu": run["cpu_process"]}
            rows.setdefault(f"{kind}: default job to its first step", []).append(first)
    print(
        "start-up in s (whole processes, one thread, alternating; medians of the rounds); "
        "beyond import torch, and beyond torch + Adam (torch.optim imports torch._dynamo)"
    )
    base = {k: statistics.median(r[k] for r in rows["import torch"]) for k in ("cpu", "wall")}
    optim = statistics.median(r["cpu"] for r in rows["torch + Adam"])
    for name, runs in rows.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("cpu", "wall")}
        print(
            f"  {name:40s} CPU {med['cpu']:6.2f} ({med['cpu'] - base['cpu']:+.2f} over import "
            f"torch, {med['cpu'] - optim:+.2f} over torch + Adam), wall {med['wall']:6.2f} "
            f"({med['wall'] - base['wall']:+.2f})",
            flush=True,
        )


def measure_sweep(jobs: int, steps: int, before: bool) -> None:
    """One multirun of ``jobs`` toy runs; the training steps' time is the sum of every step's
    own time (``ganx.loop.iterate``: the D and G steps, the EMA, the learning rates)."""
    seeds = ",".join(str(s) for s in range(jobs))
    for kind in kinds(before)[:-1]:
        run = run_child(kind, "toy", steps, ["-m", f"seed={seeds}"])
        training = sum(e - s for s, e in zip(run["starts"], run["ends"], strict=False))
        # before the first step: the process's start-up and the pre-flight of every job
        first = run["starts"][0] - run["launched"]
        after = run["wall"] - first
        print(
            f"sweep ({kind}) of {jobs} toy runs of {steps} steps: {run['wall']:.1f} s wall, "
            f"training steps {training:.1f} s: {100 * (1 - training / run['wall']):.1f}% of the "
            f"wall time outside training steps; {first:.1f} s before the first step (start-up, "
            f"every job's pre-flight), after it {100 * (1 - training / after):.1f}% outside "
            "training steps",
            flush=True,
        )


def check_curves(
    net: str, steps: int, overrides: list[str] = (), hand_overrides: list[str] = ()
) -> tuple[list, list]:
    """ganx's per-step losses (log.every=1) and the hand loop's, from the same seed (unless
    ``hand_overrides`` changes it)."""
    with tempfile.TemporaryDirectory() as tmp:
        over = [*NETS[net][0], *COMMON, *overrides, "log.every=1", f"train.steps={steps}"]
        from ganx.loop import train

        train(compose(over), Path(tmp))
        lines = [json.loads(x) for x in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
        ganx_curve = [(r["loss/D"], r["loss/G"]) for r in lines if "loss/D" in r]
    clock = Clock(keep_losses=True)
    hand = [*NETS[net][0], *COMMON, *overrides, *hand_overrides, f"train.steps={steps}"]
    child_hand(net, hand, steps, clock)
    return ganx_curve, clock.curve


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["steps", "startup", "sweep"])
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep-jobs", type=int, default=20)
    parser.add_argument(
        "--before", metavar="SRC", help="also time ganx from this source tree (its src/ dir)"
    )
    parser.add_argument("--check-curves", type=int, default=0, metavar="STEPS")
    parser.add_argument("--child", dest="kind", choices=["ganx", "hand"])
    parser.add_argument("--net", choices=[*NETS, "default"])
    parser.add_argument("--steps", type=int)
    parser.add_argument("--first-step-only", action="store_true")
    parser.add_argument("--interleave", action="store_true")
    parser.add_argument("--curve", action="store_true")
    parser.add_argument("--overrides", nargs=argparse.REMAINDER, default=[])
    args = parser.parse_args(argv)
    if args.kind:
        return child(args)
    if args.check_curves:
        for net in args.nets:
            ganx_curve, hand_curve = check_curves(net, args.check_curves)
            verdict = "equal" if ganx_curve == hand_curve else "DIFFER"
            print(f"{net}: the first {args.check_curves} steps' losses {verdict}")
        return None
    if args.before:
        os.environ["BENCH_BEFORE"] = str(Path(args.before).resolve())
    if "steps" in args.parts:
        measure_steps(args.nets, args.rounds, bool(args.before))
    if "startup" in args.parts:
        measure_startup(args.rounds, bool(args.before))
    if "sweep" in args.parts:
        measure_sweep(args.sweep_jobs, 200, bool(args.before))
    return None


if __name__ == "__main__":
    main()
