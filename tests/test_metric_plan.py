"""Default metrics of RGB data sets, settled at start against the Inception weights at hand;
dataset.num_workers=auto."""

import os

import pytest
import torch
from conftest import compose_cfg

from ganx.build import ConfigError, loader_workers
from ganx.metric_plan import plan_metrics

INCEPTION = ["fid_inception", "kid_inception", "is_inception"]


def weights(tmp_path, head: bool):
    path = tmp_path / ("full.pt" if head else "converted.pt")
    fc = torch.ones(1008, 2048) if head else torch.zeros(1008, 2048)
    torch.save({"fc.weight": fc}, path)
    return path


@pytest.mark.parametrize(
    "dataset", ["cifar10", "cifar100", "stl10", "celeba", "lsun", "imagefolder", "fashion_mnist"]
)
def test_image_data_sets_default_to_inception_metrics(dataset):
    cfg = compose_cfg(f"dataset={dataset}", tiny=False)
    assert list(cfg.eval.metrics) == INCEPTION


def test_design_card_command_logs_fid_and_is_with_the_original_weights(tmp_path, caplog):
    cfg = compose_cfg(
        "loss=hinge",
        "reg=dat",
        "dataset=cifar10",
        f"metrics.inception_weights={weights(tmp_path, head=True)}",
        tiny=False,
    )
    assert plan_metrics(cfg) == []
    assert list(cfg.eval.metrics) == INCEPTION


def test_offline_weights_leave_out_is_with_one_line(tmp_path, caplog):
    cfg = compose_cfg(
        "dataset=cifar10", f"metrics.inception_weights={weights(tmp_path, False)}", tiny=False
    )
    with caplog.at_level("WARNING", logger="ganx"):
        notes = plan_metrics(cfg)
    assert list(cfg.eval.metrics) == ["fid_inception", "kid_inception"]
    assert len(notes) == 1 and "is_inception left out" in notes[0]
    assert "original weights" in notes[0] and "network" in notes[0]
    assert [r.getMessage() for r in caplog.records] == notes
    # asked for explicitly, IS without a head is refused before training, not dropped
    explicit = compose_cfg(
        "dataset=cifar10",
        "eval.metrics=[fid_inception,is_inception]",
        f"metrics.inception_weights={weights(tmp_path, False)}",
        tiny=False,
    )
    with pytest.raises(ConfigError, match="is_inception.*without a classifier head"):
        plan_metrics(explicit)


def test_no_weights_and_no_network_leaves_inception_out(tmp_path, monkeypatch):
    import ganx.fidelity

    missing = tmp_path / "hub" / "weights.pt"
    monkeypatch.setattr(ganx.fidelity, "default_inception_weights", lambda: missing)
    cfg = compose_cfg("dataset=cifar10", tiny=False)
    notes = plan_metrics(cfg)  # the download is tried and fails: the network is blocked
    assert list(cfg.eval.metrics) == [] and "ganx-weights inception" in notes[0]
    assert not missing.exists()


def test_num_workers_follow_the_cores():
    cores = len(os.sched_getaffinity(0))
    assert loader_workers("auto") == max(0, min(8, cores - 1))
    assert loader_workers("auto", world=cores) == 0
    assert loader_workers(3) == 3
    for bad in (-1, "many", 1.5):
        with pytest.raises(ConfigError, match="dataset.num_workers"):
            loader_workers(bad)
    assert compose_cfg("dataset=stl10", tiny=False).dataset.num_workers == "auto"
