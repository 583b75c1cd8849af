"""Data-parallel training with torchrun on CPU (gloo, 2 processes)."""

import json
import re
import subprocess
import sys

import pytest
import torch
from conftest import TINY, TINY_WIDTHS

from ganx import checkpoint as ckpt
from ganx.distributed import free_port


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


# ganx-train starting two gloo ranks itself, on the tiny settings without their hardware=cpu
TWO_CPU_RANKS = [
    *(o for o in TINY if not o.startswith("hardware=")),
    "hardware=ddp",
    "hardware.device=cpu",
    "hardware.processes=2",
    "hardware.threads=1",
]


@pytest.mark.slow
def test_ganx_train_starts_its_own_ranks_in_every_multirun_job(tmp_path):
    """hardware=ddp: each Hydra multirun job starts its own 2-process group (gloo, own port),
    here under the parallel (joblib/loky) launcher, whose workers own the multiprocessing
    context."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ganx.train",
            "-m",
            *TWO_CPU_RANKS,
            *TINY_WIDTHS["dcgan"],
            "reg=r1",
            "hydra/launcher=parallel",
            f"hydra.sweep.dir={tmp_path}",
            "seed=0,1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    finals = {}
    for seed in (0, 1):
        (job,) = tmp_path.glob(f"*/seed={seed}")  # <the overrides>/seed=N
        assert json.loads((job / "status.json").read_text())["status"] == "finished"
        log = (job / "train.log").read_text()
        rank0 = re.findall(r"rank 0 of 2: G parameter checksum (\S+)", log)
        assert len(rank0) == 1
        finals[seed] = rank0[0]
        steps = [json.loads(x)["step"] for x in (job / "metrics.jsonl").read_text().splitlines()]
        assert steps == [2, 4]  # rank 0 alone writes
    assert finals[0] != finals[1]  # the jobs trained separately, with their own seeds
    # within each job both ranks ended with the same weights: each value appears twice
    checks = re.findall(r"rank (\d) of 2: G parameter checksum (\S+)", proc.stderr)
    assert sorted(v for _, v in checks) == sorted([finals[0]] * 2 + [finals[1]] * 2)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["hardware.processes=0"], "hardware.processes=0: must be a positive integer or auto"),
        (
            ["hardware=ddp", "hardware.device=cpu"],
            "hardware.processes=auto starts one process per GPU",
        ),
    ],
)
def test_bad_process_counts_are_refused_before_training(overrides, message):
    from conftest import compose_cfg

    from ganx.build import ConfigError
    from ganx.validate import validate

    tiny = [o for o in TINY if not o.startswith("hardware=")]
    hardware = [] if any(o.startswith("hardware=") for o in overrides) else ["hardware=cpu"]
    cfg = compose_cfg(*tiny, *hardware, *overrides, tiny=False)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(cfg)


@pytest.mark.slow
def test_a_rank_refusing_its_checkpoint_gives_one_clear_error(tmp_path):
    base = [sys.executable, "-m", "ganx.train", *TINY, *TINY_WIDTHS["dcgan"]]
    first = subprocess.run(
        [*base, f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 0, first.stderr[-3000:]
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ganx.train",
            *TWO_CPU_RANKS,
            "model.generator.ngf=16",
            "model.discriminator.ndf=8",
            "train.steps=8",
            "resume=auto",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()
    assert any(
        line.startswith("ganx-train: error: a training process failed: rank")
        and "cannot resume" in line
        for line in last
    ), proc.stderr[-2000:]
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before
    assert not list(tmp_path.glob(".rank*"))
