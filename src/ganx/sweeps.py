"""A sweep's bookkeeping: its jobs, each composed before any starts (:func:`sweep_jobs`); their
run dirs named after the swept keys only (:func:`name_jobs_by_swept_keys`); the list of the jobs
it planned, ``jobs.jsonl`` in the sweep dir, so that ``ganx-report`` lists a job that never ran
(:func:`write_plan`, :func:`planned_jobs`); and the summary of the jobs' statuses that
``ganx-train`` prints at the end of a sweep and ``ganx-report`` shows (:func:`jobs_summary`)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from .errors import one_line

PLAN_FILE = "jobs.jsonl"  # the jobs a sweep planned, for ganx-report's "never ran"


def job_config(config: DictConfig) -> DictConfig:
    job = copy.deepcopy(config)
    with read_write(job), open_dict(job):
        del job["hydra"]
    return job


def name_jobs_by_swept_keys(config: DictConfig) -> set[str]:
    """Job dirs are named after the swept keys only (``reg=r1/seed=0``, not every override of
    the command line; all overrides stay in each job's ``.hydra/``): every key that is not
    swept joins ``override_dirname.exclude_keys`` through the overrides the sweeper composes
    each job with."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    fixed = [o.key_or_group for o in parsed if not o.is_sweep_override()]
    swept = {o.key_or_group for o in parsed if o.is_sweep_override()}
    exclude = list(config.hydra.job.config.override_dirname.exclude_keys) + fixed
    quoted = ",".join("'" + k.replace("'", "\\'") + "'" for k in dict.fromkeys(exclude))
    with read_write(config.hydra.overrides):
        config.hydra.overrides.hydra.append(
            f"hydra.job.config.override_dirname.exclude_keys=[{quoted}]"
        )
    return swept


class ComposeOnce:
    """Hydra composes each job of a sweep twice after ganx's pre-flight has composed it: the
    basic sweeper to check the batch (``Sweeper.validate_batch_is_legal``), the basic launcher
    to run it (``BasicLauncher.launch``), both through ``ConfigLoader.load_sweep_config`` (a
    fifth of a second each for the toy config, more than a 200-step toy run's training). Put
    in place of that method on Hydra's config loader, it composes a job through the loader's
    own method once (the pre-flight's call) and answers the later calls for the same master
    overrides and job overrides with a copy, its interpolation cache taken from the master
    config as Hydra's own method does; any other call composes as before. A launcher running
    jobs in other processes (submitit, joblib) composes there as it always did."""

    def __init__(self, loader):
        self.compose = loader.load_sweep_config  # Hydra's own method, for the first call
        self.composed: dict[tuple, DictConfig] = {}

    @classmethod
    def on(cls, loader) -> ComposeOnce:
        """The instance in place on ``loader`` (put there on the first call)."""
        if not isinstance(loader.load_sweep_config, cls):
            loader.load_sweep_config = cls(loader)
        return loader.load_sweep_config

    @staticmethod
    def key(master_config: DictConfig, sweep_overrides: list[str]) -> tuple:
        return tuple(master_config.hydra.overrides.hydra), tuple(sweep_overrides)

    def job(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """The job composed (the one composition), kept for the later calls; returns a copy."""
        composed = self.compose(master_config, list(sweep_overrides))
        self.composed[self.key(master_config, sweep_overrides)] = composed
        return copy.deepcopy(composed)

    def __call__(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        found = self.composed.get(self.key(master_config, sweep_overrides))
        if found is None:
            return self.compose(master_config, sweep_overrides)
        job = copy.deepcopy(found)
        OmegaConf.copy_cache(from_config=master_config, to_config=job)
        return job


def sweep_jobs(
    config: DictConfig, swept: set[str]
) -> tuple[list[tuple[str, list[str], DictConfig, Path]], list[str]]:
    """(label, overrides, config, run dir) of every job the basic sweeper will launch, and a
    line for each job whose config cannot be composed. A job's label: its swept overrides.
    Each job is composed once, as the launcher composes it (:class:`ComposeOnce`); the sweeper
    and the launcher then reuse that composition."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    batches = BasicSweeper.split_arguments(parsed, None)
    compose_once = ComposeOnce.on(GlobalHydra.instance().hydra.config_loader)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    jobs, problems = [], []
    for num, overrides in enumerate(job for batch in batches for job in batch):
        label = " ".join(o for o in overrides if o.split("=")[0].lstrip("+~") in swept)
        try:
            composed = compose_once.job(config, overrides)
        except Exception as err:  # noqa: BLE001 - Hydra's composition errors, as one line
            problems.append(f"job {label or num}: {one_line(err)}")
            continue
        with open_dict(composed):
            composed.hydra.job.num = num
        subdir = str(OmegaConf.select(composed, "hydra.sweep.subdir"))
        jobs.append((label or "(defaults)", overrides, job_config(composed), sweep_dir / subdir))
    return jobs, problems


def write_plan(
    sweep_dir: Path, jobs: list[tuple[str, list[str], DictConfig, Path]]
) -> list[tuple[str, Path]]:
    """Append ``jobs`` (as :func:`sweep_jobs` returns them) to the sweep's ``jobs.jsonl``;
    returns (label, run dir) of each."""
    planned = []
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / PLAN_FILE, "a") as f:
        for label, overrides, _, run_dir in jobs:
            rel = run_dir.relative_to(sweep_dir).as_posix()
            f.write(json.dumps({"dir": rel, "job": label, "overrides": overrides}) + "\n")
            planned.append((label, run_dir))
    return planned


def planned_jobs(sweep_dir: Path) -> dict[Path, list[str]]:
    """Every job the sweeps into this dir planned (``jobs.jsonl``, written by ganx-train before
    the first job starts): job dir -> overrides."""
    plan = sweep_dir / PLAN_FILE
    if not plan.exists():
        return {}
    entries = [json.loads(line) for line in plan.read_text().splitlines() if line.strip()]
    return {sweep_dir / e["dir"]: e.get("overrides", []) for e in entries}


def planned_statuses(planned: list[tuple[str, Path]]) -> list[tuple[str, str, str | None]]:
    """(label, status, error) of each planned job, from its ``status.json``, as
    :func:`jobs_summary` takes them."""
    entries = []
    for label, run_dir in planned:
        status_file = run_dir / "status.json"
        status = json.loads(status_file.read_text()) if status_file.exists() else {}
        state = status.get("status") or "never ran"
        state = "running or crashed" if state == "running" else state
        entries.append((f"job {label} ({run_dir})", state, status.get("error")))
    return entries


# a job that ended in one of these ran as configured (a diverged run is a result of the study)
RAN = ("finished", "paused", "diverged", "interrupted")


def jobs_summary(entries: list[tuple[str, str, str | None]]) -> tuple[list[str], int]:
    """The end of a sweep, as ganx-train prints it and ganx-report shows it: one line counting
    the jobs by status, then one line per job (label, status, the one-line reason of a
    failure). ``entries``: (label, status, error). Returns the lines and how many jobs failed
    or never ran."""
    counts: dict[str, int] = {}
    for _, status, _ in entries:
        counts[status] = counts.get(status, 0) + 1
    failed = sum(n for status, n in counts.items() if status not in RAN)
    head = ", ".join(f"{n} {status}" for status, n in counts.items())
    lines = [f"{len(entries)} jobs: {head}"]
    if failed:
        lines[0] += f"; {failed} of {len(entries)} jobs did not finish"
    for label, status, error in entries:
        lines.append(f"  {label}: {status}{': ' + error if error else ''}")
    return lines, failed
