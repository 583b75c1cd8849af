"""What a resume may change, and the refusal of everything else.

A run is defined by its model, data, losses, regularizers, optimisers, seed and evaluation
protocol; the checkpoint holds the state those produced. A resume may change only how long
to train, how often to log, sample, save and evaluate, where the data lives, and the hardware
that runs it. Changing anything else would mix two runs under one name (the old
``.hydra/config.yaml`` describing settings the checkpoint never used), so it is refused by name.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# exact keys, or prefixes ending in "."
RESUME_MAY_CHANGE = (
    "resume",
    "start_over",
    "train.steps",
    "train.stop_at",
    "train.on_nonfinite",
    "log.",
    "sample.every",
    "ckpt.",
    "eval.every",
    "eval.at",
    "metrics.cache_dir",
    "metrics.inception_weights",
    "metrics.batch_size",
    "hardware.",
    "dataset.root",
    "dataset.num_workers",
    "dataset.on_device",
    "dataset.in_memory",
    "dataset.download",
    "dataset.metrics",  # the default of eval.metrics, which itself may not change
)

# settings added after checkpoint format 1, each with the value that does what ganx did before
# it existed: a checkpoint whose config lacks the key resumes when the key has that value now
ADDED_SETTINGS = {
    f"reg.{name}.{key}": value
    for name in ("r1", "r2")
    for key, value in (("schedule", "constant"), ("weight_end", None), ("schedule_steps", None))
}
ADDED_SETTINGS |= {"augment.name": "none", "dataset.subset_seed": 0}  # dataset.subset: null
ADDED_SETTINGS |= {  # issue 28: the reference's behaviour became the default
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


def flatten(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict) and tree:
        out = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def may_change(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in RESUME_MAY_CHANGE)


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


def before_setting(key: str, old: dict) -> str:
    """For a setting the checkpoint predates: the value that resumes it as it ran."""
    if key in ADDED_SETTINGS and key not in old:
        return f" (the checkpoint predates it: {key}={ADDED_SETTINGS[key]} resumes it as it ran)"
    return ""


def allowed_changes(saved: dict, cfg: DictConfig, path: Path) -> dict[str, tuple]:
    """The changes this resume makes; raises :class:`CheckpointError` (the checkpoint does not
    fit this run) naming every change it may not make."""
    from .errors import CheckpointError

    changed = differences(saved, cfg)
    old = flatten(saved)
    for key, neutral in ADDED_SETTINGS.items():
        same = changed.get(key, (None, None))[1] == neutral or SAME_UNDER_ANY_VALUE.get(
            key, lambda _: False
        )(old)
        if key in changed and key not in old and same:
            del changed[key]  # a checkpoint from before the setting, resumed as it ran
    if cfg.eval.objective is None and "eval.objective" not in changed:
        changed.pop("eval.mode", None)  # the direction of no objective (older runs: max)
    refused = [k for k in changed if not may_change(k)]
    if refused:
        listed = "; ".join(
            f"{k}: checkpoint {changed[k][0]!r}, now {changed[k][1]!r}{before_setting(k, old)}"
            for k in refused
        )
        raise CheckpointError(
            f"cannot resume from {path} with changed settings ({listed}); a resume may change "
            "only train.steps, train.stop_at, the log/sample/ckpt/eval schedules, where the "
            "data lives and hardware.*; for other settings start a new run (another "
            "hydra.run.dir, or start_over=true)"
        )
    return {k: v for k, v in changed.items() if k not in ("resume", "start_over")}
