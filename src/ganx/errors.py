"""The errors ganx reports to its user as one line, in a module that imports nothing: every
module imports them from here, and command-line checks and shell completion use them without
loading torch."""


class ConfigError(ValueError):
    """Bad user input; the message names the key, the bad value and what is allowed."""


class DataError(ValueError):
    """A data set is missing or malformed; the message says where it was expected and how to
    get it."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or does not fit the run that tries to load it."""


class MetricError(ValueError):
    """A metric cannot be computed as asked (e.g. IS without a classifier head)."""


class SweepStopped(BaseException):
    """A signal interrupted a job of a sweep: that job saved its checkpoint, and the jobs after
    it (or the sweeper's later trials) must not start. A BaseException, so that neither Hydra's
    per-job ``except Exception`` nor a sweeper counting failed trials carries on."""

    def __init__(self, run_dir: str, signum: int | None = None):
        super().__init__(run_dir)
        self.run_dir, self.signal = run_dir, signum


class TrainingFailed(RuntimeError):
    """An error stopped a run after its state was built: the run saved its last complete step
    if it could and set status.json to ``failed``; the message is the one line that says so."""


class TrainingProcessError(RuntimeError):
    """A rank started by :func:`ganx.launch.launch` failed."""


# ganx-train's exit status (docs/resume.md, Exit codes): what a script or a requeue wrapper reads
EXIT_FINISHED = 0  # finished, or paused at train.stop_at
EXIT_REFUSED = 1  # bad input refused before anything was written (or an unexpected error)
EXIT_FAILED = 2  # an error stopped a started run; its last complete step is saved
EXIT_DIVERGED = 3  # non-finite losses stopped the run; the last good checkpoint is kept


def signal_exit_code(signum: int | None) -> int:
    """128 + the signal's number (the shell's convention): 130 for SIGINT, 143 for SIGTERM; a
    stop agreed from another rank, whose signal this rank did not see, counts as SIGTERM."""
    return 128 + (signum or 15)


def one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    cause = err.__cause__
    if cause is not None and str(cause).strip():
        lines.append(str(cause).strip().splitlines()[0])
    return "; ".join(lines[:1] + lines[-1:] if len(lines) > 1 else lines) or type(err).__name__
