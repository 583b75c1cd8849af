"""Every bad input of a ganx-train command line gets one clear line, never a traceback, and
nothing is written: each case with the command that used to give a traceback or a wrong
result (the console script for one of each kind, the same entry point in-process for the rest).
"""

from __future__ import annotations

import json

import pytest
import torch
from ganx_cli import TINY_ARGS, error_lines, ganx_train, ganx_train_here


def refused_with_one_line(code: int, stderr: str, *expected: str) -> str:
    lines = error_lines(stderr)
    assert code != 0, stderr
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.step=5", ["train.step=5", "did you mean train.steps?"]),
        ("+train.step=5", ["+train.step=5", "did you mean train.steps?"]),
        ("model.latent_dim=x", ["model.latent_dim=x", "must be an integer"]),
        ("experiment=wgan-gp", ["experiment=wgan-gp", "wgan_gp", "reg_study_mnist", "dragan"]),
    ],
)
def test_console_script_refuses_with_one_line(tmp_path, override, expected):
    run_dir = tmp_path / "run"
    proc = ganx_train(*TINY_ARGS, override, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    refused_with_one_line(proc.returncode, proc.stderr, *expected)
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["reg.r1.weight=ten"], ["reg.r1.weight=ten", "must be a number"]),
        (["optim.g.betas=[0.5]"], ["optim.g.betas", "two numbers in [0, 1)"]),
        (["optim.g.lr=nan"], ["optim.g.lr=nan", "positive finite number"]),
        (["loss=nope"], ["loss=nope", "hinge, lsgan, minimax, ns, ragan, rpgan, rsgan, wgan"]),
        (["+optim.g.foo=1"], ["+optim.g.foo=1", "torch.optim.Adam takes no argument foo"]),
        (["reg.lecam.weight=1"], ["reg.lecam.weight", "did you mean"]),
        (["eval.metrics=[fid_mnist]", "eval.objective=fid256_mnist"], ["fid2k_mnist"]),
        (["eval.metrics=[]", "eval.objective=fid_mnist"], ["eval.objective=fid_mnist"]),
        (["train.batch_size=100000"], ["train.batch_size=100000", "5000 samples"]),
        (["model=sngan"], ["model=sngan does not support dataset.resolution=28"]),
    ],
)
def test_bad_values_refused_with_one_line(tmp_path, overrides, expected):
    run_dir = tmp_path / "run"
    code, stderr = ganx_train_here(*TINY_ARGS, *overrides, f"hydra.run.dir={run_dir}")
    refused_with_one_line(code, stderr, *expected)
    assert not run_dir.exists()


def test_resume_from_a_text_file_names_it(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint\n")
    run_dir = tmp_path / "run"
    code, stderr = ganx_train_here(*TINY_ARGS, f"resume={junk}", f"hydra.run.dir={run_dir}")
    refused_with_one_line(code, stderr, f"resume={junk}", "is a text file")
    assert not run_dir.exists()


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
def test_run_dir_that_is_a_file(tmp_path):
    path = tmp_path / "taken"
    path.write_text("a file\n")
    proc = ganx_train(*TINY_ARGS, f"hydra.run.dir={path}", cwd=tmp_path)
    refused_with_one_line(proc.returncode, proc.stderr, str(path), "is a file")
    assert path.read_text() == "a file\n"
    code, stderr = ganx_train_here(*TINY_ARGS, f"hydra.run.dir={path / 'sub'}")
    refused_with_one_line(code, stderr, f"is inside {path}, which is a file")


def headless_inception(path):
    """A stand-in for the offline pool3 conversion: a zero classifier head
    (ganx.commands.weights)."""
    torch.save({"fc.weight": torch.zeros(4, 4), "fc.bias": torch.zeros(4)}, path)
    return path


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_inception_score_without_a_head_is_refused_before_training(tmp_path):
    from test_data import write_cifar10

    weights = headless_inception(tmp_path / "pt_inception-2015-12-05.pth")
    run_dir = tmp_path / "run"
    write_cifar10(tmp_path / "data")
    proc = ganx_train(
        "loss=hinge",
        "reg=dat",
        "dataset=cifar10",
        f"dataset.root={tmp_path / 'data'}",
        "eval.metrics=[fid_inception,kid_inception,is_inception]",
        f"metrics.inception_weights={weights}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    refused_with_one_line(proc.returncode, proc.stderr, "is_inception", "classifier head")
    assert not run_dir.exists()


def test_fewer_samples_than_the_kid_subset_just_works(tmp_path):
    run_dir = tmp_path / "run"
    code, stderr = ganx_train_here(
        *TINY_ARGS,
        "eval.metrics=[kid_mnist]",
        "eval.num_samples=256",
        f"metrics.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
    )
    assert code == 0, stderr
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("kid256_mnist" in r for r in records)


def test_sweep_with_cfg_is_one_line(tmp_path):
    code, stderr = ganx_train_here("-m", "seed=0,1", "--cfg", "job")
    refused_with_one_line(code, stderr, "Only one of --run, --multirun", "without -m")
