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

from .build import ConfigError, requested_processes
from .checkpoint import CheckpointError
from .data import DataError
from .launch import TrainingProcessError, launch
from .loop import train

log = logging.getLogger("ganx")

# multirun job dirs: `<overrides except seed>/seed=<seed>` (see conf/config.yaml); a sweep over
# seeds alone has no other overrides, and an empty first part would make the path absolute
if not OmegaConf.has_resolver("ganx_setting"):
    OmegaConf.register_new_resolver("ganx_setting", lambda dirname: dirname or "default")


def run(cfg: DictConfig) -> dict:
    """Train inside a Hydra job (run dir = Hydra's output dir); with ``hardware.processes`` > 1
    (and not already under torchrun) start that many data-parallel processes for this job."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    processes = requested_processes(cfg.hardware)
    if processes > 1 and "WORLD_SIZE" not in os.environ:
        return launch(cfg, run_dir, processes)
    return train(cfg, run_dir)


@hydra.main(version_base="1.3", config_path="pkg://ganx.conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
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


if __name__ == "__main__":
    main()
