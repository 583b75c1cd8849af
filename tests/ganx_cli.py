"""Running ``ganx-train`` as a user types it: in a subprocess (the console script) or in this
process through the same entry point (``ganx.train.main``), which is faster and lets a test
replace training."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from conftest import TINY, TINY_WIDTHS

GANX_TRAIN = str(Path(sys.executable).parent / "ganx-train")
TINY_ARGS = [*TINY, *TINY_WIDTHS["dcgan"], "hardware.threads=1"]


def ganx_train(*args: str, cwd: Path | None = None, timeout: float = 300):
    """The console script in a subprocess; returns the CompletedProcess."""
    env = {**os.environ, "HYDRA_FULL_ERROR": ""}
    return subprocess.run(
        [GANX_TRAIN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def run_here(main, prog: str, *args: str) -> tuple[int, str, str]:
    """A console script's ``main`` in this process, as ``prog args``: (exit code, stdout,
    stderr); a ``sys.exit("line")`` is exit code 1 with the line on stderr, as in a shell."""
    err, out = io.StringIO(), io.StringIO()
    saved, sys.argv = sys.argv, [prog, *args]
    code = 0
    try:
        with redirect_stderr(err), redirect_stdout(out):
            main()
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            err.write(exit_.code + "\n")
        code = 1 if isinstance(exit_.code, str) else (exit_.code or 0)
    finally:
        sys.argv = saved
    return code, out.getvalue(), err.getvalue()


def ganx_train_here(*args: str) -> tuple[int, str]:
    """``ganx.train.main`` in this process: (exit code, stderr)."""
    import ganx.train

    code, _, err = run_here(ganx.train.main, "ganx-train", *args)
    return code, err


def error_lines(stderr: str) -> list[str]:
    """The lines ganx-train printed, without Python's warnings."""
    lines = [x for x in stderr.splitlines() if x.strip()]
    return [x for x in lines if "Warning" not in x and not x.lstrip().startswith("warnings.")]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder with its bytes (to prove nothing changed)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def wait_for_step(run_dir: Path, step: int, proc, timeout: float = 120) -> None:
    """Wait until a ganx-train subprocess has logged ``step`` (metrics.jsonl); fail, with its
    output, if it ends first."""
    deadline = time.time() + timeout
    metrics = run_dir / "metrics.jsonl"
    while time.time() < deadline:
        if metrics.exists():
            lines = metrics.read_text().splitlines()
            if lines and json.loads(lines[-1])["step"] >= step:
                return
        if proc.poll() is not None:
            out = proc.communicate()[0] if proc.stdout else ""
            raise AssertionError(f"training ended early: {proc.returncode}\n{out}")
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the run")
