"""docs/ARCHITECTURE.md's recipes cannot rot: each is followed, by its own code blocks, in a copy
of the package (src/ganx, conf, tests, scripts/key_coverage.py), and the copy then trains two
steps with the new piece, passes the recipe's own test, the key-coverage check and lint."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
# "**1. Its class.** Append to `src/ganx/regularizers.py`:" then a fenced block
STEP = re.compile(r"(Append to|Create) `([^`]+)`(?:(?!```).)*?:\n\n```\w*\n(.*?)```", re.DOTALL)
RUFF = Path(sys.executable).with_name("ruff")


def recipe(title: str) -> list[tuple[str, str, str]]:
    """(verb, path, code) of each step of the recipe under ``### title``."""
    text = ARCHITECTURE.read_text().split("## Recipes", 1)[1]
    section = text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]
    return STEP.findall(section)


def copy_of_the_package(tmp_path: Path) -> Path:
    """The files a recipe may touch and what checks them; ``ganx.conf`` resolves to the copy's
    conf (as the installed package maps it) through a link inside the copied package."""
    copy = tmp_path / "ganx"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src" / "ganx", copy / "src" / "ganx", ignore=ignore)
    shutil.copytree(ROOT / "conf", copy / "conf", ignore=ignore)
    shutil.copytree(ROOT / "tests", copy / "tests", ignore=ignore)
    (copy / "scripts").mkdir()
    for name in ("key_coverage.py", "key_coverage_gaps.txt"):
        shutil.copy(ROOT / "scripts" / name, copy / "scripts" / name)
    (copy / "src" / "ganx" / "conf").symlink_to(copy / "conf")
    return copy


def follow(copy: Path, steps: list[tuple[str, str, str]]) -> list[Path]:
    touched = []
    for verb, path, code in steps:
        target = copy / path
        assert (verb == "Create") != target.exists(), f"{verb} {path}: the file's state"
        before = target.read_text() if verb == "Append to" else ""
        target.write_text(before + ("\n\n" if before else "") + code)
        touched.append(target)
    return touched


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
