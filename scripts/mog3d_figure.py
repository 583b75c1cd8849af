"""3-D scatter plots of the generated samples over training, one row per run and one column per
kept checkpoint (as the figures of Roth et al.'s 3DGAN/3DGAN.py), plus a table of the mode
metrics, for a sweep of ``experiment=roth_3dgan``:

    python scripts/mog3d_figure.py SWEEP_DIR --out docs/mog3d_samples.png

SWEEP_DIR holds ``<setting>/seed=<s>/checkpoints/step_*.pt`` and ``metrics.jsonl`` per run (what
``ganx-train -m experiment=roth_3dgan eval.at=[...]`` writes). The samples are the very ones the
evaluation scored (``ganx.loop.sample_for_eval``: noise seeded by the run's seed and the step).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ganx.api import load_generator  # noqa: E402
from ganx.data import mog3d_frame  # noqa: E402
from ganx.metrics.evaluation import sample_for_eval  # noqa: E402
from ganx.plots import draw_3d  # noqa: E402

METRICS = ("modes_mog3d", "high_quality_mog3d", "plane_distance_mog3d")


def runs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.glob("*/seed=*/metrics.jsonl"))


def final_metrics(run: Path) -> dict:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    scored = [r for r in rows if METRICS[0] in r]
    return scored[-1] if scored else {}


def draw(sweep: Path, out: Path, n: int) -> None:
    all_runs = runs(sweep)
    steps = sorted({p.name for r in all_runs for p in (r / "checkpoints").glob("step_*.pt")})
    fig = plt.figure(figsize=(2.2 * len(steps), 2.2 * len(all_runs)))
    for i, run in enumerate(all_runs):
        for j, name in enumerate(steps):
            path = run / "checkpoints" / name
            if not path.exists():
                continue
            loaded = load_generator(str(path), False, "cpu")
            cfg, generator, step = loaded.config, loaded.module, loaded.step
            points = sample_for_eval(generator, cfg, step, torch.device("cpu"), n=n).numpy()
            ax = fig.add_subplot(len(all_runs), len(steps), i * len(steps) + j + 1, projection="3d")
            label = f"{run.parent.name} {run.name}" if j == 0 else ""
            draw_3d(ax, points, mog3d_frame()["centres"].numpy(), f"{label} step {step}".strip())
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)


def table(sweep: Path) -> str:
    lines = ["| run | step | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 2) + "|"]
    for run in runs(sweep):
        m = final_metrics(run)
        values = " | ".join(f"{m.get(k, float('nan')):.4g}" for k in METRICS)
        lines.append(f"| {run.parent.name} {run.name} | {m.get('step', '-')} | {values} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--out", type=Path, default=Path("mog3d_samples.png"))
    parser.add_argument("-n", type=int, default=2000, help="points per panel")
    args = parser.parse_args()
    draw(args.sweep, args.out, args.n)
    print(table(args.sweep))
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
