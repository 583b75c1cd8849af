"""A run directory: is a previous run in it, is a process training in it now, moving a previous
run aside, and the record of every invocation that wrote into it.

Hydra's own ``.hydra/`` writing is switched off (``hydra.output_subdir: null``): ganx writes
``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` once, when a run starts, and
appends one line per invocation (the first and each resume) to ``.hydra/invocations.jsonl``,
so a resume never rewrites the record of how the run began.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError

try:  # POSIX; elsewhere run dirs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

# what a run writes; any of them in a directory means a previous run is there
RUN_OUTPUTS = (".hydra", "checkpoints", "metrics.jsonl", "status.json", "samples", "tb")


def writes_run_dir() -> bool:
    """Whether this process writes the run dir: under torchrun (``RANK`` set) rank 0 alone does.
    Every rank runs the pre-flight, but the other ranks start while rank 0 may already be
    writing ``.hydra/``: they check the config, not the folder, and record nothing."""
    return os.environ.get("RANK", "0") == "0"


def previous_run(run_dir: Path) -> list[str]:
    """The run outputs already in ``run_dir`` (empty: no previous run)."""
    run_dir = Path(run_dir)
    return [name for name in RUN_OUTPUTS if (run_dir / name).exists()]


# held (flock) by the process training in the run dir; the OS releases it when that process ends,
# however it ends, so a crashed run never leaves the directory locked
LOCK_FILE = ".ganx.lock"


class RunDirInUse(ConfigError):
    """Another live process is training in this run dir: a second writer would interleave its
    metrics.jsonl and overwrite its checkpoints."""


def _try_lock(handle) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def in_use_message(run_dir: Path, holder: str, key: str | None) -> str:
    return (
        f"{named(run_dir, key)} is in use: another ganx process is training in it ({holder}); "
        "nothing was written. Wait for it to end, or stop it (it saves a checkpoint) and "
        "continue with resume=auto"
    )


def check_not_in_use(run_dir: Path, key: str | None = "hydra.run.dir") -> None:
    """Refuse a run dir a live process holds (a probe: the lock is released at once)."""
    path = Path(run_dir) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return
    with open(path) as handle:
        if not _try_lock(handle):
            holder = handle.read().strip() or "holder unknown"
            raise RunDirInUse(in_use_message(Path(run_dir), holder, key))


@contextlib.contextmanager
def held(run_dir: Path, key: str | None = "hydra.run.dir"):
    """Hold the run dir's lock while training in it; a second process is refused (RunDirInUse)
    before it reads a checkpoint or writes anything. Yields ``started()``: call it once the run
    has begun (its checkpoint read, its data built) to write the holder's line. A run refused
    before that leaves the directory as it found it: an existing lock file keeps its bytes, a
    lock file (and empty run dir) this call created is removed. The lock file otherwise stays
    (removing it would let a third process lock a different inode)."""
    if fcntl is None:
        yield lambda: None
        return
    run_dir = Path(run_dir)
    path = run_dir / LOCK_FILE
    made_dir, made_file = not run_dir.exists(), not path.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "holder unknown"
            raise RunDirInUse(in_use_message(run_dir, holder, key))
        begun = []

        def started() -> None:
            handle.seek(0)
            handle.truncate()
            since = time.strftime("%Y-%m-%d %H:%M:%S")
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {since}\n")
            handle.flush()
            begun.append(True)

        try:
            yield started
        except BaseException:
            if not begun and made_file:  # refused before it began: leave no trace
                path.unlink(missing_ok=True)
                if made_dir:
                    with contextlib.suppress(OSError):  # only when empty
                        run_dir.rmdir()
            raise
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def named(run_dir: Path, key: str | None) -> str:
    """``hydra.run.dir=D`` for the run dir of a run, ``job dir D`` for a sweep's job."""
    return f"{key}={run_dir}" if key else f"job dir {run_dir}"


def check_location(run_dir: Path, key: str | None = "hydra.run.dir") -> None:
    """The run dir, and every existing folder above it, must be a directory."""
    run_dir = Path(run_dir)
    for path in (run_dir, *run_dir.parents):
        if path.exists() and not path.is_dir():
            what = "is" if path == run_dir else f"is inside {path}, which is"
            raise ConfigError(f"{named(run_dir, key)}: {what} a file, not a directory")


def writable(path: Path) -> bool:
    """``access(2)``: it answers EROFS on a read-only mount even for root."""
    return os.access(path, os.W_OK)


def check_writable(run_dir: Path, key: str | None = "hydra.run.dir") -> None:
    """The run dir, or the nearest existing folder above it, must be writable: a read-only
    mount is refused before Hydra tries to create anything in it."""
    run_dir = Path(run_dir)
    existing = next((p for p in (run_dir, *run_dir.parents) if p.exists()), None)
    if existing is None or writable(existing):
        return
    read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    why = "is on a read-only file system" if read_only else "is not writable by this user"
    where = "" if existing == run_dir else f" (the nearest existing folder, {existing}, {why})"
    raise ConfigError(
        f"{named(run_dir, key)}: cannot write there{where or ': it ' + why}; nothing was written"
    )


def aside_path(run_dir: Path) -> Path:
    """Where ``start_over=true`` moves a previous run: ``<name>.old-<date>-<time>`` beside it."""
    run_dir = Path(run_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}")
    return candidate


def move_aside(run_dir: Path) -> Path:
    """Move a previous run out of the way (a rename: nothing is deleted or copied)."""
    target = aside_path(run_dir)
    os.rename(run_dir, target)
    return target


def occupied_message(run_dir: Path, found: list[str], key: str | None = "hydra.run.dir") -> str:
    return (
        f"{named(run_dir, key)} holds a previous run ({', '.join(found)}); nothing was written. "
        "Continue it with resume=auto, or start over with start_over=true, which moves the "
        f"previous run to {run_dir.name}.old-<date>-<time>/ beside it (nothing is deleted)"
    )


def record_invocation(
    run_dir: Path,
    cfg: DictConfig,
    hydra_cfg: DictConfig | None,
    changes: dict,
    overrides: list[str] | None = None,
) -> None:
    """``.hydra/`` for the first invocation; one line in ``.hydra/invocations.jsonl`` for
    every invocation (its overrides, its resume source and what it changed). ``overrides``:
    those of a run started from Python (``ganx.fit``), which has no Hydra config."""
    hydra_dir = Path(run_dir) / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    if overrides is None:
        overrides = list(hydra_cfg.overrides.task) if hydra_cfg is not None else []
    if not (hydra_dir / "config.yaml").exists():
        OmegaConf.save(cfg, hydra_dir / "config.yaml")
        if hydra_cfg is not None:
            OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), hydra_dir / "hydra.yaml")
        OmegaConf.save(OmegaConf.create(overrides), hydra_dir / "overrides.yaml")
    record = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "overrides": overrides,
        "resume": cfg.resume,
        "changed": {k: {"was": old, "now": new} for k, (old, new) in changes.items()},
    }
    with open(hydra_dir / "invocations.jsonl", "a") as f:
        f.write(json.dumps(record, default=str) + "\n")
