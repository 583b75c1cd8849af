"""The training loop, top to bottom: set up the process, build or resume the training state,
then per G step: one training iteration, the EMA and learning rates, the schedule, the outputs.
Who owns what: docs/ARCHITECTURE.md."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from . import collectives, rundir, schedule
from .collectives import Ranks
from .errors import TrainingFailed
from .hardware import set_up_process
from .outputs import EvaluationInterrupted, Outputs
from .state import TrainingState, resolve_resume
from .step import (
    Diverged,
    StepSettings,
    ema_decay,
    real_batches,
    skipping,
    training_iteration,
    update_ema,
)
from .validate import validate

log = logging.getLogger("ganx")


class Aborted(BaseException):
    """A second SIGINT/SIGTERM: stop at once (checkpoints are written atomically, so the last
    complete one stays intact). A BaseException, so that no ``except Exception`` swallows it."""


class StopRequest:
    """SIGINT/SIGTERM (SLURM's pre-emption warning) set a flag, acknowledged on the console at
    once; the loop then checkpoints after the current step, before any evaluation, and exits
    cleanly, so ``resume=auto`` continues. A signal during an evaluation abandons it
    (:class:`~ganx.outputs.EvaluationInterrupted`); a second signal aborts at once."""

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}
        self._in_evaluation = False

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread: no handlers
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal is not None:
            print(f"ganx-train: second {name}: aborting now", file=sys.stderr, flush=True)
            raise Aborted(signum)
        self.signal = signum
        print(
            f"ganx-train: {name} received: saving a checkpoint after this step "
            f"(send it again to abort at once)",
            file=sys.stderr,
            flush=True,
        )
        if self._in_evaluation:
            raise EvaluationInterrupted()

    @contextlib.contextmanager
    def interruptible(self):
        """Code a first signal may cut short (an evaluation): the checkpoint matters more."""
        if self.signal is not None:
            raise EvaluationInterrupted()
        self._in_evaluation = True
        try:
            yield
        finally:
            self._in_evaluation = False

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def step_settings(cfg: DictConfig, state: TrainingState, ranks: Ranks) -> StepSettings:
    # checking every step costs a host sync: free on CPU, and needed to skip a bad step
    check = state.parts.device.type == "cpu" or cfg.train.on_nonfinite == "skip"
    return StepSettings(
        cfg.train.steps,
        cfg.model.latent_dim,
        cfg.hardware.amp,
        check=check,
        scaler=state.scaler,
        world=ranks.world,
        latent_distribution=cfg.model.latent_distribution,
    )


@dataclass(frozen=True)
class Iteration:
    """What :func:`iterate` needs besides the state, read from the config once per run (a
    DictConfig lookup costs microseconds; a small net's step, a few milliseconds)."""

    settings: StepSettings
    n_dis: int
    updates: str | bool
    ema: float | None
    ema_start: int
    next_real: Callable[[], torch.Tensor]
    guard: Callable
    ranks: Ranks
    plan: schedule.Plan


def iteration(cfg: DictConfig, state: TrainingState, ranks: Ranks) -> Iteration:
    train = cfg.train
    return Iteration(
        step_settings(cfg, state, ranks),
        int(train.n_dis),
        train.updates,
        train.ema,
        int(train.ema_start),
        real_batches(state.parts, cfg.hardware.channels_last),
        skipping(train.on_nonfinite == "skip", state.count_skipped),
        ranks,
        schedule.plan(cfg),
    )


def iterate(state: TrainingState, it: Iteration, log_step: bool | None = None) -> list:
    """One G step of training: n_dis D steps and one G step; every rank takes rank 0's
    BatchNorm statistics; then the EMA and the learning rates follow G. Returns the logged
    terms. ``log_step``: this step ends at a log flush (default: as the schedule says)."""
    parts = state.parts
    # gradient norms are logged as taken on log steps; a stop request's extra flush has none
    if log_step is None:
        log_step = schedule.due(state.step + 1, it.plan).flush
    it.settings.log_step = log_step
    terms, state.d_steps = training_iteration(
        parts, it.settings, state.step, state.d_steps, it.n_dis, it.updates, it.next_real, it.guard
    )
    if it.ranks.active:  # BatchNorm statistics are per rank: rank 0's (before the EMA copies G's)
        collectives.broadcast_buffers(parts.generator)
        collectives.broadcast_buffers(parts.discriminator)
    if state.ema is not None:
        update_ema(state.ema, parts.generator, ema_decay(it.ema, state.step, it.ema_start))
    for sched in state.schedulers:
        sched.step()
    state.step += 1
    return terms


def train(cfg: DictConfig, run_dir: Path, validated: bool = False) -> dict:
    """Train per ``cfg``, writing everything under ``run_dir``; returns the last logged values
    (``status``: finished, paused, interrupted or diverged; ``best``; ``wall_time_s``).
    ``validated``: ganx-train's pre-flight has validated ``cfg`` (ganx.preflight.checked)."""
    if not validated:
        validate(cfg)
    device, ranks, run_dir = set_up_process(cfg, run_dir)
    # rank 0 holds the run dir: a second process training in it is refused, not interleaved
    lock = rundir.held(run_dir) if ranks.is_main else contextlib.nullcontext(lambda: None)
    with lock as started:
        return run_steps(cfg, run_dir, device, ranks, started)


def run_steps(cfg: DictConfig, run_dir: Path, device: torch.device, ranks: Ranks, started) -> dict:
    """:func:`train` once the process is set up and holds the run dir; ``started()`` marks the
    lock as this run's once its state is built (nothing is refused after that). From then on
    any exception saves the last complete step (if it can), marks the run failed and raises
    :class:`~ganx.errors.TrainingFailed` with one line."""
    state = TrainingState.create(cfg, ranks, device, resolve_resume(cfg.resume, run_dir))
    started()
    it = iteration(cfg, state, ranks)
    plan = it.plan
    status = "finished"
    outputs = Outputs(cfg, run_dir, ranks, state.step, state.elapsed_s)
    complete = True  # False while an iteration is half done: that state is never saved
    with StopRequest() as stop, outputs:
        try:
            outputs.announce(state)  # rank 0: start lines, the method, run.json, the config
            while state.step < plan.total:
                complete, outputs.stage = False, f"training step {state.step + 1}"
                due = schedule.due(state.step + 1, plan)  # unless a stop request comes
                outputs.add(iterate(state, it, due.flush))
                complete = True
                stop_requested = stop.signal is not None
                if ranks.active:  # a signal reaches one rank or several: all stop together
                    stop_requested = collectives.any_rank(stop_requested, device)
                if stop_requested:
                    due = schedule.due(state.step, plan, stop_requested)
                outputs.after_step(state, due, stop.interruptible)
                if due.pause:
                    status = "paused"
                    break
                if stop_requested:
                    status = "interrupted"
                    log.warning(
                        "signal %s: checkpoint saved at step %d; resume=auto continues",
                        stop.signal or "on another rank",
                        state.step,
                    )
                    break
            return outputs.finish(state, status, stop.signal)
        except Diverged as err:
            outputs.diverged(state, err)
            return outputs.finish(state, "diverged")
        except Aborted:
            outputs.finish(state, "aborted")
            raise
        except Exception as err:
            raise TrainingFailed(outputs.failed(state, err, complete)) from err
