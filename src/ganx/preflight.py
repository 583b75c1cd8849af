"""Every job of a ``ganx-train`` command is checked before Hydra creates its run directory.

A Hydra callback (configured in ``conf/config.yaml``) runs :func:`check_job` in
``on_run_start`` and, for a sweep, for every job in ``on_multirun_start``: before Hydra makes a
directory, saves a config or opens the job log. A refusal prints one line per bad job and exits;
nothing is written. The checks: the config (:mod:`ganx.validate`), the device, a dry build of
every part (nets on the meta device, so no memory is spent), the data set, the run directory
(a previous run in it needs ``resume=auto`` or ``start_over=true``) and, on a resume, the
checkpoint and the settings the resume changes (:mod:`ganx.resume_rules`).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from . import rundir
from .errors import CheckpointError, ConfigError, DataError, one_line
from .sweeps import job_config, name_jobs_by_swept_keys, sweep_jobs, write_plan

# torch and everything that imports it are imported inside the functions below: a missing data
# set is refused (check_data_present) before that second-long import
BAD_INPUT = (ConfigError, CheckpointError, DataError)
MAX_PARAMETERS = 2**31  # 8 GiB per copy in fp32; G, D, EMA and Adam hold five copies
# the run dirs of the jobs this process has checked: their loop does not validate again
CHECKED: set[Path] = set()


def checked(run_dir: Path) -> bool:
    """Whether the pre-flight of this process checked the job of ``run_dir`` (ganx-train's jobs
    under the basic launcher; not a job a launcher runs in another process, not ``ganx.fit``)."""
    return Path(run_dir).resolve() in CHECKED


def resume_source(cfg: DictConfig, run_dir: Path) -> Path | None:
    """The checkpoint this job continues from, if any (as training will resolve it)."""
    from .state import resolve_resume

    return resolve_resume(cfg.resume, Path(run_dir))


def own_config(
    cfg: DictConfig, run_dir: Path, overrides: list[str], config_name: str
) -> DictConfig:
    """On a resume, the run's own recorded config with this command line's overrides as
    changes (:mod:`ganx.resume_config`); otherwise ``cfg`` itself."""
    from .checkpoint import read_config
    from .resume_config import continued_config, overridden_paths, preset_keys_by_compose

    source = resume_source(cfg, run_dir)
    if source is None:
        return cfg
    try:
        saved = read_config(source)
    except CheckpointError as err:
        raise CheckpointError(f"resume={cfg.resume}: {err}") from None
    current = OmegaConf.to_container(cfg, resolve=True)
    given = overridden_paths(overrides, current, preset_keys_by_compose(config_name))
    return continued_config(saved, cfg, given)


def dry_build(cfg: DictConfig, data_cache: dict | None = None) -> None:
    """Build every part once, as training will and through the same builders (so each
    constructor's own checks run, named under their config key): nets on the meta device (no
    memory), then the loss, regularizers, augmentation, optimisers and the data set."""
    import torch

    from . import build

    nets = {}
    for player in build.PLAYERS:
        with built(f"model.{player}"), torch.device("meta"):
            nets[player] = build.instantiate_named(f"model.{player}", cfg.model[player])
    refuse_one_sample_batchnorm(cfg, nets)
    count = sum(p.numel() for net in nets.values() for p in net.parameters())
    if count > MAX_PARAMETERS:
        raise ConfigError(
            f"model: G and D have {count:,} parameters, more than {MAX_PARAMETERS:,} "
            "(check model.latent_dim and the widths)"
        )
    with built("loss"):
        build.build_loss(cfg)
    with built("reg"):
        build.build_regularizers(cfg)
    with built("augment"):
        build.build_augment(cfg, torch.device("cpu"))
    if cfg.model.get("aux") is not None:
        with built("model.aux"):
            build.instantiate_named("model.aux", cfg.model.aux)
    for player, net in (("g", nets["generator"]), ("d", nets["discriminator"])):
        with built(f"optim.{player}"):
            build.build_optimizer(f"optim.{player}", cfg.optim[player], net.parameters())
    key = OmegaConf.to_yaml(cfg.dataset)
    cache = {} if data_cache is None else data_cache
    if key not in cache:
        # training_data refuses a bad dataset.subset
        cache[key] = len(build.training_data(cfg, build.build_data(cfg)))
    if cfg.train.batch_size > cache[key]:
        raise ConfigError(
            f"train.batch_size={cfg.train.batch_size} exceeds the {cache[key]} samples of "
            f"dataset={cfg.dataset.name}"
        )


@contextlib.contextmanager
def built(section: str):
    """Any other failure of a constructor (a torch error inside a net, say) is bad input here
    too: one line naming the section."""
    try:
        yield
    except (ConfigError, DataError):
        raise
    except Exception as err:  # noqa: BLE001 - any constructor refusal is bad input here
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"{section}: cannot be built from this config: {first}") from None


def refuse_one_sample_batchnorm(cfg: DictConfig, nets: dict) -> None:
    """train.batch_size=1 with a BatchNorm net: each training batch would be normalised by the
    statistics of one image (BatchNorm1d cannot train on it at all)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    if cfg.train.batch_size != 1:
        return
    with_bn = [
        p for p, net in nets.items() if any(isinstance(m, _BatchNorm) for m in net.modules())
    ]
    if with_bn:
        raise ConfigError(
            f"train.batch_size=1: model.{' and model.'.join(with_bn)} "
            f"{'has' if len(with_bn) == 1 else 'have'} BatchNorm, which would normalise every "
            "batch by the statistics of one image; use train.batch_size of 2 or more, or a "
            "model without BatchNorm"
        )


def check_data_present(cfg: DictConfig) -> None:
    """The data set's files (or the package its loader needs), before anything imports torch."""
    from .datafiles import missing_data

    problem = missing_data(cfg.dataset)
    if problem:
        raise DataError(problem)


def check_run_dir(cfg: DictConfig, run_dir: Path, key: str | None) -> None:
    rundir.check_location(run_dir, key)
    rundir.check_writable(run_dir, key)
    writer = rundir.writes_run_dir()
    if writer:  # another rank: rank 0 may hold the lock and be writing .hydra/ already
        rundir.check_not_in_use(run_dir, key)
    found = rundir.previous_run(run_dir) if writer else []
    start_over = bool(cfg.get("start_over", False))
    if start_over and cfg.resume is not None:
        raise ConfigError(
            f"start_over=true starts a new run and cannot be combined with resume={cfg.resume}"
        )
    source = resume_source(cfg, run_dir)
    inside = source is not None and Path(run_dir).resolve() in source.resolve().parents
    if found and not start_over and not (cfg.resume == "auto" or inside):
        raise ConfigError(rundir.occupied_message(Path(run_dir), found, key))
    if source is not None:
        from .checkpoint import read_config
        from .resume_rules import allowed_changes

        try:
            saved = read_config(source)
        except CheckpointError as err:
            raise CheckpointError(f"resume={cfg.resume}: {err}") from None
        allowed_changes(saved, cfg, source)


def check_job(
    cfg: DictConfig,
    run_dir: Path,
    key: str | None,
    data_cache: dict | None = None,
    overrides: tuple[list[str], str] | None = None,
) -> DictConfig:
    """Everything that can be known about a job before it writes anything; returns the config
    it runs with (on a resume, the run's own with the ``overrides`` given: (overrides, config
    name)). A fresh run's data is checked first: that check needs no torch."""
    rundir.check_location(run_dir, key)
    if cfg.get("resume") and overrides is not None:
        cfg = own_config(cfg, run_dir, *overrides)  # reads the checkpoint (imports torch)
    check_data_present(cfg)
    from .startup import import_training_modules

    import_training_modules()  # torch from here on: once per process, cheaper for the GC pause
    from .hardware import select_device
    from .metrics.plan import plan_metrics
    from .trackers import check_installed
    from .validate import validate

    check_installed(cfg.get("logger"))
    plan_metrics(cfg, announce=False)  # the job itself says what it leaves out, once
    validate(cfg)
    select_device(cfg.hardware)
    check_run_dir(cfg, run_dir, key)
    dry_build(cfg, data_cache)
    CHECKED.add(Path(run_dir).resolve())
    return cfg


def refuse(lines: list[str]) -> None:
    for line in lines:
        print(f"ganx-train: error: {line}", file=sys.stderr)
    sys.exit(1)


@contextlib.contextmanager
def refusing_all_errors():
    """Hydra turns an exception in a callback into a warning and runs the job anyway: here any
    error stops ganx-train with one line, so no job runs unchecked."""
    try:
        yield
    except BAD_INPUT as err:
        refuse([str(err)])
    except Exception as err:  # noqa: BLE001
        refuse([f"the pre-flight check failed: {type(err).__name__}: {one_line(err)}"])


class Preflight(Callback):
    """The Hydra callback that checks jobs before Hydra writes anything (conf/config.yaml)."""

    def __init__(self):
        self.planned: list[tuple[str, Path]] = []

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        with refusing_all_errors():
            self._check_run(config)

    def on_multirun_start(self, config: DictConfig, config_name: str | None = None, **kwargs):
        with refusing_all_errors():
            self._check_sweep(config, config_name or "config")

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        """A summary of the sweep's jobs (ganx-report shows the same); exit status 2 when a
        job failed or never ran."""
        from .errors import EXIT_FAILED
        from .sweeps import jobs_summary, planned_statuses

        entries = planned_statuses(self.planned)
        if not entries:
            return
        lines, failed = jobs_summary(entries)
        for line in lines:
            print(f"ganx-train: {line}", file=sys.stderr)
        if failed:
            sys.exit(EXIT_FAILED)

    def _check_run(self, config: DictConfig) -> None:
        run_dir = Path(str(config.hydra.run.dir))
        cfg = job_config(config)
        overrides = (list(config.hydra.overrides.task), str(config.hydra.job.config_name))
        cfg = check_job(cfg, run_dir, "hydra.run.dir", overrides=overrides)
        if cfg.get("start_over") and rundir.writes_run_dir() and rundir.previous_run(run_dir):
            moved = rundir.move_aside(run_dir)
            print(
                f"ganx-train: start_over=true: moved the previous run to {moved}", file=sys.stderr
            )

    def _check_sweep(self, config: DictConfig, config_name: str) -> None:
        swept = name_jobs_by_swept_keys(config)
        jobs, problems = sweep_jobs(config, swept)
        total = len(jobs) + len(problems)
        data_cache: dict = {}
        for label, overrides, cfg, run_dir in jobs:
            try:
                check_job(cfg, run_dir, None, data_cache, (overrides, config_name))
            except BAD_INPUT as err:
                problems.append(f"job {label}: {err}")
        if problems:
            refuse([f"{len(problems)} of {total} jobs are invalid; none was started", *problems])
        for _, _, cfg, run_dir in jobs:
            if cfg.get("start_over") and rundir.previous_run(run_dir):
                moved = rundir.move_aside(run_dir)
                print(f"ganx-train: start_over=true: moved {run_dir} to {moved}", file=sys.stderr)
        self.planned += write_plan(Path(str(config.hydra.sweep.dir)), jobs)
