"""The package's exceptions, in one place: each names what is wrong and where.

Every error frugalseg raises on purpose is a `FrugalsegError`, so a program (and the command line)
can tell bad input from a bug with one ``except``. Errors about a file carry the file apart from
the problem (``error.path``, ``error.problem``) so a checker can list them; errors about an option
carry the option's name. They are also `ValueError`s: bad input is a bad value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class FrugalsegError(ValueError):
    """Base of every error frugalseg raises on purpose (bad input, a refused file, a bad option)."""


class _FileError(FrugalsegError):
    """An error about one file or folder: the message is ``{path}: {problem}``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path: Path | str = path if "://" in str(path) else Path(path)  # URLs stay strings
        self.problem = problem

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:  # subclasses pickle their own arguments
        return type(self), (self.path, self.problem)


class DataError(_FileError):
    """A data set file or folder that cannot be read as asked (missing, corrupt, wrong size or values)."""


class LabelStoreError(_FileError):
    """A label store that cannot be used as asked (other settings, a bad manifest, a path outside it)."""


class WeightsError(_FileError):
    """A weights file (or URL) that cannot be used: wrong hash, architecture, classes, or a pickle."""


class ConfigError(FrugalsegError):
    """An option whose value cannot work; the message names the option and what to set instead."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option}: {problem}")
        self.option = option
        self.problem = problem

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.option, self.problem)


class MissingPackageError(FrugalsegError, ImportError):
    """An optional package that a chosen feature needs is not installed; the message says what to install.

    Also an `ImportError`, so code that imports optionally keeps catching it as one.
    """


__all__ = [
    "ConfigError",
    "DataError",
    "FrugalsegError",
    "LabelStoreError",
    "MissingPackageError",
    "WeightsError",
]
