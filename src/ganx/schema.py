"""The constructor is the schema: each class built from a ``_target_`` node checks its own
settings with these helpers, and what a method *is* (penalises D's input gradient, needs a
sigmoid loss, supports these resolutions, ...) is an attribute of its class, read here without
building it.

A refusal is a :class:`SettingError` that names the setting as the constructor knows it
(``decay=1.5: must be in [0, 1)``); whoever builds the node from a config prefixes the node's key
(``build.instantiate_named``: ``reg.lecam.decay=1.5: must be in [0, 1)``), so ``ganx-train``'s
pre-flight, ``ganx.fit`` and a class built by hand in Python give the same one line. Torch-free:
``validate`` and the command-line checks use the same helpers for the plain sections.
"""

from __future__ import annotations

import math

from .errors import ConfigError


class SettingError(ConfigError):
    """One setting refused: ``<prefix><name>=<value><rule>``. ``rule`` may name the node's other
    settings as ``{prefix}weight_end``, so that they get the same key prefix."""

    def __init__(self, name: str, value, rule: str, prefix: str = "", shown: str | None = None):
        self.name, self.value, self.rule, self.prefix = name, value, rule, prefix
        if shown is None:  # as YAML and the command line spell it: true, not True
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
        self.shown = shown
        super().__init__(f"{prefix}{name}={self.shown}{rule.replace('{prefix}', prefix)}")

    def under(self, key: str) -> SettingError:
        """The same refusal named under the config key of the node that was built."""
        return SettingError(self.name, self.value, self.rule, f"{key}.{self.prefix}", self.shown)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive(name: str, value, integer: bool = False) -> None:
    if not (is_integer(value) if integer else is_number(value)) or value <= 0:
        kind = "a positive integer" if integer else "a positive finite number"
        raise SettingError(name, value, f": must be {kind}")


def optional_positive(name: str, value, integer: bool = True) -> None:
    if value is not None:
        positive(name, value, integer)


def non_negative(name: str, value, integer: bool = False) -> None:
    if not (is_integer(value) if integer else is_number(value)) or value < 0:
        kind = "an integer >= 0" if integer else "a finite number >= 0"
        raise SettingError(name, value, f": must be {kind}")


def in_interval(name: str, value, interval: str) -> None:
    """``interval`` as written in the message: ``[0, 1)``, ``(0, 1]``, ``[0, 0.5]``."""
    low, high = (float(x) for x in interval[1:-1].split(","))
    ok = is_number(value) and (low <= value if interval[0] == "[" else low < value)
    ok = ok and (value <= high if interval[-1] == "]" else value < high)
    if not ok:
        raise SettingError(name, value, f": must be a number in {interval}")


def flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise SettingError(name, value, ": must be true or false")


def choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise SettingError(name, value, f"; allowed: {', '.join(map(str, allowed))}")


def names_from(name: str, values, allowed) -> list[str]:
    """A non-empty list of names, each in ``allowed``."""
    iterable = hasattr(values, "__iter__") and not isinstance(values, (str, bytes))
    chosen = list(values) if iterable else values
    if not isinstance(chosen, list) or not chosen or any(v not in allowed for v in chosen):
        raise SettingError(name, chosen, f"; allowed: a non-empty list of {', '.join(allowed)}")
    return chosen


def target_class(node):
    """The class (or function) a ``_target_`` node names, resolved without building it."""
    from hydra.utils import get_object

    target = node.get("_target_") if hasattr(node, "get") else None
    return None if target is None else get_object(str(target))


def trait(node, name: str, default=None):
    """A class attribute of the node's ``_target_`` (``penalises_input_gradient``,
    ``resolutions``, ...): what the method is, known before anything is built."""
    return getattr(target_class(node), name, default)
