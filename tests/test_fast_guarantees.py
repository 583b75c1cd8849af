"""Guarantees that the slow end-to-end tests check through subprocesses and signals, checked
here in this process in about a second each, so the fast loop (and scripts/mutants.py) sees
them break too. The slow tests stay: they prove the same through the command a user types.

slow test (kept)                                          fast twin here
test_reliability::test_sigterm_checkpoints_and_exits_...   a SIGTERM to this process mid-run
test_resume_signals_best::test_elapsed_time_and_tensor...  train(), then train(resume=auto)
test_run_dirs::test_resume_records_each_invocation_...     rundir.record_invocation twice
test_api::test_ganx_sample_seed_and_latents                commands.sample.sample_checkpoint
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch
from conftest import compose_cfg
from key_cover import override, setting
from omegaconf import OmegaConf

import ganx
from ganx import checkpoint as ckpt
from ganx import loop
from ganx.commands.sample import sample_checkpoint, to_uint8_nhwc
from ganx.loop import train
from ganx.rundir import record_invocation

TINY_RUN = ("train.steps=4", "reg=none", "sample.every=100")


def records(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_sigterm_mid_run_checkpoints_that_step_and_marks_the_run_interrupted(
    tmp_path, monkeypatch
):
    calls = {"n": 0}
    original = loop.iterate

    def signalled(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # arrives during G step 2: the run stops after it
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "iterate", signalled)
    previous = signal.getsignal(signal.SIGTERM)
    result = train(compose_cfg(*TINY_RUN, "ckpt.every=100"), tmp_path)
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is put back
    assert result["status"] == "interrupted" and result["step"] == 2
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "interrupted" and status["step"] == 2
    assert ckpt.load(tmp_path / "checkpoints" / "last.pt")["step"] == 2


def test_elapsed_time_continues_across_a_resume(tmp_path):
    train(compose_cfg(*TINY_RUN, override("log.every", 1), "train.steps=2"), tmp_path)
    first = records(tmp_path)[-1]["time_s"]
    saved = ckpt.load(tmp_path / "checkpoints" / "last.pt")["elapsed_s"]
    assert saved >= first > 0
    train(compose_cfg(*TINY_RUN, "log.every=1", "resume=auto"), tmp_path)
    times = [r["time_s"] for r in records(tmp_path)]
    assert [r["step"] for r in records(tmp_path)] == [1, 2, 3, 4]
    assert times == sorted(times) and times[2] >= saved  # counted on, not from zero
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["wall_time_s"] >= times[-1]


def test_each_invocation_is_recorded_and_the_first_config_kept(tmp_path):
    first = compose_cfg("train.steps=2")
    hydra = OmegaConf.create({"overrides": {"task": ["train.steps=2"]}})
    record_invocation(tmp_path, first, hydra, {})
    kept = (tmp_path / ".hydra" / "config.yaml").read_bytes()
    second = compose_cfg("train.steps=4", "resume=auto")
    hydra = OmegaConf.create({"overrides": {"task": ["train.steps=4", "resume=auto"]}})
    record_invocation(tmp_path, second, hydra, {"train.steps": (2, 4)})
    assert (tmp_path / ".hydra" / "config.yaml").read_bytes() == kept
    lines = (tmp_path / ".hydra" / "invocations.jsonl").read_text().splitlines()
    got = [json.loads(x) for x in lines]
    assert [r["resume"] for r in got] == [None, "auto"]
    assert got[1]["changed"] == {"train.steps": {"was": 2, "now": 4}}
    assert got[1]["overrides"] == ["train.steps=4", "resume=auto"]


@pytest.fixture(scope="module")
def last_pt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train(compose_cfg(*TINY_RUN), run_dir)
    return run_dir / "checkpoints" / "last.pt"


def tool_cfg(last_pt, **settings):
    cfg = {
        "checkpoint": str(last_pt),
        "n": 12,
        "out": "samples.png",
        "seed": None,
        "latents": None,
        "ema": True,
        "bn_stats": None,
        "device": "cpu",
    }
    return OmegaConf.create({**cfg, **settings})


def test_the_sampling_tools_seed_draws_the_apis_noise(last_pt):
    images, latents, step = sample_checkpoint(
        tool_cfg(last_pt, seed=setting("ganx-sample:seed", 7), n=setting("ganx-sample:n", 12))
    )
    generator = ganx.load_generator(last_pt)
    assert step == 4 and images.shape[0] == 12
    assert torch.equal(latents, generator.latents(12, seed=7))
    assert np.array_equal(to_uint8_nhwc(images), to_uint8_nhwc(generator.sample(12, seed=7)))
    other, _, _ = sample_checkpoint(tool_cfg(last_pt, seed=8))
    assert not torch.equal(other, images)
    default, default_latents, _ = sample_checkpoint(tool_cfg(last_pt))  # seed null: eval noise
    assert not torch.equal(default_latents, latents)
