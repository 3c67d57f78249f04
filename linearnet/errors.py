"""The package's own error types: each carries one sentence a user can act on.

The CLI turns any :class:`LinearNetError` into that sentence on stderr and exit code 2,
without a traceback; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class LinearNetError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""

    exit_code = 2


class ConfigError(LinearNetError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DataError(LinearNetError, ValueError):
    """A data file or array is missing, malformed or unusable."""


class ModelFileError(LinearNetError, ValueError):
    """A model file is unsafe, corrupt, or does not match what the code expects."""


class DivergenceError(LinearNetError, ArithmeticError):
    """Training produced a non-finite loss."""


class OutputError(LinearNetError, OSError):
    """An output location cannot be written."""
