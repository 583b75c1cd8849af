"""What a resume may change, and the refusal of everything else.

A run is defined by its model, data, losses, regularizers, optimisers, seed and evaluation
protocol; the checkpoint holds the state those produced. A resume may change only how long
to train, how often to log, sample, save and evaluate (any ``*.every`` key), the trackers, where
the data lives, and the hardware that runs it. Changing anything else would mix two runs under
one name (the old ``.hydra/config.yaml`` describing settings the checkpoint never used), so it is
refused by name. A setting the checkpoint predates is no change when it has the value the
checkpoint ran with: its default (:mod:`ganx.defaults`), or its entry in ``ADDED_SETTINGS``.

Every config key is in one of the two lists below (``tests/test_resume_inventory.py`` checks
that): ``RESUME_MAY_CHANGE`` or ``CHANGES_BEHAVIOUR``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .defaults import flatten, predated

# what a resume may change: exact keys, or patterns ("*" matches any part of a key, dots too)
RESUME_MAY_CHANGE = (
    "resume",
    "start_over",
    "train.steps",
    "train.stop_at",
    "train.on_nonfinite",
    "*.every",  # every periodic action's schedule (sample, eval, ckpt, log, and new ones)
    "log.*",
    "ckpt.*",
    "logger.*",  # the trackers
    "eval.at",
    "metrics.cache_dir",
    "metrics.inception_weights",
    "metrics.batch_size",
    "hardware.*",
    "dataset.root",
    "dataset.num_workers",
    "dataset.on_device",
    "dataset.download",
    # the data set builder's copies of those three (interpolations, resolved in a checkpoint)
    "dataset.source.root",
    "dataset.source.in_memory",
    "dataset.source.download",
    "dataset.metrics",  # the default of eval.metrics, which itself may not change
)

# what a resume refuses to change: what is trained and how it is measured (every key of a
# method group, and the plain sections' keys one by one, so that a new one is decided on)
CHANGES_BEHAVIOUR = (
    "seed",
    "model.*",
    "loss.*",
    "reg.*",
    "optim.*",
    "augment.*",
    "dataset.*",
    "train.batch_size",
    "train.n_dis",
    "train.updates",
    "train.ema",
    "train.ema_start",
    "train.lr_decay",
    "train.lazy_regularization",
    "sample.n",
    "sample.bn_stats",
    "eval.metrics",
    "eval.num_samples",
    "eval.objective",
    "eval.mode",
    "metrics.kid_subset_size",
    "metrics.real_count",
)

# settings whose default changed after they were added, each with the value that does what
# ganx did before they existed (any other setting a checkpoint predates resumes at its default)
ADDED_SETTINGS = {  # issue 28: the reference's behaviour became the default
    "model.generator.upsample": "nearest",
    "model.discriminator.hidden_width": "output",
    "model.latent_distribution": "normal",
    "train.lazy_regularization": "folded",
}


def no_lazy_penalty(old: dict) -> bool:
    return not any(
        key.startswith("reg.") and key.endswith(".interval") and (value or 1) > 1
        for key, value in old.items()
    )


# added settings that some checkpoints ran the same under any value: key -> whether this
# checkpoint (its flattened config) is one of them
SAME_UNDER_ANY_VALUE = {
    "train.lazy_regularization": no_lazy_penalty,  # with every interval 1 both modes coincide
    "model.discriminator.hidden_width": lambda old: old.get("dataset.resolution") != 48,
}


def matches_any(key: str, entries: tuple[str, ...]) -> bool:
    """``key`` is an entry, matches its pattern, or is the section ``X`` of an ``X.*`` (emptied:
    ``logger=[]``)."""
    return any(fnmatchcase(key, entry) or f"{key}.*" == entry for entry in entries)


def may_change(key: str) -> bool:
    return matches_any(key, RESUME_MAY_CHANGE)


def differences(saved: dict, cfg: DictConfig) -> dict[str, tuple]:
    """Every key whose value differs between a checkpoint's config and this run's:
    key -> (checkpoint's value, this run's)."""
    old = flatten(saved)
    new = flatten(OmegaConf.to_container(cfg, resolve=True))
    return {
        key: (old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    }


def before_setting(key: str, old: dict, defaults: dict) -> str:
    """For a setting the checkpoint predates: the value that resumes it as it ran."""
    if key in defaults and key not in old:
        return f" (the checkpoint predates it: {key}={defaults[key]} resumes it as it ran)"
    return ""


def predating(changed: dict, saved: dict) -> tuple[dict, dict]:
    """``changed`` without the settings the checkpoint predates that have the value it ran
    with, and those values (composed only when the checkpoint lacks a key that differs)."""
    old = flatten(saved)
    if all(key in old for key in changed):
        return changed, {}
    defaults = predated(saved, ADDED_SETTINGS)
    kept = {}
    for key, (before, now) in changed.items():
        ran_so = key in defaults and now == defaults[key]
        if key in old or not (ran_so or SAME_UNDER_ANY_VALUE.get(key, lambda _: False)(old)):
            kept[key] = (before, now)
    return kept, defaults


def changes(saved: dict, cfg: DictConfig) -> dict[str, tuple]:
    """What this run changes of a checkpoint's config: :func:`differences` without the settings
    the checkpoint predates that have the value it ran with."""
    return predating(differences(saved, cfg), saved)[0]


def allowed_changes(saved: dict, cfg: DictConfig, path: Path) -> dict[str, tuple]:
    """The changes this resume makes; raises :class:`CheckpointError` (the checkpoint does not
    fit this run) naming every change it may not make."""
    from .errors import CheckpointError

    changed, defaults = predating(differences(saved, cfg), saved)
    old = flatten(saved)
    if cfg.eval.objective is None and "eval.objective" not in changed:
        changed.pop("eval.mode", None)  # the direction of no objective (older runs: max)
    refused = [k for k in changed if not may_change(k)]
    if refused:
        listed = "; ".join(
            f"{k}: checkpoint {changed[k][0]!r}, now {changed[k][1]!r}"
            + before_setting(k, old, defaults)
            for k in refused
        )
        raise CheckpointError(
            f"cannot resume from {path} with changed settings ({listed}); a resume may change "
            "only train.steps, train.stop_at, the schedules (*.every), logging, the trackers, "
            "where the data lives and hardware.*; for other settings start a new run (another "
            "hydra.run.dir, or start_over=true)"
        )
    return {k: v for k, v in changed.items() if k not in ("resume", "start_over")}
