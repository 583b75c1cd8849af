"""Where each on-disk data set is expected and how to get it, without importing torch.

``ganx-train dataset=cifar10`` without the data should be refused in a second, not after torch,
the nets and the pre-flight build have loaded: :func:`missing_data` looks for the files the
loader will open (the same names) and returns one line that names the absolute path searched,
both ways to point ganx at a copy (``dataset.root=``, ``GANX_DATA``), the expected layout and
the command that fetches the data on a machine with network access.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

CIFAR_URL = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}
# the files the loaders open, relative to dataset.root; the layout line of each message
MNIST_RAW = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
LAYOUT = {
    "mnist": "ROOT/MNIST/raw/train-images-idx3-ubyte (+ labels, t10k files)",
    "fashion_mnist": "ROOT/FashionMNIST/raw/*-idx3-ubyte (+ labels)",
    "cifar10": "the CIFAR-10 python version: ROOT/cifar-10-batches-py/data_batch_1..5",
    "cifar100": "the CIFAR-100 python version: ROOT/cifar-100-python/train",
    "stl10": "the STL-10 binary version: ROOT/stl10_binary/unlabeled_X.bin",
    "celeba": "ROOT/celeba/img_align_celeba/*.jpg and ROOT/celeba/list_eval_partition.txt",
    "lsun": "ROOT/<category>_<split>_lmdb (LSUN lmdb export; needs the lmdb package)",
    "imagefolder": "ROOT/<any class folder>/*.png|jpg (torchvision ImageFolder)",
}
# the package a data set's loader needs beyond ganx's own, and the extra that installs it
DATA_PACKAGES = {"lsun": ("lmdb", "lsun")}


def expected_files(dataset) -> list[str]:
    """Paths (relative to dataset.root) that must exist for ``dataset`` (a config node)."""
    name = dataset.name
    if name == "cifar10":
        return [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
    if name == "cifar100":
        return ["cifar-100-python/train"]
    if name in ("mnist", "fashion_mnist"):
        folder = "MNIST" if name == "mnist" else "FashionMNIST"
        return [f"{folder}/raw/{f}" for f in MNIST_RAW]
    if name == "stl10":
        split = dataset.source.get("split", "unlabeled")
        return [f"stl10_binary/{split.split('+')[0]}_X.bin"]
    if name == "celeba":
        return ["celeba/img_align_celeba", "celeba/list_eval_partition.txt"]
    if name == "lsun":
        source = dataset.source
        return [f"{source.get('category', 'bedroom')}_{source.get('split', 'train')}_lmdb"]
    if name == "imagefolder":
        return ["."]
    return []  # embedded or generated data sets: nothing on disk


def how_to_download(name: str, root: Path) -> str:
    if name in CIFAR_URL:
        url = CIFAR_URL[name]
        return (
            f"on a machine with network access: `curl -LO {url} && tar -xzf {url.rsplit('/', 1)[1]}"
            f" -C {root}` (or ganx-train dataset={name} dataset.download=true there)"
        )
    if name in ("mnist", "fashion_mnist", "stl10", "celeba"):
        return f"on a machine with network access: ganx-train dataset={name} dataset.download=true"
    if name == "lsun":
        return "LSUN is not downloaded by ganx: export a category with the LSUN tools"
    return "put your images there"


def missing_data(dataset) -> str | None:
    """One line saying what is missing and how to get it, or None when the files are there
    (or ``dataset.download=true`` will fetch them)."""
    root_setting = dataset.get("root")
    if root_setting is None:
        return None
    if dataset.name in DATA_PACKAGES:
        package, extra = DATA_PACKAGES[dataset.name]
        if importlib.util.find_spec(package) is None:
            return (
                f"dataset={dataset.name} needs the {package} package, which is not installed: "
                f"pip install 'ganx[{extra}]' (or pip install {package})"
            )
    if dataset.get("download", False):
        return None
    root = Path(str(root_setting)).expanduser().absolute()
    missing = [f for f in expected_files(dataset) if not (root / f).exists()]
    if not missing:
        return None
    where = "GANX_DATA" if os.environ.get("GANX_DATA") else "dataset.root"
    first = "the folder itself" if missing[0] == "." else missing[0]
    layout = LAYOUT[dataset.name].replace("ROOT", str(root))
    return (
        f"dataset={dataset.name}: not found under {root} ({where}={root_setting}; missing "
        f"{first}{' and more' if len(missing) > 1 else ''}). Point ganx at a copy with "
        f"dataset.root=DIR or the environment variable GANX_DATA=DIR; expected {layout}. "
        f"To get it: {how_to_download(dataset.name, root)}"
    )
