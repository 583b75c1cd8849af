"""Device and process choices: the device a run, a command or the API computes on
(``hardware.device``), how many data-parallel processes ``ganx-train`` starts
(``hardware.processes``), how many data-loader workers feed each (``dataset.num_workers``), and
what a training process sets up before it builds anything (its rank, threads, TF32)."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import collectives
from .collectives import Ranks
from .errors import ConfigError


def select_device(hardware: DictConfig) -> torch.device:
    choice = str(hardware.device)
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"hardware.device={choice} but this machine has no CUDA device; "
            "use hardware=cpu or hardware=auto"
        )
    if choice != "cpu" and not choice.startswith("cuda"):
        raise ConfigError(f"hardware.device={choice!r}; allowed: auto, cpu, cuda, cuda:N")
    return torch.device(choice)


def loader_workers(value, world: int = 1) -> int:
    """``dataset.num_workers``: an integer >= 0, or ``auto`` = the cores this process may use
    (its CPU affinity, shared among ``world`` ranks) minus one for the training process,
    at most 8 (more rarely helps a GAN's small images)."""
    if value == "auto":
        import os

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(0, min(8, (cores or 1) // max(world, 1) - 1))
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"dataset.num_workers={value!r}: must be auto or an integer >= 0")
    return value


def requested_processes(hardware: DictConfig) -> int:
    """``hardware.processes`` as a number: ``auto`` is one per visible GPU."""
    value = hardware.get("processes", 1)
    on_cuda = str(hardware.device).startswith("cuda") or (
        hardware.device == "auto" and torch.cuda.is_available()
    )
    if value == "auto":
        if not on_cuda:
            raise ConfigError(
                "hardware.processes=auto starts one process per GPU, and this run has no CUDA "
                "device; on a CPU give a number, e.g. hardware.processes=2"
            )
        return torch.cuda.device_count()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"hardware.processes={value!r}: must be a positive integer or auto")
    if on_cuda and value > 1 and value > torch.cuda.device_count():
        raise ConfigError(
            f"hardware.processes={value} but this machine has {torch.cuda.device_count()} "
            "CUDA device(s): one process per GPU at most"
        )
    return value


def device_from(choice: str):
    """The device a command's or the API's ``device=`` names, checked as ``hardware.device``."""
    return select_device(OmegaConf.create({"device": str(choice)}))


def set_up_process(cfg: DictConfig, run_dir: Path) -> tuple[torch.device, Ranks, Path]:
    """The device, this process's rank (joining torchrun's group if there is one), and the run
    dir (rank 0's, on every rank); thread count and TF32 as configured."""
    device = select_device(cfg.hardware)
    ranks = collectives.from_environment(device.type)
    if ranks.active:
        if device.type == "cuda":
            device = torch.device("cuda", ranks.local_rank)
            torch.cuda.set_device(device)
        run_dir = Path(collectives.broadcast_object(str(run_dir)))  # rank 0's run dir for all
    if cfg.hardware.threads:
        torch.set_num_threads(int(cfg.hardware.threads))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(cfg.hardware.tf32)
        torch.backends.cudnn.allow_tf32 = bool(cfg.hardware.tf32)
        torch.backends.cudnn.benchmark = bool(cfg.hardware.cudnn_benchmark)
    return device, ranks, run_dir
