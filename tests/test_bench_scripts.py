"""The benchmark scripts' own logic (their measurements run on the GPU machine, not here)."""

import csv
import json

import pytest
import torch
from conftest import TINY_WIDTHS, load_script
from key_cover import override


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_bench_quality_evaluates_at_fixed_steps_and_resumes(tmp_path, capsys):
    quality = load_script("bench_quality")
    tiny = " ".join([*TINY_WIDTHS["dcgan"], "train.batch_size=16", "sample.every=2"])
    argv = [
        "--out",
        str(tmp_path),
        "--steps",
        "2",
        "5",
        "--seeds",
        "0",
        "1",
        "--metrics",
        "fid_mnist",
        "classes_mnist",
        "--num-samples",
        "64",
        "--hardware",
        "cpu",
        "--threads",
        "1",
        "--configs",
        f"plain:{tiny}",
        f"r1:{tiny} reg=r1",
    ]
    quality.main(argv)
    rows = list(csv.DictReader(open(tmp_path / "quality.csv")))
    assert [(r["config"], r["seed"], r["step"]) for r in rows] == [
        (c, s, t) for c in ("plain", "r1") for s in ("0", "1") for t in ("2", "5")
    ]
    assert all(float(r["fid64_mnist"]) > 0 and 0 <= float(r["classes64_mnist"]) <= 10 for r in rows)
    table = (tmp_path / "quality.md").read_text()
    assert "| r1 |" in table and "fid64_mnist" in table
    assert (tmp_path / "fid64_mnist.png").is_file()
    run = tmp_path / "runs" / "r1" / "seed=1"
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == [
        "step_0000002.pt",
        "step_0000005.pt",
    ]
    # the same command again trains nothing and gives the same table
    before = (run / "metrics.jsonl").read_text()
    capsys.readouterr()
    quality.main(argv)
    assert capsys.readouterr().out.count("already finished") == 4
    assert (run / "metrics.jsonl").read_text() == before


def test_bench_quality_refuses_a_bad_configuration_before_training(tmp_path):
    quality = load_script("bench_quality")
    with pytest.raises(SystemExit):
        quality.main(["--out", str(tmp_path), "--configs", "bad:loss=nope", "--steps", "2"])
    assert not (tmp_path / "runs").exists()


def test_bench_presets_and_curve_windows():
    bench = load_script("bench")
    assert bench.preset_overrides("eager_fp32") == ["hardware=cpu"]
    assert bench.preset_overrides("cuda_fast+compile=off+amp=fp16") == [
        "hardware=cuda_fast",
        "hardware.compile=off",
        "hardware.amp=fp16",
    ]
    assert bench.windowed([1.0] * 5 + [3.0] * 5) == [1.0, 1.0, 2.0, 3.0, 3.0]
    assert bench.max_gap([0.0] * 10, [0.0] * 9 + [5.0]) == pytest.approx(2.5)
    d, g = bench.loss_curves("mlp", 8, "eager_fp32", torch.device("cpu"), 3)
    assert len(d) == len(g) == 3 and all(map(torch.isfinite, torch.tensor(d + g)))


def test_eval_at_adds_evaluation_steps(tmp_path, tiny_cfg):
    from ganx.errors import ConfigError
    from ganx.loop import train
    from ganx.validate import validate

    cfg = tiny_cfg(
        "train.steps=5",
        override("eval.every", 100),
        override("eval.at", [1, 3]),
        "eval.metrics=[fid_mnist]",
    )
    cfg.eval.num_samples = 32
    train(cfg, tmp_path)
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "fid32_mnist" in r] == [1, 3, 5]
    with pytest.raises(ConfigError, match=r"eval.at\[1\]=0: must be a positive integer"):
        validate(tiny_cfg(override("eval.at", [2, 0])))


def test_bench_quality_stops_after_a_signal(tmp_path, monkeypatch, capsys):
    """A signal interrupts the run in progress (it saves its checkpoint: ganx.loop.train returns
    "interrupted"); no later run starts, exit 130, and the same command continues."""
    import ganx.loop

    quality = load_script("bench_quality")
    started = []

    def interrupted_first(cfg, run_dir):
        started.append(run_dir.parent.name)
        status = "interrupted" if len(started) == 1 else "finished"
        return {"status": status, "step": 1}

    monkeypatch.setattr(ganx.loop, "train", interrupted_first)
    argv = ["--out", str(tmp_path), "--steps", "2", "--metrics", "fid_mnist"]
    argv += ["--hardware", "cpu", "--configs", "a:reg=none", "b:reg=r1"]
    with pytest.raises(SystemExit) as stop:
        quality.main(argv)
    assert stop.value.code == 130 and started == ["a"]
    err = capsys.readouterr().err
    assert "stopped by a signal" in err and "the same command continues" in err
    quality.main(argv)  # the same command: both runs are trained (neither finished)
    assert started == ["a", "a", "b"]


@pytest.mark.parametrize(
    "net",
    [
        "toy",
        pytest.param("mlp", marks=pytest.mark.slow),
        pytest.param("dcgan", marks=pytest.mark.slow),
    ],
)
def test_bench_overhead_hand_loops_train_what_ganx_trains(net):
    """Each hand-written loop of scripts/bench_overhead.py trains the same thing as ganx-train
    (same nets, losses, optimisers, data order, penalty and EMA): the same losses, step by step,
    from the same seed; and a different seed is told apart."""
    bench = load_script("bench_overhead")
    ganx_curve, hand_curve = bench.check_curves(net, 3)
    assert len(ganx_curve) == 3 and ganx_curve == hand_curve
    _, other_seed = bench.check_curves(net, 3, hand_overrides=["seed=1"])
    assert other_seed != ganx_curve


def test_every_semantic_mutation_still_applies_to_the_code_and_names_real_tests():
    """scripts/mutants.py counts a snippet that is not found exactly once as an ERROR when it
    runs (24 minutes, on demand); this finds it in the fast suite, when the code moves on."""
    import re
    from pathlib import Path

    mutants = load_script("mutants")
    root = Path(__file__).resolve().parents[1]
    for mutation in mutants.MUTATIONS:
        text = (root / mutation.file).read_text()
        assert text.count(mutation.old) == 1, f"{mutation.name}: its snippet moved"
        for node in mutation.tests:
            file, _, name = node.partition("::")
            source = (root / "tests" / file).read_text()
            function = re.sub(r"\[.*\]$", "", name)
            assert not name or f"def {function}(" in source, f"{mutation.name}: no test {node}"
