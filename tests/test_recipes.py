"""docs/ARCHITECTURE.md's recipes cannot rot: each is followed, by its own code blocks, in a copy
of the package (src/ganx, conf, tests, scripts/key_coverage.py), and the copy then trains two
steps with the new piece, passes the recipe's own test, the key-coverage check and lint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from recipes import ROOT, copy_of_the_package, follow, recipe

RUFF = Path(sys.executable).with_name("ruff")


def run(copy: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        args, cwd=copy, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def check_recipe(tmp_path: Path, title: str, test_file: str, *train_args: str) -> None:
    steps = recipe(title)
    assert len(steps) == 3, steps  # its class, its YAML, its test
    copy = copy_of_the_package(tmp_path)
    touched = follow(copy, steps)
    assert any(p.name == test_file for p in touched)
    python = sys.executable
    where = run(
        copy, python, "-c", "import ganx, ganx.conf; print(ganx.__file__, ganx.conf.__path__)"
    )
    assert str(copy) in where.stdout, where.stderr
    run_dir = tmp_path / "run"
    trained = run(
        copy, python, "-m", "ganx.train", *train_args, "hardware=cpu", "hardware.threads=1",
        "train.steps=2", "train.batch_size=8", "log.every=1", "log.progress=false",
        "sample.every=2", "sample.n=4", "eval.metrics=[]", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert '"step": 2' in (run_dir / "metrics.jsonl").read_text()
    own_test = run(
        copy, python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"tests/{test_file}"
    )
    assert own_test.returncode == 0, own_test.stdout[-3000:]
    coverage = run(copy, python, "scripts/key_coverage.py")
    assert coverage.returncode == 0, coverage.stdout[-3000:]
    paths = [str(p.relative_to(copy)) for p in touched if p.suffix == ".py"]
    for ruff in (["check"], ["format", "--check"]):
        linted = run(copy, str(RUFF), *ruff, "--config", str(ROOT / "pyproject.toml"), *paths)
        assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.slow  # subprocesses: training, the recipe's test, key coverage (about 30 s)
def test_the_regularizer_recipe(tmp_path):
    check_recipe(tmp_path, "A regularizer", "test_reg_real_logit.py", "reg=[r1,real_logit]")


@pytest.mark.slow  # subprocesses: training, the recipe's test, key coverage (about 30 s)
def test_the_model_family_recipe(tmp_path):
    check_recipe(tmp_path, "A model family", "test_model_small.py", "model=small")
