"""The console commands other than ``ganx-train`` (which stays :mod:`ganx.train`), one module
each, named after the command: ``ganx`` and what every command shares (:mod:`.ganx`: ``--version``,
quoting path values), ``ganx-sample``, ``ganx-eval``, ``ganx-export``, ``ganx-report``,
``ganx-weights``, ``ganx-dirac``. They sit on top: nothing below them imports them. Each imports
torch inside its functions, so ``--help``, ``--version`` and shell completion answer without it."""
