"""``ganx-report SWEEP_DIR``: which setting won a sweep.

Reads every job under SWEEP_DIR (a folder holding ``.hydra/overrides.yaml``, or one that
``jobs.jsonl`` says the sweep planned: a job that never ran is listed as such): its overrides
(the setting = all overrides but ``seed``), ``metrics.jsonl`` and ``status.json``. Writes
``report.md`` and ``report.csv`` (one row per setting: seeds, mean and std over seeds of each
metric's final and best value, steps, wall time, how many runs diverged, the setting's last
sample grid) and one PNG per metric and per training loss (against steps, one curve per
setting, a band of one std over seeds when there are several). Runs that
failed, diverged or are still running are listed as such, not dropped.

    ganx-report multirun/2026-11-23/10-00-00            # files go into the sweep dir
    ganx-report multirun/... --out report/
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..metrics.keys import lower_is_better
from ..sweeps import jobs_summary, planned_jobs

LOSS_PREFIXES = (
    "loss/",
    "reg/",
    "aux/",
    "D/",
    "grad_norm/",
    "speed/",
    "time_s",
    "step",
    "skipped_steps",
)


@dataclass
class Job:
    path: Path
    setting: str
    seed: str
    status: str
    history: list[dict] = field(default_factory=list)
    wall_time_s: float | None = None
    error: str | None = None

    def metric_keys(self) -> list[str]:
        keys = []
        for record in self.history:
            for key in record:
                if not key.startswith(LOSS_PREFIXES) and key not in keys:
                    keys.append(key)
        return keys

    def series(self, key: str) -> list[tuple[int, float]]:
        return [
            (r["step"], r[key])
            for r in self.history
            if r.get(key) is not None and math.isfinite(r[key])
        ]

    @property
    def steps(self) -> int:
        return self.history[-1]["step"] if self.history else 0


def job_overrides(job_dir: Path, planned: dict | None = None) -> tuple[str, list[str]]:
    """(seed, the other overrides that can define a setting): from the job's
    ``.hydra/overrides.yaml``, or from the sweep's plan for a job that never ran."""
    record = job_dir / ".hydra" / "overrides.yaml"
    if record.exists():
        overrides = yaml.safe_load(record.read_text()) or []
    else:
        overrides = (planned or {}).get(job_dir, [])
    seed, parts = "0", []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.lstrip("+~") == "seed":
            seed = value
        elif not key.startswith(("hydra", "resume", "log.progress", "start_over")):
            parts.append(item)
    return seed, parts


def read_job(job_dir: Path, constant: set[str], planned: dict | None = None) -> Job:
    """``constant``: overrides every job shares; the setting names only what varies."""
    seed, parts = job_overrides(job_dir, planned)
    setting = ",".join(sorted(p for p in parts if p not in constant)) or "default"
    history = []
    metrics = job_dir / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                history.append({k: (float("nan") if v is None else v) for k, v in record.items()})
    status_file = job_dir / "status.json"
    if status_file.exists():
        status = json.loads(status_file.read_text())
        state = status.get("status", "unknown")
        if state == "running":
            state = "running or crashed"
        return Job(
            job_dir, setting, seed, state, history, status.get("wall_time_s"), status.get("error")
        )
    if not (job_dir / ".hydra").exists():
        return Job(job_dir, setting, seed, "never ran", history)
    return Job(job_dir, setting, seed, "failed before training", history)


def find_jobs(sweep_dir: Path) -> list[Job]:
    """The jobs of a sweep dir; a previous run moved aside by ``start_over=true``
    (``<dir>.old-<time>``) belongs to no job of the current sweep and is skipped."""
    planned = planned_jobs(sweep_dir)
    found = {p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")}
    dirs = sorted(
        d
        for d in found | set(planned)
        if not any(".old-" in part for part in d.relative_to(sweep_dir).parts)
    )
    shared = [set(job_overrides(d, planned)[1]) for d in dirs]
    constant = set.intersection(*shared) if len(shared) > 1 else set()
    return [read_job(d, constant, planned) for d in dirs]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std; the std of a single value is undefined (NaN), not 0."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


def last_grid(group: list[Job]) -> str:
    """The last sample grid of the setting's first seed that wrote one (a path, or "")."""
    for job in group:
        grids = sorted((job.path / "samples").glob("step_*.png"))
        if grids:
            return str(grids[-1])
    return ""


def loss_keys(jobs: list[Job]) -> list[str]:
    """The logged training losses (``loss/D``, ``loss/G``, ``aux/...``) seen in any job."""
    keys: list[str] = []
    for job in jobs:
        for record in job.history:
            keys += [k for k in record if k.startswith(("loss/", "aux/")) and k not in keys]
    return keys


def summarize(jobs: list[Job]) -> tuple[list[dict], list[str]]:
    """One row per setting; returns the rows and the metric keys seen."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job.metric_keys() if k not in keys]
    rows = []
    for setting in dict.fromkeys(j.setting for j in jobs):
        group = [j for j in jobs if j.setting == setting]
        done = [j for j in group if j.status == "finished"]
        row = {
            "setting": setting,
            "seeds": ",".join(j.seed for j in group),
            "finished": len(done),
            "diverged": sum(j.status == "diverged" for j in group),
            "other": ",".join(
                f"seed={j.seed}:{j.status}"
                for j in group
                if j.status not in ("finished", "diverged")
            ),
            "steps": max((j.steps for j in group), default=0),
            "wall_time_s": mean_std([j.wall_time_s for j in group if j.wall_time_s])[0],
            "samples": last_grid(group),
        }
        for key in keys:
            finals, bests = [], []
            for job in done:
                series = job.series(key)
                if series:
                    values = [v for _, v in series]
                    finals.append(values[-1])
                    bests.append(min(values) if lower_is_better(key) else max(values))
            row[f"{key} final"] = mean_std(finals)
            row[f"{key} best"] = mean_std(bests)
        rows.append(row)
    return rows, keys


def markdown_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def fmt(value) -> str:
    if isinstance(value, tuple):
        mean, std = value
        if math.isnan(mean):
            return "-"
        return f"{mean:.4g}" if math.isnan(std) else f"{mean:.4g} ± {std:.2g}"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def write_tables(rows: list[dict], out: Path) -> None:
    columns = list(rows[0])
    with open(out / "report.csv", "w", newline="") as f:
        writer = csv.writer(f)
        header = []
        for c in columns:
            header += [f"{c} mean", f"{c} std"] if isinstance(rows[0][c], tuple) else [c]
        writer.writerow(header)
        for row in rows:
            line = []
            for c in columns:
                value = row[c]
                line += [f"{x:.6g}" for x in value] if isinstance(value, tuple) else [value]
            writer.writerow(line)
    lines = markdown_table(columns, [[cell(c, row[c], out) for c in columns] for row in rows])
    note = (
        "Mean ± std over the finished seeds (a single seed shows its value alone); best = "
        "lowest for fid/kid/KL metrics, highest otherwise; samples = the last grid of the "
        "setting's first seed.\n\n"
    )
    (out / "report.md").write_text(note + "\n".join(lines) + "\n" + plots_section(out))


def cell(column: str, value, out: Path) -> str:
    if column == "samples" and value:
        return f"![samples]({relative(Path(value), out)})"
    return fmt(value)


def relative(path: Path, out: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), out.resolve())


def plots_section(out: Path) -> str:
    """Links to the plots written next to the report (losses first)."""
    plots = sorted(out.glob("*.png"), key=lambda p: (not p.name.startswith(("loss_", "aux_")), p))
    if not plots:
        return ""
    return "\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plots) + "\n"


def plot(jobs: list[Job], keys: list[str], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for key in keys:
        fig, ax = plt.subplots(figsize=(6, 4))
        for setting in dict.fromkeys(j.setting for j in jobs):
            curves = [dict(j.series(key)) for j in jobs if j.setting == setting]
            curves = [c for c in curves if c]
            if not curves:
                continue
            steps = sorted(set().union(*curves))
            stats = [mean_std([c.get(s, float("nan")) for c in curves]) for s in steps]
            means = [m for m, _ in stats]
            stds = [s for _, s in stats]
            ax.plot(steps, means, label=setting)
            if len(curves) > 1:
                ax.fill_between(
                    steps,
                    [m - s for m, s in zip(means, stds, strict=True)],
                    [m + s for m, s in zip(means, stds, strict=True)],
                    alpha=0.2,
                )
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        if key.startswith(("fid", "kid")) and all(
            v > 0 for j in jobs for _, v in j.series(key)
        ):  # early FIDs are 10-100x the late ones: a log axis keeps the late ranking visible
            ax.set_yscale("log")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{key.replace('/', '_')}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    from .ganx import argparse_tool

    why = "it reads a folder, not a training config"
    parser = argparse_tool("ganx-report", __doc__, why, argv)
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (or one run dir)")
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep dir)")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"{args.sweep_dir} is not a directory")
    jobs = find_jobs(args.sweep_dir)
    if not jobs:
        parser.error(f"no jobs under {args.sweep_dir} (no .hydra/overrides.yaml, no jobs.jsonl)")
    out = args.out or args.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    rows, keys = summarize(jobs)
    plots = plot(jobs, loss_keys(jobs) + keys, out)
    write_tables(rows, out)
    print((out / "report.md").read_text())
    lines, _ = jobs_summary([(f"{j.path}", j.status, j.error) for j in jobs])
    print("\n".join(lines))
    print(
        f"{len(jobs)} jobs, {len(rows)} settings -> {out / 'report.md'}, {out / 'report.csv'}, "
        f"{len(plots)} plots"
    )


if __name__ == "__main__":
    main()
