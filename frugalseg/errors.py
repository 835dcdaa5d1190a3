"""The package's exceptions, in one place: each names what is wrong and where.

Every error frugalseg raises on purpose is a `FrugalsegError`, so a program (and the command line)
can tell bad input from a bug with one ``except``. Errors about a file carry the file apart from
the problem (``error.path``, ``error.problem``) so a checker can list them; errors about an option
carry the option's name. They are also `ValueError`s: bad input is a bad value.

They also survive a DataLoader worker: torch re-raises a worker's error in the main process as
``kind(message)``, with the worker's traceback as the message; each error rebuilds itself from that
text with its own message (the worker's traceback kept as a note), so the command line still prints
one line naming the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class FrugalsegError(ValueError):
    """Base of every error frugalseg raises on purpose (bad input, a refused file, a bad option)."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            message, worker = _worker_message(type(self), args[0])
            super().__init__(message)
            if worker is not None:
                self.__notes__ = [worker]  # what add_note (Python 3.11) does: --debug shows it
        else:
            super().__init__(*args)


def _worker_message(kind: type[BaseException], text: str) -> tuple[str, str | None]:
    """The error's own message in ``text``, and ``text`` itself when torch wrapped it; else (text, None).

    torch's ``ExceptionWrapper.reraise`` calls ``kind(text)`` with ``text`` "Caught Kind in DataLoader
    worker process 0." and the worker's traceback, whose last error line is ``module.Kind: message``.
    """
    if not text.startswith(f"Caught {kind.__name__} ") or "\nOriginal Traceback" not in text:
        return text, None
    line = f"\n{kind.__module__}.{kind.__qualname__}: "
    start = text.rfind(line)
    if start < 0:
        return text, None
    return text[start + len(line) :].rstrip("\n"), text


class _FileError(FrugalsegError):
    """An error about one file or folder: the message is ``{path}: {problem}``.

    With ``problem`` None, ``path`` is a whole message ``{path}: {problem}`` (or torch's text around
    one, see `FrugalsegError`): how torch rebuilds the error of a DataLoader worker.
    """

    def __init__(self, path: str | Path, problem: str | None = None) -> None:
        if problem is None:
            super().__init__(str(path))
            path, _, problem = str(self).partition(": ")
        else:
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

    def __init__(self, option: str, problem: str | None = None) -> None:
        if problem is None:  # a whole message, as torch rebuilds a DataLoader worker's error
            super().__init__(option)
            option, _, problem = str(self).partition(": ")
        else:
            super().__init__(f"{option}: {problem}")
        self.option = option
        self.problem = problem

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.option, self.problem)


@contextlib.contextmanager
def option_paths(**paths: str) -> Iterator[None]:
    """Name the options of `ConfigError`s the block raises by their paths in a config.

    A library function names its own argument (``recipe``); the datamodule or model that calls it
    knows the option a user set (``data.recipe.name``): ``with option_paths(recipe="data.recipe.name")``.
    """
    try:
        yield
    except ConfigError as err:
        if err.option not in paths:
            raise
        raise ConfigError(paths[err.option], err.problem) from err


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
    "option_paths",
]
