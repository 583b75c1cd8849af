"""Every config key is one a resume may change or one it refuses, and a checkpoint from before a
setting existed resumes with that setting at its default (ganx.defaults, ganx.resume_rules).

The inventory is scripts/key_coverage.py's: every key of conf/config.yaml and of every option of
every group, and the keys the presets introduce."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_cfg, config_predating
from ganx_cli import TINY_ARGS, ganx_train_here, run_here, snapshot
from omegaconf import OmegaConf
from test_key_coverage import key_coverage
from test_resume_eval import assert_trees_equal, last_state

from ganx.checkpoint import CheckpointError
from ganx.resume_rules import CHANGES_BEHAVIOUR, RESUME_MAY_CHANGE, allowed_changes, matches_any


def training_keys(keys: dict) -> list[str]:
    """The keys of ganx-train's config (not the tools', not Hydra's launchers)."""
    return sorted(k for k in keys if ":" not in k and not k.startswith("hydra."))


def unclassified(keys: dict) -> list[str]:
    """What to do about each key that is in neither list."""
    return [
        f"{name} (in {', '.join(keys[name].files)}): a resume of a checkpoint cannot tell whether "
        f"it may change. Add it to src/ganx/resume_rules.py: RESUME_MAY_CHANGE if it does not "
        "change what training computes (a schedule, logging, trackers, where data lives, "
        "hardware), else CHANGES_BEHAVIOUR (a checkpoint from before it then resumes at its "
        "default; if the default is not what ganx did before the key, also ADDED_SETTINGS)"
        for name in training_keys(keys)
        if not matches_any(name, RESUME_MAY_CHANGE + CHANGES_BEHAVIOUR)
    ]


def test_every_config_key_is_resumable_or_a_behaviour_change():
    keys = key_coverage.collect_keys()
    assert len(training_keys(keys)) > 200  # every option of every group is in the inventory
    assert unclassified(keys) == []


def test_a_new_key_in_neither_list_fails_naming_both_lists_and_patterns_decide_the_rest():
    keys = key_coverage.collect_keys()
    keys["train.new_knob"] = key_coverage.Key("train.new_knob", ["config.yaml"], [3])
    keys["histogram.every"] = key_coverage.Key("histogram.every", ["config.yaml"], [100])
    keys["loss.new_term"] = key_coverage.Key("loss.new_term", ["loss/ns.yaml"], [0.5])
    failures = unclassified(keys)
    assert len(failures) == 1 and failures[0].startswith("train.new_knob (in config.yaml)")
    assert "RESUME_MAY_CHANGE" in failures[0] and "CHANGES_BEHAVIOUR" in failures[0]


def test_every_entry_of_both_lists_names_config_keys():
    names = training_keys(key_coverage.collect_keys())
    for entry in RESUME_MAY_CHANGE + CHANGES_BEHAVIOUR:
        assert any(matches_any(name, (entry,)) for name in names), f"{entry} matches no key"


@pytest.mark.parametrize(
    ("key", "other", "run"),
    [
        ("train.ema_start", 5, []),
        ("reg.r2.schedule", "cosine", ["reg=[r2]"]),  # its group option's default (r2.yaml)
        ("model.latent_dim", 64, ["model=sngan", "dataset.resolution=32"]),  # sngan.yaml's 128
    ],
)
def test_a_setting_the_checkpoint_predates_resumes_at_its_default_only(key, other, run, tmp_path):
    saved = config_predating(key, *run)
    assert allowed_changes(saved, compose_cfg(*run), tmp_path) == {}
    with pytest.raises(CheckpointError, match=f"{key}: checkpoint None, now {other!r}"):
        allowed_changes(saved, compose_cfg(*run, f"{key}={other}"), tmp_path)


def test_the_default_is_the_one_of_the_checkpoints_own_group_option(tmp_path):
    """A checkpoint trained with model=sngan lacks a key the sngan option sets: the default is
    sngan's (latent_dim 128), not the default model's (DCGAN's 100); a key of an option the
    checkpoint did not use (DCGAN's ngf) is not filled in."""
    from ganx.defaults import predated

    saved = config_predating("model.latent_dim", "model=sngan", "model.latent_dim=7")
    assert predated(saved, {}) == {"model.latent_dim": 128}
    assert predated(config_predating("train.ema"), {}) == {"train.ema": 0.999}


def test_a_schedule_or_tracker_key_the_checkpoint_predates_may_take_any_value(tmp_path):
    saved = config_predating("sample.every")
    changes = allowed_changes(saved, compose_cfg("sample.every=3"), tmp_path)
    assert changes == {"sample.every": (None, 3)}
    saved = OmegaConf.to_container(compose_cfg(), resolve=True)  # logger=[tensorboard]
    changes = allowed_changes(saved, compose_cfg("logger=[]"), tmp_path)
    assert set(changes) == {"logger.tensorboard._target_"}  # the trackers may change


def test_where_the_data_lives_may_change_also_in_the_data_sets_builder(tmp_path):
    """dataset.root and dataset.on_device reach the builder's node as interpolations, which a
    checkpoint holds resolved: changing them changes dataset.source.* too."""
    saved = OmegaConf.to_container(compose_cfg("dataset=mnist"), resolve=True)
    moved = compose_cfg("dataset=mnist", "dataset.root=/elsewhere", "dataset.on_device=true")
    changes = allowed_changes(saved, moved, tmp_path)
    assert changes["dataset.source.root"] == ("data", "/elsewhere")
    assert changes["dataset.source.in_memory"] == (False, True)


def without_key(run_dir, section: str, key: str) -> None:
    """last.pt as an older ganx wrote it: its config without ``section.key``."""
    last = run_dir / "checkpoints" / "last.pt"
    saved = torch.load(last, weights_only=True)
    del saved["config"][section][key]
    torch.save(saved, last)


@pytest.mark.slow  # three runs of ganx-train in this process
def test_an_older_checkpoint_resumes_as_it_ran_and_refuses_a_new_behaviour(tmp_path):
    """ganx-train resumes a checkpoint whose config lacks train.ema_start (as if written before
    the key existed) exactly as it resumes the same checkpoint with the key; the command line
    setting a non-default value of it is refused, naming the value that resumes it."""
    from ganx.train import main

    pieces = {}
    for name in ("current", "older"):
        run = tmp_path / name
        code, err = ganx_train_here(*TINY_ARGS, f"hydra.run.dir={run}", "train.stop_at=2")
        assert code == 0, err
        pieces[name] = run
    without_key(pieces["older"], "train", "ema_start")
    before = snapshot(pieces["older"])
    code, err = ganx_train_here(
        *TINY_ARGS, f"hydra.run.dir={pieces['older']}", "resume=auto", "train.ema_start=1"
    )
    assert code != 0
    assert (
        "train.ema_start: checkpoint None, now 1 (the checkpoint predates it: "
        "train.ema_start=0 resumes it as it ran)" in err
    )
    assert snapshot(pieces["older"]) == before  # nothing written
    for run in pieces.values():
        code, out, err = run_here(
            main, "ganx-train", *TINY_ARGS, f"hydra.run.dir={run}", "resume=auto"
        )
        assert code == 0, err
        said = f"resuming {run} at step 2 of 4 with its own settings; changed: nothing"
        assert said in out + err  # an older checkpoint at its defaults: no change
    older = torch.load(pieces["older"] / "checkpoints" / "last.pt", weights_only=True)
    assert older["step"] == 4
    assert older["config"]["train"]["ema_start"] == 0  # the resumed run records it
    assert_trees_equal(last_state(pieces["current"]), last_state(pieces["older"]))
