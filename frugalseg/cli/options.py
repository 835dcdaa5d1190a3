"""Types of the tool commands' numeric options, checked where they are declared (``type=``).

argparse calls these on the text of an option and, when one raises `argparse.ArgumentTypeError`
or `ValueError`, ends the command with one line naming the option, before anything is read or
written. Numbers that are not finite (``nan``, ``inf``) are never a valid setting.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

#: Lightning accelerators a ``--accelerator`` may name.
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


def gpu_missing(accelerator: str) -> bool:
    """Whether ``accelerator`` names a GPU this machine lacks (Lightning's ``gpu`` is MPS on a Mac)."""
    import torch

    apple = accelerator == "gpu" and torch.backends.mps.is_available()
    return accelerator in ("gpu", "cuda") and not torch.cuda.is_available() and not apple


def typed_text(text: str) -> str:
    """A name as the person typed it on the command line (an object's, a tool label's).

    Under the C locale Python hands a word's non-ASCII bytes over as lone surrogates; a name is UTF-8
    text, so they are decoded as such (``1=voiture é`` names ``voiture é`` in any locale).
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _number(text: str) -> float:
    """A finite number."""
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from err
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _whole(text: str) -> int:
    """A whole number."""
    try:
        return int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from err


def count_option(text: str) -> int:
    """A whole number of at least 1."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_option(text: str) -> int:
    """A TCP port: a whole number in 0…65535 (0: any free one)."""
    value = _whole(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port in 0…65535, got {value}")
    return value


def seed_option(text: str) -> int:
    """A seed: a whole number of at least 0 (numpy refuses negative seeds)."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def non_negative(text: str) -> float:
    """A finite number of at least 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value:g}")
    return value


def positive(text: str) -> float:
    """A finite number above 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value:g}")
    return value


def fraction(text: str) -> float:
    """A number in 0…1."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must lie in 0…1, got {value:g}")
    return value


def devices_option(text: str) -> str:
    """Lightning's devices: ``auto``, a count (``4``), ``-1`` (all), or device indices (``0,1``)."""
    if text == "auto" or text == "-1":
        return text
    parts = text.split(",")
    if len(parts) == 1 and parts[0].isdigit() and int(parts[0]) >= 1:
        return text
    if len(parts) > 1 and all(part.strip().isdigit() for part in parts if part.strip()):
        return text
    raise argparse.ArgumentTypeError(
        f"expected a device count (e.g. 4), -1 (all), auto, or comma-separated indices (0,1), got {text!r}"
    )


__all__ = [
    "ACCELERATORS",
    "count_option",
    "devices_option",
    "fraction",
    "non_negative",
    "positive",
    "seed_option",
]


def short_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """Exit 2 with a tip and the error's line, as the training commands do: not the usage before them."""
    parser.exit(2, f"tip: for the accepted options run: {parser.prog} --help\nerror: {message}\n")


class LazyParser(argparse.ArgumentParser):
    """A command's parser whose options are added (``fill``) only when it parses or shows its help.

    A tool group's commands use it as ``parser_class`` (``add_subparsers(parser_class=LazyParser)``,
    ``add_parser(name, help=…, fill=…)``): ``frugalseg annotate --help`` lists the commands without the
    imports their options need (registries whose modules import torch), and ``annotate simulate …``
    adds its options before it reads its words. Options are never abbreviated, as in every tool's parser.

    Args:
        *args: `argparse.ArgumentParser`'s.
        fill: adds the command's options to the parser; None: it has them already.
        **kwargs: `argparse.ArgumentParser`'s.
    """

    def __init__(
        self, *args: Any, fill: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs: Any
    ):
        kwargs.setdefault("allow_abbrev", False)  # as every tool's parser (`frugalseg.cli.ToolParser`)
        super().__init__(*args, **kwargs)
        self._fill = fill

    def filled(self) -> LazyParser:
        """The parser with its options (added now if they were not)."""
        fill, self._fill = self._fill, None
        if fill is not None:
            fill(self)
        return self

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """`argparse.ArgumentParser.parse_known_args`, with the options."""
        self.filled()
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        """The tip and one line (`short_error`)."""
        short_error(self, message)

    def format_usage(self) -> str:
        """The usage line, with the options."""
        self.filled()
        return super().format_usage()

    def format_help(self) -> str:
        """The help, with the options."""
        self.filled()
        return super().format_help()
