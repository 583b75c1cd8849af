"""Reliability: SIGKILL during checkpoint writes and training, signals, divergence, disk errors,
untrusted checkpoint files."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY, TINY_WIDTHS, compose_cfg
from ganx_cli import wait_for_step
from internals import poison_d_loss
from key_cover import override

from ganx import checkpoint as ckpt
from ganx.errors import TrainingFailed
from ganx.loop import train

WRITER = """
import sys, torch
from pathlib import Path
from ganx.checkpoint import atomic_save
path = Path(sys.argv[1])
i = 0
while True:
    i += 1
    atomic_save({"i": i, "w": torch.full((256, 1024), float(i))}, path)
    if i == 1:
        print("ready", flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_checkpoint_writes_never_corrupts_last(tmp_path):
    path = tmp_path / "last.pt"
    rng = random.Random(0)
    seen = []
    for _ in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # always a complete file (a plain dict: ckpt.load would ask for a ganx checkpoint)
        state = torch.load(path, weights_only=True)
        assert torch.all(state["w"] == state["i"])
        seen.append(state["i"])
    assert max(seen) > 1  # kills landed at different points of the write loop
    leftovers = [p for p in tmp_path.iterdir() if p.name != "last.pt"]
    assert all(p.name.startswith(".last.pt.") for p in leftovers)  # only temp files remain


def cli_args(run_dir: Path, *extra: str) -> list[str]:
    """The same config as ``compose_cfg(*extra)`` (one thread, as in-process tests use)."""
    return [
        sys.executable,
        "-m",
        "ganx.train",
        *TINY,
        *TINY_WIDTHS["dcgan"],
        "hardware.threads=1",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def final_state(run_dir: Path) -> dict:
    return ckpt.load(run_dir / "checkpoints" / "last.pt")


def assert_same_training_state(a: dict, b: dict) -> None:
    for key in ("generator", "discriminator", "ema_generator"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), (key, name)
    for key in ("opt_g", "opt_d"):
        for pid, entry in a[key]["state"].items():
            for name, value in entry.items():
                assert torch.equal(
                    torch.as_tensor(value), torch.as_tensor(b[key]["state"][pid][name])
                )
    assert a["regularizers"] == b["regularizers"] and a["step"] == b["step"]


@pytest.mark.slow
@pytest.mark.parametrize("regs", ["[r1]", "[js,lecam]"])
def test_sigkill_at_random_steps_then_resume_equals_uninterrupted(tmp_path, regs):
    steps = 24
    common = [
        f"train.steps={steps}",
        "log.every=1",
        "ckpt.every=1",
        "sample.every=5",
        f"reg={regs}",
        "train.n_dis=2",
    ]
    if "js" in regs:
        common += ["reg.js.anneal=true", "reg.lecam.start_step=3", "reg.lecam.decay=0.5"]
    straight = tmp_path / "straight"
    train(compose_cfg(*common), straight)

    run_dir = tmp_path / "killed"
    rng = random.Random(1)
    kill_steps = sorted(rng.sample(range(3, steps - 2), 3))
    for kill_at in kill_steps:
        proc = subprocess.Popen(
            cli_args(run_dir, *common, "resume=auto"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_step(run_dir, kill_at, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert ckpt.load(run_dir / "checkpoints" / "last.pt")["step"] >= kill_at - 1
    subprocess.run(
        cli_args(run_dir, *common, "resume=auto"), check=True, capture_output=True, timeout=300
    )
    assert_same_training_state(final_state(straight), final_state(run_dir))


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_cleanly_then_resumes(tmp_path):
    common = ["train.steps=40", "log.every=1", "ckpt.every=100", "sample.every=100"]
    straight = tmp_path / "straight"
    train(compose_cfg(*common), straight)
    run_dir = tmp_path / "run"
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen(
            cli_args(run_dir, *common, "resume=auto"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_step(run_dir, 5 if sig == signal.SIGTERM else 15, proc)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 128 + sig, out  # 143 for SIGTERM, 130 for SIGINT
        assert "resume=auto continues" in out
        state = final_state(run_dir)
        assert 5 <= state["step"] < 40  # saved at the interruption, not at a schedule point
    subprocess.run(
        cli_args(run_dir, *common, "resume=auto"), check=True, capture_output=True, timeout=300
    )
    assert_same_training_state(final_state(straight), final_state(run_dir))


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    calls = poison_d_loss(monkeypatch, at_call=5)
    cfg = compose_cfg("train.steps=8", "ckpt.every=1", "log.every=1")
    result = train(cfg, tmp_path / "stop")
    assert result["status"] == "diverged"
    assert "step 4: loss/D is nan" in result["error"]
    assert final_state(tmp_path / "stop")["step"] == 4  # the last good one
    assert all(
        torch.isfinite(v).all()
        for v in final_state(tmp_path / "stop")["generator"].values()
        if v.is_floating_point()
    )

    calls["n"] = 0
    cfg = compose_cfg(
        "train.steps=8", "ckpt.every=1", "log.every=1", override("train.on_nonfinite", "skip")
    )
    result = train(cfg, tmp_path / "skip")
    assert result["status"] == "finished" and result["step"] == 8
    lines = [
        json.loads(x) for x in (tmp_path / "skip" / "metrics.jsonl").read_text().split("\n") if x
    ]
    assert lines[-1]["skipped_steps"] == 1


def test_malicious_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "bad.pt"
    torch.save({"generator": Exploit()}, bad)
    with pytest.raises(ckpt.CheckpointError, match="refusing to load"):
        train(compose_cfg(f"resume={bad}"), tmp_path / "run")
    assert not marker.exists()
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt.CheckpointError):
        train(compose_cfg(f"resume={garbage}"), tmp_path / "run2")


def test_failed_checkpoint_write_is_clear_and_keeps_previous(tmp_path, monkeypatch):
    real_save = torch.save
    calls = {"n": 0}

    def flaky_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 3:  # the 2nd checkpoint (last.pt + step copy = 2 saves each)
            if isinstance(f, (str, os.PathLike)):  # torch.save opens a path itself
                f = open(f, "wb")  # noqa: SIM115
            f.write(b"PK\x03\x04 half a checkpoint")  # the disk fills up mid-write
            f.flush()
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", flaky_save)
    with pytest.raises(TrainingFailed, match="no space left on device") as failed:
        train(compose_cfg("train.steps=4", "ckpt.every=2"), tmp_path)
    assert isinstance(failed.value.__cause__, ckpt.CheckpointError)
    monkeypatch.setattr(torch, "save", real_save)
    assert final_state(tmp_path)["step"] == 2  # the previous last.pt, intact
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))


def test_unwritable_run_dir_fails_clearly(tmp_path):
    """Tests run as root, which ignores read-only permissions; a file where the checkpoint
    folder must go makes the run dir unwritable for ganx all the same."""
    from ganx.errors import ConfigError

    (tmp_path / "checkpoints").write_text("in the way")
    with pytest.raises(ConfigError, match="cannot write to the run directory"):
        train(compose_cfg(), tmp_path)
    assert (tmp_path / "checkpoints").read_text() == "in the way"  # nothing overwritten
