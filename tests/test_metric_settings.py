"""How the metrics use their settings, at values other than the defaults (where the default
hides a mistake: a KID subset of 1000 is larger than a test's sample count, so any subset-size
bug is clamped away), each compared with torch-fidelity's own function on the same features;
and how mixture modes are identified."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import compose_cfg
from key_cover import override, setting
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from ganx.build import build_data
from ganx.data import DataSource, mixture_centres
from ganx.metrics.fidelity import FeatureBank, fidelity_metrics
from ganx.metrics.registry import EvalContext, compute_metrics


class RandomFeatures:
    """Stands in for the feature network: real images (black) and generated ones (white) get
    distinct, seeded 8-d features; records how many images each call saw."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def has_classifier_head(self, kind):
        return True

    def features(self, kind, images):
        real = images.float().mean() < 128
        self.calls.append(("real" if real else "fake", len(images)))
        gen = torch.Generator().manual_seed(len(images) + (0 if real else 1000))
        feats = torch.randn(len(images), 8, generator=gen) + (0.0 if real else 0.5)
        return {"64": feats, "logits_unbiased": torch.randn(len(images), 10, generator=gen)}


def black_source(n: int) -> DataSource:
    return DataSource("black", 1, 28, images=-torch.ones(n, 1, 28, 28))


WHITE = torch.full((40, 3, 28, 28), 255, dtype=torch.uint8)


def metrics(wanted, kid_subset_size=1000, real_count=None, source_size=60):
    bank = RandomFeatures()
    out = fidelity_metrics(
        "mnist", wanted, WHITE, black_source(source_size), bank, None, kid_subset_size, real_count
    )
    return out, bank


def feats(n: int, real: bool) -> torch.Tensor:
    images = torch.zeros(n, 3, 28, 28, dtype=torch.uint8) + (0 if real else 255)
    return RandomFeatures().features("mnist", images)["64"]


def test_kid_uses_the_configured_subset_size_as_torch_fidelity_does():
    size = setting("metrics.kid_subset_size", 16)
    out, _ = metrics({"kid"}, kid_subset_size=size)
    expected = kid_features_to_metric(
        feats(40, False),
        feats(40, True),
        kid_subsets=100,
        kid_subset_size=16,
        rng_seed=2020,
        verbose=False,
    )["kernel_inception_distance_mean"]
    assert out["kid40_mnist"] == pytest.approx(float(expected), rel=1e-6)
    clamped, _ = metrics({"kid"})  # 1000 > 40 samples: the subset is all 40
    all_40 = kid_features_to_metric(
        feats(40, False),
        feats(40, True),
        kid_subsets=100,
        kid_subset_size=40,
        rng_seed=2020,
        verbose=False,
    )["kernel_inception_distance_mean"]
    assert clamped["kid40_mnist"] == pytest.approx(float(all_40), rel=1e-6)
    assert clamped["kid40_mnist"] != pytest.approx(out["kid40_mnist"], rel=1e-3)


def test_real_count_sets_how_many_real_images_fid_compares_with():
    out, bank = metrics({"fid"}, real_count=setting("metrics.real_count", 25))
    assert ("real", 25) in bank.calls and ("fake", 40) in bank.calls
    expected = fid_statistics_to_metric(
        fid_features_to_statistics(feats(40, False)),
        fid_features_to_statistics(feats(25, True)),
        verbose=False,
    )["frechet_inception_distance"]
    assert out["fid40_mnist"] == pytest.approx(float(expected), rel=1e-6)
    capped, bank = metrics({"fid"}, real_count=500, source_size=60)  # no more than the data
    assert ("real", 60) in bank.calls
    default, bank = metrics({"fid"})  # null: as many as the samples
    assert ("real", 40) in bank.calls and default["fid40_mnist"] != out["fid40_mnist"]


def test_precision_recall_use_torch_fidelitys_k_of_3():
    """k = 3 nearest neighbours (torch-fidelity's default ``prc_neighborhood``; Kynkäänniemi et
    al. 2019 use k = 3)."""
    out, _ = metrics({"pr"})
    ours = (out["precision40_mnist"], out["recall40_mnist"])

    def prc(k):
        got = prc_features_to_metric(
            feats(40, False),
            feats(40, True),
            prc_neighborhood=k,
            prc_batch_size=10000,
            save_cpu_ram=True,
            verbose=False,
        )
        return float(got["precision"]), float(got["recall"])

    assert ours == pytest.approx(prc(3))
    assert ours != pytest.approx(prc(5))


def test_metrics_batch_size_sets_the_extractors_chunks():
    bank = FeatureBank(torch.device("cpu"), batch_size=setting("metrics.batch_size", 7))
    seen = []

    class Recording:
        features_list = ("64",)

        def __call__(self, chunk):
            seen.append(len(chunk))
            return (torch.zeros(len(chunk), 64),)

    bank._extractors["mnist"] = Recording()
    out = bank.features("mnist", torch.zeros(20, 3, 28, 28, dtype=torch.uint8))
    assert seen == [7, 7, 6] and out["64"].shape == (20, 64)


def ring_source(*overrides: str):
    return build_data(compose_cfg("dataset=ring8", *overrides))


def test_dataset_std_sets_the_mixture_spread_and_the_modes_radius():
    wide = ring_source(override("dataset.std", 0.1))
    assert wide.extra["std"] == 0.1
    # distance to the nearest centre of a 2-D Gaussian: Rayleigh, mean std * sqrt(pi / 2)
    nearest = torch.cdist(wide.images[:5000], mixture_centres("ring8")).min(1).values
    assert nearest.mean().item() == pytest.approx(0.1 * math.sqrt(math.pi / 2), rel=0.05)
    # a point 0.25 from a centre: within 3 std of 0.1, not of the default 0.02
    point = torch.tensor([[2.25, 0.0]]).repeat(100, 1)
    assert compute_metrics(["modes"], EvalContext(point, wide))["high_quality_ring8"] == 1.0
    narrow = ring_source("dataset.std=0.05")
    assert compute_metrics(["modes"], EvalContext(point, narrow))["high_quality_ring8"] == 0.0


def test_modes_are_identified_by_nearest_centre_and_a_20_percent_share():
    """Metz et al. 2017 / PacGAN (Lin et al. 2018): a sample is high quality within 3 std of its
    nearest centre; a mode is covered with >= 20% of its uniform share of the samples."""
    source = ring_source()
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    centres = torch.stack([2 * angles.cos(), 2 * angles.sin()], 1).float()
    # 400 samples: uniform share 50, threshold 10. Modes 0-5 get 60 each, mode 6 gets 10
    # (exactly the threshold: covered), mode 7 gets 9 (not), 21 samples far from every centre
    counts = [60] * 6 + [10, 9]
    samples = torch.cat([centres[i].repeat(c, 1) for i, c in enumerate(counts)])
    samples = torch.cat([samples, torch.zeros(21, 2)])  # the origin: 2 away from every centre
    out = compute_metrics(["modes"], EvalContext(samples, source))
    assert out["modes_ring8"] == 7
    assert out["high_quality_ring8"] == pytest.approx(379 / 400)


def test_inception_weights_path_is_the_one_loaded():
    from ganx.errors import MetricError

    path = setting("metrics.inception_weights", "/nonexistent/inception.pth")
    bank = FeatureBank(torch.device("cpu"), inception_weights=path)
    with pytest.raises(MetricError) as missing:
        bank.extractor("inception")
    assert str(missing.value) == (
        "Inception weights not found at /nonexistent/inception.pth; run `ganx-weights "
        "inception` (offline conversion) or set metrics.inception_weights"
    )


class Pool3(RandomFeatures):
    """Stands in for torch-fidelity's Inception: its FID/KID/PR layer is '2048'."""

    def __init__(self, weights, head=True):
        super().__init__()
        weights.write_bytes(b"w")  # real features' cache key reads the file's size and time
        self.inception_weights, self.head = weights, head

    def has_classifier_head(self, kind):
        return self.head

    def features(self, kind, images):
        out = super().features(kind, images)
        return {"2048": out["64"], "logits_unbiased": out["logits_unbiased"]}


def test_every_metric_is_torch_fidelitys_at_its_own_defaults(capfd):
    """One call for all five, each equal to torch-fidelity's function on the same features with
    torch-fidelity's own defaults (torch_fidelity.defaults.DEFAULTS: 10 IS splits, shuffled,
    100 KID subsets, k = 3, seed 2020), and nothing printed: a training log stays clean."""
    from torch_fidelity.defaults import DEFAULTS
    from torch_fidelity.metric_isc import isc_features_to_metric

    out, _ = metrics({"fid", "kid", "pr", "is", "classes"}, kid_subset_size=16)
    assert capfd.readouterr() == ("", "")
    fake, real = feats(40, False), feats(40, True)
    fid = fid_statistics_to_metric(
        fid_features_to_statistics(fake), fid_features_to_statistics(real), verbose=False
    )
    assert out["fid40_mnist"] == float(fid["frechet_inception_distance"])
    kid = kid_features_to_metric(
        fake,
        real,
        kid_subsets=DEFAULTS["kid_subsets"],
        kid_subset_size=16,
        rng_seed=DEFAULTS["rng_seed"],
        verbose=False,
    )
    assert out["kid40_mnist"] == float(kid["kernel_inception_distance_mean"])
    prc = prc_features_to_metric(
        fake, real, prc_neighborhood=DEFAULTS["prc_neighborhood"], verbose=False
    )
    assert out["precision40_mnist"] == prc["precision"]
    assert out["recall40_mnist"] == prc["recall"]
    logits = RandomFeatures().features("mnist", WHITE)["logits_unbiased"]
    isc = isc_features_to_metric(
        logits,
        splits=DEFAULTS["isc_splits"],
        shuffle=DEFAULTS["samples_shuffle"],
        rng_seed=DEFAULTS["rng_seed"],
    )
    assert out["is40_mnist"] == float(isc["inception_score_mean"])
    unshuffled = isc_features_to_metric(logits, splits=10, shuffle=False)
    assert out["is40_mnist"] != float(unshuffled["inception_score_mean"])


def test_kid_subset_is_the_smallest_of_setting_samples_and_real_images():
    """min(kid_subset_size, samples, real images): each of the three can be the smallest."""

    def kid(fake_n, real_n, size):
        value = kid_features_to_metric(
            feats(fake_n, False),
            feats(real_n, True),
            kid_subsets=100,
            kid_subset_size=size,
            rng_seed=2020,
            verbose=False,
        )
        return float(value["kernel_inception_distance_mean"])

    more_real, _ = metrics({"kid"}, kid_subset_size=1000, real_count=50)  # the 40 samples
    assert more_real["kid40_mnist"] == kid(40, 50, 40)
    fewer_real, _ = metrics({"kid"}, kid_subset_size=1000, real_count=25)  # the 25 reals
    assert fewer_real["kid40_mnist"] == kid(40, 25, 25)


def test_class_coverage_counts_a_class_at_exactly_20_percent_of_its_share():
    """A class is covered with at least 20% of its uniform share n / 10 (as a mixture mode):
    of 300 samples a class needs 6 (exactly 6 counts, 5 does not); of 600 it needs 12 (11 is
    not enough)."""

    class Counted(RandomFeatures):
        def __init__(self, counts):
            super().__init__()
            self.counts = torch.tensor(counts)

        def features(self, kind, images):
            labels = torch.repeat_interleave(torch.arange(len(self.counts)), self.counts)
            return {"64": torch.zeros(len(labels), 8), "logits_unbiased": torch.eye(10)[labels]}

    for counts, covered in (([200, 89, 6, 5], 3), ([500, 77, 12, 11], 3)):
        n = sum(counts)
        images = torch.full((n, 3, 28, 28), 255, dtype=torch.uint8)
        bank = Counted(counts)
        out = fidelity_metrics("mnist", {"classes"}, images, black_source(n), bank, None, 100)
        assert out[f"classes{n}_mnist"] == covered


def test_inception_features_are_its_2048_pool_features(tmp_path):
    """kind inception reads the '2048' layer (torch-fidelity's FID/KID/PR layer for
    inception-v3-compat); class coverage needs the digit classifier and says so."""
    from ganx.errors import MetricError

    bank = Pool3(tmp_path / "w.pt")
    out = fidelity_metrics("inception", {"fid"}, WHITE, black_source(60), bank, None, 100)
    mnist, _ = metrics({"fid"})
    assert out["fid40_inception"] == mnist["fid40_mnist"]
    with pytest.raises(MetricError, match=r"^classes_\* needs a digit classifier: use class"):
        fidelity_metrics("inception", {"classes"}, WHITE, black_source(60), bank, None, 100)


def test_inception_score_is_refused_only_without_a_classifier_head(tmp_path):
    from ganx.errors import MetricError

    headless = Pool3(tmp_path / "w.pt", head=False)
    out = fidelity_metrics("inception", {"fid"}, WHITE, black_source(60), headless, None, 100)
    assert set(out) == {"fid40_inception"}  # no head needed for FID
    message = (
        "is_inception: these Inception weights have no classifier head (the offline pool3 "
        "conversion); the Inception Score needs torch-fidelity's original weights"
    )
    with pytest.raises(MetricError) as refused:
        fidelity_metrics("inception", {"is"}, WHITE, black_source(60), headless, None, 100)
    assert str(refused.value) == message


def test_a_diverged_metric_is_logged_as_nan():
    """Features of a diverged generator (1e30) make FID infinite: logged as nan (JSON has no
    inf), while the finite KID of the same call is kept."""

    class Diverged(RandomFeatures):
        def features(self, kind, images):
            out = super().features(kind, images)
            real = images.float().mean() < 128
            return {**out, "64": out["64"] * (1.0 if real else 1e30)}

    with pytest.warns(RuntimeWarning):  # numpy's overflow inside torch-fidelity's FID
        out = fidelity_metrics(
            "mnist", {"fid", "pr"}, WHITE, black_source(60), Diverged(), None, 100
        )
    assert math.isnan(out["fid40_mnist"])
    assert out["precision40_mnist"] == 0.0


def test_images_reach_the_extractor_as_torch_fidelitys_uint8():
    """[-1, 1] -> round((x + 1) * 127.5) clamped to [0, 255], one channel repeated to three;
    the bank's default chunk is metrics.batch_size's default."""
    from ganx.metrics.fidelity import to_uint8

    values = torch.tensor([-1.5, -1.0, -0.5, 0.0, 1.0, 1.5]).view(1, 1, 2, 3)
    grey = to_uint8(values)
    assert grey.dtype == torch.uint8 and grey.shape == (1, 3, 2, 3)
    assert grey[0].flatten(1).tolist() == [[0, 0, 64, 128, 255, 255]] * 3
    rgb = to_uint8(torch.zeros(2, 3, 1, 5))  # a one-row image is not a one-channel one
    assert rgb.shape == (2, 3, 1, 5) and torch.all(rgb == 128)
    default = compose_cfg(tiny=False).metrics.batch_size
    assert FeatureBank(torch.device("cpu"), inception_weights="/x").batch_size == default


def test_real_images_are_the_seed_0_permutation_in_memory_or_loaded():
    """The first n of a fixed permutation (seed 0) of the training data, the same images
    whether the data set is held in memory or read item by item."""
    from ganx.metrics.fidelity import real_images

    images = torch.linspace(-1, 1, 12).view(12, 1, 1, 1)
    memory = DataSource("t", 1, 1, images=images)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))[:5]
    expected = ((images[order] + 1) * 127.5).round().to(torch.uint8).repeat(1, 3, 1, 1)
    assert torch.equal(real_images(memory, 5), expected)
    loaded = DataSource("t", 1, 1, dataset=torch.utils.data.TensorDataset(images, -images))
    assert torch.equal(real_images(loaded, 5), expected)


class NotFeatures:
    """A pickled object: what a tampered cache file could carry."""


def test_real_features_are_cached_once_per_protocol_and_read_back(tmp_path):
    """Written atomically under real_{data}_{kind}_{n}_{16 hex digits}.pt in a directory made on
    demand, read back without recomputing, tensors only."""
    import pickle
    import re

    from ganx.metrics.fidelity import real_features

    cache = tmp_path / "deep" / "cache"
    bank = RandomFeatures()
    first = real_features(bank, "mnist", black_source(60), 40, cache)
    again = real_features(bank, "mnist", black_source(60), 40, cache)
    assert bank.calls == [("real", 40)] and torch.equal(first["64"], again["64"])
    other = real_features(bank, "mnist", black_source(60), 30, cache)  # same directory
    assert len(other["64"]) == 30 and bank.calls[-1] == ("real", 30)
    # the same name and count, another protocol (resolution, size of the data): recomputed
    wider = DataSource("black", 1, 32, images=-torch.ones(60, 1, 32, 32))
    real_features(bank, "mnist", wider, 40, cache)
    real_features(bank, "mnist", black_source(50), 40, cache)
    assert bank.calls[-2:] == [("real", 40), ("real", 40)]
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 4
    assert all(re.fullmatch(r"real_black_mnist_(30|40)_[0-9a-f]{16}\.pt", n) for n in names)
    for path in cache.glob("real_black_mnist_40_*.pt"):
        torch.save(NotFeatures(), path)
    with pytest.raises(pickle.UnpicklingError):
        real_features(bank, "mnist", black_source(60), 40, cache)


def test_inception_score_and_class_coverage_compute_no_real_features():
    """Only FID, KID and precision/recall compare with real data: IS and class coverage alone
    cost no real-image features (nor their cache)."""
    out, bank = metrics({"is", "classes"})
    assert bank.calls == [("fake", 40)]
    assert set(out) == {"is40_mnist", "classes40_mnist", "class_kl40_mnist"}


def test_an_evaluation_context_keeps_one_feature_bank_with_its_settings(tmp_path):
    """The bank (and the extractors it loads) is made once per context and reused by every
    evaluation; it takes the context's device, batch size and Inception weights file."""
    from pathlib import Path

    from ganx.data import mnist5k
    from ganx.metrics.registry import EvalContext, available_metrics

    weights = tmp_path / "inception.pth"
    ctx = EvalContext(
        torch.zeros(2, 1, 28, 28),
        mnist5k(),
        device=torch.device("cpu"),
        inception_weights=str(weights),
        batch_size=7,
    )
    bank = ctx.bank()
    assert ctx.bank() is bank and ctx.banks == {"bank": bank}
    assert (bank.device, bank.batch_size, bank.inception_weights) == (
        torch.device("cpu"),
        7,
        Path(weights),
    )
    names = available_metrics()
    assert "classes_mnist" in names and "classes_inception" not in names  # no Inception classes
    assert names == sorted(names) and {"fid_inception", "modes", "modes_stacked_mnist"} <= set(
        names
    )


def test_compute_metrics_passes_the_contexts_cache_and_real_count_to_torch_fidelitys_metrics(
    tmp_path,
):
    """compute_metrics hands the context's real-feature cache folder and real count on: the real
    features of those many images are cached there under a name that holds the count."""
    samples = torch.rand(8, 1, 28, 28) * 2 - 1
    source = black_source(60)
    ctx = EvalContext(samples, source, cache_dir=tmp_path, real_count=20)
    out = compute_metrics(["fid_mnist"], ctx)
    assert list(out) == ["fid8_mnist"] and math.isfinite(out["fid8_mnist"])  # named by samples
    assert [p.name.split("_")[:4] for p in tmp_path.iterdir()] == [
        ["real", source.name, "mnist", "20"]
    ]


def test_register_adds_a_metric_under_its_name(monkeypatch):
    """A custom metric is one function registered by name (ganx.metrics.registry.register):
    compute_metrics then calls it with the evaluation context."""
    from ganx.metrics import registry

    monkeypatch.setattr(registry, "METRICS", dict(registry.METRICS))

    def ones(ctx):
        return {"ones": float(len(ctx.samples))}

    assert registry.register("ones")(ones) is ones and registry.METRICS["ones"] is ones
    ctx = EvalContext(torch.zeros(3, 2), black_source(4))
    assert compute_metrics(["ones"], ctx) == {"ones": 3.0}
