"""Data-parallel training with torchrun on CPU (gloo, 2 processes)."""

import json
import re
import socket
import subprocess
import sys

import pytest
import torch
from conftest import TINY, TINY_WIDTHS

from ganx import checkpoint as ckpt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(run_dir, nproc, *extra):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "ganx.train",
        *TINY,
        *TINY_WIDTHS["dcgan"],
        "hardware.threads=1",
        f"hydra.run.dir={run_dir}",
        "log.every=1",
        "reg=r1",
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_ranks_stay_identical_and_rank0_writes_once(tmp_path):
    run_dir = tmp_path / "ddp"
    proc = torchrun(run_dir, 2, "train.steps=6", "train.stop_at=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (run_dir / "train.log").read_text() + proc.stdout + proc.stderr
    sums = dict(re.findall(r"rank (\d) of 2: G parameter checksum (\S+)", log))
    assert set(sums) == {"0", "1"} and sums["0"] == sums["1"]  # same weights on both ranks
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4]  # rank 0 alone writes
    assert ckpt.load(run_dir / "checkpoints" / "last.pt")["step"] == 4
    # resume with a different number of ranks: one process finishes the run
    one = subprocess.run(
        [
            sys.executable,
            "-m",
            "ganx.train",
            *TINY,
            *TINY_WIDTHS["dcgan"],
            f"hydra.run.dir={run_dir}",
            "log.every=1",
            "reg=r1",
            "train.steps=6",
            "resume=auto",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    state = ckpt.load(run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 6
    assert all(
        torch.isfinite(v).all() for v in state["generator"].values() if v.is_floating_point()
    )
