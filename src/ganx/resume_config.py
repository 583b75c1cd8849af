"""The configuration a resume runs with: the run's own, as its checkpoint recorded it, with only
the settings this command line names changed.

``ganx-train hydra.run.dir=D resume=auto`` continues D with D's settings (its train.steps, seed,
loss, regularizers, schedules), not with the defaults the bare command line composes to. Each
override given with the resume is a change: a ``key=value`` sets that key, a group choice
(``loss=rpgan``, ``'reg=[r1,r2]'``) replaces that whole section, an ``experiment=`` or
``hparams_search=`` preset sets the keys it sets. :mod:`ganx.resume_rules` then refuses the
changes a resume may not make, and ``ganx-train`` prints the ones it makes at start.

``resume``, ``start_over`` and ``train.stop_at`` belong to one invocation: they come from this
command line, never from the checkpoint (a run paused at ``train.stop_at=100`` and resumed bare
trains to its ``train.steps``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from .defaults import flatten, predated
from .resume_rules import ADDED_SETTINGS

PER_INVOCATION = ("resume", "start_over", "train.stop_at")


def _get(tree: dict, path: str):
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def _set(tree: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = tree
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = copy.deepcopy(value)


def _delete(tree: dict, path: str) -> None:
    *parents, last = path.split(".")
    node = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


def overridden_paths(
    overrides: list[str], current: dict, preset_keys: Callable[[str], list[str]]
) -> list[str]:
    """The config paths a command line's overrides set: ``train.steps=400`` -> ``train.steps``;
    a group choice -> its section (``loss``, ``reg``, ``model``); a ``# @package _global_``
    preset (``experiment=...``), which has no section of its own -> the keys
    ``preset_keys(override)`` says it sets."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    paths = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group.split("@")[0]
        if key.startswith("hydra.") or key == "hydra":
            continue
        try:
            _get(current, key)
        except KeyError:
            if "." in key or override.is_delete() or override.is_add():
                paths.append(key)  # a deleted or added key
            else:
                paths.extend(preset_keys(override.input_line))
            continue
        paths.append(key)
    return list(dict.fromkeys(paths))


def preset_keys_by_compose(config_name: str) -> Callable[[str], list[str]]:
    """``preset_keys`` for :func:`overridden_paths`: the keys whose composed value a preset
    override changes (Hydra's compose API; needs Hydra initialised, as inside ganx-train)."""
    from hydra import compose

    def keys(line: str) -> list[str]:
        plain = flatten(OmegaConf.to_container(compose(config_name, []), resolve=False))
        chosen = flatten(OmegaConf.to_container(compose(config_name, [line]), resolve=False))
        return [k for k in sorted(set(plain) | set(chosen)) if plain.get(k) != chosen.get(k)]

    return keys


def filled(saved: dict, current: dict) -> dict:
    """``saved`` with the settings added to ganx since it was written, each at the value the
    checkpoint ran with (:func:`ganx.defaults.predated`: the default for the checkpoint's own
    group choices, never a key of ``current``'s group choice: a hinge run must not get the
    default loss's keys, a DCGAN generator not an SNGAN one's); a top-level section no default
    gives, from ``current``."""
    out = copy.deepcopy(saved)
    for path, value in predated(saved, ADDED_SETTINGS).items():
        _set(out, path, value)
    for key, value in current.items():
        if key not in out:
            out[key] = copy.deepcopy(value)
    return out


def continued_config(saved: dict, cfg: DictConfig, given: list[str]) -> DictConfig:
    """The config a resume runs with: ``saved`` (the checkpoint's), the paths in ``given`` (and
    the per-invocation keys) taken from ``cfg``, the one this command line composed."""
    current = OmegaConf.to_container(cfg, resolve=True)
    out = filled(saved, current)
    for path in [*PER_INVOCATION, *given]:
        try:
            _set(out, path, _get(current, path))
        except KeyError:
            _delete(out, path)
    return OmegaConf.create(out)


def resume_line(run_dir, step: int, total_was: int, changes: dict) -> str:
    """The start line of a resume: where it continues and what this command line changed."""
    listed = "; ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items())
    return (
        f"resuming {run_dir} at step {step} of {total_was} with its own settings; "
        f"changed: {listed or 'nothing'}"
    )
