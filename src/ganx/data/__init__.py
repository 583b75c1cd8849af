"""Data sets as tensors in [-1, 1] and a batch stream whose position is part of the checkpoint.

Every builder returns a :class:`DataSource`: either all images as one tensor (the embedded
MNIST-5k, toy sets, small sets held in memory) or a torch ``Dataset`` read through a
``DataLoader``. :class:`BatchStream` walks either in epochs whose order is a permutation drawn
from ``(seed, epoch)`` alone, so "epoch e, batch b" names one exact position and a resumed run
continues with exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError


@dataclass
class DataSource:
    name: str
    channels: int
    resolution: int
    images: torch.Tensor | None = None  # (N, C, H, W) float in [-1, 1], when held in memory
    dataset: Dataset | None = None  # otherwise: items (image tensor in [-1, 1], label)
    labels: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)  # data-set facts metrics need (e.g. mixture std)
    # (low, high) of the values a sample can take: what input transforms clamp to (DAT).
    # None: unbounded (the Dirac: its one value is no range to clamp a generator's output to).
    value_range: tuple[float, float] | None = (-1.0, 1.0)

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.dataset)


def points(builder):
    """Marks a builder of points (the toy data sets) rather than images: ``data = "points"``,
    read through the config's ``_target_`` (:func:`ganx.methods.on_points`)."""
    builder.data = "points"
    return builder


def to_unit_range(uint8_images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return uint8_images.float().div(127.5).sub(1.0)


def resize(images: torch.Tensor, resolution: int) -> torch.Tensor:
    if images.shape[-1] == resolution:
        return images
    return F.interpolate(
        images, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
    ).clamp(-1, 1)


def mnist5k(resolution: int = 28, channels: int = 1) -> DataSource:
    """The embedded 5,000 MNIST digits (see MNIST5K.md), optionally resized (32 px for DCGAN-32)
    or repeated to 3 channels."""
    path = resources.files("ganx.data").joinpath("mnist5k.npz")
    with resources.as_file(path) as file, np.load(file) as npz:
        images, labels = torch.from_numpy(npz["images"]), torch.from_numpy(npz["labels"])
    x = resize(to_unit_range(images).unsqueeze(1), resolution)
    if channels == 3:
        x = x.repeat(1, 3, 1, 1)
    elif channels != 1:
        raise DataError(f"dataset.channels={channels} for mnist5k; allowed: 1 or 3")
    return DataSource("mnist5k", channels, resolution, images=x.contiguous(), labels=labels.long())


def stacked_mnist(n: int = 25_600, seed: int = 0, resolution: int = 28) -> DataSource:
    """StackedMNIST (Metz et al. 2017, "Unrolled GANs", sec. 3.3.2; Srivastava et al. 2017,
    VEEGAN; Lin et al. 2018, PacGAN, sec. 5.1): ``n`` RGB images whose red, green and blue
    channels are three digits drawn independently (with replacement, from the generator of
    ``seed``) from the embedded MNIST-5k, so 10^3 = 1,000 modes. The label is the three-digit
    number 100 r + 10 g + b, each digit's own label."""
    digits = mnist5k(resolution, 1)
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(digits), (n, 3), generator=gen)
    images = digits.images[picks.flatten()].view(n, 3, resolution, resolution)
    labels = digits.labels[picks]
    number = labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]
    return DataSource("stacked_mnist", 3, resolution, images=images.contiguous(), labels=number)


def take_subset(source: DataSource, n: int, seed: int = 0) -> DataSource:
    """A fixed, class-balanced subset of ``n`` images (``dataset.subset``): n // K of each of the
    K classes, and one more from each of the first n % K classes (in label order), drawn
    without replacement from the generator of ``seed`` (``dataset.subset_seed``: its own, so
    the subset does not change with the training seed). Needs labels; a class too small for its
    share is refused."""
    labels = source.labels
    if labels is None and source.dataset is not None:
        targets = getattr(source.dataset, "targets", None)
        labels = torch.as_tensor(targets) if targets is not None else None
    if labels is None:
        raise DataError(
            f"dataset.subset={n}: data set {source.name!r} has no labels to balance a subset by; "
            "allowed: data sets with labels (mnist5k, mnist, fashion_mnist, cifar10, ...)"
        )
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(labels):
        raise DataError(f"dataset.subset={n!r}: must be an integer in [1, {len(labels)}]")
    classes = torch.unique(labels)
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for i, label in enumerate(classes.tolist()):
        members = (labels == label).nonzero().flatten()
        share = n // len(classes) + (1 if i < n % len(classes) else 0)
        if share > len(members):
            raise DataError(
                f"dataset.subset={n}: class {label} of {source.name!r} has {len(members)} images, "
                f"fewer than its share {share}; allowed: at most {len(classes) * len(members)}"
            )
        chosen.append(members[torch.randperm(len(members), generator=gen)[:share]])
    index = torch.cat(chosen).sort().values
    return subset_of(source, index)


def subset_of(source: DataSource, index: torch.Tensor) -> DataSource:
    from torch.utils.data import Subset

    out = DataSource(
        source.name,
        source.channels,
        source.resolution,
        extra=dict(source.extra),
        value_range=source.value_range,
    )
    if source.labels is not None:
        out.labels = source.labels[index]
    if source.images is not None:
        out.images = source.images[index].contiguous()
    else:
        out.dataset = Subset(source.dataset, index.tolist())
    return out


# --- torchvision data sets -------------------------------------------------------------------

PRETTY = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "mnist": "MNIST", "stl10": "STL-10"}


def failure_reason(err: BaseException) -> str:
    """Why a download failed, in words: no network (no DNS, no route, blocked) or the error."""
    import socket
    import urllib.error

    cause = getattr(err, "reason", err)
    offline = isinstance(cause, (socket.gaierror, ConnectionError, TimeoutError, socket.timeout))
    offline = offline or type(cause).__name__ == "NetworkBlocked"  # the tests' network block
    detail = f"{type(cause).__name__}: {cause}"
    if offline or isinstance(err, urllib.error.URLError):
        return f"no network ({detail})"
    return detail


@contextlib.contextmanager
def downloading(name: str, root: Path):
    """``dataset.download=true``: a failed download is one line (what failed and why) and
    leaves nothing behind: folders it created are removed, and so are new files in old ones."""
    import shutil

    root = Path(root).expanduser()
    created = [p for p in [root, *root.parents] if not p.exists()]
    before = set(root.rglob("*")) if root.exists() else set()
    try:
        yield
    except (OSError, RuntimeError) as err:  # urllib's URLError is an OSError
        if created:
            shutil.rmtree(created[-1], ignore_errors=True)
        else:
            for path in sorted(set(root.rglob("*")) - before, reverse=True):
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        raise DataError(
            f"dataset.download=true: the download of {PRETTY.get(name, name)} failed: "
            f"{failure_reason(err)}; nothing was left in {root}"
        ) from None


def layout(name: str, root: Path) -> str:
    from ..datafiles import LAYOUT

    return LAYOUT[name].replace("ROOT", str(root))


def _transform(resolution: int, channels: int, center_crop: int | None = None):
    from torchvision import transforms as T

    steps = []
    if channels == 1:
        steps.append(T.Grayscale(1))
    elif channels == 3:
        steps.append(T.Lambda(lambda im: im.convert("RGB")))
    if center_crop:
        steps.append(T.CenterCrop(center_crop))
    steps += [
        T.Resize(resolution),
        T.CenterCrop(resolution),
        T.ToTensor(),
        T.Normalize([0.5] * channels, [0.5] * channels),
    ]
    return T.Compose(steps)


def torchvision_dataset(
    name: str,
    root: str,
    resolution: int,
    channels: int,
    download: bool = False,
    split: str = "train",
    category: str = "bedroom",
    center_crop: int | None = None,
    in_memory: bool = False,
) -> DataSource:
    """Build one of torchvision's data sets. Offline (``download=false``) a missing data set
    raises :class:`DataError` naming the path and layout expected. (CIFAR has its own reader,
    :func:`cifar`: torchvision's checks each file's md5.)"""
    import torchvision.datasets as tvd

    root_path = Path(root).expanduser()
    tf = _transform(resolution, channels, center_crop)
    builders = {
        "mnist": lambda: tvd.MNIST(
            root_path, train=split == "train", transform=tf, download=download
        ),
        "fashion_mnist": lambda: tvd.FashionMNIST(
            root_path, train=split == "train", transform=tf, download=download
        ),
        "stl10": lambda: tvd.STL10(root_path, split=split, transform=tf, download=download),
        "celeba": lambda: tvd.CelebA(root_path, split=split, transform=tf, download=download),
        "lsun": lambda: tvd.LSUN(str(root_path), classes=[f"{category}_{split}"], transform=tf),
        "imagefolder": lambda: tvd.ImageFolder(root_path, transform=tf),
    }
    if name not in builders:
        raise DataError(f"unknown data set {name!r}; allowed: {sorted(builders)}")
    try:
        with downloading(name, root_path) if download else contextlib.nullcontext():
            dataset = builders[name]()
    except (RuntimeError, FileNotFoundError, OSError, ImportError) as err:
        from ..datafiles import how_to_download

        raise DataError(
            f"data set {name!r} not found under {root_path.absolute()} ({err}). Expected "
            f"{layout(name, root_path.absolute())}. Set dataset.root=DIR or GANX_DATA=DIR; to "
            f"get it: {how_to_download(name, root_path.absolute())}"
        ) from err
    if len(dataset) == 0:
        raise DataError(f"data set {name!r} under {root_path} holds no images")
    source = DataSource(name, channels, resolution, dataset=dataset)
    if in_memory:  # decode once: small data sets then cost no loader time at all
        source.images = torch.stack([dataset[i][0] for i in range(len(dataset))])
        targets = getattr(dataset, "targets", None)  # kept: dataset.subset balances by them
        source.labels = torch.as_tensor(targets) if targets is not None else None
        source.dataset = None
    return source


# --- CIFAR python batches, read and checked by structure ---------------------------------------

CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "labels"),
    "cifar100": ("cifar-100-python", ["train"], "fine_labels"),
}


def cifar(
    name: str, root: str, resolution: int = 32, channels: int = 3, download: bool = False
) -> DataSource:
    """CIFAR-10/100 training images from the python-version pickle batches, held in memory.

    torchvision's loader checks each file's md5, so it cannot read anything but the exact
    official files; this one checks structure instead (keys, sizes, 3072 uint8 values per
    image), which also lets tests exercise it on small batches in the real format. With
    ``download=true`` torchvision fetches the archive first.
    """
    import pickle

    folder, files, label_key = CIFAR_FILES[name]
    from ..datafiles import how_to_download

    root_path = Path(root).expanduser().absolute()
    base = root_path / folder
    if download and not base.exists():
        import torchvision.datasets as tvd

        with downloading(name, root_path):
            (tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100)(root_path, download=True)
    missing = [f for f in files if not (base / f).is_file()]
    if missing:
        raise DataError(
            f"dataset={name}: not found under {root_path} (missing {', '.join(missing)} in "
            f"{base}). Set dataset.root=DIR or GANX_DATA=DIR; expected "
            f"{layout(name, root_path)}. To get it: {how_to_download(name, root_path)}"
        )
    arrays, labels = [], []
    for f in files:
        with open(base / f, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")  # the data set's own format
        data = np.asarray(batch.get("data"))
        if data.ndim != 2 or data.shape[1] != 3072 or label_key not in batch:
            raise DataError(
                f"{base / f} is not a CIFAR python batch (data {data.shape}, keys {sorted(batch)})"
            )
        arrays.append(data.astype(np.uint8))
        labels += list(batch[label_key])
    images = torch.from_numpy(np.concatenate(arrays)).view(-1, 3, 32, 32)
    x = resize(to_unit_range(images), resolution)
    if channels == 1:
        x = x.mean(dim=1, keepdim=True)
    return DataSource(
        name, channels, resolution, images=x.contiguous(), labels=torch.tensor(labels)
    )


# --- 2-D toy data and the Dirac ----------------------------------------------------------------


def mixture_centres(name: str) -> torch.Tensor:
    """Mode centres: ``ring8`` (8 modes on a circle of radius 2, as in Metz et al. 2017) or
    ``grid25`` (a 5x5 grid at -4..4 step 2, as in PacGAN, Lin et al. 2018)."""
    if name == "ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([2 * angles.cos(), 2 * angles.sin()], 1).float()
    if name == "grid25":
        axis = torch.arange(-4.0, 5.0, 2.0)
        return torch.cartesian_prod(axis, axis)
    raise DataError(f"unknown mixture {name!r}; allowed: ring8, grid25")


@points
def gaussian_mixture(name: str, std: float = 0.02, n: int = 100_000, seed: int = 0) -> DataSource:
    """An equal-weight mixture of isotropic Gaussians, drawn once from its own generator
    (``n`` points) so that training reads it like any other in-memory data set."""
    centres = mixture_centres(name)
    gen = torch.Generator().manual_seed(seed)
    which = torch.randint(len(centres), (n,), generator=gen)
    points = centres[which] + std * torch.randn(n, 2, generator=gen)
    return DataSource(
        name,
        channels=1,
        resolution=2,
        images=points,
        labels=which,
        extra={"std": std},
        value_range=(points.min().item(), points.max().item()),
    )


def rodrigues(axis: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotation by ``angle`` about the unit vector ``axis``: I + sin(a) K + (1 - cos(a)) K^2."""
    x, y, z = axis.tolist()
    k = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def mog3d_frame(radius: float = 1.0, components: int = 7) -> dict[str, torch.Tensor]:
    """The geometry of Roth et al.'s 3-D experiment
    (rothk/Stabilizing_GANs@023b84d:3DGAN/3DGAN.py:120-139, ``MixtureOfGaussians``, and :111-118,
    ``RotateAndTranslate``): ``components`` centres (radius sin t, radius cos t), t = 2 pi k /
    components, embedded as (x, y, 0), then x -> x R + t with R the rotation by pi/4 about (1, -1,
    0)/sqrt(2) and t = (1, 1, 1)/sqrt(3). Returns the 3-D centres, the plane's unit normal and a
    point on it (t)."""
    angles = torch.arange(components, dtype=torch.float64) * (2 * math.pi / components)
    flat = torch.stack([radius * angles.sin(), radius * angles.cos(), 0 * angles], 1)
    axis = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64) / math.sqrt(2)
    rotation = rodrigues(axis, math.pi / 4)
    shift = torch.ones(3, dtype=torch.float64) / math.sqrt(3)
    normal = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) @ rotation
    return {
        "rotation": rotation,
        "shift": shift,
        "centres": flat @ rotation + shift,
        "normal": normal,
    }


@points
def mog3d(std: float = 0.01, n: int = 100_000, seed: int = 0, components: int = 7) -> DataSource:
    """Roth et al.'s 3-D mixture: 7 Gaussians (std 0.01 per axis in their plane) on the unit
    circle, embedded in 3-D, rotated and translated onto a tilted plane (:func:`mog3d_frame`);
    ``n`` points drawn once from their own generator."""
    frame = mog3d_frame(components=components)
    gen = torch.Generator().manual_seed(seed)
    which = torch.randint(components, (n,), generator=gen)
    angles = which.double() * (2 * math.pi / components)
    planar = torch.stack([angles.sin(), angles.cos()], 1)
    planar = planar + std * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    flat = torch.cat([planar, torch.zeros(n, 1, dtype=torch.float64)], 1)
    points = (flat @ frame["rotation"] + frame["shift"]).float()
    return DataSource(
        "mog3d",
        channels=1,
        resolution=3,
        images=points,
        labels=which,
        extra={"std": std, **{k: v.float() for k, v in frame.items()}},
        value_range=(points.min().item(), points.max().item()),
    )


@points
def dirac(n: int = 1024) -> DataSource:
    """The Dirac-GAN data: every sample is exactly 0 (Mescheder et al. 2018, sec. 2.2)."""
    return DataSource("dirac", channels=1, resolution=1, images=torch.zeros(n, 1), value_range=None)


# --- the resumable batch stream ------------------------------------------------------------------


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch: a permutation that depends only on (seed, epoch)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


class BatchStream:
    """Endless batches (drop_last) with an exact, checkpointable position (epoch, batch)."""

    def __init__(
        self,
        source: DataSource,
        batch_size: int,
        seed: int,
        device: torch.device,
        num_workers: int = 0,
        on_device: bool = False,
        rank: int = 0,
        world: int = 1,
    ):
        if batch_size * world > len(source):
            raise DataError(
                f"train.batch_size={batch_size} x {world} ranks exceeds the "
                f"{len(source)} samples of data set {source.name!r}"
            )
        self.source, self.batch_size, self.seed = source, batch_size, seed
        self.device, self.num_workers = device, num_workers
        # with several ranks, rank r reads global batches r, r + world, ... of each epoch; the
        # position (epoch, batch) counts this rank's batches, the same on every rank
        self.rank, self.world = rank, world
        self.batches_per_epoch = len(source) // (batch_size * world)
        self.epoch, self.batch = 0, 0
        self._iter = None
        self._order_epoch, self._order = -1, None
        self.images = source.images
        if self.images is not None and on_device:
            self.images = self.images.to(device)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._iter = None

    def _start(self, batch: int) -> int:
        return (batch * self.world + self.rank) * self.batch_size

    def _epoch_order(self) -> torch.Tensor:
        if self._order_epoch != self.epoch:  # one permutation per epoch, not per batch
            self._order = epoch_order(len(self.source), self.seed, self.epoch)
            self._order_epoch = self.epoch
        return self._order

    def _endless_batches(self, epoch: int, batch: int):
        """Index lists from (epoch, batch) on, forever: one DataLoader (and one set of worker
        processes, kept for the whole run) serves every epoch."""
        while True:
            order = epoch_order(len(self.source), self.seed, epoch)
            for b in range(batch, self.batches_per_epoch):
                start = self._start(b)
                yield order[start : start + self.batch_size].tolist()
            epoch, batch = epoch + 1, 0

    def _loader_iter(self):
        loader = DataLoader(
            self.source.dataset,
            batch_sampler=self._endless_batches(self.epoch, self.batch),
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if self.num_workers else None,
        )
        return iter(loader)

    def next(self) -> torch.Tensor:
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        if self.images is not None:
            start = self._start(self.batch)
            idx = self._epoch_order()[start : start + self.batch_size]
            if self.images.device != idx.device:
                idx = idx.to(self.images.device)
            batch = self.images.index_select(0, idx)  # the rows idx names: images[idx]
        else:
            if self._iter is None:
                self._iter = self._loader_iter()
            batch = next(self._iter)[0]
        self.batch += 1
        if batch.device != self.device:  # images resident elsewhere (dataset.on_device=false)
            batch = batch.to(self.device, non_blocking=True)
        return batch
