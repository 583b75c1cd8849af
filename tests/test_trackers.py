"""Trackers (tensorboard, mlflow, wandb, a user's own), start/end lines, train.log, progress
lines, gradient norms, throughput, and the records in checkpoints."""

import json
from pathlib import Path

import pytest
import torch
from conftest import compose_cfg

import ganx
from ganx.errors import ConfigError

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
    # the HParams session in the run's own event files (one run in tensorboard's list): start
    # and end, no experiment summary, no one-point charts of its own
    assert [p.name for p in (run / "tb").iterdir() if p.is_dir()] == []
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    assert metadata.SESSION_START_INFO_TAG in content and metadata.SESSION_END_INFO_TAG in content
    assert metadata.EXPERIMENT_TAG not in content
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["reg.r1.weight"].number_value == 10.0
    assert start.hparams["loss"].string_value == "NonSaturatingLoss"
    assert not any(t.startswith("hparams/") for t in tags["scalars"])
    assert "metrics/fid64_mnist" in tags["scalars"]  # the metric column: its final value
    log = (run / "train.log").read_text()
    assert f"tensorboard --logdir {run}\n" in log


def test_tensorboard_lists_each_run_of_a_sweep_once_in_its_hparams_tab(tmp_path):
    """What tensorboard reads from a folder of two runs: two runs (no ``tb/hparams`` twins),
    each holding its HParams session."""
    from tensorboard.backend.event_processing import plugin_event_multiplexer as multiplexer
    from tensorboard.plugins.hparams import metadata

    for weight in (1, 10):
        fit(tmp_path, f"reg.r1.weight={weight}", name=f"w{weight}")
    mux = multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    assert sorted(mux.Runs()) == ["w1/tb", "w10/tb"]
    sessions = mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    assert sorted(sessions) == ["w1/tb", "w10/tb"]
    assert all(metadata.SESSION_START_INFO_TAG in tags for tags in sessions.values())


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_mlflow_tracker_logs_to_a_local_store(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the default store, here in tmp_path
    _, run = fit(tmp_path, "logger=[mlflow]", f"logger.mlflow.tracking_uri='{store}'")
    client = MlflowClient(tracking_uri=store)
    run_id = (run / "mlflow_run_id").read_text().strip()
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert {"loss/D", "loss/G", "grad_norm/D", "hparams/final/fid64_mnist"} <= set(
        logged.data.metrics
    )
    assert logged.data.params["reg.r1.weight"] == "10.0"
    history = client.get_metric_history(run_id, "loss/D")
    assert [m.step for m in history] == [2, 4]
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts beside the database
    assert client.list_artifacts(run_id)  # the sample grids and the config text
    log = (run / "train.log").read_text()
    assert f"MLflow run {run_id} in {store}: mlflow ui --backend-store-uri {store}" in log
    # the default setting, as a user runs it: ./mlflow.db where ganx-train starts
    from ganx.trackers import mlflow_store

    assert mlflow_store("sqlite:///mlflow.db")[0] == f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    assert compose_cfg("logger=[mlflow]").logger.mlflow.tracking_uri == "sqlite:///mlflow.db"


@pytest.mark.slow  # starts MLflow's server
def test_mlflow_viewer_command_finds_the_run(tmp_path):
    """The viewer command the end of the run prints, started on 127.0.0.1: MLflow's REST API
    serves the run and its metrics (needs the full mlflow package: its server)."""
    import importlib.util
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    if importlib.util.find_spec("flask") is None:
        pytest.skip("mlflow-skinny only: no viewer (pip install 'ganx[mlflow]')")
    _, run = fit(
        tmp_path, "logger=[mlflow]", f"logger.mlflow.tracking_uri='sqlite:///{tmp_path}/m.db'"
    )
    run_id = (run / "mlflow_run_id").read_text().strip()
    line = next(x for x in (run / "train.log").read_text().splitlines() if "mlflow ui" in x)
    command = line.split(": ", 1)[1].split(": ", 1)[-1].split()
    assert command[:2] == ["mlflow", "ui"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow = str(Path(sys.executable).parent / "mlflow")
    server = subprocess.Popen(
        [mlflow, *command[1:], "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its workers in one process group, ended together below
    )
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get?run_id={run_id}"
    try:
        deadline, answer = time.time() + 120, None
        while time.time() < deadline and answer is None:
            assert server.poll() is None, server.stderr.read()
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        assert answer is not None, "the viewer did not answer within 120 s"
        assert answer["run"]["info"]["run_id"] == run_id
        assert answer["run"]["info"]["status"] == "FINISHED"
        keys = {m["key"] for m in answer["run"]["data"]["metrics"]}
        assert {"loss/D", "metrics/fid64_mnist"} <= keys
    finally:
        import os
        import signal

        os.killpg(server.pid, signal.SIGTERM)  # the group this test started (server, workers)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_wandb_tracker_runs_offline(tmp_path):
    pytest.importorskip("wandb")
    result, run = fit(tmp_path, "logger=[tensorboard,wandb]")
    assert result["status"] == "finished"
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
    log = (run / "train.log").read_text()
    assert f"W&B offline run in {offline[0]}: wandb sync {offline[0]}" in log
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


def test_a_media_method_of_the_tracker_base_reaches_every_tracker_with_its_default(monkeypatch):
    """A new kind of media is one method on Tracker: Trackers passes each add_*/log_* method of
    Tracker on (fan_out), a tracker that overrides it gets its own call, one that does not
    (Recorder: a user's own, not derived from Tracker) gets Tracker's default."""
    from ganx import trackers

    def add_histogram(self, tag, values, step):
        self.add_scalar(f"{tag}/mean", float(values.mean()), step)

    monkeypatch.setattr(trackers.Tracker, "add_histogram", add_histogram, raising=False)
    fanned = trackers.fan_out("add_histogram")
    monkeypatch.setattr(trackers.Trackers, "add_histogram", fanned, raising=False)
    media = {n for n in vars(trackers.Tracker) if n.startswith(("add_", "log_"))}
    assert media <= set(vars(trackers.Trackers))  # the ones Tracker has: each passed on

    class Native(Recorder):
        def add_histogram(self, tag, values, step):
            CALLS.append(("histogram", tag, step))

    CALLS.clear()
    both = trackers.Trackers([Recorder("d"), Native("d")])
    both.add_histogram("D/logits", torch.tensor([1.0, 3.0]), 7)
    both.log_text("config", "a: 1", 7)
    assert CALLS[2:] == [
        ("scalar", "D/logits/mean", 7),
        ("histogram", "D/logits", 7),
        ("text", "config", "a: 1"),
        ("text", "config", "a: 1"),
    ]
