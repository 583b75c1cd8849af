"""The error a user's bad input raises, in a module that imports nothing: command-line checks
and shell completion use it without loading torch. ``ganx.build`` re-exports it."""


class ConfigError(ValueError):
    """Bad user input; the message names the key, the bad value and what is allowed."""
