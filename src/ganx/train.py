"""``ganx-train``: compose the config with Hydra, train, return the metric a sweeper optimises.

ganx-train                               # DCGAN on the embedded MNIST-5k
ganx-train loss=hinge reg=dat
ganx-train 'reg=[r1,lecam]' reg.r1.weight=1
ganx-train -m reg=none,r1,js,dat seed=0,1,2
ganx-train --cfg job                     # print the composed config
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .cli import handle_version

# torch and the modules that import it are imported inside the functions below: shell
# completion (`ganx-train -sc ...`) and --help run this module and should answer at once
log = logging.getLogger("ganx")


def register_resolvers() -> None:
    """multirun job dirs: `<overrides except seed>/seed=<seed>` (see conf/config.yaml); a sweep
    over seeds alone has no other overrides, and an empty first part would make the path
    absolute."""
    if not OmegaConf.has_resolver("ganx_setting"):
        OmegaConf.register_new_resolver("ganx_setting", lambda dirname: dirname or "default")


register_resolvers()


def prepare(cfg: DictConfig) -> DictConfig:
    """Settle what a run computes before anything starts (the data set's default metrics
    fitted to the Inception weights at hand, with one line saying what was left out)."""
    from .metric_plan import plan_metrics
    from .trackers import check_installed

    check_installed(cfg.get("logger"))  # an optional tracker's package missing: refuse now
    plan_metrics(cfg)
    return cfg


def train_in(cfg: DictConfig, run_dir: Path) -> dict:
    """Train in ``run_dir`` (this process; ``run`` starts data-parallel ranks when asked)."""
    from .loop import train

    return train(cfg, run_dir)


def run(cfg: DictConfig) -> dict:
    """Train inside a Hydra job (run dir = Hydra's output dir); with ``hardware.processes`` > 1
    (and not already under torchrun) start that many data-parallel processes for this job."""
    from .build import requested_processes
    from .launch import launch

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    prepare(cfg)
    processes = requested_processes(cfg.hardware)
    if processes > 1 and "WORLD_SIZE" not in os.environ:
        return launch(cfg, run_dir, processes)
    return train_in(cfg, run_dir)


@hydra.main(version_base="1.3", config_path="pkg://ganx.conf", config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    from .build import ConfigError
    from .checkpoint import CheckpointError
    from .data import DataError
    from .launch import TrainingProcessError

    try:
        result = run(cfg)
    except (ConfigError, DataError, CheckpointError, TrainingProcessError) as err:
        # bad input: one clear message, no stack trace, non-zero exit
        sys.exit(f"ganx-train: error: {err}")
    except OSError as err:  # an unwritable run dir, a full disk
        sys.exit(f"ganx-train: error: cannot write the run's outputs: {err}")
    log.info(
        "run %s at step %s: %s",
        result.get("status"),
        result.get("step"),
        {k: v for k, v in result.items() if k.startswith(("loss/", "reg/"))},
    )
    # the value a Hydra sweeper optimises: the best eval.objective seen (None without one)
    return result.get("best")


def main() -> None:
    """The ``ganx-train`` command: ``--version`` here, everything else through Hydra."""
    handle_version("ganx-train")
    hydra_main()


if __name__ == "__main__":
    main()
