"""The Python API, reproducibility records, --version, ganx-sample seed/latents, ganx-export,
--help per tool and shell completion without torch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_cfg
from internals import generate

import ganx
from ganx.metrics.evaluation import sample_for_eval

ROOT = Path(__file__).resolve().parents[1]


def run_module(args, cwd, env=None, module="ganx.train"):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def run_code(code, *args, cwd):
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny DCGAN run through ganx.fit (the API), with its checkpoint."""
    run_dir = tmp_path_factory.mktemp("api") / "run"
    cfg = compose_cfg("train.steps=2", "ckpt.every=2")
    result = ganx.fit(cfg, run_dir)
    assert result["status"] == "finished"
    return run_dir


def test_import_ganx_is_light_and_versioned(tmp_path):
    proc = run_code(
        "import sys, ganx; print(ganx.__version__); print('torch' in sys.modules)", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    version, torch_loaded = proc.stdout.split()
    assert version == ganx.__version__ != "0+unknown"
    assert torch_loaded == "False"
    assert callable(ganx.load_generator) and callable(ganx.fit)


def test_version_flag_names_ganx(tmp_path):
    proc = run_module(["--version"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()[:2]
    assert first.startswith(f"ganx-train: ganx {ganx.__version__}")
    assert second.startswith("Hydra ")
    for code in (
        "from ganx.commands.sample import main; main()",
        "from ganx.commands.report import main; main()",
    ):
        proc = run_code(code, "--version", cwd=tmp_path)
        assert proc.returncode == 0 and f"ganx {ganx.__version__}" in proc.stdout


def test_run_json_records_what_produced_the_run(trained):
    records = json.loads((trained / "run.json").read_text())
    record = records[-1]
    assert record["ganx"] == ganx.__version__
    assert set(record["versions"]) >= {"python", "torch", "torchvision", "hydra-core"}
    assert record["versions"]["torch"] == torch.__version__.split("+")[0] or record["versions"][
        "torch"
    ].startswith(torch.__version__.split("+")[0])
    assert record["device"].startswith("cpu")
    assert record["host"] and record["command"]
    git = record["git"]  # the tests run from a checkout
    assert git is None or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))


def test_git_state_marks_uncommitted_changes(tmp_path):
    from ganx.records import git_state

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    clean = git_state(tmp_path)
    assert clean["dirty"] is False and len(clean["commit"]) == 40
    (tmp_path / "a.txt").write_text("2")
    assert git_state(tmp_path) == {"commit": clean["commit"], "dirty": True}
    assert git_state(tmp_path.parent / "nowhere") is None


def test_api_samples_match_training_evaluation(trained):
    G = ganx.load_generator(trained / "checkpoints" / "last.pt")
    assert G.step == 2 and G.bn_stats == "batch"
    cfg = G.config
    expected = sample_for_eval(G.module, cfg, G.step, torch.device("cpu"), n=40)
    assert torch.equal(G.sample(40), expected)  # seed=None: the evaluation noise
    a, b = G.sample(8, seed=5), G.sample(8, seed=5)
    assert torch.equal(a, b) and not torch.equal(a, G.sample(8, seed=6))
    z = G.latents(8, seed=5)
    assert torch.equal(G.sample(latents=z), a)
    assert torch.equal(a, generate(G.module, z, "batch"))


def test_api_evaluate_array_and_folder(trained, tmp_path):
    from PIL import Image

    G = ganx.load_generator(trained / "checkpoints" / "last.pt")
    images = G.sample(60, seed=1)
    from_tensor = ganx.evaluate(images, ["fid_mnist"])
    uint8 = ((images + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    from_array = ganx.evaluate(uint8, ["fid_mnist"])
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(uint8):
        Image.fromarray(img[..., 0]).save(folder / f"{i:03d}.png")
    from_folder = ganx.evaluate(folder, ["fid_mnist"])
    assert from_array == from_folder
    assert from_array["fid60_mnist"] == pytest.approx(from_tensor["fid60_mnist"], rel=1e-4)


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
def test_ganx_sample_seed_and_latents(trained, tmp_path):
    last = trained / "checkpoints" / "last.pt"
    code = "from ganx.commands.sample import main; main()"
    args = [f"checkpoint={last}", "n=12", "device=cpu", "seed=7"]
    proc = run_code(code, *args, "out=a.npz", "latents=z.npy", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    saved = np.load(tmp_path / "a.npz")
    z = np.load(tmp_path / "z.npy")
    assert saved["images"].shape == (12, 28, 28, 1) and np.array_equal(saved["latents"], z)
    G = ganx.load_generator(last)
    expected = G.sample(12, seed=7)
    from ganx.commands.sample import to_uint8_nhwc

    assert np.array_equal(saved["images"], to_uint8_nhwc(expected))
    assert np.array_equal(z, G.latents(12, seed=7).numpy())
    proc = run_code(code, f"checkpoint={last}", "n=12", "seed=nope", "out=b.npz", cwd=tmp_path)
    assert proc.returncode != 0 and "seed='nope'" in proc.stderr


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
def test_ganx_export_torchscript_gives_ganx_samples(trained, tmp_path):
    last = trained / "checkpoints" / "last.pt"
    out = tmp_path / "g.pt"
    proc = run_module([f"checkpoint={last}", f"out={out}"], tmp_path, module="ganx.commands.export")
    assert proc.returncode == 0, proc.stderr
    extra = {"ganx.json": ""}
    exported = torch.jit.load(str(out), _extra_files=extra)
    meta = json.loads(extra["ganx.json"])
    # the run samples with batch statistics: exported per-sample, with frozen ones
    assert meta["latent_dim"] == 100 and meta["bn_stats"] == "frozen" and meta["step"] == 2
    assert "ganx-export: warning" not in proc.stderr
    G = ganx.load_generator(last, bn_stats="frozen")
    for n, seed in ((16, 3), (5, 4)):  # another batch size than the traced one
        z = G.latents(n, seed=seed)
        torch.testing.assert_close(exported(z), G.sample(latents=z), rtol=0, atol=1e-5)
        # one latent alone gives the image it gives in a batch of 16
        torch.testing.assert_close(exported(z[:1]), exported(z)[:1], rtol=0, atol=1e-5)
    # frozen statistics stay close to the batch statistics the run's evaluation sampled with
    z = G.latents(256, seed=5)
    batch = ganx.load_generator(last).sample(latents=z)
    assert (exported(z) - batch).abs().mean() < 0.05
    # bn_stats=batch on purpose: the batch-dependent function, with a warning
    dependent = tmp_path / "batch.pt"
    proc = run_module(
        [f"checkpoint={last}", f"out={dependent}", "bn_stats=batch"],
        tmp_path,
        module="ganx.commands.export",
    )
    assert proc.returncode == 0 and "warning: bn_stats=batch" in proc.stderr
    z = G.latents(16, seed=3)
    alone = torch.jit.load(str(dependent))(z[:1])
    assert (alone - torch.jit.load(str(dependent))(z)[:1]).abs().max() > 1e-3
    running = tmp_path / "running.pt"
    from ganx.commands.export import export_generator

    export_generator(str(last), running, bn_stats="running")
    z = G.latents(9, seed=0)
    ref = generate(G.module, z, "running")
    torch.testing.assert_close(torch.jit.load(str(running))(z), ref, rtol=0, atol=1e-5)


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
def test_ganx_export_onnx_gives_ganx_samples(trained, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from ganx.commands.export import export_generator

    out = tmp_path / "g.onnx"
    export_generator(str(trained / "checkpoints" / "last.pt"), out, fmt="onnx")
    G = ganx.load_generator(trained / "checkpoints" / "last.pt", bn_stats="frozen")
    session = ort.InferenceSession(str(out))
    for n in (16, 3):
        z = G.latents(n, seed=n)
        (images,) = session.run(None, {"latents": z.numpy()})
        np.testing.assert_allclose(images, G.sample(latents=z).numpy(), atol=1e-5)


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_help_names_each_tool_and_only_its_groups(tmp_path):
    proc = run_module(["--help"], tmp_path)
    text = proc.stdout
    assert proc.returncode == 0 and text.startswith("ganx-train:")
    assert "powered by Hydra" not in text
    for group in ("model:", "loss:", "reg:", "dataset:", "hardware:", "logger:"):
        assert group in text
    for module, name in (
        ("ganx.commands.export", "ganx-export"),
        ("ganx.dirac_study", "ganx-dirac"),
    ):
        proc = run_module(["--help"], tmp_path, module=module)
        assert proc.returncode == 0 and proc.stdout.startswith(f"{name}:"), proc.stderr
        assert "model:" not in proc.stdout and "powered by Hydra" not in proc.stdout
    for code, name in (
        ("from ganx.commands.sample import main; main()", "ganx-sample"),
        ("from ganx.commands.eval import main; main()", "ganx-eval"),
    ):
        proc = run_code(code, "--help", cwd=tmp_path)
        assert proc.stdout.startswith(f"{name}:") and "model:" not in proc.stdout
    for module in (
        "ganx.commands.report",
        "ganx.commands.weights",
    ):  # argparse: every option has help text
        proc = run_module(["--help"], tmp_path, module=module)
        options = [line for line in proc.stdout.splitlines() if line.strip().startswith("--")]
        assert options and all(len(line.split()) > 2 for line in options), proc.stdout


def test_shell_completion_does_not_import_torch(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ganx.train", "-sc", "query=bash"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "COMP_LINE": "ganx-train lo"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "logger=" in proc.stdout and "loss=" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()}
    assert "torch" not in imported and "ganx.loop" not in imported
