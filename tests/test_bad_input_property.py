"""Property: every bad override of a key that ``ganx-train --cfg job`` shows is refused with one
line naming it, before anything is written; none is met with a traceback.

Draws: wrong types, non-finite and out-of-range numbers, huge values, empty lists, unknown keys
(misspelt or invented, with and without ``+``) and unknown group choices. Each runs through the
console entry point ``ganx.train.main`` in-process (the code path of ``ganx-train``), with
training itself replaced by what training does before its first step (validation, the device,
building the nets on the meta device), so an accepted draw costs no training.

``GANX_PROPERTY_CENSUS=1`` records every draw instead of stopping at the first wrong one and
prints how many distinct bad inputs were tried and how many were handled wrongly.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from conftest import compose_cfg, group_choices
from ganx_cli import ganx_train_here
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import ganx.launch
import ganx.train

CENSUS = os.environ.get("GANX_PROPERTY_CENSUS") == "1"
EXAMPLES = int(os.environ.get("GANX_PROPERTY_EXAMPLES", "40"))
GROUPS = ("model", "loss", "reg", "dataset", "augment", "hardware", "experiment")
RESULTS: dict[str, str] = {}  # override -> "ok" or what was wrong


def default_leaves() -> dict[str, object]:
    """Every leaf of the default job config (what ``ganx-train --cfg job`` prints)."""

    def flatten(node, prefix=""):
        if isinstance(node, dict) and node:
            return {
                k: v for key, x in node.items() for k, v in flatten(x, f"{prefix}{key}.").items()
            }
        return {prefix[:-1]: node}

    return flatten(OmegaConf.to_container(compose_cfg(tiny=False), resolve=True))


LEAVES = default_leaves()
KEYS = sorted(LEAVES)
TYPED_KEYS = [k for k in KEYS if LEAVES[k] is not None]
NUMERIC_KEYS = [
    k for k in KEYS if isinstance(LEAVES[k], (int, float)) and not isinstance(LEAVES[k], bool)
]
WORD = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)


def render(value) -> str:
    """A value as Hydra's override grammar reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, list):
        return "[" + ",".join(render(v) for v in value) + "]"
    return str(value)


def wrong_types(default):
    """Values whose type cannot stand for ``default``'s."""
    text = WORD.filter(lambda w: w not in ("true", "false", "null", "nan", "inf"))
    if isinstance(default, bool):
        return st.one_of(st.integers(-5, 5), text, st.lists(st.integers(0, 3), max_size=2))
    if isinstance(default, int):
        return st.one_of(text, st.floats(0.5, 1e4).filter(lambda f: f != int(f)), st.booleans())
    if isinstance(default, float):
        return st.one_of(text, st.booleans(), st.lists(st.floats(0, 1), min_size=1, max_size=2))
    if isinstance(default, str):
        return st.one_of(st.integers(-5, 5), st.lists(text, min_size=1, max_size=2))
    if isinstance(default, list):
        return st.one_of(st.integers(0, 9), text)
    return st.nothing()


def bad_numbers(default):
    """Non-finite, negative, zero and huge numbers for a numeric key."""
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return st.nothing()
    huge = st.one_of(st.integers(10**9, 10**30), st.just(1e300))
    special = st.sampled_from([0, -1, -(10**6)] + ([float("nan"), float("inf"), -0.5] * 1))
    return st.one_of(huge, special)


def mutate(word: str, draw) -> str:
    i = draw(st.integers(0, len(word)))
    op = draw(st.sampled_from(["insert", "delete", "swap"]))
    if op == "delete" and len(word) > 1:
        return word[: max(i - 1, 0)] + word[max(i, 1) :]
    if op == "swap" and len(word) > 2:
        j = min(i, len(word) - 2)
        return word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return word[:i] + draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz")) + word[i:]


@st.composite
def bad_override(draw) -> tuple[str, str, bool]:
    """(override, kind, must it be refused)."""
    kind = draw(st.sampled_from(["type", "number", "empty", "key", "choice"]))
    if kind == "choice":
        group = draw(st.sampled_from(GROUPS))
        options = group_choices(group)
        value = draw(st.one_of(WORD, st.sampled_from(options).map(lambda o: mutate(o, draw))))
        if value in options or value in ("null", "true", "false", "nan", "inf"):
            value = value + "x"
        return f"{group}={value}", kind, True
    if kind == "key":
        key = draw(st.sampled_from(KEYS))
        section, _, leaf = key.rpartition(".")
        new_leaf = draw(st.one_of(WORD, st.just(leaf).map(lambda w: mutate(w, draw))))
        bad_key = f"{section}.{new_leaf}" if section else new_leaf
        if bad_key in LEAVES or any(k.startswith(bad_key + ".") for k in KEYS):
            bad_key += "zz"
        plus = draw(st.sampled_from(["", "+"]))
        return f"{plus}{bad_key}={draw(st.integers(0, 9))}", kind, True
    if kind == "empty":
        key = draw(st.sampled_from(KEYS))
        return f"{key}=[]", kind, not isinstance(LEAVES[key], list)
    if kind == "number":
        key = draw(st.sampled_from(NUMERIC_KEYS))
        value = draw(bad_numbers(LEAVES[key]))
        finite = isinstance(value, int) or math.isfinite(value)
        return f"{key}={render(value)}", kind, not finite
    key = draw(st.sampled_from(TYPED_KEYS))
    value = draw(wrong_types(LEAVES[key]))
    return f"{key}={render(value)}", kind, True


def stub_training(cfg, run_dir):
    """What ``train`` does before its first step, without training."""
    from ganx.build import build_nets
    from ganx.errors import ConfigError
    from ganx.hardware import select_device
    from ganx.validate import validate

    validate(cfg)
    select_device(cfg.hardware)
    try:
        with torch.device("meta"):
            build_nets(cfg)
    except (ValueError, TypeError) as err:  # as train() maps a constructor's refusal
        raise ConfigError(str(err)) from err
    return {"status": "stub", "step": 0}


def judge(override: str, kind: str, must_refuse: bool, run_dir: Path) -> str:
    """ "ok", or what was wrong with how ganx-train met this override."""
    try:
        code, stderr = ganx_train_here(override, "hardware=cpu", f"hydra.run.dir={run_dir}")
    except Exception as err:  # noqa: BLE001 - a traceback is the failure being looked for
        return f"traceback: {type(err).__name__}: {err}"
    lines = [x for x in stderr.splitlines() if x.strip() and "Warning" not in x]
    lines = [x for x in lines if not x.lstrip().startswith("warnings.warn")]
    if code == 0:
        return "accepted" if must_refuse else "ok"
    if "Traceback" in stderr:
        return f"traceback: {lines[-1] if lines else ''}"
    if len(lines) != 1:
        return f"{len(lines)} lines: {' | '.join(lines)[:300]}"
    key = override.split("=", 1)[0].lstrip("+")
    if key not in lines[0] and key.rpartition(".")[0] not in lines[0]:
        return f"key not named: {lines[0][:200]}"
    if run_dir.exists() and any(run_dir.iterdir()):
        return f"wrote {sorted(p.name for p in run_dir.iterdir())}"
    return "ok"


@pytest.fixture(scope="module", autouse=True)
def census_report():
    yield
    if CENSUS:
        wrong = {o: r for o, r in RESULTS.items() if r != "ok"}
        if os.environ.get("GANX_PROPERTY_LIST"):
            print("\n".join(sorted(RESULTS)))
        print(f"\nproperty census: {len(RESULTS)} distinct bad inputs, {len(wrong)} wrong")
        for override, result in sorted(wrong.items()):
            print(f"  {override}: {result}")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,  # derandomized: nothing to replay, and no .hypothesis/ folder written
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
@given(case=bad_override())
def test_every_bad_override_is_refused_with_one_line(case, tmp_path_factory, monkeypatch):
    override, kind, must_refuse = case
    monkeypatch.setattr(ganx.train, "in_this_process", stub_training)
    # ganx.train.run_job imports launch on use: replace it where it is defined
    monkeypatch.setattr(ganx.launch, "launch", lambda cfg, run_dir, n: {"status": "stub"})
    run_dir = tmp_path_factory.mktemp("run") / "run"
    result = judge(override, kind, must_refuse, run_dir)
    RESULTS.setdefault(override, result)
    if not CENSUS:
        assert result == "ok", f"{override} ({kind}): {result}"
