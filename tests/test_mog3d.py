"""Roth et al.'s 3-D experiment (3DGAN/3DGAN.py): the data's geometry, its metrics, the preset."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import compose_cfg

from ganx.data import mog3d, mog3d_frame
from ganx.loop import train
from ganx.metrics.registry import EvalContext, compute_metrics


def test_mog3d_geometry_matches_the_reference():
    frame = mog3d_frame()
    rot, shift, centres = frame["rotation"], frame["shift"], frame["centres"]
    assert torch.allclose(rot @ rot.T, torch.eye(3, dtype=rot.dtype), atol=1e-12)
    # Rodrigues: pi/4 about (1, -1, 0)/sqrt(2) leaves the axis fixed
    axis = torch.tensor([1.0, -1.0, 0.0], dtype=rot.dtype) / math.sqrt(2)
    assert torch.allclose(axis @ rot, axis)
    assert torch.allclose(shift, torch.full((3,), 1 / math.sqrt(3), dtype=rot.dtype))
    # 7 centres on a unit circle around the shift, 2 pi / 7 apart, all on the tilted plane
    offsets = centres - shift
    assert len(centres) == 7 and torch.allclose(offsets.norm(dim=1), torch.ones(7, dtype=rot.dtype))
    assert torch.allclose(offsets @ frame["normal"], torch.zeros(7, dtype=rot.dtype), atol=1e-12)
    chord = (offsets[0] - offsets[1]).norm().item()
    assert abs(chord - 2 * math.sin(math.pi / 7)) < 1e-9
    # the first centre is (sin 0, cos 0, 0) = (0, 1, 0) before the rotation
    assert torch.allclose(centres[0], torch.tensor([0.0, 1.0, 0.0], dtype=rot.dtype) @ rot + shift)
    assert not torch.allclose(frame["normal"], torch.tensor([0.0, 0.0, 1.0], dtype=rot.dtype))


def test_mog3d_metrics_on_the_data_and_on_a_collapse():
    source = mog3d(n=7000)
    data = compute_metrics(["modes"], EvalContext(source.images[:3500], source))
    assert data["modes_mog3d"] == 7
    assert data["high_quality_mog3d"] > 0.97  # 3 std in a 2-D Gaussian: 98.9%
    assert data["plane_distance_mog3d"] < 1e-6
    one_mode = source.extra["centres"][:1].repeat(500, 1) + 0.2 * source.extra["normal"]
    collapsed = compute_metrics(["modes"], EvalContext(one_mode, source))
    assert collapsed["modes_mog3d"] == 0
    assert abs(collapsed["plane_distance_mog3d"] - 0.2) < 1e-5


def test_roth_3dgan_preset_trains_and_scores(tmp_path):
    cfg = compose_cfg(
        "experiment=roth_3dgan",
        "train.steps=4",
        "train.batch_size=32",
        "eval.every=4",
        "eval.num_samples=256",
        "sample.every=4",
        "sample.n=64",
        "ckpt.every=4",
        "log.every=2",
        "hardware=cpu",
        "log.progress=false",
        tiny=False,
    )
    result = train(cfg, tmp_path / "run")
    assert result["status"] == "finished"
    assert {"modes_mog3d", "high_quality_mog3d", "plane_distance_mog3d"} <= set(result)
    assert "reg/js" in result


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_mog3d_figure_script(tmp_path):
    cfg = compose_cfg(
        "experiment=roth_3dgan",
        "reg=none",
        "train.steps=4",
        "train.batch_size=32",
        "eval.at=[2,4]",
        "eval.every=4",
        "eval.num_samples=64",
        "sample.every=4",
        "ckpt.every=4",
        "hardware=cpu",
        "log.progress=false",
        tiny=False,
    )
    train(cfg, tmp_path / "sweep" / "reg=none" / "seed=0")
    script = Path(__file__).resolve().parents[1] / "scripts" / "mog3d_figure.py"
    out = tmp_path / "fig.png"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "sweep"), "--out", str(out), "-n", "64"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0 and "| reg=none seed=0 | 4 |" in done.stdout


def test_mog3d_plane_is_tilted_by_a_quarter_turn():
    """The rotation is by pi / 4 (rothk/Stabilizing_GANs@023b84d:3DGAN/3DGAN.py:111-118): the
    plane's normal makes that angle with z, and the 7 centres lie 2 pi / 7 apart from angle 0."""
    frame = mog3d_frame()
    z = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert (frame["normal"] @ z).item() == pytest.approx(math.cos(math.pi / 4), abs=1e-12)
    assert frame["normal"].norm().item() == pytest.approx(1.0, abs=1e-12)
    flat = (frame["centres"] - frame["shift"]) @ frame["rotation"].T  # back in the plane
    t = torch.arange(7, dtype=torch.float64) * (2 * math.pi / 7)
    expected = torch.stack([t.sin(), t.cos(), 0 * t], 1)  # (sin t, cos t, 0), as Roth et al.
    assert torch.allclose(flat, expected, atol=1e-12)
    five = mog3d_frame(radius=2.0, components=5)
    assert len(five["centres"]) == 5
    radii = (five["centres"] - five["shift"]).norm(dim=1)
    assert torch.allclose(radii, torch.full((5,), 2.0, dtype=torch.float64))
