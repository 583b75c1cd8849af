"""The error a user's bad input raises, in a module that imports nothing: command-line checks
and shell completion use it without loading torch. ``ganx.build`` re-exports it."""


class ConfigError(ValueError):
    """Bad user input; the message names the key, the bad value and what is allowed."""


class DataError(ValueError):
    """A data set is missing or malformed; the message says where it was expected and how to
    get it. (``ganx.data`` re-exports it.)"""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or does not fit the run that tries to load it.
    (``ganx.checkpoint`` re-exports it.)"""


class SweepStopped(BaseException):
    """A signal interrupted a job of a sweep: that job saved its checkpoint, and the jobs after
    it (or the sweeper's later trials) must not start. A BaseException, so that neither Hydra's
    per-job ``except Exception`` nor a sweeper counting failed trials carries on."""

    def __init__(self, run_dir: str):
        super().__init__(run_dir)
        self.run_dir = run_dir
