"""Data sets in their real on-disk formats (tiny fakes, no download), the embedded digits, the
resumable batch stream, and every model family on the data it supports."""

import pickle
import struct

import numpy as np
import pytest
import torch
from conftest import compose_cfg

from ganx.data import BatchStream, DataSource, mnist5k
from ganx.errors import ConfigError, DataError
from ganx.loop import train


def write_mnist_idx(root, n=40):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    for split in ("train", "t10k"):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()
        )
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + labels.tobytes()
        )
    return images


def write_cifar10(root, per_batch=8):
    """Five batches in CIFAR-10's python format; returns their rows and labels, in file order."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for i in range(1, 6):
        batch = {
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, per_batch).tolist(),
            "batch_label": f"training batch {i} of 5",
        }
        with open(base / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch, f)
        rows.append(batch["data"])
        labels += batch["labels"]
    return np.concatenate(rows), labels


class Python2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2's str (BINSTRING), as the cPickle that wrote the official
    CIFAR batches did: Python 3 reads them only with encoding="latin1"."""

    def save_python2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[str] = save_python2_str
    dispatch[bytes] = save_python2_str


def test_cifar_reader_keeps_every_image_and_label_in_file_order(tmp_path):
    """The CIFAR reader on files in the real format (fast: no training): each 3072-byte row is
    one image, channel-major (R, G, B planes of 32 x 32), mapped to [-1, 1]; the options resize
    it (as resize does) or average the channels."""
    from ganx.data import cifar, resize

    rows, labels = write_cifar10(tmp_path, per_batch=3)
    source = cifar("cifar10", str(tmp_path))
    expected = torch.from_numpy(rows).float().view(-1, 3, 32, 32) / 127.5 - 1
    assert (source.name, source.channels, source.resolution) == ("cifar10", 3, 32)
    assert torch.equal(source.images, expected) and source.images.is_contiguous()
    assert source.labels.tolist() == labels and len(source) == 15
    small = cifar("cifar10", str(tmp_path), resolution=16)
    assert small.resolution == 16 and torch.equal(small.images, resize(expected, 16))
    grey = cifar("cifar10", str(tmp_path), channels=1)
    assert grey.channels == 1 and torch.equal(grey.images, expected.mean(dim=1, keepdim=True))
    # CIFAR-100: one "train" file, its fine labels
    base = tmp_path / "c100" / "cifar-100-python"
    base.mkdir(parents=True)
    with open(base / "train", "wb") as f:
        pickle.dump({"data": rows[:4], "fine_labels": [7, 8, 9, 99], "coarse_labels": [0] * 4}, f)
    hundred = cifar("cifar100", str(tmp_path / "c100"))
    assert hundred.labels.tolist() == [7, 8, 9, 99] and torch.equal(hundred.images, expected[:4])
    # the official files are Python 2 pickles: byte-string keys and array data
    with open(base / "train", "wb") as f:
        Python2Pickler(f, protocol=2).dump({"data": rows[:4], "fine_labels": [7, 8, 9, 99]})
    assert torch.equal(cifar("cifar100", str(tmp_path / "c100")).images, expected[:4])


def test_cifar_download_runs_torchvisions_download_only_when_the_files_are_missing(
    tmp_path, monkeypatch
):
    """dataset.download=true: torchvision's CIFAR class fetches the archive into the root (here
    a stand-in that writes the batches), then ganx's reader reads them; an existing folder is
    not fetched again; without download a missing folder is an error, never a fetch."""
    import torchvision.datasets as tvd

    from ganx.data import cifar

    fetched = []

    def fetcher(name):
        def fetch(root, download):
            fetched.append((name, root, download))
            write_cifar10(root, per_batch=2)

        return fetch

    monkeypatch.setattr(tvd, "CIFAR10", fetcher("CIFAR10"))
    monkeypatch.setattr(tvd, "CIFAR100", fetcher("CIFAR100"))
    with pytest.raises(DataError, match="not found under"):
        cifar("cifar10", str(tmp_path / "a"))
    assert fetched == []
    source = cifar("cifar10", str(tmp_path / "a"), download=True)
    assert fetched == [("CIFAR10", tmp_path / "a", True)] and len(source) == 10
    cifar("cifar10", str(tmp_path / "a"), download=True)  # present: not fetched again
    assert len(fetched) == 1
    with pytest.raises(DataError, match="cifar-100-python"):  # the stand-in wrote CIFAR-10's
        cifar("cifar100", str(tmp_path / "b"), download=True)
    assert fetched[1] == ("CIFAR100", tmp_path / "b", True)

    def offline(root, download):
        (root / "cifar-10-batches-py").mkdir(parents=True)
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tvd, "CIFAR10", offline)
    with pytest.raises(DataError) as err:
        cifar("cifar10", str(tmp_path / "c"), download=True)
    assert str(err.value) == (
        "dataset.download=true: the download of CIFAR-10 failed: OSError: [Errno -3] Temporary "
        f"failure in name resolution; nothing was left in {tmp_path / 'c'}"
    )
    assert not (tmp_path / "c").exists()  # the folders the download made are removed


def test_cifar_reader_refuses_what_is_not_a_cifar_batch(tmp_path, monkeypatch):
    from ganx.data import cifar

    write_cifar10(tmp_path / "a")
    batch = tmp_path / "a" / "cifar-10-batches-py" / "data_batch_2"
    for bad in (
        {"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]},  # rows of another size
        {"data": np.zeros(3072, np.uint8), "labels": [0]},  # one flat row
        {"data": np.zeros((2, 3072), np.uint8), "fine_labels": [0, 1]},  # CIFAR-100's labels
    ):
        with open(batch, "wb") as f:
            pickle.dump(bad, f)
        with pytest.raises(DataError, match="is not a CIFAR python batch") as err:
            cifar("cifar10", str(tmp_path / "a"))
        assert str(batch) in str(err.value)
    batch.unlink()
    (batch.parent / "data_batch_5").unlink()
    monkeypatch.chdir(tmp_path)  # a relative root is named by its absolute path
    with pytest.raises(DataError) as err:
        cifar("cifar10", "a")
    message, root = str(err.value), tmp_path / "a"
    assert message.startswith(f"dataset=cifar10: not found under {root} (missing ")
    assert "(missing data_batch_2, data_batch_5 in " in message  # the files missing, alone
    assert f"expected the CIFAR-10 python version: {root}/cifar-10-batches-py/data_batch_1..5" in (
        message
    )
    assert message.endswith(
        f"-C {root}` (or ganx-train dataset=cifar10 dataset.download=true there)"
    )


def test_a_failed_download_says_whether_the_network_is_missing():
    import socket
    import urllib.error

    from conftest import NetworkBlocked

    from ganx.data import failure_reason

    dns = socket.gaierror(-3, "Temporary failure in name resolution")
    assert failure_reason(dns) == f"no network (gaierror: {dns})"
    assert failure_reason(urllib.error.URLError(dns)) == f"no network (gaierror: {dns})"
    for offline in (ConnectionRefusedError("refused"), TimeoutError("slow")):
        assert failure_reason(offline) == f"no network ({type(offline).__name__}: {offline})"
    blocked = NetworkBlocked("the tests block the network")
    assert failure_reason(blocked) == "no network (NetworkBlocked: the tests block the network)"
    assert failure_reason(RuntimeError("File not found or corrupted.")) == (
        "RuntimeError: File not found or corrupted."
    )


def write_image_folder(root, n=20, size=40):
    from PIL import Image

    folder = root / "faces"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            folder / f"{i}.png"
        )


def test_embedded_mnist5k():
    source = mnist5k()
    assert source.images.shape == (5000, 1, 28, 28)
    assert source.images.min() == -1 and source.images.max() == 1
    assert torch.bincount(source.labels).tolist() == [500] * 10
    assert mnist5k(resolution=32, channels=3).images.shape == (5000, 3, 32, 32)


def test_mnist_idx_files_train(tmp_path):
    images = write_mnist_idx(tmp_path)
    cfg = compose_cfg(
        "dataset=mnist", f"dataset.root={tmp_path}", "dataset.num_workers=0", "eval.metrics=[]"
    )
    result = train(cfg, tmp_path / "run")
    assert result["status"] == "finished"
    from ganx.build import build_data

    first = build_data(cfg).dataset[0][0]
    assert torch.allclose(first, torch.from_numpy(images[0]).float()[None] / 127.5 - 1, atol=1e-5)


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_cifar10_batches_train_with_dcgan_and_sngan(tmp_path):
    write_cifar10(tmp_path)
    for model in ("dcgan", "sngan"):
        cfg = compose_cfg(f"model={model}", "dataset=cifar10", f"dataset.root={tmp_path}")
        assert train(cfg, tmp_path / model)["status"] == "finished"
    broken = tmp_path / "broken"
    write_cifar10(broken)
    with open(broken / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}, f)
    with pytest.raises(DataError, match="not a CIFAR python batch"):
        train(compose_cfg("dataset=cifar10", f"dataset.root={broken}"), tmp_path / "x")


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_image_folder_at_64px_with_resnet64(tmp_path):
    write_image_folder(tmp_path / "imgs")
    cfg = compose_cfg(
        "model=resnet64",
        "dataset=imagefolder",
        f"dataset.root={tmp_path / 'imgs'}",
        "dataset.num_workers=0",
        "train.batch_size=4",
    )
    assert train(cfg, tmp_path / "run")["status"] == "finished"
    cfg = compose_cfg(
        "dataset=imagefolder",
        f"dataset.root={tmp_path / 'imgs'}",
        "dataset.num_workers=0",
        "dataset.on_device=true",
        "train.batch_size=4",
    )
    assert train(cfg, tmp_path / "run2")["status"] == "finished"


@pytest.mark.parametrize(
    "name", ["mnist", "fashion_mnist", "cifar10", "cifar100", "stl10", "celeba", "imagefolder"]
)
def test_missing_data_set_names_path_and_layout(tmp_path, name):
    model = "model=sngan" if name == "stl10" else "model=dcgan"  # 48 px needs sngan
    cfg = compose_cfg(model, f"dataset={name}", f"dataset.root={tmp_path / 'nowhere'}")
    with pytest.raises(DataError) as err:
        train(cfg, tmp_path / "run")
    assert str(tmp_path / "nowhere") in str(err.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_unsupported_model_data_pairs_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="model=resnet64 does not support dataset.resolution=28"):
        train(compose_cfg("model=resnet64"), tmp_path)
    with pytest.raises(ConfigError, match="model=dcgan does not support dataset.resolution=48"):
        train(compose_cfg("dataset=stl10"), tmp_path)


def test_batch_stream_order_depends_only_on_seed_epoch_and_position():
    source = mnist5k()
    a = BatchStream(source, 1000, seed=3, device=torch.device("cpu"))
    batches = [a.next() for _ in range(7)]  # crosses an epoch boundary (5 per epoch)
    b = BatchStream(source, 1000, seed=3, device=torch.device("cpu"))
    b.load_state_dict({"epoch": 1, "batch": 1})
    assert torch.equal(b.next(), batches[6])
    assert not torch.equal(batches[0], batches[5])  # a new permutation each epoch
    with pytest.raises(DataError, match="exceeds"):
        BatchStream(source, 6000, seed=0, device=torch.device("cpu"))


def test_loader_stream_matches_in_memory_order_across_epochs_and_resume(tmp_path):
    """The DataLoader path (one endless loader, worker processes kept) yields the same batches
    as the in-memory path, across epoch boundaries and after a resume mid-epoch."""
    from torch.utils.data import TensorDataset

    images = torch.arange(40, dtype=torch.float).view(40, 1, 1, 1)
    memory = DataSource("t", 1, 1, images=images)
    dataset = DataSource("t", 1, 1, dataset=TensorDataset(images, torch.zeros(40)))
    a = BatchStream(memory, 8, seed=5, device=torch.device("cpu"))
    b = BatchStream(dataset, 8, seed=5, device=torch.device("cpu"), num_workers=1)
    for _ in range(12):  # 5 batches per epoch
        assert torch.equal(a.next(), b.next())
    c = BatchStream(dataset, 8, seed=5, device=torch.device("cpu"))
    c.load_state_dict(a.state_dict())
    assert torch.equal(a.next(), c.next())


def test_batch_stream_edges_a_full_size_batch_and_a_resume_at_an_epochs_start():
    """A batch as large as the data set is allowed (one batch per epoch: the epoch's whole
    permutation, epoch_order(n, seed, epoch)); a stream resumed at the start of epoch 1 reads
    what the walked stream reads there; the position is (epoch, batch)."""
    from ganx.data import epoch_order

    images = torch.arange(10, dtype=torch.float).view(10, 1, 1, 1)
    source = DataSource("t", 1, 1, images=images)
    walked = BatchStream(source, 10, seed=2, device=torch.device("cpu"))
    first, second = walked.next(), walked.next()
    assert torch.equal(first.flatten(), epoch_order(10, 2, 0).float())
    assert torch.equal(second.flatten(), epoch_order(10, 2, 1).float())
    assert walked.state_dict() == {"epoch": 1, "batch": 1}
    resumed = BatchStream(source, 10, seed=2, device=torch.device("cpu"))
    resumed.load_state_dict({"epoch": 1, "batch": 0})
    assert torch.equal(resumed.next(), second)
    halves = BatchStream(source, 5, seed=2, device=torch.device("cpu"))
    assert [len(halves.next()) for _ in range(5)] == [5] * 5  # never a short batch
    with pytest.raises(DataError) as too_big:  # two ranks of 6 need 12 samples
        BatchStream(source, 6, seed=2, device=torch.device("cpu"), rank=1, world=2)
    assert str(too_big.value) == (
        "train.batch_size=6 x 2 ranks exceeds the 10 samples of data set 't'"
    )


def test_mixture_centres_are_the_references_rings_and_grids():
    """ring8: 8 centres at radius 2, angle 2 pi k / 8 from the x axis (Metz et al. 2017, sec.
    3.1); grid25: the 25 points of {-4, -2, 0, 2, 4}^2 (PacGAN, Lin et al. 2018, sec. 5.1)."""
    import math

    from ganx.data import mixture_centres

    ring = mixture_centres("ring8")
    k = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
    expected = torch.stack([2 * k.cos(), 2 * k.sin()], 1).float()
    assert ring.dtype == torch.float32 and torch.equal(ring, expected)
    grid = mixture_centres("grid25")
    axis = [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert sorted(map(tuple, grid.tolist())) == [(x, y) for x in axis for y in axis]
    with pytest.raises(DataError, match="unknown mixture 'ring9'; allowed: ring8, grid25"):
        mixture_centres("ring9")


def test_mnist5k_resized_and_repeated_as_torchvision_would():
    """Resizing is torchvision's Resize (bilinear, antialiased, as the loader-read data sets
    get it) on the [-1, 1] images, clamped to [-1, 1]; 3 channels repeat the digit; the pixel
    map is x / 127.5 - 1 (0 -> -1, 255 -> 1); other channel counts are refused by name."""
    from torchvision.transforms import v2

    from ganx.data import resize, to_unit_range

    grey = mnist5k()
    small = grey.images[:8]
    resized = mnist5k(resolution=32, channels=3).images[:8]
    expected = v2.Resize(32, antialias=True)(small).clamp(-1, 1)
    assert torch.equal(resized[:, :1], expected) and torch.equal(resized[:, 2:], expected)
    assert resize(small, 28) is small  # already that size: untouched
    wide = resize(torch.full((1, 1, 4, 4), 3.0), 2)
    assert torch.all(wide == 1.0)  # clamped to the data range
    assert to_unit_range(torch.tensor([0, 51, 255], dtype=torch.uint8)).tolist() == [
        -1.0,
        pytest.approx(-0.6),
        1.0,
    ]
    assert grey.name == "mnist5k" and (grey.channels, grey.resolution) == (1, 28)
    assert grey.labels.dtype == torch.long
    with pytest.raises(DataError, match="dataset.channels=2 for mnist5k; allowed: 1 or 3"):
        mnist5k(channels=2)


def test_loader_stream_on_the_cpu_is_quiet_and_reads_each_items_image():
    """On a CPU run the loader pins no memory (pinning is for copies to a GPU: torch warns
    when asked without one), and a batch is the items' images, not their labels."""
    import warnings

    from torch.utils.data import TensorDataset

    images = torch.arange(12, dtype=torch.float).view(12, 1, 1, 1)
    memory = BatchStream(DataSource("t", 1, 1, images=images), 4, 1, torch.device("cpu"))
    dataset = DataSource("t", 1, 1, dataset=TensorDataset(images, -images))
    loaded = BatchStream(dataset, 4, 1, torch.device("cpu"), num_workers=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(4):  # into the second epoch
            assert torch.equal(loaded.next(), memory.next())


def test_batches_go_to_the_configured_device_and_the_order_is_seeded_by_seed_and_epoch():
    """Batches are moved to the stream's device (the meta device stands in for a GPU: a
    batch left on the CPU shows); with on_device the whole data set is moved once, the same
    batches. The epoch's permutation is drawn from a generator seeded with
    seed * 1_000_003 + epoch: a checkpoint's (epoch, batch) names its batches only through it,
    so a resumed older run reads what it would have read."""
    from ganx.data import epoch_order

    images = torch.arange(12, dtype=torch.float).view(12, 1, 1, 1)
    source = DataSource("t", 1, 1, images=images)
    meta = BatchStream(source, 4, 1, torch.device("meta"))
    assert meta.next().device.type == "meta" and meta.images.device.type == "cpu"
    held = BatchStream(source, 4, 1, torch.device("meta"), on_device=True)
    assert held.images.device.type == "meta" and held.next().device.type == "meta"
    assert source.images.device.type == "cpu"
    seeded = torch.randperm(12, generator=torch.Generator().manual_seed(3 * 1_000_003 + 2))
    assert torch.equal(epoch_order(12, 3, 2), seeded)


def test_batch_stream_draws_one_permutation_per_epoch(monkeypatch):
    """The epoch's order is drawn once and reused for its batches (a permutation of the whole
    data set per batch would cost O(N) each step)."""
    import ganx.data

    drawn = []
    draw = ganx.data.epoch_order
    monkeypatch.setattr(
        ganx.data, "epoch_order", lambda n, seed, epoch: drawn.append(epoch) or draw(n, seed, epoch)
    )
    stream = BatchStream(mnist5k(), 1000, seed=0, device=torch.device("cpu"))
    for _ in range(7):  # 5 batches per epoch: epochs 0 and 1
        stream.next()
    assert drawn == [0, 1]


def test_small_builders_points_rodrigues_stacked_mnist_defaults_and_resize_bounds():
    """points() marks a builder of points; Rodrigues' formula turns by +angle about the axis
    (right-hand rule, column vectors); StackedMNIST's defaults are the config's (25,600 images,
    seed 0) and it names itself; resizing clamps to [-1, 1] at both ends."""
    import inspect
    import math

    from ganx.data import gaussian_mixture, points, resize, rodrigues, stacked_mnist

    assert points(lambda: None).data == "points" and gaussian_mixture.data == "points"
    z = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    quarter = rodrigues(z, math.pi / 2)
    x = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(quarter @ x, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    defaults = inspect.signature(stacked_mnist).parameters
    cfg = compose_cfg("dataset=stacked_mnist", tiny=False).dataset
    assert (defaults["n"].default, defaults["seed"].default) == (cfg.n, cfg.source.seed)
    small = stacked_mnist(n=4)
    assert torch.equal(small.images, stacked_mnist(n=4, seed=cfg.source.seed).images)
    assert (small.name, small.channels, small.resolution) == ("stacked_mnist", 3, 28)
    assert torch.all(resize(torch.full((1, 1, 4, 4), -3.0), 2) == -1.0)


class Recorded:
    """Stands in for a torchvision data set class: records how it was built, holds two images."""

    calls: list = []

    def __init__(self, *args, **kwargs):
        Recorded.calls.append((args, kwargs))
        self.transform = kwargs.get("transform")

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return torch.zeros(1, 8, 8), 0


@pytest.mark.parametrize(
    "name, cls, split, expected",
    [
        ("mnist", "MNIST", "train", {"train": True}),
        ("mnist", "MNIST", "test", {"train": False}),
        ("fashion_mnist", "FashionMNIST", "train", {"train": True}),
        ("fashion_mnist", "FashionMNIST", "test", {"train": False}),
        ("stl10", "STL10", "unlabeled", {"split": "unlabeled"}),
        ("celeba", "CelebA", "valid", {"split": "valid"}),
    ],
)
def test_each_torchvision_data_set_gets_its_split_transform_and_download_flag(
    tmp_path, monkeypatch, name, cls, split, expected
):
    import torchvision.datasets as tvd

    from ganx.data import torchvision_dataset

    monkeypatch.setattr(tvd, cls, Recorded)
    for download in (False, True):
        Recorded.calls = []
        root = tmp_path / str(download)
        source = torchvision_dataset(name, str(root), 8, 1, download=download, split=split)
        [(args, kwargs)] = Recorded.calls
        assert args == (root,) and kwargs.pop("download") is download
        transform = kwargs.pop("transform")
        assert kwargs == expected and callable(transform)
        assert source.dataset.transform is transform and source.images is None
        assert (source.name, source.channels, source.resolution) == (name, 1, 8)
    if name == "mnist":  # the defaults: the training split, no download
        Recorded.calls = []
        torchvision_dataset(name, str(tmp_path), 8, 1)
        assert Recorded.calls[0][1]["train"] is True and Recorded.calls[0][1]["download"] is False
    lsun = tmp_path / "lsun"
    monkeypatch.setattr(tvd, "LSUN", Recorded)
    Recorded.calls = []
    torchvision_dataset("lsun", str(lsun), 8, 3, split="val", category="church_outdoor")
    torchvision_dataset("lsun", str(lsun), 8, 3)
    assert [c[0] for c in Recorded.calls] == [(str(lsun),)] * 2
    assert [c[1]["classes"] for c in Recorded.calls] == [["church_outdoor_val"], ["bedroom_train"]]
    assert all(callable(c[1]["transform"]) for c in Recorded.calls)


def test_a_torchvision_set_that_is_empty_failed_or_unlabelled(tmp_path, monkeypatch):
    """No images: one line; a set of one image is a set; in_memory keeps no labels for a set
    without targets; a failed download is one line naming the set, and leaves nothing."""
    import torchvision.datasets as tvd

    from ganx.data import torchvision_dataset

    class Sized(Recorded):
        size = 0

        def __len__(self):
            return self.size

    monkeypatch.setattr(tvd, "STL10", Sized)
    with pytest.raises(DataError) as err:
        torchvision_dataset("stl10", str(tmp_path), 8, 1)
    assert str(err.value) == f"data set 'stl10' under {tmp_path} holds no images"
    Sized.size = 1
    kept = torchvision_dataset("stl10", str(tmp_path), 8, 1, in_memory=True)
    assert kept.images.shape == (1, 1, 8, 8) and kept.labels is None  # Recorded has no targets

    def offline(*args, **kwargs):
        (tmp_path / "new" / "MNIST").mkdir(parents=True)
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tvd, "MNIST", offline)
    with pytest.raises(DataError) as err:
        torchvision_dataset("mnist", str(tmp_path / "new"), 8, 1, download=True)
    assert str(err.value).startswith("dataset.download=true: the download of MNIST failed: ")
    assert not (tmp_path / "new").exists()


def test_image_folder_images_through_the_transform_as_torchvision_composes_it(tmp_path):
    """Each image: to RGB (a grey PNG too) or to grey, an optional centre crop first, then
    resized on its short side, centre-cropped square, mapped to [-1, 1]; in_memory decodes them
    all once, with the class folders' labels."""
    import torchvision.transforms.functional as TF
    from PIL import Image

    from ganx.data import torchvision_dataset

    rng = np.random.default_rng(1)
    for cls, mode, shape in (("a", "RGB", (30, 40, 3)), ("b", "L", (40, 30))):
        (tmp_path / cls).mkdir()
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
            tmp_path / cls / "0.png"
        )
    images = [Image.open(tmp_path / c / "0.png") for c in ("a", "b")]

    def expected(image, channels, crop=None):
        image = TF.to_grayscale(image, 1) if channels == 1 else image.convert("RGB")
        if crop:
            image = TF.center_crop(image, crop)
        image = TF.center_crop(TF.resize(image, 16), 16)
        return TF.normalize(TF.to_tensor(image), [0.5] * channels, [0.5] * channels)

    for channels, crop in ((3, None), (1, None), (3, 24)):
        source = torchvision_dataset("imagefolder", str(tmp_path), 16, channels, center_crop=crop)
        assert source.images is None and len(source) == 2
        for i, image in enumerate(images):
            assert torch.equal(source.dataset[i][0], expected(image, channels, crop))
    kept = torchvision_dataset("imagefolder", str(tmp_path), 16, 3, in_memory=True)
    assert kept.dataset is None and kept.labels.tolist() == [0, 1]
    assert torch.equal(kept.images, torch.stack([expected(im, 3) for im in images]))


def test_a_missing_torchvision_data_set_names_its_absolute_path_and_layout(tmp_path, monkeypatch):
    from ganx.data import layout, torchvision_dataset

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        torchvision_dataset("imagefolder", "faces", 32, 3)
    message = str(err.value)
    assert message.startswith(f"data set 'imagefolder' not found under {tmp_path / 'faces'} (")
    assert f"Expected {tmp_path / 'faces'}/<any class folder>/*.png|jpg" in message
    assert layout("mnist", tmp_path) == f"{tmp_path}/MNIST/raw/train-images-idx3-ubyte " + (
        "(+ labels, t10k files)"
    )
    with pytest.raises(DataError) as err:
        torchvision_dataset("mnist", "digits", 28, 1)
    assert str(err.value).endswith(
        "to get it: on a machine with network access: ganx-train dataset=mnist "
        "dataset.download=true"
    )
    with pytest.raises(DataError, match=r"unknown data set 'cifar10'; allowed: \['celeba', "):
        torchvision_dataset("cifar10", str(tmp_path), 32, 3)  # CIFAR has its own reader


def test_grey_digits_become_three_equal_channels_when_asked(tmp_path):
    """torchvision's MNIST gives grey PIL images (ImageFolder's loader already makes RGB): with
    dataset.channels=3 each digit is converted to RGB, three equal channels in [-1, 1]."""
    from ganx.data import torchvision_dataset

    images = write_mnist_idx(tmp_path)
    first = torch.from_numpy(images[0]).float() / 127.5 - 1
    grey = torchvision_dataset("mnist", str(tmp_path), 28, 1).dataset[0][0]
    rgb = torchvision_dataset("mnist", str(tmp_path), 28, 3).dataset[0][0]
    assert grey.shape == (1, 28, 28) and torch.allclose(grey[0], first, atol=1e-6)
    assert rgb.shape == (3, 28, 28) and all(torch.equal(rgb[c], grey[0]) for c in range(3))
