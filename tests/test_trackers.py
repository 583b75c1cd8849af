"""Trackers (tensorboard, mlflow, wandb, a user's own), start/end lines, train.log, progress
lines, gradient norms, throughput, and the records in checkpoints."""

import json

import pytest
import torch
from conftest import compose_cfg

import ganx
from ganx.build import ConfigError

CALLS: list[tuple] = []


class Recorder:
    """A tracker of our own: one class plus a logger entry (as a YAML file would add it)."""

    def __init__(self, run_dir, resume_step=0, label="rec"):
        self.label = label
        CALLS.append(("init", str(run_dir), resume_step))

    def add_scalar(self, tag, value, step):
        CALLS.append(("scalar", tag, step))

    def add_image(self, tag, image, step):
        CALLS.append(("image", tag, tuple(image.shape), step))

    def add_hparams(self, hparams, metrics):
        CALLS.append(("hparams", hparams, metrics))

    def log_text(self, tag, text, step):
        CALLS.append(("text", tag, text))

    def close(self):
        CALLS.append(("close",))


def fit(tmp_path, *overrides, name="run"):
    cfg = compose_cfg("eval.metrics=[fid_mnist]", "eval.num_samples=64", *overrides)
    return ganx.fit(cfg, tmp_path / name), tmp_path / name


def test_every_output_goes_through_the_tracker_interface(tmp_path):
    CALLS.clear()
    result, run = fit(
        tmp_path,
        "logger=none",
        "+logger.rec._target_=test_trackers.Recorder",
        "+logger.rec.label=mine",
        "log.progress=true",
    )
    assert result["status"] == "finished"
    kinds = [c[0] for c in CALLS]
    assert kinds[0] == "init" and kinds[-1] == "close"
    scalars = {c[1] for c in CALLS if c[0] == "scalar"}
    assert {"loss/D", "loss/G", "reg/r1", "grad_norm/D", "grad_norm/G", "lr/G"} <= scalars
    assert {"speed/it_per_s", "speed/img_per_s", "metrics/fid64_mnist"} <= scalars
    assert any(c[0] == "image" and c[1] == "samples" for c in CALLS)
    text = next(c for c in CALLS if c[0] == "text")
    assert text[1] == "config" and "reg:" in text[2] and "r1:" in text[2]
    _, hparams, metrics = next(c for c in CALLS if c[0] == "hparams")
    assert hparams["reg.r1.weight"] == 10.0 and hparams["seed"] == 0
    assert hparams["optim.g.lr"] == 0.0002 and hparams["model"] == "dcgan"
    assert {"final/fid64_mnist", "best/fid64_mnist", "final/loss/D"} <= set(metrics)
    assert metrics["best/fid64_mnist"] <= metrics["final/fid64_mnist"]
    assert not (run / "tb").exists()  # logger=none: tensorboard is a tracker like the others

    log = (run / "train.log").read_text()
    said = ("run directory:", "device: cpu", "parameters: G", "method: model=dcgan", "r1 (")
    for line in (*said, "data: mnist5k, training on 5,000 images"):
        assert line in log, line
    assert "step 2/4 (50%) loss/D" in log and "it/s" in log  # lines, not a bar, in a file
    assert "run finished at step 4" in log and "samples:" in log and "checkpoints:" in log
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["grad_norm/G"] > 0 and record["grad_norm/D"] > 0
    assert record["speed/it_per_s"] > 0
    assert record["speed/img_per_s"] == pytest.approx(record["speed/it_per_s"] * 16)
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert saved["record"]["ganx"] == ganx.__version__
    assert saved["record"]["versions"]["torch"]
    assert json.loads((run / "run.json").read_text())[-1] == saved["record"]


def test_tensorboard_hparams_config_text_and_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    _, run = fit(tmp_path)
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    tags = events.Tags()
    assert {"loss/D", "grad_norm/G", "speed/it_per_s"} <= set(tags["scalars"])
    assert "samples" in tags["images"]
    assert any(t.startswith("config") for t in events.PluginTagToContent("text"))
    # the HParams session: start and end, no experiment summary, its own metric scalars
    session = EventAccumulator(str(run / "tb" / "hparams"))
    session.Reload()
    content = session.PluginTagToContent(metadata.PLUGIN_NAME)
    assert metadata.SESSION_START_INFO_TAG in content and metadata.SESSION_END_INFO_TAG in content
    assert metadata.EXPERIMENT_TAG not in content
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["reg.r1.weight"].number_value == 10.0
    assert start.hparams["loss"].string_value == "NonSaturatingLoss"
    assert {"hparams/final/fid64_mnist", "hparams/best/fid64_mnist"} <= set(
        session.Tags()["scalars"]
    )


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_mlflow_tracker_logs_to_a_local_store(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    _, run = fit(tmp_path, "logger=[mlflow]", f"logger.mlflow.tracking_uri={store}")
    client = MlflowClient(tracking_uri=store.as_uri())
    run_id = (run / "mlflow_run_id").read_text().strip()
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert {"loss/D", "loss/G", "grad_norm/D", "hparams/final/fid64_mnist"} <= set(
        logged.data.metrics
    )
    assert logged.data.params["reg.r1.weight"] == "10.0"
    history = client.get_metric_history(run_id, "loss/D")
    assert [m.step for m in history] == [2, 4]


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_wandb_tracker_runs_offline(tmp_path):
    pytest.importorskip("wandb")
    result, run = fit(tmp_path, "logger=[tensorboard,wandb]")
    assert result["status"] == "finished"
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
    assert (run / "tb").is_dir()  # several trackers at once


def test_missing_tracker_package_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import importlib.util

    from ganx.train import prepare

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("mlflow", "wandb") else real(name, *a),
    )
    for name in ("mlflow", "wandb"):
        cfg = compose_cfg(f"logger=[tensorboard,{name}]")
        with pytest.raises(ConfigError, match=rf"logger={name}: .*pip install 'ganx\[{name}\]'"):
            prepare(cfg)
    assert not list(tmp_path.iterdir())
