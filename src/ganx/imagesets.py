"""Sets of images from disk, for scoring any two sets against each other (``ganx-eval
samples=DIR real=DIR2``, ``ganx.evaluate(..., real=...)``).

A set is a folder of PNG/JPG/BMP files (sorted by name; grayscale repeated to RGB where the
other set is RGB is left to the metrics, which take 1 or 3 channels), or an ``.npz`` holding
``images`` (uint8, N x H x W x C or N x C x H x W, as ``ganx-sample out=x.npz`` writes). A real
set becomes a :class:`ganx.data.DataSource` named after its content (path, file count, sizes,
times), so its features are cached under ``metrics.cache_dir`` like a data set's and recomputed
when the folder changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from .errors import DataError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())


def read_set(path: str | Path, key: str = "samples") -> torch.Tensor:
    """Float N x C x H x W in [-1, 1] from a folder or an ``.npz``; one-line errors naming
    ``key`` and the path."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{key}={path}: no such folder or file")
    if path.is_dir():
        return as_float(read_folder(path, key))
    if path.suffix == ".npz":
        with np.load(path) as npz:
            if "images" not in npz:
                raise DataError(f"{key}={path}: the .npz holds no 'images' array ({list(npz)})")
            return as_float(npz["images"])
    raise DataError(f"{key}={path}: a folder of {'/'.join(SUFFIXES)} images or an .npz")


def read_folder(folder: Path, key: str = "samples") -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    files = image_files(folder)
    if not files:
        raise DataError(f"{key}={folder}: no {'/'.join(SUFFIXES)} images in this folder")
    arrays = []
    for file in files:
        try:
            with Image.open(file) as image:
                array = np.asarray(image.convert("L" if image.mode in ("L", "I", "1") else "RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"{key}={folder}: cannot read {file.name}: {err}") from None
        arrays.append(array[..., None] if array.ndim == 2 else array)
    shapes = sorted({a.shape for a in arrays})
    if len(shapes) > 1:
        raise DataError(
            f"{key}={folder}: images of different sizes {shapes[:3]}; resize them to one size"
        )
    return np.stack(arrays)


def as_float(images) -> torch.Tensor:
    """Float N x C x H x W in [-1, 1] from uint8 NHWC/NCHW (array or tensor) or a float tensor
    already in [-1, 1]."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.dtype == torch.uint8:
        if images.dim() == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
            images = images.permute(0, 3, 1, 2)
        return images.float() / 127.5 - 1
    return images.float()


def content_id(path: Path) -> str:
    """A short digest of a set's path, file names, sizes and times: the cache key's name."""
    path = Path(path).expanduser().resolve()
    files = image_files(path) if path.is_dir() else [path]
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha1(repr((str(path), stats)).encode()).hexdigest()[:12]


def real_source(path: str | Path):
    """A folder or ``.npz`` of real images as a data source for the metrics."""
    from .data import DataSource

    images = read_set(path, "real")
    name = f"{Path(path).expanduser().resolve().name}-{content_id(Path(path))}"
    return DataSource(name, images.shape[1], images.shape[-1], images=images)


def score_sets(
    samples: torch.Tensor, metrics: list[str], cfg, real: str | Path | None, device
) -> dict[str, float]:
    """``metrics`` of ``samples`` against the images at ``real`` or, when ``real`` is None, the
    data set of ``cfg`` (a composed ganx config: its ``dataset`` and its ``metrics`` block, as
    training's evaluation uses them, so a data set's cached real features are shared)."""
    from .build import build_data
    from .errors import ConfigError
    from .metrics.evaluation import eval_context
    from .metrics.registry import available_metrics, compute_metrics
    from .validate import check_inception_weights

    metrics = list(metrics or [])
    comparable = [m for m in available_metrics() if m.rsplit("_", 1)[-1] in ("mnist", "inception")]
    wrong = [m for m in metrics if m not in comparable]
    if not metrics or wrong:
        raise ConfigError(
            f"metrics={metrics}: comparing two image sets takes "
            f"<fid|kid|pr|is|classes>_<mnist|inception> metrics; allowed: {comparable}"
        )
    if any(m.endswith("_inception") for m in metrics):
        check_inception_weights(cfg, metrics)
    source = real_source(real) if real is not None else build_data(cfg)
    return compute_metrics(metrics, eval_context(samples, source, device, cfg.metrics))
