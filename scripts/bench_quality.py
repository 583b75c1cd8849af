"""Quality benchmark: train configurations x seeds with ganx's own loop and score them at fixed
steps (Inception-FID/KID with the offline weights, the MNIST-net FID and class coverage).

Each (configuration, seed) is one ordinary ganx run (``ganx.loop.train``) with evaluations at
the listed steps (``eval.at``); its metrics.jsonl is the record. A run that is already finished
is not retrained and an interrupted one continues from its checkpoint (``resume=auto``), so the
same command can be repeated. Writes, under --out:

    quality.md    mean ± std over seeds per configuration and step (markdown)
    quality.csv   one row per run and step
    <metric>.png  the metric against steps, one curve per configuration (ganx-report's plot)
    runs/<name>/seed=<s>/   the runs themselves (checkpoints, samples, tensorboard)

The issue's protocol (5k generated vs the 5k real images, one GPU):

    python scripts/bench_quality.py --out quality --steps 1000 5000 10000 20000 \\
        --configs "default:" "mlp:model=mlp" "mlp_r1:model=mlp reg=r1"

A configuration is ``NAME:OVERRIDES`` (space-separated ganx-train overrides; NAME may be left
out). On a CPU, drop the Inception metrics (``--metrics fid_mnist classes_mnist``; Inception
costs ~0.4 s per image here) or use ``--num-samples 1000``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

DEFAULT_CONFIGS = ["default:", "mlp:model=mlp", "mlp_r1:model=mlp reg=r1"]
DEFAULT_METRICS = ["fid_inception", "kid_inception", "fid_mnist", "classes_mnist"]


def parse_config(text: str) -> tuple[str, list[str]]:
    name, sep, rest = text.partition(":")
    if not sep or "=" in name:  # no name given: the overrides name the configuration
        overrides = text.split()
        return (",".join(overrides) or "default"), overrides
    return name.strip() or "default", rest.split()


def compose_run(overrides: list[str], args, seed: int):
    """The config of one run: the user's overrides plus the benchmark's protocol."""
    from hydra import compose, initialize_config_module
    from omegaconf import open_dict

    steps = sorted(args.steps)
    protocol = [
        f"seed={seed}",
        f"train.steps={steps[-1]}",
        f"eval.at=[{','.join(map(str, steps))}]",
        f"eval.every={steps[-1]}",
        f"eval.metrics=[{','.join(args.metrics)}]",
        f"eval.num_samples={args.num_samples}",
        f"metrics.kid_subset_size={min(1000, args.num_samples)}",
        f"ckpt.every={steps[-1]}",  # eval.at keeps a copy at each step besides
        f"ckpt.keep={len(steps)}",
        "resume=auto",
        "log.progress=false",
        f"hardware={args.hardware}",
    ]
    if args.inception_weights:
        protocol.append(f"metrics.inception_weights={args.inception_weights}")
    if args.cache_dir:
        protocol.append(f"metrics.cache_dir={args.cache_dir}")
    if args.threads:
        protocol.append(f"hardware.threads={args.threads}")
    with initialize_config_module("ganx.conf", version_base="1.3"):
        cfg = compose("config", overrides=protocol + overrides)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def run_dir_of(out: Path, name: str, seed: int) -> Path:
    return out / "runs" / name / f"seed={seed}"


def is_finished(run_dir: Path, steps: int) -> bool:
    status = run_dir / "status.json"
    if not status.is_file():
        return False
    record = json.loads(status.read_text())
    return record.get("status") == "finished" and record.get("step") == steps


def train_one(job: tuple) -> tuple[str, str]:
    """One run (in this process, or a spawned worker: no state shared with the others);
    returns a line for the log and the run's status."""
    name, overrides, seed, args = job
    import torch

    from ganx.loop import train

    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir = run_dir_of(args.out, name, seed)
    if is_finished(run_dir, max(args.steps)):
        return f"{name} seed={seed}: already finished", "finished"
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = compose_run(overrides, args, seed)
    try:
        result = train(cfg, run_dir)
    except Exception as err:  # one failed run must not end the study; the table shows the gap
        return f"{name} seed={seed}: FAILED: {type(err).__name__}: {err}", "failed"
    return f"{name} seed={seed}: {result['status']} at step {result['step']}", result["status"]


class StopOnSignal:
    """In the parent of worker processes: SIGINT/SIGTERM reach the workers too (one process
    group), and each saves its checkpoint; the parent only notes the signal, so that no
    queued run starts after it."""

    def __enter__(self):
        self.signal = None
        self.previous = {s: signal.signal(s, self.note) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def note(self, signum, frame):
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def train_all(jobs: list[tuple], processes: int, threads: int | None) -> bool:
    """Train the jobs, ``processes`` at a time. A signal interrupts the runs in progress (each
    saves its checkpoint) and starts no later run: returns False then."""
    if processes == 1:
        for job in jobs:
            message, status = train_one(job)
            print(message, flush=True)
            if status == "interrupted":
                return False
        return True
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or 1))
    with StopOnSignal() as stop, ProcessPoolExecutor(processes, get_context("spawn")) as pool:
        futures = [pool.submit(train_one, job) for job in jobs]
        stopped = False
        for future in futures:
            if future.cancelled():
                continue
            message, status = future.result()
            print(message, flush=True)
            if status == "interrupted" or stop.signal:
                stopped = True
                for later in futures:
                    later.cancel()  # queued runs never start; running ones checkpoint
    return not stopped


def metric_values(record: dict) -> dict:
    """The evaluation results in a metrics.jsonl record (everything but the logged losses,
    as ganx-report reads it)."""
    from ganx.commands.report import LOSS_PREFIXES

    return {k: v for k, v in record.items() if not k.startswith(LOSS_PREFIXES)}


def read_evaluations(run_dir: Path, steps: list[int]) -> dict[int, dict]:
    """The evaluation records of a run at the benchmark's steps (latest record per step: a
    resumed run may have logged a step twice)."""
    rows: dict[int, dict] = {}
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["step"] in steps and metric_values(record):
            rows[record["step"]] = record
    return rows


def summarize(configs, args) -> tuple[list[dict], list[str], list]:
    """Rows per run and step, the metric keys, and report Jobs for the plots."""
    from ganx.commands.report import Job

    steps = sorted(args.steps)
    rows, keys, jobs = [], [], []
    for name, _ in configs:
        for seed in args.seeds:
            run_dir = run_dir_of(args.out, name, seed)
            evaluations = read_evaluations(run_dir, steps)
            status_file = run_dir / "status.json"
            status = json.loads(status_file.read_text())["status"] if status_file.is_file() else "-"
            history = []
            for step in steps:
                record = evaluations.get(step)
                if record is None:
                    continue
                metrics = metric_values(record)
                keys += [k for k in metrics if k not in keys]
                rows.append({"config": name, "seed": seed, "step": step, **metrics})
                history.append({"step": step, **metrics})
            jobs.append(Job(run_dir, name, str(seed), status, history))
    return rows, keys, jobs


def write_outputs(configs, args) -> Path:
    from ganx.commands.report import fmt, markdown_table, mean_std, plot

    rows, keys, jobs = summarize(configs, args)
    out = args.out
    with open(out / "quality.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["config", "seed", "step", *keys])
        writer.writeheader()
        writer.writerows(rows)
    table = []
    for name, overrides in configs:
        for step in sorted(args.steps):
            group = [r for r in rows if r["config"] == name and r["step"] == step]
            if not group:
                continue
            cells = [fmt(mean_std([r.get(k) for r in group])) for k in keys]
            table.append([name, " ".join(overrides) or "(defaults)", step, len(group), *cells])
    header = (
        f"Mean ± std over seeds {','.join(map(str, args.seeds))}; "
        f"{args.num_samples} generated images vs the same number of real ones; "
        f"command: `python scripts/bench_quality.py {shlex.join(sys.argv[1:])}`\n\n"
    )
    lines = markdown_table(["config", "overrides", "step", "seeds", *keys], table)
    (out / "quality.md").write_text(header + "\n".join(lines) + "\n")
    plot(jobs, [k for k in keys if k.startswith(("fid", "classes"))], out)
    return out / "quality.md"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", nargs="+", type=int, default=[1000, 5000, 10000, 20000])
    parser.add_argument("--metrics", nargs="+", default=DEFAULT_METRICS)
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path("quality"))
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run")
    parser.add_argument("--hardware", default="auto")
    parser.add_argument("--inception-weights", default=None)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--report-only", action="store_true", help="only rewrite the tables")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()

    if any(s <= 0 for s in args.steps):
        parser.error(f"--steps {args.steps}: every step must be a positive integer")
    if args.num_samples <= 0 or args.jobs <= 0:
        parser.error("--num-samples and --jobs must be positive integers")
    configs = [parse_config(c) for c in args.configs]
    names = [n for n, _ in configs]
    if len(set(names)) != len(names):
        parser.error(f"--configs: names must differ, got {names}")

    # every configuration is composed and validated before anything trains
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ganx.errors import ConfigError
    from ganx.validate import validate

    for name, overrides in configs:
        try:
            validate(compose_run(overrides, args, args.seeds[0]))
        except (ConfigError, HydraException, OmegaConfBaseException) as err:
            parser.error(f"configuration {name!r} ({' '.join(overrides)}): {err}")

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        jobs = [(name, overrides, seed, args) for name, overrides in configs for seed in args.seeds]
        if not train_all(jobs, args.jobs, args.threads):
            write_outputs(configs, args)
            print(
                "bench_quality: stopped by a signal: the interrupted runs saved their checkpoints "
                "and no later run was started; the same command continues",
                file=sys.stderr,
            )
            sys.exit(130)
    table = write_outputs(configs, args)
    print(table.read_text())


if __name__ == "__main__":
    main()
