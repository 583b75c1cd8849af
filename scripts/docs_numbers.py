"""The numbers the docs state about deterministic runs, regenerated from the runs themselves, so
that no page copies a number by hand.

    python scripts/docs_numbers.py default-job RUN_DIR [--without-r1 RUN_DIR2]
        # docs/generated/default_job.md from each run's metrics.jsonl, run.json and status.json
    python scripts/docs_numbers.py default-job --train
        # first runs `ganx-train` and `ganx-train reg=none` (about 5 min each on 2 CPU cores)
    python scripts/docs_numbers.py dirac
        # docs/dirac_table.md: the table `ganx-dirac` writes (its plots left out)

docs/studies.md includes docs/generated/default_job.md (pymdownx.snippets) and docs/dirac.md
includes docs/dirac_table.md; the README quotes the default job's numbers, and tests/test_docs.py
checks that they are the snippet's. tests/test_dirac_explorer.py checks the Dirac table against
a fresh run of the study.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JOB_SNIPPET = ROOT / "docs" / "generated" / "default_job.md"
DIRAC_TABLE = ROOT / "docs" / "dirac_table.md"
# the default job's final metrics, in the order the snippet and the README state them
METRICS = ("fid2k_mnist", "kid2k_mnist", "is2k_mnist", "classes2k_mnist", "class_kl2k_mnist")
# (label, the command the run dir must have been made with, minus hydra.run.dir)
RUNS = (("the default job", "ganx-train"), ("without R1", "ganx-train reg=none"))


def final_values(run_dir: Path) -> tuple[int, dict[str, float]]:
    """The last step of ``metrics.jsonl`` and the value each of METRICS has there."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = max(r["step"] for r in records)
    values = {}
    for record in records:
        if record["step"] == last:
            values.update({k: v for k, v in record.items() if k in METRICS})
    missing = [k for k in METRICS if k not in values]
    if missing:
        missing = ", ".join(missing)
        sys.exit(f"docs_numbers: {run_dir}/metrics.jsonl has no {missing} at step {last}")
    return last, values


def run_record(run_dir: Path, command: str) -> dict:
    """run.json's first invocation, refused unless it ran ``command`` and finished."""
    record = json.loads((run_dir / "run.json").read_text())[0]
    typed = [a for a in record["command"].split() if not a.startswith("hydra.run.dir=")]
    if " ".join(typed) != command:
        sys.exit(f"docs_numbers: {run_dir} ran `{record['command']}`, not `{command}`")
    status = json.loads((run_dir / "status.json").read_text())
    if status["status"] != "finished":
        sys.exit(f"docs_numbers: {run_dir} is {status['status']}, not finished")
    return record


def number(value: float) -> str:
    return f"{value:.4g}"


def provenance(record: dict) -> str:
    git = record.get("git") or {}
    commit = git.get("commit", "unknown")[:7]
    state = "with uncommitted changes" if git.get("dirty") else "clean"
    return (
        f"ganx {record['ganx']} at commit {commit} ({state}), torch {record['versions']['torch']}, "
        f"{record['device']}"
    )


def default_job_snippet(run_dirs: list[Path]) -> str:
    """The markdown docs/studies.md includes: one row per run of RUNS given, in that order."""
    head = "| run | command | " + " | ".join(f"`{k}`" for k in METRICS) + " |"
    lines = [
        "<!-- written by scripts/docs_numbers.py default-job; regenerate, do not edit -->",
        "",
        head,
        "|" + "---|" * (len(METRICS) + 2),
    ]
    notes = []
    for (label, command), run_dir in zip(RUNS, run_dirs, strict=False):
        record = run_record(run_dir, command)
        step, values = final_values(run_dir)
        cells = [label, f"`{command}`", *(number(values[k]) for k in METRICS)]
        lines.append("| " + " | ".join(cells) + " |")
        notes.append(f"{label}: step {step:,}, {provenance(record)}")
    lines += ["", "Final values of `metrics.jsonl`; " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


def train(command: str, run_dir: Path) -> None:
    args = command.split()[1:] + [f"hydra.run.dir={run_dir}"]
    tool = Path(sys.executable).with_name("ganx-train")
    subprocess.run([str(tool), *args], check=True)


def default_job(args: argparse.Namespace) -> None:
    if args.train:
        tmp = Path(tempfile.mkdtemp(prefix="ganx_docs_numbers_"))
        run_dirs = [tmp / f"run{i}" for i in range(len(RUNS))]
        for (_, command), run_dir in zip(RUNS, run_dirs, strict=True):
            train(command, run_dir)
    else:
        if not args.run_dir:
            sys.exit("docs_numbers: give RUN_DIR (and --without-r1 RUN_DIR2), or --train")
        run_dirs = [args.run_dir, *([args.without_r1] if args.without_r1 else [])]
    text = default_job_snippet(run_dirs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text + f"-> {args.out}")


def dirac(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as out:
        tool = Path(sys.executable).with_name("ganx-dirac")
        subprocess.run([str(tool), f"out={out}", "plot.enabled=false"], check=True)
        args.out.write_text((Path(out) / "table.md").read_text())
    print(f"-> {args.out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    job = sub.add_parser("default-job", help="the default job's final metrics")
    job.add_argument("run_dir", nargs="?", type=Path, help="a finished `ganx-train` run")
    job.add_argument("--without-r1", type=Path, help="a finished `ganx-train reg=none` run")
    job.add_argument("--train", action="store_true", help="run both jobs first")
    job.add_argument("--out", type=Path, default=DEFAULT_JOB_SNIPPET)
    table = sub.add_parser("dirac", help="the Dirac-GAN study's table")
    table.add_argument("--out", type=Path, default=DIRAC_TABLE)
    args = parser.parse_args(argv)
    {"default-job": default_job, "dirac": dirac}[args.what](args)


if __name__ == "__main__":
    main()
