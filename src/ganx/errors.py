"""The error a user's bad input raises, in a module that imports nothing: command-line checks
and shell completion use it without loading torch. ``ganx.build`` re-exports it."""


class ConfigError(ValueError):
    """Bad user input; the message names the key, the bad value and what is allowed."""


class SweepStopped(BaseException):
    """A signal interrupted a job of a sweep: that job saved its checkpoint, and the jobs after
    it (or the sweeper's later trials) must not start. A BaseException, so that neither Hydra's
    per-job ``except Exception`` nor a sweeper counting failed trials carries on."""

    def __init__(self, run_dir: str):
        super().__init__(run_dir)
        self.run_dir = run_dir
