"""Everything a run writes: the trackers (tensorboard by default, ``ganx.trackers``),
``metrics.jsonl``, ``status.json``, ``run.json``, ``train.log``, sample grids and checkpoints
(``last.pt``, ``step_XXXXXXX.pt`` copies, ``best.pt``), and the lines a user reads: what runs
at start, progress, and where everything is at the end.

Every rank calls the same methods at the same steps (the schedule decides, identically on each):
cross-rank reductions (the loss means) run on every rank; evaluation and writing happen on rank 0
alone, and neither enters a collective. The order of one step's outputs is fixed in
:meth:`Outputs.after_step` (see its docstring and docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from . import checkpoint as ckpt
from .collectives import Ranks, average_values
from .errors import CheckpointError, ConfigError
from .metrics.evaluation import evaluate, generate
from .metrics.keys import objective_mode, resolve_objective
from .rng import preserved_rng
from .schedule import Due
from .state import TrainingState
from .step import Diverged
from .trackers import Trackers, build_trackers, figure_to_image, image_hwc_uint8, method_hparams

log = logging.getLogger("ganx")

LOWER_IS_BETTER = ("fid", "kid", "class_kl", "mode_kl")  # as ganx-report ranks them


class Accumulator:
    """Keeps the logged scalars on the device; sums and reads them once per flush (one host
    sync, and no tensor work on the steps between flushes)."""

    def __init__(self):
        self.values: dict[str, list[torch.Tensor]] = {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            kept = self.values.get(name)
            if kept is None:
                kept = self.values[name] = []
            # detached (when attached): the step's graph is freed now
            kept.append(value.detach() if value.requires_grad else value)

    def means(self, world: int = 1) -> dict[str, float]:
        """Means since the last call; with several ranks, averaged over them (every rank calls
        this at the same steps)."""
        if not self.values:
            return {}
        names = list(self.values)
        sums = [torch.stack(self.values[n]).float().sum() for n in names]
        stacked = torch.stack(sums)
        if world > 1:
            stacked = average_values(stacked, world)
        totals = stacked.tolist()
        out = {n: t / len(self.values[n]) for n, t in zip(names, totals, strict=True)}
        self.values = {}
        return out


def finite_or_none(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_status(run_dir: Path, values: dict) -> None:
    """``status.json``: running, then finished / diverged / interrupted / paused. A run that
    stays "running" with no live process crashed (ganx-report says so)."""
    record = {k: finite_or_none(v) for k, v in values.items()}
    tmp = run_dir / ".status.json.tmp"
    tmp.write_text(json.dumps(record) + "\n")
    tmp.replace(run_dir / "status.json")


class EvaluationInterrupted(Exception):
    """Raised by the signal handler while an evaluation runs (see loop.StopRequest)."""


def objective_and_mode(cfg: DictConfig) -> tuple[str | None, str]:
    """The key ``best.pt`` follows (``eval.objective`` as logged: ``fid_mnist`` ->
    ``fid2k_mnist``) and its better direction (``eval.mode``, else inferred from the key)."""
    objective = cfg.eval.objective
    if objective is None:
        return None, "max"
    key = resolve_objective(
        objective, list(cfg.eval.metrics), cfg.eval.num_samples, cfg.dataset.name
    )
    return key, objective_mode(key, cfg.eval.get("mode"))


def is_better(value: float, best: float | None, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def save_samples(images: torch.Tensor, path: Path, writer, step: int, source_name: str) -> None:
    """A PNG grid (images) or scatter plot (2-D or 3-D points) in ``path`` and in tensorboard."""
    images = images.cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    if images.dim() == 4:
        from torchvision.utils import make_grid, save_image

        grid = make_grid(
            images, nrow=int(math.sqrt(len(images))), normalize=True, value_range=(-1, 1)
        )
        save_image(grid, path)
        writer.add_image("samples", grid, step)
    elif images.shape[-1] == 2:  # 2-D toy data: a scatter plot
        from .plots import scatter_2d

        save_figure(scatter_2d(images.numpy(), source_name), path, writer, step)
    elif images.shape[-1] == 3:  # 3-D toy data (mog3d): a 3-D scatter plot over its centres
        from .data import mog3d_frame
        from .plots import scatter_3d

        centres = mog3d_frame()["centres"].numpy() if source_name == "mog3d" else None
        save_figure(scatter_3d(images.numpy(), centres), path, writer, step)


def drawn(figure) -> torch.Tensor:
    """The figure as float CHW in [0, 1], closed; pyplot is imported only if it made the figure
    (2-D scatters are bare Figures: :func:`ganx.plots.scatter_2d`)."""
    if getattr(figure, "number", None) is not None:  # made by pyplot, which must close it
        return figure_to_image(figure)
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba())
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255


def save_figure(figure, path: Path, writer, step: int) -> None:
    """The figure drawn once, for both the PNG file and tensorboard (matplotlib's ``savefig``
    would draw it a second time: a tenth of a second, in every run of a sweep of toy runs)."""
    from PIL import Image

    image = drawn(figure)
    Image.fromarray(image_hwc_uint8(image)).save(path)
    writer.add_image("samples", image, step)


class Outputs:
    """The writer of one run (rank 0) and the reductions every rank takes part in."""

    def __init__(
        self, cfg: DictConfig, run_dir: Path, ranks: Ranks, start_step: int, elapsed_s: float = 0.0
    ):
        """``start_step`` and ``elapsed_s``: where a resumed run's checkpoint left off."""
        self.cfg, self.run_dir, self.ranks = cfg, run_dir, ranks
        self.ckpt_dir, self.sample_dir = run_dir / "checkpoints", run_dir / "samples"
        self.metrics_file = run_dir / "metrics.jsonl"
        self.log_file = None
        try:
            if ranks.is_main:  # trackers first: one that cannot start stops the run here
                run_dir.mkdir(parents=True, exist_ok=True)
                self.writer = build_trackers(cfg.get("logger"), run_dir, start_step)
                self.ckpt_dir.mkdir(parents=True, exist_ok=True)
                self.sample_dir.mkdir(parents=True, exist_ok=True)
                self.log_file = attach_log_file(run_dir / "train.log")
            else:
                self.writer = Trackers()
        except OSError as err:
            raise ConfigError(f"cannot write to the run directory {run_dir}: {err}") from err
        self.acc = Accumulator()
        self.banks: dict = {}  # feature extractors, built at the first evaluation and kept
        self.started = time.time() - elapsed_s  # time_s and wall_time_s span every invocation
        self.objective, self.mode = objective_and_mode(cfg)
        self.last_values: dict = {"step": start_step}
        self.saved_step = start_step if start_step else None  # the step last.pt holds
        self.stage = "the start"  # what runs now, for the line of a failure
        self.step_ended = time.time()
        self.evaluations: list[dict] = []  # every evaluation of this invocation, for HParams
        self.record: dict | None = None  # run.json's record, also stored in checkpoints
        # throughput between flushes, evaluation time left out
        self.speed_mark = (time.time(), start_step)
        self.eval_seconds = 0.0
        # a terminal gets tqdm's bar; a file or pipe gets one line per flush instead
        progress = bool(cfg.log.progress) and ranks.is_main
        self.progress_lines = progress and not sys.stderr.isatty()
        self.bar = tqdm(
            total=cfg.train.steps,
            initial=start_step,
            disable=not progress or self.progress_lines,
            dynamic_ncols=True,
            desc="train",
        )
        if ranks.is_main:
            write_status(run_dir, {"status": "running", "step": start_step})

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
        self.writer.close()
        if self.log_file is not None:
            logging.getLogger("ganx").removeHandler(self.log_file)
            self.log_file.close()

    def announce(self, state: TrainingState) -> None:
        """Start lines (log and ``train.log``), ``run.json`` and the config as text."""
        if not self.ranks.is_main:
            return
        from omegaconf import OmegaConf

        from .records import run_record, write_run_record

        parts = state.parts
        self.record = run_record(parts.device)
        write_run_record(self.run_dir, self.record)
        from .methods import announce

        lines = start_lines(self.cfg, state, self.run_dir, self.record)
        for line in lines[:-1]:
            log.info(line)
        # the method line, then one warning per combination no reference uses
        announce(self.cfg, parts.discriminator, log)
        log.info(lines[-1])
        self.writer.log_text("config", OmegaConf.to_yaml(self.cfg, resolve=True), state.step)

    def add(self, terms: list[dict[str, torch.Tensor]]) -> None:
        for t in terms:
            self.acc.add(t)
        self.bar.update(1)

    def after_step(self, state: TrainingState, due: Due, interruptible=contextlib.nullcontext):
        """One step's outputs, in this order: (1) the log means, all-reduced on every rank and
        checked for NaN/inf, so a diverged run raises here, before (2) could save a non-finite
        state; (2) ``last.pt`` (and a ``step_*.pt`` copy): the step is saved before anything
        that may fail or take long; (3) evaluate (rank 0; no collective, no training RNG);
        (4) the log record with the metrics (also when (3) raised); (5) the periodic actions
        due (rank 0, ``schedule.ACTIONS``: the sample grid, ...); (6) the best value: when it
        improved, ``last.pt`` again (so a resume knows it), then ``best.pt``, after ``last.pt``:
        a crash between them leaves a last.pt that already names the best. ``interruptible()``
        wraps the evaluation: a signal during it abandons it (:class:`EvaluationInterrupted`)."""
        main = self.ranks.is_main
        # the record's time_s: when the step ended, so last.pt's elapsed_s is never behind it
        self.step_ended = time.time()
        self.stage = "the log means"  # what was running, for the line of a failure
        means = self.reduced_means(state.step) if due.flush else None
        if due.checkpoint:
            self.stage = "the checkpoint"
            self.save_checkpoint(state, "last.pt", keep_copy=due.keep_copy)
        evaluated = None
        try:
            if due.evaluate and main:
                self.stage = "the evaluation"
                evaluated = self.evaluate(state, interruptible)
        except Exception:
            if means is not None:  # the step's losses are still logged, then the error reported
                with contextlib.suppress(Exception):
                    self.flush(state, means, None)
            raise
        if means is not None:
            self.stage = "the log record"
            self.last_values = self.flush(state, means, evaluated)
        for action in due.actions if main else ():
            self.stage = f"the {action.replace('_', ' ')}"  # "the sample grid"
            getattr(self, action)(state)
        self.stage = "the best checkpoint"
        if self.update_best(state, evaluated):
            if due.checkpoint:
                self.save_checkpoint(state, "last.pt", keep_copy=due.keep_copy)
            self.save_checkpoint(state, "best.pt")

    def evaluate(self, state: TrainingState, interruptible) -> dict | None:
        """eval.metrics of the generator now (rank 0); None when a signal abandoned it."""
        eval_started = time.time()
        evaluated = None
        try:
            with interruptible():
                evaluated = evaluate(
                    state.eval_generator,
                    self.cfg,
                    state.parts.source,
                    state.step,
                    state.parts.device,
                    self.banks,
                )
        except EvaluationInterrupted:
            log.warning("the evaluation at step %d was abandoned for the signal", state.step)
        finally:
            self.eval_seconds += time.time() - eval_started
        if evaluated is not None:
            self.evaluations.append(dict(evaluated, step=state.step))
        return evaluated

    def reduced_means(self, step: int) -> dict[str, float]:
        """The log means since the last flush (every rank: an all-reduce); raises
        :class:`Diverged` on a non-finite one."""
        means = self.acc.means(self.ranks.world)
        # a gradient norm may be inf where fp16's GradScaler skips an overflowing step
        bad = [n for n, v in means.items() if not math.isfinite(v) and "grad_norm/" not in n]
        if bad:
            raise Diverged(f"steps up to {step}: non-finite {', '.join(bad)}")
        return means

    def flush(self, state: TrainingState, means: dict, evaluated: dict | None) -> dict:
        """The log means (:meth:`reduced_means`) and metrics to the trackers and
        ``metrics.jsonl`` (rank 0)."""
        step, parts = state.step, state.parts
        scalars = dict(means)
        for name, reg in parts.regularizers.items():
            if reg.weight:
                scalars[f"weight/{name}"] = reg.weight_at(step, self.cfg.train.steps)
            # what a regularizer is doing now (DAT's step size, instance noise's sigma, LeCam's
            # anchors): input transforms add no loss term, so this is where they show
            for key, value in reg.activity(step, self.cfg.train.steps).items():
                scalars[f"reg/{name}/{key}"] = value
        scalars["lr/G"] = parts.opt_g.param_groups[0]["lr"]
        scalars["lr/D"] = parts.opt_d.param_groups[0]["lr"]
        speed = self.throughput(step)
        scalars.update(speed)
        for name, value in (evaluated or {}).items():
            if math.isfinite(value):
                scalars[f"metrics/{name}"] = value
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()
        record = {"step": step, "time_s": round(self.step_ended - self.started, 3), **means}
        record.update(speed)
        record.update(evaluated or {})
        if state.skipped:
            record["skipped_steps"] = state.skipped
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k.startswith("loss/")})
        if self.progress_lines:
            log.info(progress_line(record, self.cfg.train.steps))
        if self.ranks.is_main:  # JSON has no NaN/inf: undefined values are null
            with open(self.metrics_file, "a") as f:
                f.write(json.dumps({k: finite_or_none(v) for k, v in record.items()}) + "\n")
        return record

    def sample_grid(self, state: TrainingState) -> None:
        """A grid of samples from the fixed noise (``sample.every``)."""
        with preserved_rng():  # a generator with dropout would draw from the training streams
            images = generate(state.eval_generator, state.fixed_noise, self.cfg.sample.bn_stats)
        path = self.sample_dir / f"step_{state.step:07d}.png"
        save_samples(images, path, self.writer, state.step, state.parts.source.name)

    def update_best(self, state: TrainingState, evaluated: dict | None) -> bool:
        objective = self.objective
        if not evaluated or objective not in evaluated:
            return False
        if not is_better(evaluated[objective], state.best, self.mode):
            return False
        state.best = evaluated[objective]
        return True

    def save_checkpoint(self, state: TrainingState, name: str, keep_copy: bool = False) -> None:
        if not self.ranks.is_main:
            return
        state.elapsed_s = round(time.time() - self.started, 3)
        saved = state.state_dict()
        if self.record is not None:
            saved["record"] = self.record  # what produced these weights (as run.json)
        ckpt.atomic_save(saved, self.ckpt_dir / name)
        if name == "last.pt":
            self.saved_step = state.step
        if keep_copy and self.cfg.ckpt.keep > 0:
            ckpt.atomic_save(saved, self.ckpt_dir / f"step_{state.step:07d}.pt")
            ckpt.keep_latest(self.ckpt_dir, self.cfg.ckpt.keep)

    def diverged(self, state: TrainingState, err: Diverged) -> None:
        log.error(
            "training diverged: %s. Stopped; the last good checkpoint is %s",
            err,
            self.ckpt_dir / "last.pt",
        )
        self.last_values = {"step": state.step, "error": str(err)}

    def failed(self, state: TrainingState, err: BaseException, complete: bool) -> str:
        """An exception stopped the run (rank 0 writes): save the last complete step if it is
        not saved yet and can be, ``status.json`` = failed with the error's one line, the full
        traceback in ``train.log``. Returns the line for the console, which also says what could
        not be saved."""
        where = self.stage  # "training step 5" names its step; the outputs of step 4 do not
        where = where if "step" in where else f"{where} at step {state.step}"
        summary = failure_summary(err, where)
        if not self.ranks.is_main:
            return summary
        notes = []
        # a checkpoint that could not be written is not tried again
        retry = not isinstance(err, CheckpointError)
        if complete and retry and self.saved_step != state.step:
            try:
                self.save_checkpoint(state, "last.pt")
            except Exception as save_err:  # noqa: BLE001 - the first error is the one to report
                notes.append(f"the checkpoint of step {state.step} was not saved ({save_err})")
        held = self.saved_step
        notes.append(f"last.pt holds step {held}" if held else "no checkpoint was saved")
        values = {"status": "failed", "step": held or 0, "error": summary, "best": state.best}
        try:
            write_status(self.run_dir, values)
        except OSError as status_err:
            notes.append(f"status.json could not be written either ({os_reason(status_err)})")
        with contextlib.suppress(OSError):  # the console line stands on its own
            with open(self.run_dir / "train.log", "a") as f:
                f.write("".join(traceback.format_exception(err)))
        self.last_values = values
        return f"{summary}; {'; '.join(notes)}"

    def finish(self, state: TrainingState, status: str, signal: int | None = None) -> dict:
        """``status.json`` (rank 0) and the values ``train`` returns (``signal``: the number of
        the signal that stopped an interrupted run)."""
        self.stage = "the end of the run"
        values = dict(self.last_values, status=status, best=state.best)
        if status == "interrupted":
            values["signal"] = signal
        values["wall_time_s"] = round(time.time() - self.started, 3)
        if self.ranks.active:
            G = state.parts.generator
            checksum = sum(float(p.detach().double().sum()) for p in G.parameters())
            log.info(
                "rank %d of %d: G parameter checksum %.10e",
                self.ranks.rank,
                self.ranks.world,
                checksum,
            )
        if self.ranks.is_main:
            write_status(self.run_dir, values)
            summary = final_and_best(self.evaluations, values)
            self.writer.add_hparams(method_hparams(self.cfg), summary)
            for line in end_lines(values, summary, self.sample_dir, self.ckpt_dir):
                log.info(line)
            for line in self.writer.where():
                log.info(line)
        return values

    def throughput(self, step: int) -> dict[str, float]:
        """G steps and real images per second since the last flush, evaluations left out."""
        now = time.time()
        last_time, last_step = self.speed_mark
        seconds = now - last_time - self.eval_seconds
        self.speed_mark, self.eval_seconds = (now, step), 0.0
        if step <= last_step or seconds <= 0:
            return {}
        its = (step - last_step) / seconds
        images = its * self.cfg.train.batch_size * self.cfg.train.n_dis * self.ranks.world
        return {"speed/it_per_s": its, "speed/img_per_s": images}


def os_reason(err: OSError) -> str:
    """``no space left on device`` for ENOSPC: the system's reason, lower case."""
    return (err.strerror or str(err)).lower()


def failure_summary(err: BaseException, where: str) -> str:
    """The one line that names an error and ``where`` it happened (the traceback goes to
    ``train.log``)."""
    if isinstance(err, CheckpointError):
        return str(err)
    if isinstance(err, OSError) and err.filename:
        return f"{where} failed: could not write {err.filename}: {os_reason(err)}"
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{where} failed: {type(err).__name__}{': ' if first else ''}{first}"


def attach_log_file(path: Path):
    """``train.log``: Hydra's job logging writes it for ganx-train; elsewhere (``ganx.fit``)
    ganx's own logger gets a file handler for it. Returns the handler ganx added, or None."""
    path = path.resolve()
    for logger in (logging.getLogger(), logging.getLogger("ganx")):
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path:
                return None
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    ganx_log = logging.getLogger("ganx")
    ganx_log.addHandler(handler)
    if ganx_log.getEffectiveLevel() > logging.INFO:
        ganx_log.setLevel(logging.INFO)
    return handler


def start_lines(cfg: DictConfig, state: TrainingState, run_dir: Path, record: dict) -> list[str]:
    parts = state.parts

    def count(module) -> str:
        return f"{sum(p.numel() for p in module.parameters()):,}"

    metrics = ", ".join(cfg.eval.metrics) or "none"
    trained_on, size = len(parts.stream.source), len(parts.source)
    # a limited-data run says so: its metrics still compare with all of the data set
    data = f"{size:,} images" if trained_on == size else f"{trained_on:,} of its {size:,} images"
    return [
        f"run directory: {run_dir}",
        f"device: {record['device']}; ganx {record['ganx']}, torch {record['versions']['torch']}",
        f"parameters: G {count(parts.generator)}, D {count(parts.discriminator)}",
        f"data: {parts.source.name}, training on {data}",
        f"metrics every {cfg.eval.every} steps: {metrics}"
        + (f"; starting at step {state.step}" if state.step else ""),
    ]


def progress_line(record: dict, total: int) -> str:
    """One line per flush when stderr is not a terminal (no carriage-return bars in logs)."""
    step = record["step"]
    losses = " ".join(f"{k} {v:.3f}" for k, v in record.items() if k.startswith("loss/"))
    speed = record.get("speed/it_per_s")
    eta = f", ETA {(total - step) / speed:.0f} s" if speed else ""
    rate = f" | {speed:.1f} it/s{eta}" if speed else ""
    return f"step {step}/{total} ({100 * step / total:.0f}%) {losses}{rate}"


def final_and_best(evaluations: list[dict], values: dict) -> dict[str, float]:
    """``final/<metric>`` and ``best/<metric>`` of this invocation's evaluations (best = lowest
    for FID/KID/KL, highest otherwise), and the final training losses."""
    out: dict[str, float] = {}
    for key in dict.fromkeys(k for e in evaluations for k in e if k != "step"):
        series = [e[key] for e in evaluations if key in e and math.isfinite(e[key])]
        if series:
            out[f"final/{key}"] = series[-1]
            out[f"best/{key}"] = min(series) if key.startswith(LOWER_IS_BETTER) else max(series)
    for key in ("loss/D", "loss/G"):
        if isinstance(values.get(key), float) and math.isfinite(values[key]):
            out[f"final/{key}"] = values[key]
    return out


def end_lines(values, summary, sample_dir: Path, ckpt_dir: Path) -> list[str]:
    """The run's status and final values, its samples and checkpoints (each tracker adds a line
    of its own: where its record is and how to look at it)."""
    finals = {k[len("final/") :]: v for k, v in summary.items() if k.startswith("final/")}
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in finals.items()) or "none"
    grids = sorted(sample_dir.glob("step_*.png"))
    return [
        f"run {values['status']} at step {values.get('step')} in {values['wall_time_s']:.0f} s; "
        f"final values: {metrics}",
        f"samples: {grids[-1] if grids else 'none'}; checkpoints: {ckpt_dir}",
    ]
