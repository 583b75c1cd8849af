"""The limited-data options: ``dataset.subset`` (a fixed, seeded, class-balanced subset) and
``dataset=stacked_mnist`` with its mode-coverage metric."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import TINY, compose_cfg
from ganx_cli import TINY_ARGS, error_lines, ganx_train_here
from key_cover import override

from ganx.build import build_all
from ganx.data import mnist5k, stacked_mnist, take_subset
from ganx.metrics.registry import EvalContext, compute_metrics

CPU = torch.device("cpu")


def test_subset_is_class_balanced_and_fixed_by_its_own_seed():
    digits = mnist5k()
    subset = take_subset(digits, 105, seed=0)
    counts = torch.bincount(subset.labels, minlength=10).tolist()
    assert counts == [11] * 5 + [10] * 5  # 105 = 10 x 10 + one more for the first 5 classes
    assert torch.equal(take_subset(digits, 105, seed=0).images, subset.images)
    assert not torch.equal(take_subset(digits, 105, seed=1).images, subset.images)
    # every chosen image is one of the data set's, with its own label
    for image, label in zip(subset.images[:5], subset.labels[:5], strict=True):
        match = (digits.images == image).flatten(1).all(1).nonzero().flatten()
        assert len(match) >= 1 and int(digits.labels[match[0]]) == int(label)


def test_training_reads_the_subset_whatever_the_seed_and_metrics_see_the_full_set():
    parts = {
        s: build_all(compose_cfg(override("dataset.subset", 64), f"seed={s}"), CPU) for s in (0, 1)
    }
    assert len(parts[0].stream.source) == 64 and len(parts[0].source) == 5000
    assert torch.equal(parts[0].stream.images, parts[1].stream.images)  # seed: not the subset
    other = build_all(
        compose_cfg(override("dataset.subset", 64), override("dataset.subset_seed", 1)), CPU
    )
    assert not torch.equal(parts[0].stream.images, other.stream.images)
    seen = torch.cat([parts[0].stream.next() for _ in range(8)])  # 2 epochs of 4 batches
    rows = parts[0].stream.images.flatten(1)
    assert all((rows == image).all(1).any() for image in seen.flatten(1))


def test_the_start_of_a_run_names_its_subset():
    from types import SimpleNamespace

    from ganx.outputs import start_lines

    cfg = compose_cfg("dataset.subset=64")
    state = SimpleNamespace(parts=build_all(cfg, CPU), step=0)
    record = {"device": "cpu", "ganx": "0", "versions": {"torch": "0"}}
    lines = start_lines(cfg, state, "run", record)
    assert "data: mnist5k, training on 64 of its 5,000 images" in lines


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            [*TINY_ARGS, "dataset.subset=6000"],
            "dataset.subset=6000: must be an integer in [1, 5000]",
        ),
        ([*TINY_ARGS, "dataset.subset=8"], "train.batch_size=16 exceeds the 8 samples"),
        (
            [*TINY, "model=dirac", "dataset=dirac", "dataset.subset=8"],
            "dataset.subset=8: data set 'dirac' has no labels to balance a subset by",
        ),
        ([*TINY_ARGS, "dataset=stacked_mnist", "augment=ada", "augment.kimg=0"], "augment.kimg=0"),
    ],
)
def test_bad_limited_data_input_is_one_line_before_anything_is_written(
    tmp_path, overrides, expected
):
    run_dir = tmp_path / "run"
    code, stderr = ganx_train_here(*overrides, f"hydra.run.dir={run_dir}")
    lines = error_lines(stderr)
    assert code != 0 and len(lines) == 1, stderr
    assert expected in lines[0], lines[0]
    assert not run_dir.exists()


def test_stacked_mnist_stacks_three_seeded_digits():
    data = stacked_mnist(n=64, seed=0)
    assert data.images.shape == (64, 3, 28, 28) and data.channels == 3
    assert torch.equal(stacked_mnist(n=64, seed=0).images, data.images)
    assert not torch.equal(stacked_mnist(n=64, seed=1).images, data.images)
    digits = mnist5k()
    for image, number in zip(data.images[:4], data.labels[:4], strict=True):
        found = []
        for channel in image:
            match = (digits.images[:, 0] == channel).flatten(1).all(1).nonzero().flatten()
            found.append(int(digits.labels[match[0]]))
        assert found[0] * 100 + found[1] * 10 + found[2] == int(number)


def stacked_scores(samples: torch.Tensor) -> dict[str, float]:
    source = stacked_mnist(n=16)
    return compute_metrics(["modes_stacked_mnist"], EvalContext(samples, source))


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
def test_a_few_real_triples_cover_the_modes_chance_predicts_and_one_image_covers_one():
    """2,000 real triples, 2 per mode on average: a mode is empty with chance e^-2, so about
    1000 (1 - e^-2) = 865 modes are covered (binomial std 11); one image repeated covers 1 mode
    with KL = log 1000."""
    real = stacked_scores(stacked_mnist(n=2000, seed=1).images)
    assert abs(real["modes2k_stacked_mnist"] - 1000 * (1 - math.exp(-2))) < 40
    one = stacked_scores(stacked_mnist(n=1, seed=2).images.expand(2000, -1, -1, -1))
    assert one["modes2k_stacked_mnist"] == 1
    assert one["mode_kl2k_stacked_mnist"] == pytest.approx(math.log(1000))


@pytest.mark.slow
def test_real_stacked_mnist_covers_nearly_every_mode():
    """The papers' protocol on the data itself: 26,000 real triples (26 per mode) leave hardly a
    mode empty and their histogram is close to uniform (the KL of a multinomial sample is about
    (K - 1) / 2N = 0.02, plus the classifier's errors)."""
    real = stacked_scores(stacked_mnist(n=26_000, seed=1).images)
    assert real["modes26k_stacked_mnist"] >= 995
    assert real["mode_kl26k_stacked_mnist"] < 0.1


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
def test_stacked_mnist_defaults_and_a_ganx_train_run_scoring_it(tmp_path):
    cfg = compose_cfg("dataset=stacked_mnist", tiny=False)
    assert list(cfg.eval.metrics) == ["modes_stacked_mnist"] and cfg.eval.num_samples == 26_000
    assert cfg.dataset.channels == 3 and cfg.dataset.resolution == 28  # DCGAN at 28 px, RGB
    run_dir = tmp_path / "run"
    args = [*TINY_ARGS, "dataset=stacked_mnist", "eval.metrics=[modes_stacked_mnist]"]
    args += ["train.steps=2", "eval.num_samples=500", "augment=diffaug"]
    code, stderr = ganx_train_here(*args, f"hydra.run.dir={run_dir}")
    assert code == 0, stderr
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    scored = [r for r in records if "modes500_stacked_mnist" in r]
    assert scored and 1 <= scored[-1]["modes500_stacked_mnist"] <= 500
    assert 0 <= scored[-1]["mode_kl500_stacked_mnist"] <= math.log(1000)


class Targeted(torch.utils.data.Dataset):
    """A loader-read data set with torchvision's ``targets`` list (image i is the value i)."""

    def __init__(self, targets):
        self.targets = list(targets)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return torch.full((1, 1, 1), float(i)), self.targets[i]


def test_subset_bounds_shares_and_a_loader_data_set_balanced_by_its_targets():
    """n in [1, N] (both ends allowed, bools and non-integers refused); shares n // K plus one for
    the first n % K classes; a class exactly as large as its share is enough, one smaller is
    named with the most that can be asked; a loader data set is balanced by its ``targets`` and
    keeps what a subset must not change (name, shape, extra facts, value range)."""
    from ganx.data import DataSource
    from ganx.errors import DataError

    labels = torch.tensor([0] * 4 + [1] * 3 + [2] * 3)
    images = torch.arange(10, dtype=torch.float).view(10, 1, 1, 1)
    source = DataSource("t", 1, 1, images=images, labels=labels, extra={"std": 0.5})
    assert torch.equal(take_subset(source, 10).images, images)
    assert len(take_subset(source, 1).images) == 1
    assert torch.bincount(take_subset(source, 7).labels).tolist() == [3, 2, 2]
    for bad in (0, 11, True, 1.5):
        with pytest.raises(DataError, match=r"must be an integer in \[1, 10\]"):
            take_subset(source, bad)
    lopsided = DataSource("t", 1, 1, images=images, labels=torch.tensor([0] + [1] * 9))
    with pytest.raises(DataError) as small:
        take_subset(lopsided, 4)
    assert str(small.value) == (
        "dataset.subset=4: class 0 of 't' has 1 images, fewer than its share 2; allowed: at most 2"
    )
    loader = DataSource("t", 1, 1, dataset=Targeted(labels.tolist()), value_range=(-2.0, 2.0))
    loader.extra = {"std": 0.5}
    picked = take_subset(loader, 7, seed=3)
    in_memory = take_subset(source, 7, seed=3)
    values = torch.stack([picked.dataset[i][0] for i in range(7)]).flatten()
    assert torch.equal(values, in_memory.images.flatten())
    assert (picked.name, picked.channels, picked.resolution) == ("t", 1, 1)
    assert picked.extra == {"std": 0.5} and picked.extra is not loader.extra
    assert picked.value_range == (-2.0, 2.0) and picked.labels is None
    both = DataSource("t", 1, 1, dataset=torch.utils.data.TensorDataset(images), labels=labels)
    assert torch.equal(take_subset(both, 7, seed=3).labels, in_memory.labels)  # its own labels
    with pytest.raises(DataError) as unlabelled:
        take_subset(DataSource("u", 1, 1, dataset=torch.utils.data.TensorDataset(images)), 2)
    assert str(unlabelled.value) == (
        "dataset.subset=2: data set 'u' has no labels to balance a subset by; allowed: data "
        "sets with labels (mnist5k, mnist, fashion_mnist, cifar10, ...)"
    )
    # called without a seed, the subset is the one dataset.subset_seed's default draws
    default_seed = compose_cfg(tiny=False).dataset.subset_seed
    assert torch.equal(take_subset(source, 7).images, take_subset(source, 7, default_seed).images)
    assert not torch.equal(take_subset(source, 7).images, take_subset(source, 7, 1).images)
