"""The defaults ganx's own config gives, composed from anywhere, and the value each setting a
checkpoint predates takes when that checkpoint resumes.

A setting added to ganx after a checkpoint was written is missing from that checkpoint's config.
The run ran as that setting's default does (a new setting's default keeps what ganx did before
it), so the checkpoint resumes with the default its group now loads: the default for the
checkpoint's own group choices (its ``model``, ``loss``, ``reg`` options, read back from the
sections it recorded), composed with Hydra's compose API once per set of choices.
``resume_rules.ADDED_SETTINGS`` names the few settings whose default changed after they were
added: those resume at the value that did what ganx did before them.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
from pathlib import Path

from omegaconf import OmegaConf

IDENTITY = ("name", "_target_")  # leaves that say which option of a group a section is


@contextlib.contextmanager
def outside_any_hydra_app():
    """Inside a Hydra app (``ganx-train`` itself, or a user's ``@hydra.main``), Hydra's global
    state is taken: set it aside while ganx composes its own config, and put it back."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    if not GlobalHydra.instance().is_initialized():
        yield
        return
    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        restore_gh_from_backup(backup)


def flatten(tree, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; an empty mapping is a leaf of its own."""
    if isinstance(tree, dict) and tree:
        out = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def conf_dir() -> Path:
    import ganx.conf

    return Path(ganx.conf.__path__[0])


@functools.lru_cache(maxsize=16)
def composed(overrides: tuple[str, ...]) -> dict:
    """ganx-train's config for these overrides, unresolved, without the ``hydra`` node."""
    from hydra import compose, initialize_config_module

    with outside_any_hydra_app():
        with initialize_config_module("ganx.conf", version_base="1.3"):
            cfg = compose("config", overrides=list(overrides))
    tree = OmegaConf.to_container(cfg, resolve=False)
    tree.pop("hydra", None)
    return tree


@functools.lru_cache(maxsize=1)
def groups() -> dict[str, tuple[str | list, dict[str, dict]]]:
    """Each config group of ``config.yaml``'s defaults list: (its default choice, a list for a
    multi-select group; each option's own keys). Presets (``optional`` groups) set keys of other
    groups and are not read back."""
    primary = OmegaConf.to_container(OmegaConf.load(conf_dir() / "config.yaml"))
    out = {}
    for entry in primary["defaults"]:
        if not isinstance(entry, dict):
            continue
        (group, choice), *_ = entry.items()
        if " " in group or group.startswith("hydra"):
            continue
        options = {}
        for path in sorted((conf_dir() / group).glob("*.yaml")):
            keys = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
            keys.pop("defaults", None)
            options[path.stem] = keys
        out[group] = (choice, options)
    return out


@functools.lru_cache(maxsize=1)
def primary_keys() -> frozenset[str]:
    """The keys ``config.yaml`` itself sets (``model.latent_distribution``: every model has it)."""
    primary = OmegaConf.to_container(OmegaConf.load(conf_dir() / "config.yaml"), resolve=False)
    primary.pop("defaults", None)
    primary.pop("hydra", None)
    return frozenset(flatten(primary))


def match(options: dict[str, dict], section, default) -> str | None:
    """The option whose keys ``section`` (a checkpoint's) holds: every identity leaf (``name``,
    ``_target_``) equal, then the most equal values; ties go to the group's default."""
    if not isinstance(section, dict):
        return None
    have = flatten(section)
    best, best_score = None, -1
    for option, keys in options.items():
        own = flatten(keys)
        if any(k.rsplit(".", 1)[-1] in IDENTITY and have.get(k) != v for k, v in own.items()):
            continue
        score = sum(have.get(k) == v for k, v in own.items())
        if score > best_score or (score == best_score and option == default):
            best, best_score = option, score
    return best


def choices(saved: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the group overrides that compose ``saved``'s options, the sections whose option is not
    known: their keys are not filled, apart from those ``config.yaml`` itself sets)."""
    overrides, unknown = [], []
    for group, (default, options) in groups().items():
        section = saved.get(group)
        if section is None:
            continue  # the whole section predates the checkpoint: the group's default
        if isinstance(default, list):  # multi-select: one option per entry
            chosen = []
            for entry, node in section.items():
                found = match({k: v[entry] for k, v in options.items() if entry in v}, node, None)
                if found:
                    chosen.append(found)
                else:
                    unknown.append(f"{group}.{entry}")
            overrides.append(f"{group}=[{','.join(chosen)}]")
        elif found := match(options, section, default):
            overrides.append(f"{group}={found}")
        else:
            unknown.append(group)
    return tuple(overrides), tuple(unknown)


def takes(saved: dict, path: str) -> bool:
    """Whether ``saved`` can hold a setting at ``path``: no ancestor is a plain value, and the
    section holding it, where it builds a ``_target_``, accepts the name."""
    *parents, name = path.split(".")
    node = saved
    for part in parents:
        if part not in node:
            return True  # a whole section the checkpoint predates
        node = node[part]
        if not isinstance(node, dict):
            return False
    target = node.get("_target_")
    if target is None:
        return True
    from hydra.utils import get_object

    try:
        parameters = inspect.signature(get_object(target)).parameters
    except (ImportError, AttributeError, ValueError, TypeError):
        return False
    return name in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def predated(saved: dict, added: dict) -> dict:
    """Every setting ``saved`` (a checkpoint's config) lacks, flat key -> the value it resumes
    with: ``added[key]`` for a setting whose default changed after it was added, else the
    default ganx now composes for the checkpoint's group choices (interpolations resolved in
    the checkpoint's config)."""
    old = flatten(saved)
    overrides, unknown = choices(saved)
    try:
        defaults = flatten(composed(overrides))
    except Exception:  # noqa: BLE001 - an option combination compose refuses: none is known
        defaults, unknown = flatten(composed(())), tuple(groups())
    out = {}
    for key, value in defaults.items():
        hidden = any(key == u or key.startswith(f"{u}.") for u in unknown)
        if key not in old and not (hidden and key not in primary_keys()) and takes(saved, key):
            out[key] = value
    out |= {k: v for k, v in added.items() if k not in old and takes(saved, k)}
    return resolved(saved, out)


def resolved(saved: dict, new: dict) -> dict:
    """``new``'s values with their interpolations resolved in ``saved`` completed by ``new``;
    a value that cannot be resolved there is left out."""
    tree = copy.deepcopy(saved)
    for key, value in new.items():
        *parents, last = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = copy.deepcopy(value)
    config = OmegaConf.create(tree)
    out = {}
    for key in new:
        try:
            value = OmegaConf.select(config, key, throw_on_missing=True)
        except Exception:  # noqa: BLE001 - an interpolation the old config cannot resolve
            continue
        plain = OmegaConf.is_config(value)
        out[key] = OmegaConf.to_container(value, resolve=True) if plain else value
    return out
