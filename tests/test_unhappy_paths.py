"""The unhappy paths of ganx-train, in this process (issue 24): a resume continues the run with
its own settings; a failure injected at each write and in each evaluation stage leaves an
intact last.pt, status.json = failed, one console line and exit status 2, and a bare
``resume=auto`` then ends bitwise equal to a straight run; the exit status of every ending; the
refusals before training (metric sample counts, a read-only run dir, a group chosen twice,
BatchNorm on one image); a sweep with a failed job."""

from __future__ import annotations

import errno
import json
import os
import shlex
import signal
from pathlib import Path

import pytest
from conftest import compose_cfg
from docs_pages import pages
from ganx_cli import TINY_ARGS, error_lines, ganx_train_here
from test_resume_eval import assert_trees_equal

from ganx import checkpoint as ckpt
from ganx import outputs, rundir
from ganx.errors import EXIT_DIVERGED, EXIT_FAILED, ConfigError
from ganx.trackers import Trackers
from ganx.validate import validate

# six steps, checkpoints every 2, an evaluation (MNIST-net FID of 20 samples) at steps 3 and 6
RUN = [*TINY_ARGS, "train.steps=6", "eval.metrics=[fid_mnist]", "eval.num_samples=20"]
RUN += ["eval.every=3", "log.every=1"]


def run_args(cache: Path, run_dir: Path, *extra: str) -> list[str]:
    return [*RUN, f"metrics.cache_dir={cache}", *extra, f"hydra.run.dir={run_dir}"]


def status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def training_state(run_dir: Path) -> dict:
    """last.pt without what differs between two equal runs (config, time, record)."""
    state = ckpt.load(run_dir / "checkpoints" / "last.pt")
    for key in ("config", "elapsed_s", "record"):
        state.pop(key, None)
    return state


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("features")


@pytest.fixture(scope="module")
def straight(tmp_path_factory, cache) -> dict:
    run_dir = tmp_path_factory.mktemp("straight") / "D"
    code, stderr = ganx_train_here(*run_args(cache, run_dir))
    assert code == 0, stderr
    return training_state(run_dir)


# --- a failure injected at each write and in each evaluation stage -----------------------------


def no_space(name: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)


def fail_checkpoint_write(monkeypatch):
    """The bytes of step 4's last.pt hit a full disk (inside torch.save, as on a real one)."""
    original, writer_write = ckpt.atomic_save, ckpt._RecordingWriter.write
    full = {"now": False}

    def save(state, path):
        full["now"] = Path(path).name == "last.pt" and state["step"] == 4
        return original(state, path)

    def write(self, data):
        if full["now"]:
            self.error = no_space("last.pt")
            raise self.error
        return writer_write(self, data)

    monkeypatch.setattr(ckpt, "atomic_save", save)
    monkeypatch.setattr(ckpt._RecordingWriter, "write", write)


def fail_every_status_write_after_the_first(monkeypatch):
    original, calls = outputs.write_status, []

    def write(run_dir, values):
        calls.append(values)
        if len(calls) > 1:
            raise no_space(str(run_dir / "status.json"))
        original(run_dir, values)

    monkeypatch.setattr(outputs, "write_status", write)


def fail_metrics_write(monkeypatch):
    """The third record of metrics.jsonl (step 3, with its evaluation) hits a full disk."""
    calls = []

    def guarded_open(path, *args, **kwargs):
        if Path(path).name == "metrics.jsonl":
            calls.append(path)
            if len(calls) == 3:
                raise no_space(str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(outputs, "open", guarded_open, raising=False)


def fail_sample_grid(monkeypatch):
    original = outputs.save_samples

    def save(images, path, *args):
        if Path(path).name == "step_0000004.png":
            raise no_space(str(path))
        return original(images, path, *args)

    monkeypatch.setattr(outputs, "save_samples", save)


def fail_tracker(monkeypatch):
    original = Trackers.add_scalar

    def add_scalar(self, tag, value, step):
        if step == 3:
            raise ConnectionError("the tracking server went away")
        return original(self, tag, value, step)

    monkeypatch.setattr(Trackers, "add_scalar", add_scalar)


def failing_at_first_call(monkeypatch, owner, name: str, error: Exception) -> None:
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(owner, name, fail)


def fail_sampling(monkeypatch):
    from ganx.metrics import evaluation

    failing_at_first_call(monkeypatch, evaluation, "sample_for_eval", RuntimeError("CUDA OOM"))


def fail_features(monkeypatch):
    from ganx.metrics import fidelity

    error = RuntimeError("feature net failed")
    failing_at_first_call(monkeypatch, fidelity.FeatureBank, "features", error)


def fail_real_features(monkeypatch):
    from ganx.metrics import fidelity

    failing_at_first_call(monkeypatch, fidelity, "real_features", no_space("features.pt"))


def fail_metric(monkeypatch):
    import numpy as np

    from ganx.metrics import fidelity

    error = np.linalg.LinAlgError("Array must not contain infs or NaNs")
    failing_at_first_call(monkeypatch, fidelity, "fid_statistics_to_metric", error)


# (inject, the step last.pt holds after the failure, words of the console line and status.json)
FAULTS = {
    "checkpoint": (fail_checkpoint_write, 2, ["last.pt", "no space left on device"]),
    "status": (fail_every_status_write_after_the_first, 6, ["status.json could not be written"]),
    "metrics.jsonl": (fail_metrics_write, 3, ["log record at step 3", "metrics.jsonl"]),
    "sample grid": (fail_sample_grid, 4, ["sample grid at step 4", "no space left on device"]),
    "tracker": (fail_tracker, 3, ["ConnectionError", "the tracking server went away"]),
    "evaluation: sampling": (fail_sampling, 3, ["evaluation at step 3", "CUDA OOM"]),
    "evaluation: features": (fail_features, 3, ["evaluation at step 3", "feature net"]),
    "evaluation: real features": (fail_real_features, 3, ["evaluation at step 3", "features.pt"]),
    "evaluation: metric": (fail_metric, 3, ["evaluation at step 3", "LinAlgError"]),
}


@pytest.mark.slow  # several in-process runs: seconds each
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failure_keeps_the_steps_and_resume_ends_as_a_straight_run(
    fault, tmp_path, cache, straight, monkeypatch
):
    inject, saved_step, words = FAULTS[fault]
    run_dir = tmp_path / "D"
    with monkeypatch.context() as patched:
        inject(patched)
        code, stderr = ganx_train_here(*run_args(cache, run_dir))
    lines = error_lines(stderr)
    assert code == EXIT_FAILED and len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], lines[0]
    if fault != "status":
        record = status(run_dir)
        assert record["status"] == "failed" and record["step"] == saved_step, record
        assert "\n" not in record["error"] and words[0] in record["error"]
    assert "Traceback (most recent call last)" in (run_dir / "train.log").read_text()
    checkpoints = run_dir / "checkpoints"
    assert ckpt.load(checkpoints / "last.pt")["step"] == saved_step
    assert not list(checkpoints.glob(".*.tmp")), "a partial checkpoint was left"
    # the bare resume a requeue script types continues and ends as the straight run
    code, stderr = ganx_train_here(f"hydra.run.dir={run_dir}", "resume=auto")
    assert code == 0, stderr
    assert status(run_dir)["status"] == "finished"
    assert_trees_equal(training_state(run_dir), straight)


def test_the_checkpoint_comes_before_the_evaluation_of_its_step(tmp_path, cache, monkeypatch):
    """A crash in the final evaluation used to lose every step since the last checkpoint."""
    run_dir = tmp_path / "D"
    fail_metric(monkeypatch)
    code, _ = ganx_train_here(*run_args(cache, run_dir, "eval.every=100", "ckpt.every=100"))
    assert code == EXIT_FAILED
    assert ckpt.load(run_dir / "checkpoints" / "last.pt")["step"] == 6
    assert status(run_dir)["step"] == 6


def test_a_new_best_is_in_last_pt_too(tmp_path, cache):
    run_dir = tmp_path / "D"
    code, stderr = ganx_train_here(*run_args(cache, run_dir, "eval.objective=fid_mnist"))
    assert code == 0, stderr
    last = ckpt.load(run_dir / "checkpoints" / "last.pt")
    best = ckpt.load(run_dir / "checkpoints" / "best.pt")
    assert last["best"] is not None and last["best"] == best["best"]


# --- a resume continues the run with its own settings ------------------------------------------

OWN = ["train.steps=6", "eval.every=3", "seed=3", "loss=hinge", "reg=[r2]", "reg.r2.weight=1"]


@pytest.mark.slow  # several in-process runs: seconds each
def test_a_bare_resume_continues_with_the_runs_own_settings(tmp_path, cache):
    straight_dir, run_dir = tmp_path / "straight", tmp_path / "D"
    code, stderr = ganx_train_here(*run_args(cache, straight_dir, *OWN))
    assert code == 0, stderr
    code, stderr = ganx_train_here(*run_args(cache, run_dir, *OWN, "train.stop_at=3"))
    assert code == 0 and status(run_dir)["status"] == "paused", stderr
    code, stderr = ganx_train_here(f"hydra.run.dir={run_dir}", "resume=auto")
    assert code == 0, stderr
    assert status(run_dir) | {"status": "finished", "step": 6} == status(run_dir)
    log = (run_dir / "train.log").read_text()
    assert f"resuming {run_dir} at step 3 of 6 with its own settings; changed: nothing" in log
    assert_trees_equal(training_state(run_dir), training_state(straight_dir))


@pytest.mark.slow  # several in-process runs: seconds each
def test_overrides_given_with_a_resume_are_changes_printed_and_recorded(tmp_path, cache):
    run_dir = tmp_path / "D"
    assert ganx_train_here(*run_args(cache, run_dir, *OWN, "train.stop_at=3"))[0] == 0
    code, stderr = ganx_train_here(f"hydra.run.dir={run_dir}", "resume=auto", "train.steps=8")
    assert code == 0, stderr
    assert status(run_dir)["step"] == 8
    log = (run_dir / "train.log").read_text()
    assert "at step 3 of 6 with its own settings; changed: train.steps 6 -> 8" in log
    lines = (run_dir / ".hydra" / "invocations.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["changed"] == {"train.steps": {"was": 6, "now": 8}}
    # a change the resume rules refuse is named, not a list of settings never changed
    code, stderr = ganx_train_here(f"hydra.run.dir={run_dir}", "resume=auto", "loss=ns")
    lines = error_lines(stderr)
    assert code == 1 and len(lines) == 1, stderr
    listed = lines[0].split("changed settings (")[1].split("); a resume")[0]
    assert "loss._target_" in listed and "train.steps" not in listed


def test_resume_auto_without_a_run_starts_one_and_says_so(tmp_path):
    run_dir = tmp_path / "misspelt"
    code, stderr = ganx_train_here(*TINY_ARGS, "resume=auto", f"hydra.run.dir={run_dir}")
    assert code == 0, stderr
    log = (run_dir / "train.log").read_text()
    assert f"resume=auto: no checkpoint to continue in {run_dir}" in log
    assert "starting a new run there" in log


def test_resume_from_a_missing_file_is_refused(tmp_path):
    missing = tmp_path / "nothing.pt"
    code, stderr = ganx_train_here(*TINY_ARGS, f"resume={missing}", f"hydra.run.dir={tmp_path}/D")
    lines = error_lines(stderr)
    assert code == 1 and len(lines) == 1 and "no such checkpoint file" in lines[0], stderr
    assert not (tmp_path / "D").exists()


# --- exit codes -------------------------------------------------------------------------------


@pytest.mark.slow  # several in-process runs: seconds each
def test_finished_and_paused_exit_0_diverged_3(tmp_path, monkeypatch):
    from internals import poison_d_loss

    assert ganx_train_here(*TINY_ARGS, f"hydra.run.dir={tmp_path}/a")[0] == 0
    paused = ganx_train_here(*TINY_ARGS, "train.stop_at=2", f"hydra.run.dir={tmp_path}/b")
    assert paused[0] == 0 and status(tmp_path / "b")["status"] == "paused"
    poison_d_loss(monkeypatch, at_call=3)
    code, stderr = ganx_train_here(*TINY_ARGS, f"hydra.run.dir={tmp_path}/c")
    assert code == EXIT_DIVERGED, stderr
    assert status(tmp_path / "c")["status"] == "diverged"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_run_stopped_by_a_signal_exits_128_plus_its_number(sig, code, tmp_path, monkeypatch):
    original = outputs.save_samples

    def signal_at_step_2(images, path, *args):
        if Path(path).name == "step_0000002.png":
            os.kill(os.getpid(), sig)
        return original(images, path, *args)

    monkeypatch.setattr(outputs, "save_samples", signal_at_step_2)
    run_dir = tmp_path / "D"
    exit_code, stderr = ganx_train_here(*TINY_ARGS, "train.steps=50", f"hydra.run.dir={run_dir}")
    assert exit_code == code, stderr
    record = status(run_dir)
    assert record["status"] == "interrupted" and record["signal"] == sig
    assert ckpt.load(run_dir / "checkpoints" / "last.pt")["step"] == record["step"] < 50


# --- refused before training ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["eval.metrics=[fid_mnist]", "eval.num_samples=1"], "fid_mnist needs at least 2"),
        (["eval.metrics=[kid_mnist]", "metrics.kid_subset_size=1"], "kid_mnist needs at least 2"),
        (["eval.metrics=[pr_mnist]", "eval.num_samples=3"], "pr_mnist needs at least 4"),
        (["eval.metrics=[is_mnist]", "eval.num_samples=9"], "is_mnist needs at least 10"),
        (["eval.metrics=[fid_mnist]", "metrics.real_count=1"], "metrics.real_count=1"),
    ],
)
def test_too_few_samples_for_a_metric_are_refused(overrides, expected):
    with pytest.raises(ConfigError, match=expected):
        validate(compose_cfg(*overrides))


def test_each_metric_accepts_its_minimum():
    validate(compose_cfg("eval.metrics=[fid_mnist,kid_mnist]", "eval.num_samples=2"))
    validate(compose_cfg("eval.metrics=[pr_mnist]", "eval.num_samples=4"))
    validate(compose_cfg("eval.metrics=[is_mnist]", "eval.num_samples=10"))


def test_the_issues_num_samples_command_is_refused_before_training(tmp_path):
    run_dir = tmp_path / "D"
    code, stderr = ganx_train_here(
        "eval.num_samples=1", "train.steps=5", "hardware=cpu", f"hydra.run.dir={run_dir}"
    )
    lines = error_lines(stderr)
    assert code == 1 and len(lines) == 1, stderr
    assert "eval.num_samples=1" in lines[0] and "fid_mnist needs at least 2" in lines[0]
    assert not run_dir.exists()


def test_an_unwritable_run_dir_is_refused_before_anything(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir, "writable", lambda path: False)
    code, stderr = ganx_train_here(*TINY_ARGS, f"hydra.run.dir={tmp_path}/ro/run")
    lines = error_lines(stderr)
    assert code == 1 and len(lines) == 1, stderr
    assert f"hydra.run.dir={tmp_path}/ro/run: cannot write there" in lines[0]
    assert not (tmp_path / "ro").exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [("reg=[r1,r1]", "r1 chosen more than once"), ("reg=[r1,lecam,r1]", "name each reg once")],
)
def test_a_group_chosen_twice_is_refused(override, expected):
    code, stderr = ganx_train_here(*TINY_ARGS, override, "--cfg", "job")
    lines = error_lines(stderr)
    assert code == 1 and len(lines) == 1 and expected in lines[0], stderr


def test_batch_size_1_with_batchnorm_is_refused(tmp_path):
    code, stderr = ganx_train_here(*TINY_ARGS, "train.batch_size=1", f"hydra.run.dir={tmp_path}")
    lines = error_lines(stderr)
    assert code == 1 and len(lines) == 1, stderr
    assert "train.batch_size=1: model.generator and model.discriminator have BatchNorm" in lines[0]


# --- a sweep with a failed job ----------------------------------------------------------------


@pytest.mark.slow  # several in-process runs: seconds each
def test_a_failed_job_is_recorded_the_sweep_goes_on_and_ends_non_zero(
    tmp_path, monkeypatch, capsys
):
    from ganx.commands import report

    original = outputs.save_samples

    def fail_in_seed_0(images, path, *args):
        if "seed=0" in str(path):
            raise no_space(str(path))
        return original(images, path, *args)

    monkeypatch.setattr(outputs, "save_samples", fail_in_seed_0)
    sweep = tmp_path / "S"
    code, stderr = ganx_train_here("-m", *TINY_ARGS, "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert code == EXIT_FAILED, stderr
    failed, finished = status(sweep / "default/seed=0"), status(sweep / "default/seed=1")
    assert failed["status"] == "failed" and "no space left on device" in failed["error"]
    assert finished["status"] == "finished"  # the job after the failed one ran
    assert "2 jobs: 1 failed, 1 finished; 1 of 2 jobs did not finish" in stderr
    assert "job seed=0" in stderr and f"failed: {failed['error']}" in stderr
    report.main([str(sweep), "--out", str(tmp_path / "report")])
    shown = capsys.readouterr().out
    assert "2 jobs: 1 failed, 1 finished" in shown and f"failed: {failed['error']}" in shown


# --- small traps ------------------------------------------------------------------------------


def test_the_readme_rpgan_headline_uses_the_gamma_that_trains():
    from ganx.methods import method_warnings

    headlines = [
        line
        for page in pages()
        for line in page.read_text().splitlines()
        if line.startswith("ganx-train loss=rpgan")
    ]
    assert headlines  # the README's
    for headline in headlines:
        overrides = shlex.split(headline.split("#")[0])[1:]
        assert "reg.r1.weight=1" in overrides and "reg.r2.weight=1" in overrides
        assert not any("gamma" in w for w in method_warnings(compose_cfg(*overrides)))
    warned = method_warnings(compose_cfg("loss=rpgan", "reg=[r1,r2]"))
    assert any("reg.r1.weight=10, reg.r2.weight=10: at gamma 10" in w for w in warned)


def test_the_optuna_preset_objective_follows_eval_num_samples():
    from ganx.outputs import objective_and_mode

    cfg = compose_cfg("hparams_search=r1_mnist", "eval.num_samples=200", tiny=False)
    validate(cfg)
    assert objective_and_mode(cfg) == ("fid200_mnist", "min")


# --- the config a resume runs with --------------------------------------------------------------


def test_a_resume_takes_from_the_command_line_only_what_it_names():
    from hydra import initialize_config_module
    from omegaconf import OmegaConf

    from ganx.resume_config import continued_config, overridden_paths, preset_keys_by_compose

    overrides = ["train.steps=400", "loss=hinge", "reg=[r1,r2]", "hydra.run.dir=x", "resume=auto"]
    cfg = compose_cfg(*overrides, "experiment=toy_ring8", tiny=False)
    current = OmegaConf.to_container(cfg, resolve=True)
    with initialize_config_module("ganx.conf", version_base="1.3"):
        paths = overridden_paths(
            [*overrides, "experiment=toy_ring8"], current, preset_keys_by_compose("config")
        )
    assert {"train.steps", "loss", "reg", "resume"} <= set(paths)
    assert "dataset.name" in paths  # the preset's own keys (dataset=ring8)
    assert not any(p.startswith("hydra") for p in paths)
    saved = OmegaConf.to_container(compose_cfg("seed=3", "train.steps=6"), resolve=True)
    resumed = continued_config(saved, compose_cfg("train.steps=8", "resume=auto"), ["train.steps"])
    assert (resumed.seed, resumed.train.steps, resumed.resume) == (3, 8, "auto")


def test_settings_added_since_a_checkpoint_get_their_neutral_value_only():
    from omegaconf import OmegaConf

    from ganx.resume_config import filled

    current = OmegaConf.to_container(compose_cfg(), resolve=True)  # loss=ns, reg=[r1]
    saved = OmegaConf.to_container(compose_cfg("loss=hinge", "reg=[r2]"), resolve=True)
    del saved["augment"], saved["reg"]["r2"]["schedule"], saved["dataset"]["subset_seed"]
    out = filled(saved, current)
    assert out["augment"] == current["augment"]  # a section it lacks: this version's
    assert out["reg"]["r2"]["schedule"] == "constant" and out["dataset"]["subset_seed"] == 0
    assert "r1" not in out["reg"] and out["loss"] == saved["loss"]  # no default group's keys


def test_an_added_net_setting_reaches_only_the_nets_that_take_it(monkeypatch):
    from omegaconf import OmegaConf

    from ganx import resume_config

    # as if ganx had added a generator key after this checkpoint: only a net that takes it
    # gets the neutral value (a DCGAN generator has no upsample argument)
    monkeypatch.setitem(resume_config.ADDED_SETTINGS, "model.generator.upsample", "nearest")
    monkeypatch.setitem(resume_config.ADDED_SETTINGS, "model.generator.ngf", 7)
    current = OmegaConf.to_container(compose_cfg(), resolve=True)
    saved = OmegaConf.to_container(compose_cfg(), resolve=True)
    del saved["model"]["generator"]["ngf"]
    out = resume_config.filled(saved, current)
    assert "upsample" not in out["model"]["generator"]
    assert out["model"]["generator"]["ngf"] == 7
