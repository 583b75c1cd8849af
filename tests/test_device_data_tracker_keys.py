"""The keys that only matter on a GPU, with a download, with worker processes or with a remote
tracker, set away from their defaults in this process and seen at work through the functions
that read them: the device choice and TF32/cudnn flags (set_up_process with the device it
chose), torch.compile's mode, the launcher's rank count (its processes stood in for), the data
source's split, category, centre crop, download, loader workers and device copy, the MLflow
and W&B trackers' arguments (their packages stood in for: the real ones are run by
test_trackers' slow tests), and ganx-export's ONNX format."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import numpy as np
import pytest
import torch
from conftest import compose_cfg
from internals import build_trackers, export_hydra, hardware_module, launch_module, set_up_process
from key_cover import override
from PIL import Image
from test_data import write_mnist_idx

from ganx.build import build_all, build_data, build_stream
from ganx.errors import ConfigError
from ganx.hardware import requested_processes

# --- hardware ---------------------------------------------------------------------------------


TORCH_FLAGS = (
    (torch.backends.cuda.matmul, "allow_tf32"),
    (torch.backends.cudnn, "allow_tf32"),
    (torch.backends.cudnn, "benchmark"),
)


@pytest.fixture
def on_fake_cuda(monkeypatch):
    """set_up_process as on a GPU machine: the device it selects is CUDA (nothing runs on it).
    torch's flags start opposite to their values now and are put back afterwards (by hand:
    cuBLAS's flag object refuses monkeypatch's undo)."""
    monkeypatch.setattr(hardware_module, "select_device", lambda hardware: torch.device("cuda"))
    saved = [getattr(flags, name) for flags, name in TORCH_FLAGS]
    for (flags, name), value in zip(TORCH_FLAGS, saved, strict=True):
        setattr(flags, name, not value)
    yield
    for (flags, name), value in zip(TORCH_FLAGS, saved, strict=True):
        setattr(flags, name, value)


def test_tf32_and_cudnn_benchmark_set_torch_flags_on_cuda(tmp_path, monkeypatch, on_fake_cuda):
    cfg = compose_cfg(
        "hardware=cuda",
        override("hardware.tf32", False, option="hardware/cuda"),
        override("hardware.cudnn_benchmark", False, option="hardware/cuda"),
    )
    device, _, _ = set_up_process(cfg, tmp_path)
    assert device.type == "cuda"
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cudnn.benchmark is False
    set_up_process(compose_cfg("hardware=cuda"), tmp_path)  # the preset's own values: on
    assert torch.backends.cuda.matmul.allow_tf32 is True
    assert torch.backends.cudnn.allow_tf32 is True and torch.backends.cudnn.benchmark is True
    monkeypatch.setattr(hardware_module, "select_device", lambda hardware: torch.device("cpu"))
    set_up_process(cfg, tmp_path)  # on a CPU the flags are left as they are
    assert torch.backends.cudnn.benchmark is True


def test_hardware_device_names_the_device(monkeypatch):
    from ganx.hardware import select_device

    cfg = compose_cfg(override("hardware.device", "cuda:1", option="hardware/cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device(cfg.hardware) == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="^hardware.device=cuda:1 but this machine has no CUDA"):
        select_device(cfg.hardware)
    assert select_device(compose_cfg().hardware) == torch.device("cpu")


def test_hardware_compile_wraps_both_nets_with_its_mode(monkeypatch):
    compiled = []

    def fake_compile(module, mode=None):
        compiled.append((module, mode))
        return ("compiled", module)

    monkeypatch.setattr(torch, "compile", fake_compile)
    parts = build_all(compose_cfg(override("hardware.compile", "default")), torch.device("cpu"))
    assert compiled == [(parts.generator, None), (parts.discriminator, None)]
    assert parts.generator_fast == ("compiled", parts.generator)
    assert parts.discriminator_fast == ("compiled", parts.discriminator)
    compiled.clear()
    parts = build_all(compose_cfg("hardware.compile=max-autotune"), torch.device("cpu"))
    assert [mode for _, mode in compiled] == ["max-autotune"] * 2
    compiled.clear()
    parts = build_all(compose_cfg(), torch.device("cpu"))
    assert compiled == [] and parts.generator_fast is parts.generator


class FakeRank:
    """A rank process as launch() starts it, standing in for ``python -m ganx.launch``: it
    records its environment; rank 0 writes the run's status.json as a finished rank 0 does."""

    started: list[dict] = []

    def __init__(self, command, env):
        FakeRank.started.append({"command": command, **env})
        if env["RANK"] == "0":
            run_dir = command[-1]
            with open(f"{run_dir}/status.json", "w") as f:
                json.dump({"status": "finished", "step": 4}, f)

    def poll(self):
        return 0

    def wait(self):
        return 0


def test_hardware_processes_is_the_launchers_rank_count(tmp_path, monkeypatch):
    cfg = compose_cfg(override("hardware.processes", 2), "hardware.threads=1")
    processes = requested_processes(cfg.hardware)
    assert processes == 2
    FakeRank.started = []
    monkeypatch.setattr(launch_module.subprocess, "Popen", FakeRank)
    assert launch_module.launch(cfg, tmp_path / "run", processes)["status"] == "finished"
    ranks = FakeRank.started
    assert [r["RANK"] for r in ranks] == ["0", "1"] and {r["WORLD_SIZE"] for r in ranks} == {"2"}
    assert ranks[0]["command"][1:3] == ["-m", launch_module.__name__]
    assert requested_processes(compose_cfg().hardware) == 1
    with pytest.raises(ConfigError, match="hardware.processes=auto starts one process per GPU"):
        requested_processes(compose_cfg("hardware.processes=auto").hardware)


# --- data sources -----------------------------------------------------------------------------


class FakeTorchvisionSet:
    """A torchvision data set class standing in for one whose files cannot be faked (STL-10 and
    CelebA check their files' md5, LSUN needs lmdb): records its arguments; its images are
    178 x 218 (CelebA's size), black with a white 60 x 60 centre."""

    made: list[dict] = []

    def __init__(self, root, transform=None, **kwargs):
        FakeTorchvisionSet.made.append(kwargs)
        self.transform = transform
        pixels = np.zeros((218, 178, 3), dtype=np.uint8)
        pixels[79:139, 59:119] = 255
        self.image = Image.fromarray(pixels)

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return self.transform(self.image), 0


@pytest.fixture
def fake_sets(monkeypatch):
    import torchvision.datasets as tvd

    FakeTorchvisionSet.made = []
    for name in ("STL10", "CelebA", "LSUN"):
        monkeypatch.setattr(tvd, name, FakeTorchvisionSet)
    return FakeTorchvisionSet.made


def test_stl10_split_and_lsun_category_choose_what_is_read(tmp_path, fake_sets):
    root = f"dataset.root={tmp_path}"
    build_data(compose_cfg("dataset=stl10", root, override("dataset.source.split", "train")))
    build_data(compose_cfg("dataset=stl10", root))
    assert [made["split"] for made in fake_sets] == ["train", "unlabeled"]
    fake_sets.clear()
    category = override("dataset.source.category", "church_outdoor")
    build_data(compose_cfg("dataset=lsun", root, category))
    build_data(compose_cfg("dataset=lsun", root))
    assert [made["classes"] for made in fake_sets] == [["church_outdoor_train"], ["bedroom_train"]]


def test_celeba_center_crop_is_the_crop_before_resizing(tmp_path, fake_sets):
    crop = override("dataset.source.center_crop", 60)
    cropped = build_data(compose_cfg("dataset=celeba", f"dataset.root={tmp_path}", crop))
    image = cropped.dataset[0][0]
    assert image.shape == (3, 64, 64) and image.min() == 1.0  # only the white centre is left
    default = build_data(compose_cfg("dataset=celeba", f"dataset.root={tmp_path}")).dataset[0][0]
    assert default.min() == -1.0 and default.max() == 1.0  # 140 px: the black border shows


def test_dataset_download_fetches_before_reading(tmp_path):
    """With the network blocked (conftest), download=true shows itself by trying to fetch the
    archive: the error says the download failed, and nothing is left behind."""
    from ganx.data import DataError

    root = tmp_path / "data"
    download = override("dataset.download", True)
    with pytest.raises(
        DataError, match="^dataset.download=true: the download of STL-10 failed: no"
    ):
        build_data(compose_cfg("dataset=stl10", f"dataset.root={root}", download))
    assert not root.exists()
    with pytest.raises(DataError, match="^data set 'stl10' not found under"):
        build_data(compose_cfg("dataset=stl10", f"dataset.root={root}"))


def test_on_device_decodes_once_and_keeps_the_images_on_the_device(tmp_path):
    write_mnist_idx(tmp_path, n=40)
    root = f"dataset.root={tmp_path}"
    cfg = compose_cfg("dataset=mnist", root, override("dataset.on_device", True, "dataset/mnist"))
    source = build_data(cfg)
    assert source.dataset is None and source.images.shape == (40, 1, 28, 28)
    stream = build_stream(cfg, source, torch.device("meta"))  # a device other than the CPU
    assert stream.images.device.type == "meta"
    lazy = build_data(compose_cfg("dataset=mnist", root))
    assert lazy.images is None and len(lazy.dataset) == 40
    kept = build_stream(
        compose_cfg("dataset=mnist5k"), build_data(compose_cfg()), torch.device("meta")
    )
    assert kept.images.device.type == "meta"  # mnist5k's default: on the device
    cfg = compose_cfg(override("dataset.on_device", False, "dataset/mnist5k"))
    assert build_stream(cfg, build_data(cfg), torch.device("meta")).images.device.type == "cpu"


def test_num_workers_is_the_data_loaders(tmp_path, monkeypatch):
    from ganx import data

    write_mnist_idx(tmp_path, n=40)
    loaders = []

    def fake_loader(dataset, batch_sampler, **kwargs):
        loaders.append(kwargs)
        return ([torch.stack([dataset[i][0] for i in b])] for b in batch_sampler)

    monkeypatch.setattr(data, "DataLoader", fake_loader)
    workers = override("dataset.num_workers", 2)
    cfg = compose_cfg("dataset=mnist", f"dataset.root={tmp_path}", workers)
    batch = build_stream(cfg, build_data(cfg), torch.device("cpu")).next()
    assert batch.shape == (16, 1, 28, 28)
    assert loaders[-1]["num_workers"] == 2 and loaders[-1]["prefetch_factor"] == 4
    cfg = compose_cfg("dataset=mnist", f"dataset.root={tmp_path}", "dataset.num_workers=0")
    build_stream(cfg, build_data(cfg), torch.device("cpu")).next()
    assert loaders[-1]["num_workers"] == 0 and loaders[-1]["prefetch_factor"] is None


# --- trackers ---------------------------------------------------------------------------------


def fake_package(monkeypatch, name: str, **modules) -> None:
    """Stand-in modules ``name`` and ``name.X`` (with the given attributes) in sys.modules."""
    for sub, attributes in {"": {}, **modules}.items():
        full = f"{name}.{sub}" if sub else name
        module = types.ModuleType(full)
        module.__spec__ = importlib.machinery.ModuleSpec(full, None)
        for attribute, value in attributes.items():
            setattr(module, attribute, value)
        monkeypatch.setitem(sys.modules, full, module)


def test_mlflow_tracking_uri_and_experiment_reach_mlflow(tmp_path, monkeypatch):
    calls = []

    class Client:
        def __init__(self, tracking_uri):
            calls.append(("client", tracking_uri))

        def get_experiment_by_name(self, name):
            calls.append(("find", name))

        def create_experiment(self, name, artifact_location=None):
            calls.append(("create", name, artifact_location))
            return "7"

        def create_run(self, experiment_id, run_name=None, tags=None):
            calls.append(("run", experiment_id))
            return types.SimpleNamespace(info=types.SimpleNamespace(run_id="r1"))

    fake_package(monkeypatch, "mlflow", tracking={"MlflowClient": Client})
    cfg = compose_cfg(
        "logger=[mlflow]",
        override("logger.mlflow.tracking_uri", f"sqlite:///{tmp_path}/store/runs.db"),
        override("logger.mlflow.experiment", "gan-study"),
    )
    build_trackers(cfg.logger, tmp_path)
    artifacts = (tmp_path / "store" / "mlartifacts" / "gan-study").as_uri()
    assert calls == [
        ("client", f"sqlite:///{tmp_path}/store/runs.db"),
        ("find", "gan-study"),
        ("create", "gan-study", artifacts),
        ("run", "7"),
    ]
    assert (tmp_path / "mlflow_run_id").read_text() == "r1\n"


def test_wandb_mode_project_and_entity_reach_wandb_init(tmp_path, monkeypatch):
    inits = []

    def init(**kwargs):
        inits.append(kwargs)
        return types.SimpleNamespace(dir=str(tmp_path / "w" / "files"), id="x", url=None)

    fake_package(monkeypatch, "wandb")
    monkeypatch.setattr(sys.modules["wandb"], "init", init, raising=False)
    monkeypatch.setattr(sys.modules["wandb"], "Settings", dict, raising=False)
    cfg = compose_cfg(
        "logger=[wandb]",
        override("logger.wandb.mode", "disabled"),
        override("logger.wandb.project", "gan-study"),
        override("logger.wandb.entity", "someone"),
    )
    trackers = build_trackers(cfg.logger, tmp_path)
    assert {k: inits[0][k] for k in ("mode", "project", "entity")} == {
        "mode": "disabled",
        "project": "gan-study",
        "entity": "someone",
    }
    assert trackers.where() == ["W&B run x (disabled): no URL"]
    build_trackers(compose_cfg("logger=[wandb]").logger, tmp_path)
    assert {k: inits[1][k] for k in ("mode", "project", "entity")} == {
        "mode": "offline",
        "project": "ganx",
        "entity": None,
    }


# --- ganx-export ------------------------------------------------------------------------------


def test_ganx_export_format_onnx_writes_an_onnx_model(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from test_tool_settings import run_tool

    from ganx.loop import train

    train(compose_cfg("train.steps=2", "ckpt.every=2"), tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    run_tool(
        export_hydra,
        f"checkpoint={tmp_path / 'run' / 'checkpoints' / 'last.pt'}",
        override("ganx-export:format", "onnx"),
        monkeypatch=monkeypatch,
    )
    model = onnx.load(str(tmp_path / "generator.onnx"))  # format=onnx's own default name
    assert [i.name for i in model.graph.input] == ["latents"]
    assert not (tmp_path / "generator.pt").exists()
