"""``ganx-train``: compose the config with Hydra, train, return the metric a sweeper optimises.

ganx-train                               # DCGAN on the embedded MNIST-5k
ganx-train loss=hinge reg=dat
ganx-train 'reg=[r1,lecam]' reg.r1.weight=1
ganx-train -m reg=none,r1,js,dat seed=0,1,2
ganx-train --cfg job                     # print the composed config

Bad input is refused with one line before anything is written: the command line by
:mod:`ganx.overrides` (before Hydra composes), each job by :mod:`ganx.preflight` (a Hydra
callback, before Hydra creates the run directory).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .commands.ganx import handle_version

# torch and the modules that import it are imported inside the functions below: shell
# completion (`ganx-train -sc ...`) and --help run this module and should answer at once
log = logging.getLogger("ganx")


def register_resolvers() -> None:
    """multirun job dirs: `<swept keys except seed>/seed=<seed>` (see conf/config.yaml); a sweep
    over seeds alone has no other swept keys, and an empty first part would make the path
    absolute."""
    if not OmegaConf.has_resolver("ganx_setting"):
        OmegaConf.register_new_resolver("ganx_setting", lambda dirname: dirname or "default")


register_resolvers()


def prepare(cfg: DictConfig) -> DictConfig:
    """Settle what a run computes before anything starts (the data set's default metrics
    fitted to the Inception weights at hand, with one line saying what was left out)."""
    from .metrics.plan import plan_metrics
    from .trackers import check_installed

    check_installed(cfg.get("logger"))  # an optional tracker's package missing: refuse now
    plan_metrics(cfg)
    return cfg


def in_this_process(cfg: DictConfig, run_dir: Path) -> dict:
    """Train in ``run_dir`` in this process (``run_job`` starts data-parallel ranks when asked):
    ``ganx.loop.train``, imported on first use (a module attribute tests can replace); a config
    the pre-flight validated in this process is not validated again."""
    from .loop import train as loop_train
    from .preflight import checked

    return loop_train(cfg, run_dir, validated=checked(run_dir))


def own_config(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """On a resume, the run's own recorded config with this command line's overrides as
    changes (ganx.resume_config); a fresh run: ``cfg``."""
    from .preflight import own_config as resumed

    hydra_cfg = HydraConfig.get()
    return resumed(cfg, run_dir, list(hydra_cfg.overrides.task), str(hydra_cfg.job.config_name))


def record(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None) -> None:
    """This invocation's config and overrides, and what a resume changed (ganx.rundir); the
    start line saying which run continues, or that resume=auto found none to continue.
    ``overrides`` given: a run started from Python (``ganx.fit``), outside Hydra."""
    from . import rundir
    from .preflight import resume_source
    from .resume_config import resume_line
    from .resume_rules import changes as changes_of

    source = resume_source(cfg, run_dir)
    changes = {}
    if source is not None:
        from .checkpoint import load

        saved = load(source, mmap=True)
        changes = {
            k: v
            for k, v in changes_of(saved["config"], cfg).items()
            if k not in ("resume", "start_over", "train.stop_at")
        }
        log.info(resume_line(run_dir, saved["step"], saved["config"]["train"]["steps"], changes))
    elif cfg.resume == "auto":
        log.warning(
            "resume=auto: no checkpoint to continue in %s (no checkpoints/last.pt); "
            "starting a new run there",
            run_dir,
        )
    hydra_cfg = HydraConfig.get() if overrides is None else None
    if rundir.writes_run_dir():  # under torchrun, rank 0 records the invocation once
        rundir.record_invocation(run_dir, cfg, hydra_cfg, changes, overrides)


def run_job(cfg: DictConfig) -> dict:
    """Train inside a Hydra job (run dir = Hydra's output dir); with ``hardware.processes`` > 1
    (and not already under torchrun) start that many data-parallel processes for this job."""
    from .hardware import requested_processes
    from .launch import launch

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    cfg = own_config(cfg, run_dir)
    prepare(cfg)  # before record: the recorded config holds the metrics this run computes
    record(cfg, run_dir)
    processes = requested_processes(cfg.hardware)
    if processes > 1 and "WORLD_SIZE" not in os.environ:
        return launch(cfg, run_dir, processes)
    return in_this_process(cfg, run_dir)


def fail(message: str, code: int = 1) -> None:
    """One line and exit status ``code`` (ganx.errors: 1 refused, 2 failed); in a sweep, the
    job's status.json records the failure and the sweep goes on (ganx-train exits non-zero at
    its end, naming the failed jobs)."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        log.error(message)
        status_file = Path(HydraConfig.get().runtime.output_dir) / "status.json"
        try:  # a run that failed after it started has written its own record (its step)
            recorded = json.loads(status_file.read_text()).get("status")
        except (OSError, ValueError):
            recorded = None
        if recorded != "failed":
            with contextlib.suppress(OSError):
                status_file.write_text(json.dumps({"status": "failed", "error": message}) + "\n")
        return
    print(f"ganx-train: error: {message}", file=sys.stderr)
    sys.exit(code)


def exit_code(result: dict) -> int:
    """The exit status a run's end means (docs/resume.md, Exit codes)."""
    from .errors import EXIT_DIVERGED, signal_exit_code

    if result.get("status") == "interrupted":
        return signal_exit_code(result.get("signal"))
    return EXIT_DIVERGED if result.get("status") == "diverged" else 0


@hydra.main(version_base="1.3", config_path="pkg://ganx.conf", config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    from .errors import (
        EXIT_FAILED,
        CheckpointError,
        ConfigError,
        DataError,
        TrainingFailed,
        TrainingProcessError,
    )

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        result = run_job(cfg)
    except (TrainingFailed, TrainingProcessError) as err:  # saved what it could, said so
        return fail(str(err), EXIT_FAILED)
    except (ConfigError, DataError, CheckpointError) as err:  # bad input: one line, no trace
        return fail(str(err))
    except OSError as err:  # an unwritable run dir, a full disk
        return fail(f"cannot write the run's outputs: {err}")
    except Exception as err:  # in a sweep, one job's error must not stop the others
        if not multirun:
            raise
        return fail(f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}", EXIT_FAILED)
    if result.get("status") == "interrupted" and multirun:
        from .errors import SweepStopped

        raise SweepStopped(HydraConfig.get().runtime.output_dir, result.get("signal"))
    log.info(
        "run %s at step %s: %s",
        result.get("status"),
        result.get("step"),
        {k: v for k, v in result.items() if k.startswith(("loss/", "reg/"))},
    )
    if not multirun and exit_code(result):
        sys.exit(exit_code(result))
    # the value a Hydra sweeper optimises: the best eval.objective seen (None without one)
    return result.get("best")


def main() -> None:
    """The console entry point: ``--version``; check the command line, then hand it to Hydra."""
    from .errors import ConfigError, SweepStopped, signal_exit_code
    from .overrides import check_overrides, command_line_overrides, quote_paths

    handle_version("ganx-train")
    sys.argv[1:] = quote_paths(sys.argv[1:])
    overrides = command_line_overrides(sys.argv[1:])
    if overrides is not None:
        try:
            check_overrides(overrides)
        except ConfigError as err:
            sys.exit(f"ganx-train: error: {err}")
    try:
        hydra_main()
    except ValueError as err:
        if not str(err).startswith("Only one of --run"):
            raise
        # Hydra's own answer to `-m ... --cfg job` is a traceback: one line instead
        sys.exit(f"ganx-train: error: {err} (print one job's config without -m)")
    except SweepStopped as err:
        print(
            f"ganx-train: the sweep stopped: {err.run_dir} saved its checkpoint and no later job "
            "was started; the same command with resume=auto continues it",
            file=sys.stderr,
        )
        sys.exit(signal_exit_code(err.signal))
    except BaseException as err:
        # ganx.loop (torch) is imported only by training, so only then can Aborted be raised
        loop = sys.modules.get("ganx.loop")
        if loop is None or not isinstance(err, loop.Aborted):
            raise
        # a second Ctrl-C/SIGTERM: the last complete checkpoint is intact
        print(
            "ganx-train: aborted; resume=auto continues from the last checkpoint", file=sys.stderr
        )
        sys.exit(signal_exit_code(err.args[0] if err.args else None))


if __name__ == "__main__":
    main()
