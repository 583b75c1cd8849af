"""Data-parallel training over several processes, without DDP wrappers. Either torchrun starts
the processes, or ganx-train does (``hardware.processes``, the ``hardware=ddp`` preset; each
Hydra multirun job then starts its own group on its own port):

    torchrun --nproc_per_node=4 -m ganx.train hydra.run.dir=outputs/ddp ...
    ganx-train hardware=ddp                        # one process per visible GPU

Each rank holds the full G and D, draws its own noise (its RNG is offset by its rank) and its own
disjoint share of every epoch's batches; before each optimiser step the gradients are averaged
over the ranks (one all-reduce per player), so every rank applies the same update and the
weights stay identical. A plain all-reduce rather than ``DistributedDataParallel`` because D is
called several times per step (real, fake, penalties with a double backward, G's step), which
DDP's one-forward-one-backward bookkeeping does not allow. BatchNorm statistics are per rank and
are made equal again (broadcast from rank 0) after every iteration. Rank 0 alone writes logs,
samples, checkpoints and metrics; logged losses are averaged over ranks. Backend: NCCL on CUDA,
gloo on CPU.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import DictConfig
from torch import nn

from .build import ConfigError


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_environment(device_type: str) -> Ranks:
    """Join the process group torchrun describes (WORLD_SIZE > 1); a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def broadcast_state(module: nn.Module) -> None:
    """Make every rank's parameters and buffers equal to rank 0's."""
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def broadcast_buffers(module: nn.Module) -> None:
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def average_gradients(params, world: int) -> None:
    """All-reduce the gradients of ``params`` as one flat buffer and divide by ``world``."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_values(values: torch.Tensor, world: int) -> torch.Tensor:
    dist.all_reduce(values)
    return values / world


def broadcast_object(obj):
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


# --- ganx-train starting the processes itself ---------------------------------------------------


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, cfg: DictConfig, run_dir: str, world: int, port: int) -> None:
    """One spawned rank: torchrun's environment, then the ordinary training function."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    logging.basicConfig(level=logging.INFO, format=f"[rank {rank}] %(levelname)s %(message)s")
    if rank == 0:  # the run's log file, as a single-process run writes it
        handler = logging.FileHandler(Path(run_dir) / "train.log")
        handler.setFormatter(
            logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
        )
        logging.getLogger().addHandler(handler)
    from .loop import train

    try:
        train(cfg, Path(run_dir))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch(cfg: DictConfig, run_dir: Path, processes: int) -> dict:
    """Train with ``processes`` spawned ranks on a fresh local port; returns rank 0's final
    status (status.json). Bad input is caught here, before any process starts."""
    from torch.multiprocessing import (
        ProcessExitedException,
        ProcessRaisedException,
        start_processes,
    )

    from .validate import validate

    validate(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        start_processes(
            _worker,
            args=(cfg, str(run_dir), processes, free_port()),
            nprocs=processes,
            start_method="spawn",
        )
    except (ProcessRaisedException, ProcessExitedException) as err:
        # the child's traceback ends with the exception line (its message may continue on
        # indented lines): keep that part
        lines = str(err).strip().splitlines()
        start = max((i for i, line in enumerate(lines) if not line.startswith(" ")), default=0)
        message = "\n".join(lines[start:])
        raise TrainingProcessError(f"a training process failed: {message}") from None
    return json.loads((run_dir / "status.json").read_text())


class TrainingProcessError(RuntimeError):
    """A spawned rank ended with an error (its traceback is printed above)."""
