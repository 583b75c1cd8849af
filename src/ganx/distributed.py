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

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
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


class TrainingProcessError(RuntimeError):
    """A rank started by :func:`launch` failed."""


def launch(cfg: DictConfig, run_dir: Path, processes: int) -> dict:
    """Train with ``processes`` ranks, each a fresh ``python -m ganx.distributed`` process
    (plain subprocesses, not multiprocessing: that also works inside launchers that own the
    multiprocessing context, such as joblib's loky workers) on a free local port. Bad input is
    refused here, before any rank starts. Returns rank 0's final status (status.json)."""
    from .validate import validate

    validate(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / ".ranks_config.yaml"
    config_file.write_text(OmegaConf.to_yaml(OmegaConf.to_container(cfg, resolve=True)))
    port = free_port()
    ranks = []
    for rank in range(processes):
        env = dict(
            os.environ,
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(processes),
        )
        command = [sys.executable, "-m", "ganx.distributed", str(config_file), str(run_dir)]
        ranks.append(subprocess.Popen(command, env=env))
    codes = wait_for_ranks(ranks)
    config_file.unlink(missing_ok=True)
    failed = [(rank, code) for rank, code in enumerate(codes) if code != 0]
    if failed:
        messages = []
        for rank, _code in failed:
            error_file = run_dir / f".rank{rank}.error"
            if error_file.is_file():
                messages.append(f"rank {rank}: {error_file.read_text().strip()}")
                error_file.unlink()
        first = messages[0] if messages else f"rank {failed[0][0]} exited with code {failed[0][1]}"
        raise TrainingProcessError(f"a training process failed: {first}")
    return json.loads((run_dir / "status.json").read_text())


def wait_for_ranks(ranks: list[subprocess.Popen]) -> list[int]:
    """Wait for every rank; SIGTERM/SIGINT to this process are passed on to them (they then
    checkpoint and stop), and when one rank fails the others are stopped too."""
    forwarded = {}

    def forward(signum, frame):
        for proc in ranks:
            if proc.poll() is None:
                proc.send_signal(signum)

    with contextlib.suppress(ValueError):  # not the main thread: no handlers
        for sig in (signal.SIGINT, signal.SIGTERM):
            forwarded[sig] = signal.signal(sig, forward)
    try:
        while any(proc.poll() is None for proc in ranks):
            if any(proc.poll() not in (None, 0) for proc in ranks):
                time.sleep(5)  # the others' collectives fail soon; then stop the rest
                for proc in ranks:
                    if proc.poll() is None:
                        proc.terminate()
            time.sleep(0.2)
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
    return [proc.wait() for proc in ranks]


def rank_main(config_file: str, run_dir: str) -> None:
    """One rank (``python -m ganx.distributed CONFIG RUN_DIR`` with torchrun's environment)."""
    from .checkpoint import CheckpointError
    from .data import DataError
    from .loop import train

    rank = int(os.environ["RANK"])
    logging.basicConfig(level=logging.INFO, format=f"[rank {rank}] %(levelname)s %(message)s")
    if rank == 0:  # the run's log file, as a single-process run writes it
        handler = logging.FileHandler(Path(run_dir) / "train.log")
        handler.setFormatter(
            logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
        )
        logging.getLogger().addHandler(handler)
    try:
        train(OmegaConf.load(config_file), Path(run_dir))
    except (ConfigError, DataError, CheckpointError) as err:
        (Path(run_dir) / f".rank{rank}.error").write_text(str(err))
        sys.exit(2)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    rank_main(*sys.argv[1:3])
