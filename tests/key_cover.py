"""The evidence that scripts/key_coverage.py reads: a fast test that sets a config key to a
non-default value, and asserts on what that changes, says so by building the value through
one of these two functions (the script finds the calls in the test's source, checks the key
exists, the value differs from every config's default for it, the call's result is used, the
test asserts something and is not marked slow).

    cfg = compose_cfg(override("train.lr_decay", True))       # -> "train.lr_decay=true"
    penalty = LeCamPenalty(decay=setting("reg.lecam.decay", 0.5))   # -> 0.5

``option="reg/js"`` (a group option the test composes) compares the value with that option's
default (and config.yaml's) only, for a key whose options disagree on the default.
Both return what the test uses, so the key named is the key set: a claim that is not used is
reported by the script, not counted.
"""

from __future__ import annotations

import json


def setting(key: str, value, option: str | None = None):
    """``value`` itself: the value a test passes for ``key`` (a function argument, a field)."""
    return value


def override(key: str, value, option: str | None = None) -> str:
    """The Hydra override ``key=value`` (bools lower case, lists and None as Hydra spells them)."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (list, tuple)):
        text = "[" + ",".join(override("k", v).split("=", 1)[1] for v in value) + "]"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value)
    return f"{key.split(':', 1)[-1]}={text}"  # a tool's key: "ganx-eval:out" -> "out=..."
