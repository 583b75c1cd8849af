"""The metrics a run computes, settled once at start: the data set's defaults fitted to the
Inception weights this machine has.

RGB (and Fashion-MNIST) data sets default to Inception FID, KID and IS. torch-fidelity's
original weights carry the 1008-class head that IS needs; with network access they are fetched
here, before training, into torch-fidelity's own cache path. Offline, ``ganx-weights inception``
converts the pool3 weights (stored under ganx's own file name), which have no head: FID and KID
are computed and IS is left out, with one line at start saying why and how to get it. No
weights at all: the run is refused before training, naming ``ganx-weights inception`` and
``eval.metrics=[]``. Metrics asked for explicitly
(``eval.metrics=[...]``) are never dropped: what cannot be computed is refused before training.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger("ganx")

HOW_TO_GET_IS = (
    "the Inception Score needs torch-fidelity's original weights (fetched automatically on a "
    "machine with network access; or copy weights-inception-2015-12-05-6726825d.pth there)"
)


def uses_default_metrics(cfg: DictConfig) -> bool:
    """True while ``eval.metrics`` is still the data set's default (``${dataset.metrics}``)."""
    return OmegaConf.is_interpolation(cfg.eval, "metrics")


def inception_weights_path(cfg: DictConfig) -> Path:
    from .fidelity import default_inception_weights

    return Path(cfg.metrics.inception_weights or default_inception_weights()).expanduser()


def fetch_original_weights(path: Path, timeout: float = 20.0) -> bool:
    """Download torch-fidelity's Inception weights to ``path``; False without a network."""
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(URL_INCEPTION_V3, str(path), progress=False)
        return True
    except Exception as err:  # no route, no DNS, blocked: offline is a normal state here
        log.debug("no download of the Inception weights: %s", err)
        path.unlink(missing_ok=True)
        return False
    finally:
        socket.setdefaulttimeout(previous)


def has_classifier_head(path: Path) -> bool:
    """The converted offline weights store the 1008-class head as zeros."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    fc = state.get("fc.weight")
    return fc is not None and bool(fc.abs().sum() > 0)


def missing_weights_message(cfg: DictConfig, inception: list[str], weights: Path) -> str:
    """A run whose metrics need Inception weights that are not here is refused before training
    (a researcher who did not ask for "no metrics" must not get a metric-less run): the line
    names the command that converts them offline and how to train without metrics on purpose."""
    from .fidelity import converted_inception_weights

    where = (
        f"{weights}"
        if cfg.metrics.inception_weights
        else (
            f"{weights} (torch-fidelity's) or {converted_inception_weights()} (ganx's conversion)"
        )
    )
    return (
        f"eval.metrics ({', '.join(inception)}, dataset={cfg.dataset.name}'s default) need "
        f"Inception weights: none at {where}, and no network to fetch them. Run "
        "`ganx-weights inception` (converts them offline: FID and KID), or train without "
        "metrics on purpose with eval.metrics=[]"
    )


def plan_metrics(cfg: DictConfig, announce: bool = True) -> list[str]:
    """Settle ``cfg.eval.metrics`` (in place) and return the start lines explaining changes
    (also logged when ``announce``)."""
    from ..errors import ConfigError

    metrics = list(cfg.eval.metrics or [])
    inception = [m for m in metrics if m.endswith("_inception")]
    if not inception:
        return []
    default = uses_default_metrics(cfg)
    weights = inception_weights_path(cfg)
    notes = []
    if not weights.is_file() and cfg.metrics.inception_weights is None:
        fetch_original_weights(weights)
    if not weights.is_file():
        if not default:
            return []  # validate() refuses explicit Inception metrics without weights
        raise ConfigError(missing_weights_message(cfg, inception, weights))
    if "is_inception" in metrics and not has_classifier_head(weights):
        if not default:
            raise ConfigError(
                f"eval.metrics asks for is_inception but the weights at {weights} are the "
                f"offline pool3 conversion without a classifier head; {HOW_TO_GET_IS}"
            )
        keep = [m for m in metrics if m != "is_inception"]
        notes.append(
            f"is_inception left out: the Inception weights at {weights} are the offline "
            f"conversion (no classifier head); {HOW_TO_GET_IS}"
        )
    else:
        return []
    with open_dict(cfg):
        cfg.eval.metrics = keep
    for note in notes if announce else []:
        log.warning(note)
    return notes
