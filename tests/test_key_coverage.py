"""scripts/key_coverage.py in the fast suite: a config key that no fast test sets to a
non-default value (and is neither exempt nor a known gap) fails here, with what to add."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

from key_cover import override, setting


def load_key_coverage():
    """The script as a module (registered first: its dataclasses look themselves up)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "key_coverage.py"
    spec = importlib.util.spec_from_file_location("key_coverage", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["key_coverage"] = module
    spec.loader.exec_module(module)
    return module


key_coverage = load_key_coverage()


def test_every_config_key_is_covered_exempt_or_a_known_gap(capsys):
    code = key_coverage.main([])
    out = capsys.readouterr().out
    assert code == 0, out


def test_the_keys_include_groups_presets_and_tools():
    keys = key_coverage.collect_keys()
    for name in ("train.lr_decay", "model.generator.ngf", "reg.lecam.decay", "loss.c"):
        assert name in keys
    assert "ganx-eval:settings.kid_subset_size" in keys
    assert "ganx-sample:seed" in keys
    assert "ganx-dirac:reg_settings.r1.weight" in keys
    assert keys["loss.c"].defaults == [1.0]
    assert not any(name.startswith(("defaults", "hydra.run", "hydra.help")) for name in keys)


def claims_of(tmp_path, source: str):
    path = tmp_path / "test_example.py"
    path.write_text(textwrap.dedent(source))
    keys = key_coverage.collect_keys()
    _, problems = key_coverage.run(keys, [path])
    return keys, problems


def test_a_used_non_default_claim_in_a_fast_asserting_test_counts(tmp_path):
    keys, problems = claims_of(
        tmp_path,
        """
        def test_x():
            cfg = compose_cfg(override("loss.c", 0.5))
            assert cfg.loss.c == 0.5
        """,
    )
    assert problems == []
    assert keys["loss.c"].claims == ["test_example.py::test_x:3"]
    assert key_coverage.status(keys["loss.c"])[0] == "covered"


def test_false_claims_are_reported_not_counted(tmp_path):
    keys, problems = claims_of(
        tmp_path,
        """
        import pytest

        def test_default():
            assert compose_cfg(override("loss.c", 1.0))

        def test_unused():
            override("loss.b", 0.5)
            assert True

        @pytest.mark.slow
        def test_slow():
            assert compose_cfg(override("loss.a", 0.5))

        def test_no_assert():
            compose_cfg(override("train.n_dis", 2))

        def test_unknown():
            assert setting("train.no_such_key", 3)

        def helper():
            return setting("train.n_dis", 3)
        """,
    )
    text = "\n".join(problems)
    assert "1.0 is a default of loss.c" in text
    assert "result is not used" in text
    assert "marked slow" in text
    assert "no assert" in text
    assert "no config has the key 'train.no_such_key'" in text
    assert "not inside a test function" in text
    assert len(problems) == 6
    assert all(not keys[k].claims for k in ("loss.a", "loss.b", "loss.c", "train.n_dis"))


def test_a_new_uncovered_key_fails_with_what_to_add_and_a_closed_gap_fails_too():
    keys = key_coverage.collect_keys()
    new = key_coverage.Key("train.new_knob", ["config.yaml"], [3])
    keys["train.new_knob"] = new
    gaps = {k.name for k in keys.values() if key_coverage.status(k)[0] == "UNCOVERED"}
    failures = key_coverage.failures_of(keys, [], gaps - {"train.new_knob"})
    assert len(failures) == 1
    assert failures[0].startswith("UNCOVERED train.new_knob (default 3 in config.yaml)")
    assert 'override("train.new_knob", V)' in failures[0]
    assert "EXEMPT in scripts/key_coverage.py" in failures[0]
    new.claims.append("test_x.py::test_y")
    closed = key_coverage.failures_of(keys, [], gaps)
    assert closed == [
        "KNOWN GAP CLOSED train.new_knob: it is covered; remove it from "
        "scripts/key_coverage_gaps.txt"
    ]


def test_override_spells_values_as_hydra_reads_them():
    assert override("train.lr_decay", True) == "train.lr_decay=true"
    assert override("train.stop_at", None) == "train.stop_at=null"
    assert override("optim.g.betas", [0.0, 0.9]) == "optim.g.betas=[0.0,0.9]"
    assert override("loss.variant", "mean") == "loss.variant=mean"
    assert override("ganx-eval:settings.real_count", 32) == "settings.real_count=32"
    assert setting("loss.c", 0.5) == 0.5


def test_an_option_narrows_the_defaults_a_value_is_compared_with(tmp_path):
    keys, problems = claims_of(
        tmp_path,
        """
        def test_union():
            assert compose_cfg(override("reg.js.anneal", True))

        def test_option():
            assert compose_cfg(override("reg.js.anneal", True, option="reg/js"))

        def test_wrong_option():
            assert compose_cfg(override("reg.js.anneal", False, option="reg/r1"))
        """,
    )
    assert len(problems) == 2
    assert "True is a default of reg.js.anneal" in problems[0]
    assert "reg/r1.yaml does not define reg.js.anneal" in problems[1]
    assert keys["reg.js.anneal"].claims == ["test_example.py::test_option:6"]


def test_a_computed_value_counts_only_for_a_path_like_key(tmp_path):
    keys, problems = claims_of(
        tmp_path,
        """
        def test_path(tmp_path):
            assert run(override("ganx-eval:out", str(tmp_path / "r.json")))

        def test_number(n):
            assert compose_cfg(override("train.n_dis", str(n)))
        """,
    )
    assert keys["ganx-eval:out"].claims == ["test_example.py::test_path:3"]
    assert len(problems) == 1 and "counts only for a key whose defaults are text" in problems[0]
