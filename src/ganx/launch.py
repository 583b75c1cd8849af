"""Starting ganx-train's own data-parallel ranks (the collectives they use are
:mod:`ganx.collectives`). Either torchrun starts the processes, or ganx-train does
(``hardware.processes``, the ``hardware=ddp`` preset; each Hydra multirun job then starts its
own group on its own port):

    torchrun --nproc_per_node=4 -m ganx.train hydra.run.dir=outputs/ddp ...
    ganx-train hardware=ddp                        # one process per visible GPU

Rank 0 alone writes logs, samples, checkpoints and metrics; logged losses are averaged over
ranks.
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
from pathlib import Path

import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from .errors import (
    CheckpointError,
    ConfigError,
    DataError,
    TrainingFailed,
    TrainingProcessError,
)
from .loop import train
from .validate import validate

log = logging.getLogger("ganx")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_environment(rank: int, world: int, port: int, **extra: str) -> dict[str, str]:
    """This process's environment plus what torch.distributed's env:// rendezvous reads for
    ``rank`` of ``world`` local ranks on ``port``."""
    rendezvous = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world)}
    return dict(os.environ, **rendezvous, RANK=str(rank), LOCAL_RANK=str(rank), **extra)


def launch(cfg: DictConfig, run_dir: Path, processes: int) -> dict:
    """Train with ``processes`` ranks, each a fresh ``python -m ganx.launch`` process
    (plain subprocesses, not multiprocessing: that also works inside launchers that own the
    multiprocessing context, such as joblib's loky workers) on a free local port. Bad input is
    refused here, before any rank starts. Returns rank 0's final status (status.json)."""
    validate(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / ".ranks_config.yaml"
    config_file.write_text(OmegaConf.to_yaml(OmegaConf.to_container(cfg, resolve=True)))
    port = free_port()
    for stale in run_dir.glob(".rank*.done"):  # an interrupted launch's: not this run's word
        stale.unlink()
    ranks = []
    for rank in range(processes):
        command = [sys.executable, "-m", "ganx.launch", str(config_file), str(run_dir)]
        ranks.append(subprocess.Popen(command, env=rank_environment(rank, processes, port)))
    codes = wait_for_ranks(ranks)
    config_file.unlink(missing_ok=True)
    codes = [finished_rank_code(run_dir, rank, code) for rank, code in enumerate(codes)]
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


def finished_rank_code(run_dir: Path, rank: int, code: int) -> int:
    """A rank's exit code, 0 when it had finished its run (its ``.rankN.done``, written after
    the closing barrier) and only torch's teardown failed after that: said in one line."""
    done = run_dir / f".rank{rank}.done"
    if done.is_file():
        done.unlink()
        if code != 0:
            log.warning(
                "rank %d exited with code %d after finishing its run (torch's teardown)", rank, code
            )
            return 0
    return code


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
    """One rank (``python -m ganx.launch CONFIG RUN_DIR`` with torchrun's environment)."""
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
        if dist.is_initialized():  # every rank ends its run before any tears the group down
            dist.barrier()
        # the run is complete on this rank: what may still fail is torch's teardown (CI saw
        # gloo abort a finished rank, SIGABRT "terminate called without an active exception")
        (Path(run_dir) / f".rank{rank}.done").touch()
    except (ConfigError, DataError, CheckpointError, TrainingFailed) as err:
        (Path(run_dir) / f".rank{rank}.error").write_text(str(err))
        sys.exit(2)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    rank_main(*sys.argv[1:3])
