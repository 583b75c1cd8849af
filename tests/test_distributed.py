"""Data-parallel training with torchrun on CPU (gloo, 2 processes)."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY, TINY_WIDTHS

from ganx import checkpoint as ckpt
from ganx.launch import free_port, rank_environment


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
    assert len((run_dir / ".hydra" / "invocations.jsonl").read_text().splitlines()) == 1
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

    from ganx.errors import ConfigError
    from ganx.validate import validate

    tiny = [o for o in TINY if not o.startswith("hardware=")]
    hardware = [] if any(o.startswith("hardware=") for o in overrides) else ["hardware=cpu"]
    cfg = compose_cfg(*tiny, *hardware, *overrides, tiny=False)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(cfg)


@pytest.mark.slow
def test_a_checkpoint_refused_for_ranks_gives_one_clear_error(tmp_path):
    """With hardware.processes, a resume that changes the model is refused by ganx-train's
    pre-flight, before any rank starts: one line naming the key, and nothing is changed."""
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
        line.startswith("ganx-train: error: cannot resume")
        and "model.generator.ngf: checkpoint 8, now 16" in line
        for line in last
    ), proc.stderr[-2000:]
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before
    assert not list(tmp_path.glob(".rank*"))


# --- ranks agree on every collective ---------------------------------------------------------

PROBE = Path(__file__).resolve().parent / "rank_probe.py"


def start_ranks(tmp_path: Path, *overrides: str, env_extra: dict | None = None):
    """Two gloo ranks as ``ganx.launch`` starts them (``python tests/rank_probe.py``: the real
    ``rank_main`` plus the test probes), on the tiny config; returns the processes."""
    from conftest import compose_cfg
    from omegaconf import OmegaConf

    cfg = compose_cfg(*TINY_WIDTHS["dcgan"], "reg=r1", "hardware.threads=1", *overrides)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config_file = tmp_path / "config.yaml"
    config_file.write_text(OmegaConf.to_yaml(cfg))
    port = free_port()
    procs = []
    for rank in (0, 1):
        env = rank_environment(rank, 2, port, PROBE_DIR=str(tmp_path), **(env_extra or {}))
        command = [sys.executable, str(PROBE), str(config_file), str(run_dir)]
        procs.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    return procs, run_dir


def wait_all(procs, timeout: float = 300) -> list[str]:
    outs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise AssertionError(
                "the ranks hung (a collective entered by one rank only?)"
            ) from None
        outs.append(out.decode(errors="replace"))
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out[-3000:]
    return outs


def assert_ranks_identical(tmp_path: Path) -> dict:
    """Every parameter and buffer of G, D and the EMA generator, bitwise, on both ranks."""
    zero, one = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert zero["step"] == one["step"] and zero["status"] == one["status"]
    assert set(zero) == set(one) and "ema_generator" in zero
    for key in ("generator", "discriminator", "ema_generator"):
        assert set(zero[key]) == set(one[key])
        for name, value in zero[key].items():
            assert torch.equal(value, one[key][name]), (key, name)
    return zero


@pytest.mark.slow
def test_evaluation_off_the_log_steps_keeps_ranks_in_step(tmp_path):
    """eval.every=3 with log.every=2: step 3 evaluates (rank 0) but is no log step; every rank
    still flushes there, so the loss all-reduce is entered by both."""
    procs, run_dir = start_ranks(
        tmp_path,
        "train.steps=6",
        "eval.every=3",
        "log.every=2",
        "eval.metrics=[fid_mnist,classes_mnist]",
        "eval.num_samples=128",
        f"metrics.cache_dir={tmp_path / 'cache'}",
    )
    wait_all(procs)
    final = assert_ranks_identical(tmp_path)
    assert final["step"] == 6 and final["status"] == "finished"
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 3, 4, 6]
    assert [r["step"] for r in records if "fid128_mnist" in r] == [3, 6]


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_all_at_the_same_step(tmp_path):
    procs, run_dir = start_ranks(
        tmp_path, "train.steps=400", "log.every=1", "ckpt.every=1000", "sample.every=1000"
    )
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert time.time() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGTERM)  # rank 1 only: rank 0 learns of it from rank 1
    outs = wait_all(procs)
    final = assert_ranks_identical(tmp_path)
    assert final["status"] == "interrupted" and 3 <= final["step"] < 400
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.pt"]
    assert ckpt.load(run_dir / "checkpoints" / "last.pt")["step"] == final["step"]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
    assert "resume=auto continues" in outs[0] and "resume=auto continues" in outs[1]


@pytest.mark.slow
def test_a_nan_on_one_rank_is_skipped_by_every_rank(tmp_path):
    """train.on_nonfinite=skip and rank 1's D loss NaN at its 5th D step (step 4): both ranks
    skip that D step (and its gradient all-reduce) and stay identical."""
    procs, run_dir = start_ranks(
        tmp_path,
        "train.steps=8",
        "log.every=1",
        "train.on_nonfinite=skip",
        env_extra={"PROBE_NAN_RANK": "1", "PROBE_NAN_CALL": "5"},
    )
    wait_all(procs)
    final = assert_ranks_identical(tmp_path)
    assert final["step"] == 8 and final["status"] == "finished"
    assert torch.load(tmp_path / "rank0.pt")["skipped"] == 1  # rank 0 had no NaN itself
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["skipped_steps"] == 1
    assert all(
        torch.isfinite(v).all() for v in final["generator"].values() if v.is_floating_point()
    )


@pytest.mark.slow
def test_ada_moves_p_alike_on_every_rank(tmp_path):
    """augment=ada on two ranks: the real-logit signs and image counts are all-reduced before p
    moves, so p follows the global r_t (logged as augment/real_sign, averaged over ranks) with
    the global image count, identically on both ranks, and the nets stay identical."""
    procs, run_dir = start_ranks(
        tmp_path,
        "train.steps=8",
        "log.every=1",
        "train.batch_size=16",
        "augment=ada",
        "augment.interval=1",
        "augment.kimg=1",  # p moves by 2 x 16 / 1000 per D step
        "augment.target=0",
    )
    wait_all(procs)
    assert_ranks_identical(tmp_path)
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    expected = 0.0
    for record in records:
        rise = 1.0 if record["augment/real_sign"] > 0 else -1.0  # torch.sign(0) = 0 aside
        expected = min(1.0, max(0.0, expected + rise * 2 * 16 / 1000))
    zero, one = (torch.load(tmp_path / f"rank{r}.pt")["augment"] for r in (0, 1))
    assert expected > 0  # p moved: the check is not vacuous
    assert float(zero["p"]) == pytest.approx(expected, abs=1e-6)
    assert torch.equal(zero["p"], one["p"])


def test_a_rank_that_finished_its_run_counts_as_finished_whatever_torch_s_teardown_did(
    tmp_path, caplog
):
    """A rank writes .rankN.done after the closing barrier; the launcher then takes its run as
    finished even if torch's teardown killed it afterwards (one warning line), and a rank
    without that word keeps its failure."""
    from ganx.launch import finished_rank_code

    (tmp_path / ".rank1.done").touch()
    with caplog.at_level("WARNING", logger="ganx"):
        assert finished_rank_code(tmp_path, 1, -6) == 0
    assert "rank 1 exited with code -6 after finishing its run" in caplog.text
    assert not (tmp_path / ".rank1.done").exists()
    assert finished_rank_code(tmp_path, 1, -6) == -6  # no word: a failure
    (tmp_path / ".rank0.done").touch()
    assert finished_rank_code(tmp_path, 0, 0) == 0 and not (tmp_path / ".rank0.done").exists()
