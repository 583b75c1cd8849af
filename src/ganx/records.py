"""Reproducibility records: what produced a run (``run.json``, and the same in checkpoints).

The ganx version and, when ganx runs from a git checkout, the commit and whether the tree had
uncommitted changes; the versions of Python and the libraries that shape results; the device,
the host and the full command line. Imports nothing heavy: ``ganx --version`` and shell
completion use it.
"""

from __future__ import annotations

import contextvars
import functools
import json
import platform
import shlex
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

# distributions whose versions change numbers or behaviour
LIBRARIES = ("torch", "torchvision", "hydra-core", "omegaconf", "torch-fidelity", "tensorboard")


def ganx_version() -> str:
    try:
        return metadata.version("ganx")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def git_state(start: Path | None = None) -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout holding ganx's source, or None when
    ganx is not run from a git checkout (an installed wheel) or git is missing."""
    where = Path(start or Path(__file__).resolve().parent)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


@functools.cache
def running_source_state() -> dict | None:
    """:func:`git_state` of ganx's own checkout, once per process: the code a process runs was
    imported at its start, so that state is the one to record (and a sweep's jobs do not each
    pay two git calls)."""
    return git_state()


@functools.cache
def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe_device(device) -> str:
    """``cpu (N threads)`` or ``cuda:0 (NVIDIA H200)``; ``device`` is a torch.device or str."""
    name = str(device)
    if name.startswith("cuda"):
        import torch

        return f"{name} ({torch.cuda.get_device_name(torch.device(name))})"
    if name == "cpu":
        import torch

        return f"cpu ({torch.get_num_threads()} threads)"
    return name


def version_line() -> str:
    """``ganx 0.1.0 (git 1a2b3c4d, uncommitted changes)``."""
    line = f"ganx {ganx_version()}"
    git = running_source_state()
    if git:
        line += f" (git {git['commit'][:10]}{', uncommitted changes' if git['dirty'] else ''})"
    return line


# a run started from Python (ganx.fit): the ganx-train command that trains the same config,
# recorded instead of the Python process's own argv (which is kept as "python")
API_COMMAND: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "ganx_api_command", default=None
)


def run_record(device=None, argv: list[str] | None = None) -> dict:
    """Everything that identifies how a run was produced, as plain JSON types."""
    api = API_COMMAND.get() if argv is None else None
    argv = list(api or (sys.argv if argv is None else argv))
    extra = {"python": shlex.join(sys.argv)} if api else {}
    return {
        "ganx": ganx_version(),
        "git": running_source_state(),
        "versions": dict(library_versions()),  # a copy: the cached dict stays as read
        "device": describe_device(device) if device is not None else None,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "command": shlex.join([Path(argv[0]).name, *argv[1:]]) if argv else "",
        "cwd": str(Path.cwd()),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def write_run_record(run_dir: Path, record: dict) -> Path:
    """``run.json`` in the run directory (rewritten on resume: a list keeps every start)."""
    path = Path(run_dir) / "run.json"
    previous = []
    if path.exists():
        try:
            old = json.loads(path.read_text())
            previous = old if isinstance(old, list) else [old]
        except (OSError, json.JSONDecodeError):
            previous = []
    path.write_text(json.dumps([*previous, record], indent=2) + "\n")
    return path
