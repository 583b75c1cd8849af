"""What is due after a G step: a pure function of the step, the config and the (already
agreed) stop request, so every data-parallel rank computes the same answer and enters the same
collectives (the log flush all-reduces the loss means on every rank)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

# the periodic actions: each one's `*.every` key -> the method of ganx.outputs.Outputs that runs
# it (rank 0, after the step's log record, in this order), due every that many G steps and at
# the last step of each invocation (never in a config without the key). A new periodic action
# is its key in conf/config.yaml, one entry here, and its method on ganx.outputs.Outputs
# (docs/ARCHITECTURE.md, Recipes).
ACTIONS = {
    "sample.every": "sample_grid",  # a sample grid from the fixed noise
}


@dataclass(frozen=True)
class Due:
    evaluate: bool  # eval.metrics (rank 0 computes them; the others only flush)
    flush: bool  # log means: all-reduced, checked for NaN/inf, written by rank 0
    actions: tuple[str, ...]  # the periodic actions due (their Outputs methods, as in ACTIONS)
    checkpoint: bool  # last.pt
    keep_copy: bool  # and a step_XXXXXXX.pt copy (ckpt.every, eval.at)
    pause: bool  # train.stop_at reached before train.steps: end this invocation
    final: bool  # the last step of this invocation (end, stop_at, or a stop request)


@dataclass(frozen=True)
class Plan:
    """The config's schedule as plain values, read once per run: ``due`` runs after every step,
    and each DictConfig lookup costs microseconds."""

    total: int
    stop_at: int
    eval_at: frozenset[int]
    evaluates: bool  # eval.metrics is not empty
    eval_every: int
    ckpt_every: int
    log_every: int
    actions: tuple[tuple[str, int], ...]  # (Outputs method, every) of each action that is on


def plan(cfg: DictConfig) -> Plan:
    total = cfg.train.steps
    return Plan(
        total=total,
        # stop_at ends this invocation early (a time-sliced cluster job); schedules span total
        stop_at=cfg.train.get("stop_at") or total,
        eval_at=frozenset(cfg.eval.get("at") or ()),
        evaluates=bool(cfg.eval.metrics),
        eval_every=cfg.eval.every,
        ckpt_every=cfg.ckpt.every,
        log_every=cfg.log.every,
        actions=tuple(
            (method, every)
            for key, method in ACTIONS.items()
            if (every := OmegaConf.select(cfg, key, default=None))
        ),
    )


def due(step: int, cfg: DictConfig | Plan, stop_requested: bool = False) -> Due:
    """The schedule after G step ``step`` (counted from 1), from the config or its
    :func:`plan`. ``stop_requested`` must be the same on every rank (agreed with
    :func:`ganx.collectives.any_rank`)."""
    p = cfg if isinstance(cfg, Plan) else plan(cfg)
    final = step in (p.total, p.stop_at) or stop_requested
    # eval.at steps keep a checkpoint copy too: the weights behind those metrics
    keep_copy = step % p.ckpt_every == 0 or step in p.eval_at
    checkpoint = keep_copy or final
    # on a signal the checkpoint comes first and no evaluation delays it: a cluster's grace
    # period (SLURM's --signal lead time) is shorter than an evaluation with many samples
    evaluate = (
        p.evaluates
        and not stop_requested
        and (step % p.eval_every == 0 or step in p.eval_at or final)
    )
    # logs are flushed (and checked for NaN/inf) before any checkpoint is written
    flush = step % p.log_every == 0 or checkpoint or evaluate
    return Due(
        evaluate=evaluate,
        flush=flush,
        actions=tuple(method for method, every in p.actions if step % every == 0 or final),
        checkpoint=checkpoint,
        keep_copy=keep_copy,
        pause=step == p.stop_at and p.stop_at < p.total,
        final=final,
    )
