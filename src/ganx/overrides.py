"""Command-line checks that run before Hydra composes the config.

Hydra answers a typo in a key (``train.step=5``) with a hint to add the key (``+train.step=5``,
which then trains with the default steps), drops an unknown choice of the optional
``experiment`` group silently, and takes ``model.latent_dim=x`` as a string. Here every
override of the command line is checked against the config it would change: a group choice
must exist, a key must exist (the closest existing key is named), and a value must have the
type of the value it replaces. Each refusal is one :class:`ConfigError` line.
"""

from __future__ import annotations

import difflib
import inspect
from importlib import resources

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import ConfigError


def config_groups() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every config group of conf/config.yaml's defaults list, those marked ``optional``):
    read from the file, so a new group (``logger``, ``hparams_search``, ...) is checked as a
    group at once instead of being refused as an unknown key."""
    text = (resources.files("ganx.conf") / "config.yaml").read_text()
    groups, optional = [], []
    for entry in OmegaConf.create(text).defaults:
        if not isinstance(entry, DictConfig):
            continue  # _self_
        for name in entry.keys():
            words = str(name).split()
            groups.append(words[-1])
            if words[0] == "optional":
                optional.append(words[-1])
    return tuple(groups), tuple(optional)


GROUPS, OPTIONAL_GROUPS = config_groups()  # OPTIONAL_GROUPS may be null
_ABSENT = object()
# keys whose values mix types (a number or ``auto``): ganx.validate checks them after composition
MIXED_TYPE_KEYS = ("hardware.processes",)


def group_options(group: str) -> list[str]:
    folder = resources.files("ganx.conf") / group
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def override_values(override: Override) -> list:
    """Every value an override sets: one, or each value of a sweep (``a,b``, ``range(3)``)."""
    if override.is_sweep_override():
        if not override.is_discrete_sweep():
            return []  # interval sweeps belong to optimising sweepers: their own checks
        return [Override._convert_value(v) for v in override.sweep_iterator()]
    return [override.value()]


def check_choice(override: Override) -> None:
    group = override.key_or_group
    options = group_options(group)
    for value in override_values(override):
        chosen = value if isinstance(value, list) else [value]
        repeated = sorted({str(c) for c in chosen if chosen.count(c) > 1})
        if repeated:  # Hydra would keep one silently: the user meant something else
            raise ConfigError(
                f"{group}={format_choice(value)}: {', '.join(repeated)} chosen more than once; "
                f"name each {group} once (its weight is reg.<name>.weight)"
                if group == "reg"
                else f"{group}={format_choice(value)}: {', '.join(repeated)} chosen more than once"
            )
        for choice in chosen:
            if choice is None and group in OPTIONAL_GROUPS:
                continue
            if not isinstance(choice, str) or choice not in options:
                close = difflib.get_close_matches(str(choice), options, n=1)
                hint = f" (did you mean {group}={close[0]}?)" if close else ""
                raise ConfigError(
                    f"{group}={choice}: no such {group}{hint}; choose one of: {', '.join(options)}"
                )


def format_choice(value) -> str:
    return "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


def all_keys(node, prefix: str = "") -> list[str]:
    """Every dotted key of a config (leaves and inner nodes)."""
    keys = []
    if isinstance(node, DictConfig):
        for name in node.keys():
            key = f"{prefix}{name}"
            keys.append(key)
            keys += all_keys(node._get_node(name), f"{key}.")
    return keys


def lookup(configs: list[DictConfig], key: str):
    """(the value at ``key`` in the first config holding it, that config) or (_ABSENT, None)."""
    for cfg in configs:
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_resolution_failure=False)
        if value is not _ABSENT:
            return value, cfg
    return _ABSENT, None


def unknown_key_message(override: Override, configs: list[DictConfig]) -> str:
    key = override.key_or_group
    known = sorted({k for cfg in configs for k in all_keys(cfg)})
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:  # a misspelt leaf under a known section: train.stepz -> train.steps
        section, _, leaf = key.rpartition(".")
        siblings = [k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == section]
        close = [f"{section}.{m}" for m in difflib.get_close_matches(leaf, siblings, n=1)]
    hint = f"did you mean {close[0]}?" if close else "`ganx-train --cfg job` lists every key"
    return f"{override.input_line}: no such key {key} ({hint})"


def keywords(target: str) -> list[str] | None:
    """The keyword arguments of the callable ``_target_`` names (None: it takes any, or it
    cannot be inspected)."""
    from hydra.utils import get_method

    try:
        params = inspect.signature(get_method(target)).parameters
    except (ValueError, TypeError, ImportError, HydraException):
        return None
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if p.kind != inspect.Parameter.VAR_POSITIONAL]


def check_added_key(override: Override, configs: list[DictConfig]) -> None:
    """``+a.b=v`` may only add a keyword argument of a constructor (``+optim.g.foreach=false``):
    anything else is a typo of an existing key or a key nothing reads."""
    key = override.key_or_group
    parent, _, name = key.rpartition(".")
    node, _ = lookup(configs, parent) if parent else (_ABSENT, None)
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if not isinstance(target, str):
        raise ConfigError(unknown_key_message(override, configs))
    accepted = keywords(target)
    if accepted is None or name in accepted:
        return
    close = difflib.get_close_matches(name, accepted, n=1)
    hint = f"did you mean {parent}.{close[0]}? " if close else ""
    raise ConfigError(
        f"{override.input_line}: {target} takes no argument {name} ({hint}it takes: "
        f"{', '.join(accepted)})"
    )


TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def type_problem(default, value) -> str | None:
    """What ``value`` should have been, if its type does not fit the ``default`` it replaces."""
    if default is None or value is None:
        return None  # null keys are checked by ganx.validate; any key may be set to null
    if isinstance(value, str) and value.startswith("${"):
        return None  # an interpolation: resolved and checked after composition
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, ListConfig)):
        if not isinstance(value, list):
            return "a list, e.g. [a,b]"
        kinds = {type(x) for x in default}
        if len(kinds) == 1 and (kind := kinds.pop()) in TYPE_NAMES:
            for item in value:
                if type_problem(default[0], item):
                    return f"a list of {TYPE_NAMES[kind].removeprefix('a ').removeprefix('an ')}s"
        return None
    elif isinstance(default, (dict, DictConfig)):
        ok = isinstance(value, dict)
        return None if ok else "a mapping, e.g. {a: 1}"
    else:
        return None
    return None if ok else TYPE_NAMES[type(default)]


def check_value(override: Override, configs: list[DictConfig]) -> None:
    key = override.key_or_group
    default, _ = lookup(configs, key)
    if default is _ABSENT:
        if override.is_add() or override.is_force_add():
            check_added_key(override, configs)
            return
        raise ConfigError(unknown_key_message(override, configs))
    if override.is_add():
        raise ConfigError(f"{override.input_line}: {key} exists already; write {key}=... (no +)")
    if key in MIXED_TYPE_KEYS:
        return
    for value in override_values(override):
        want = type_problem(default, value)
        if want:
            shown = value if value != "" else "''"
            raise ConfigError(f"{key}={shown}: must be {want} (default: {default})")


def compose_reference(overrides: list[str]) -> DictConfig | None:
    """The job config for these (group) overrides, or None when Hydra itself cannot compose it
    (Hydra then reports that)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    try:
        if GlobalHydra.instance().is_initialized():
            return compose("config", overrides=overrides)
        with initialize_config_module("ganx.conf", version_base="1.3"):
            return compose("config", overrides=overrides)
    except Exception:  # noqa: BLE001 - any composition failure is Hydra's to report
        return None


def _as_override(override: Override, value) -> str:
    prefix = "+" if override.is_add() else ""
    if isinstance(value, list):
        value = f"[{','.join(value)}]"
    return f"{prefix}{override.key_or_group}={'null' if value is None else value}"


def reference_configs(groups: list[Override]) -> list[tuple[str, DictConfig]]:
    """The configs the keys of a command line are looked up in, each with the group choice
    that made it: the choices as given (the first of a sweep), and one more per other value
    of each swept group."""
    first = {o.key_or_group: override_values(o)[:1] for o in groups if not o.is_delete()}
    base = {g: _as_override(o, first[g][0]) for o in groups if (g := o.key_or_group) in first}
    variants = [("", dict(base))]
    for o in groups:
        for value in override_values(o)[1:] if o.key_or_group in first else []:
            choice = _as_override(o, value)
            variants.append((choice.lstrip("+"), {**base, o.key_or_group: choice}))
    configs = [(label, compose_reference(list(v.values()))) for label, v in variants]
    return [(label, c) for label, c in configs if c is not None]


def check_in_every_variant(override: Override, variants: list[tuple[str, DictConfig]]) -> None:
    """In a sweep over a group, a key must exist whatever the choice."""
    key = override.key_or_group
    missing = [label for label, cfg in variants if lookup([cfg], key)[0] is _ABSENT]
    if missing and len(missing) < len(variants):
        labels = [label or "the first choices" for label in missing]
        raise ConfigError(f"{override.input_line}: no such key {key} with {', '.join(labels)}")


def check_overrides(overrides: list[str]) -> None:
    """Refuse, with one line, the first override of a ganx-train command line that names an
    unknown group choice or key, or gives a value of the wrong type."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return  # a syntax error: Hydra's own message names the override
    own = [o for o in parsed if not o.is_hydra_override()]
    groups = [o for o in own if o.key_or_group in GROUPS]
    for override in groups:
        if not override.is_delete():
            check_choice(override)
    values = [o for o in own if o.key_or_group not in GROUPS and not o.is_delete()]
    if not values:
        return
    variants = reference_configs(groups)
    configs = [cfg for _, cfg in variants]
    if configs:
        for override in values:
            check_value(override, configs)
            if not (override.is_add() or override.is_force_add()):
                check_in_every_variant(override, variants)


def command_line_overrides(argv: list[str]) -> list[str] | None:
    """The overrides of a ``ganx-train`` command line; None when it asks for help or another
    config (Hydra handles those as they are)."""
    from hydra._internal.utils import get_args_parser

    try:
        args, _ = get_args_parser().parse_known_args(argv)
    except SystemExit:
        return None
    if args.help or args.hydra_help or args.info or args.shell_completion:
        return None
    if args.config_name or args.config_path or args.config_dir:
        return None
    return list(args.overrides)


# keys whose values are paths: a sweep's job dirs contain `=`, which Hydra's override grammar
# reads as a second assignment unless the value is quoted
PATH_KEYS = ("checkpoint", "resume", "out", "hydra.run.dir", "hydra.sweep.dir", "dataset.root")
# ganx-eval's image sets: folders whose names may hold "=" as sweep job dirs do
PATH_KEYS += ("samples", "real")


def quote_paths(argv: list[str], keys=PATH_KEYS) -> list[str]:
    """``checkpoint=a/reg=r1/seed=0/last.pt`` -> ``checkpoint='a/reg=r1/seed=0/last.pt'``."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        quoted = value[:1] in ("'", '"')
        if sep and key in keys and not quoted and any(c in value for c in "=,[]{}()'\" "):
            escaped = value.replace("'", "\\'")
            arg = f"{key}='{escaped}'"
        out.append(arg)
    return out
