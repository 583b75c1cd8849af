"""Resume over state the default config does not create: fp16's GradScaler, an objective's
best.pt, folded lazy regularisation, instance noise, an EMA that starts late. Each: 6 tiny
steps straight equal 3 + 3 resumed in every checkpointed value (test_resume_eval's tree
comparison); the other non-default states (augmentation, relativistic losses, LeCam, JS, DAT,
separate lazy R1) have theirs in test_augment.py and test_train.py."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_cfg
from key_cover import override
from test_resume_eval import assert_trees_equal, last_state

from ganx import checkpoint as ckpt
from ganx.loop import train

COMMON = ["train.n_dis=2", "ckpt.every=3", "sample.every=3", "log.every=3", "reg=[r1]"]


def straight_and_resumed(tmp_path, *extra: str) -> tuple[dict, dict]:
    for run, more in (
        ("straight", []),
        ("pieces", ["train.stop_at=3"]),
        ("pieces", ["resume=auto"]),
    ):
        result = train(compose_cfg(*COMMON, *extra, "train.steps=6", *more), tmp_path / run)
        assert result["step"] == (3 if more == ["train.stop_at=3"] else 6)
    return last_state(tmp_path / "straight"), last_state(tmp_path / "pieces")


def test_fp16_grad_scaler_resumes_bitwise(tmp_path):
    """CPU autocast in fp16 with a GradScaler (torch >= 2.3 has a CPU scaler): its scale and
    growth tracker are checkpointed and restored."""
    straight, pieces = straight_and_resumed(
        tmp_path,
        override("hardware.amp", "fp16"),
        "model=mlp",
        "model.generator.widths=[16,32]",
        "model.discriminator.widths=[32,16]",
    )
    assert straight["scaler"] is not None and "scale" in straight["scaler"]
    assert_trees_equal(straight, pieces)


def test_bf16_autocast_resumes_bitwise(tmp_path):
    straight, pieces = straight_and_resumed(tmp_path, "hardware.amp=bf16")
    assert_trees_equal(straight, pieces)


def test_an_objective_and_its_best_pt_resume_bitwise(tmp_path):
    objective = [
        "eval.metrics=[fid_mnist]",
        "eval.num_samples=64",
        "metrics.real_count=64",
        "eval.every=2",
        "eval.objective=fid_mnist",
        f"metrics.cache_dir={tmp_path / 'cache'}",
    ]
    straight, pieces = straight_and_resumed(tmp_path, *objective)
    assert_trees_equal(straight, pieces)
    best = [last_state(tmp_path / run, "best.pt") for run in ("straight", "pieces")]
    assert_trees_equal(*best)
    assert ckpt.load(tmp_path / "pieces" / "checkpoints" / "best.pt")["step"] in (2, 4, 6)


@pytest.mark.parametrize(
    "extra",
    [
        ["reg.r1.interval=2", "train.lazy_regularization=folded"],
        ["reg=[instance_noise]", "reg.instance_noise.anneal_steps=5"],
        ["train.ema_start=4", "train.ema=0.9"],
    ],
    ids=["folded_lazy_r1", "instance_noise", "late_ema"],
)
def test_other_non_default_state_resumes_bitwise(tmp_path, extra):
    straight, pieces = straight_and_resumed(tmp_path, *extra)
    assert_trees_equal(straight, pieces)
    assert not torch.equal(
        straight["generator"][next(iter(straight["generator"]))],
        ckpt.load(tmp_path / "straight" / "checkpoints" / "step_0000003.pt")["generator"][
            next(iter(straight["generator"]))
        ],
    )
