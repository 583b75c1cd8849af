"""The schedule: a pure function of the step and the config (so every rank agrees)."""

import pytest
from conftest import compose_cfg
from key_cover import override

from ganx import schedule
from ganx.schedule import due


def steps_where(cfg, field: str, stop_requested_at: int | None = None) -> list[int]:
    """The steps where ``field`` of the schedule is true; a periodic action's method name: the
    steps it is due at."""

    def holds(d) -> bool:
        return field in d.actions if field in schedule.ACTIONS.values() else getattr(d, field)

    return [s for s in range(1, cfg.train.steps + 1) if holds(due(s, cfg, s == stop_requested_at))]


def test_evaluation_steps_are_flushed_on_every_rank_alike():
    cfg = compose_cfg(
        "train.steps=12",
        "log.every=2",
        "eval.every=3",
        "eval.metrics=[fid_mnist]",
        "ckpt.every=5",
        "sample.every=4",
        "eval.at=[7]",
    )
    assert steps_where(cfg, "evaluate") == [3, 6, 7, 9, 12]
    # a flush on every log, evaluation and checkpoint step: evaluations off the log steps too
    assert steps_where(cfg, "flush") == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    assert steps_where(cfg, "checkpoint") == [5, 7, 10, 12]
    assert steps_where(cfg, "keep_copy") == [5, 7, 10]  # eval.at keeps a copy
    assert steps_where(cfg, "sample_grid") == [4, 8, 12]
    assert steps_where(cfg, "pause") == []
    assert due(12, cfg) == due(12, cfg)  # the same answer every time it is asked


def test_stop_at_and_a_stop_request_end_with_a_checkpoint():
    cfg = compose_cfg(
        "train.steps=10", override("train.stop_at", 4), "ckpt.every=5", "eval.metrics=[fid_mnist]"
    )
    at_stop = due(4, cfg)
    assert at_stop.pause and at_stop.final and at_stop.evaluate and at_stop.checkpoint
    assert at_stop.flush and at_stop.actions == ("sample_grid",) and not at_stop.keep_copy
    requested = due(3, cfg, stop_requested=True)
    assert requested.final and requested.checkpoint and requested.flush and not requested.pause
    assert not requested.evaluate  # the checkpoint a signal asks for is not delayed
    assert not due(3, cfg).final


def test_no_metrics_no_evaluation():
    cfg = compose_cfg("train.steps=4", "eval.every=1")  # the tiny config has eval.metrics=[]
    assert steps_where(cfg, "evaluate") == []


def test_a_periodic_action_is_one_entry_of_the_table_and_its_every_key(monkeypatch):
    """An entry of schedule.ACTIONS is due every its key's steps and at the last step of an
    invocation, after the actions before it; a config without its key does not run it."""
    monkeypatch.setitem(schedule.ACTIONS, "histogram.every", "logit_histogram")
    cfg = compose_cfg("train.steps=10", "sample.every=4", "+histogram.every=3")
    assert steps_where(cfg, "logit_histogram") == [3, 6, 9, 10]
    assert due(8, cfg).actions == ("sample_grid",)
    assert due(10, cfg).actions == ("sample_grid", "logit_histogram")
    assert due(4, cfg, stop_requested=True).actions == ("sample_grid", "logit_histogram")
    assert steps_where(compose_cfg("train.steps=10"), "logit_histogram") == []


def test_every_periodic_action_is_a_method_of_outputs():
    from ganx.outputs import Outputs

    assert all(callable(getattr(Outputs, method, None)) for method in schedule.ACTIONS.values())


def test_a_new_every_key_is_validated_by_pattern():
    """docs/ARCHITECTURE.md, Recipes, A periodic action: no validate.py edit for its key."""
    from ganx.errors import ConfigError
    from ganx.validate import validate

    with pytest.raises(ConfigError, match="logits.every"):
        validate(compose_cfg("+logits.every=-2"))
