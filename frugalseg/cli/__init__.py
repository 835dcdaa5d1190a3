"""The ``frugalseg`` command: a lazy dispatcher over its command groups, with one error path.

``fit``, ``validate``, ``test`` and ``predict`` go to LightningCLI (`frugalseg.cli.lightning`);
``vos`` to a second LightningCLI for video object segmentation (a ``--config`` may name a shipped
config: `frugalseg.cli.configs`); ``label``, ``data``, ``configs``, ``zoo`` and ``annotate`` are
argparse tools that import neither Lightning nor the model zoo until a command needs it. Only the
group named on the command line is imported, so ``frugalseg label --help`` stays fast.

Every command ends the same way: the package's errors (`frugalseg.errors`) and file-system errors
print one line naming the file or option (exit code 2, bad input), Ctrl-C prints one line (exit
code 130, also where the Trainer caught it and would exit 1), and ``--debug`` shows the traceback
instead. A SIGTERM (``kill``, a CI timeout) stops ``fit``, ``validate``, ``test``, ``predict`` and
``vos`` at once with one line and exit code 143, as a shell reports a process it ended: Lightning's
own handler would only stop at the end of a batch and exit 0, as if the run had succeeded
(`frugalseg.cli.signals`).
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import importlib
import io
import logging
import os
import re
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from frugalseg import __version__
from frugalseg.cli.options import short_error
from frugalseg.cli.signals import (
    Terminated,
    forget_signals,
    raise_if_signalled,
    sigint_noted,
    sigterm_raises,
    sigterm_received,
    worker_lost,
    worker_terminated,
)
from frugalseg.errors import FrugalsegError

#: Tool groups: the word on the command line → the module that registers its commands, and its help.
TOOLS: dict[str, tuple[str, str]] = {
    "label": (
        "frugalseg.cli.label",
        "make labels from cheap signals into a label store, score it, import/export annotation tools' files",
    ),
    "data": (
        "frugalseg.cli.data",
        "check a data set folder (every problem in one pass), or download a public set from its source",
    ),
    "configs": ("frugalseg.cli.configs", "list the configs that ship with frugalseg, or copy one to edit"),
    "zoo": ("frugalseg.cli.zoo", "list, verify, publish and convert model weights"),
    "annotate": (
        "frugalseg.cli.annotate",
        "the annotation loop: simulate it with ground truth, or propose/add or serve a page for a person",
    ),
}
#: LightningCLI subcommands of the semantic students.
LIGHTNING = {
    "fit": "train a student (LightningCLI: --config …, --help lists every option)",
    "validate": "validate a student on the validation split",
    "test": "test a student on the test split",
    "predict": "segment frames and write label PNGs and a contact sheet",
}
VOS = {"vos": "video object segmentation (STM): vos fit|validate|test --config …"}

BAD_INPUT = 2
INTERRUPTED = 130
TERMINATED = 128 + signal.SIGTERM  # 143
PIPE_CLOSED = 128 + signal.SIGPIPE  # 141, as a shell reports a reader that went away


def overview() -> str:
    """``frugalseg --help``: every command with one line of help."""
    lines = [f"usage: frugalseg COMMAND … (frugalseg {__version__})", "", "commands:"]
    for name, text in {**LIGHTNING, **VOS, **{k: v[1] for k, v in TOOLS.items()}}.items():
        lines.append(f"  {name:<10} {text}")
    lines += [
        "",
        "options:",
        "  --version  print the version and exit",
        "  --debug    show the full traceback of an error",
        "",
        "`frugalseg COMMAND --help` lists the options of a command.",
    ]
    return "\n".join(lines)


class ToolParser(argparse.ArgumentParser):
    """The tools' parser, and their subcommands' parsers: options are never abbreviated.

    An old or mistyped name (``--device``) is then an error, not read as the option it begins (``--devices``).
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        """The tip and one line, not the usage before them (`short_error`)."""
        short_error(self, message)


#: A value that argparse takes for an option, though it is a negative number or a list of numbers.
_NEGATIVE_VALUE = re.compile(r"-\d[\d.,]*")


def _negative_values_joined(words: list[str]) -> list[str]:
    """``--box -5,80,600,280`` as ``--box=-5,80,600,280``: argparse had said "expected one argument"."""
    joined: list[str] = []
    for word in words:
        previous = joined[-1] if joined else ""
        if _NEGATIVE_VALUE.fullmatch(word) and previous.startswith("--") and "=" not in previous:
            joined[-1] = f"{previous}={word}"
        else:
            joined.append(word)
    return joined


def run_tool(argv: Sequence[str]) -> int:
    """Run a tool command (``label``, ``data``, ``zoo`` …) and return its exit code."""
    words = list(argv)
    module, text = TOOLS[words[0]]
    parser = ToolParser(prog="frugalseg", description=text)
    groups = parser.add_subparsers(dest="group", required=True)
    importlib.import_module(module).register(groups)
    args, unknown = parser.parse_known_args(_negative_values_joined(words))
    if unknown:  # the command's own tip, not the tool's (``frugalseg data check --help``)
        short_error(_command_parser(parser, args), f"unrecognized arguments: {' '.join(unknown)}")
    from frugalseg.cli.weights import resolve_weight_options

    resolve_weight_options(args)  # Hub ids to cached files, before any work starts
    return int(args.func(args) or 0)


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the command ``args`` were parsed for: down the sub-commands they name."""
    while True:
        commands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, commands.dest, None) if commands is not None else None
        if commands is None or name not in commands.choices:
            return parser
        parser = commands.choices[name]


def configure_logging(level: int = logging.INFO) -> None:
    """Show the package's log records (``logging.getLogger("frugalseg…")``) on stderr, one line each."""
    package = logging.getLogger("frugalseg")
    if not any(isinstance(handler, _StderrHandler) for handler in package.handlers):
        package.addHandler(_StderrHandler())
    package.setLevel(level)


class _StderrHandler(logging.Handler):
    """One line per record on ``sys.stderr`` (warnings, errors prefixed), a logged traceback after it."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        try:
            text = record.getMessage()
            if record.exc_info:  # a logged exception (``log.exception``) brings its traceback
                text += "\n" + logging.Formatter().formatException(record.exc_info).rstrip()
            sys.stderr.write(f"{prefix}{text}\n")
        except Exception:  # a logging handler must not raise
            self.handleError(record)


def _dispatch(words: list[str]) -> int:
    """Run a command; a Ctrl-C is an interrupt also where a Trainer caught it (``annotate semantic``)."""
    tool = words[0] in TOOLS
    forget_signals()  # an earlier command's, in this process (a test, a notebook)
    with contextlib.nullcontext() if tool else sigterm_raises(), sigint_noted() as interrupts:
        try:
            code = run_tool(words) if tool else _run_lightning(words)
            raise_if_signalled()  # one Python dropped after the last batch (a finalizer at the run's end)
            return code
        except SystemExit as exit:
            if interrupts and exit.code == 1:  # the Trainer's exit after a Ctrl-C it caught
                raise KeyboardInterrupt from exit
            if not tool and _stopped_by_sigterm(exit):
                raise Terminated from exit
            raise
        except RuntimeError as err:
            if interrupts and worker_lost(err):  # a loader worker the same Ctrl-C stopped as it was forked
                raise KeyboardInterrupt from err
            raise


def _stopped_by_sigterm(exit: SystemExit) -> bool:
    """Whether a Lightning command's SystemExit is the Trainer's way of stopping after a SIGTERM.

    Lightning's loops end a run whose signal connector saw a SIGTERM in ``SIGTERMException``, a
    SystemExit of code 0; where frugalseg's own `Terminated` was dropped (raised in a finalizer) the
    run ended there, exit code 0, as if it had finished.
    """
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    return isinstance(exit, SIGTERMException) or sigterm_received()


def _run_lightning(words: list[str]) -> int:
    from frugalseg.cli import lightning
    from frugalseg.cli.configs import with_shipped_configs

    words = with_shipped_configs(words)
    if words[0] == "vos":
        lightning.run_vos_cli(words[1:])
    else:
        lightning.run_lightning_cli(words)
    return 0


def printable_on_any_terminal() -> None:
    """Print a character the terminal's encoding lacks (an ASCII or Latin-1 locale) as '?', not raise."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and codecs.lookup(stream.encoding).name != "utf-8":
            stream.reconfigure(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``frugalseg`` console script; returns the exit code."""
    printable_on_any_terminal()
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a reader gone away shows here, not as Python's complaint at exit
    except BrokenPipeError:
        # The output's reader went away (`frugalseg configs list | head -1`): stop quietly, as `cat` does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED


def _main(argv: Sequence[str] | None) -> int:
    """`main` once the terminal is set up: the overview, the version, or the command's run."""
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words
    words = [word for word in words if word != "--debug"]
    if not words or words[0] in ("-h", "--help"):
        print(overview())
        return 0
    if words[0] == "--version":
        print(f"frugalseg {__version__}")
        return 0
    if words[0] not in {**TOOLS, **LIGHTNING, **VOS}:
        print(overview(), file=sys.stderr)
        print(f"\nfrugalseg: unknown command {words[0]!r}", file=sys.stderr)
        return BAD_INPUT
    configure_logging()
    try:
        with warnings.catch_warnings():
            quiet_warnings()
            return _dispatch(words)
    except KeyboardInterrupt:
        if debug:
            raise
        if _first_process():
            print("frugalseg: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Terminated:
        if debug:
            raise
        if _first_process():
            print("frugalseg: terminated (SIGTERM); the run did not finish", file=sys.stderr)
        return TERMINATED
    except BrokenPipeError:
        raise  # `main` ends quietly
    except Exception as err:
        if (sigterm_received() or worker_terminated(err)) and not debug:  # a DataLoader worker's echo of it
            print("frugalseg: terminated (SIGTERM); the run did not finish", file=sys.stderr)
            return TERMINATED
        cause = _bad_input(err)
        if debug or cause is None:
            raise
        print(f"error: {_said(cause)}", file=sys.stderr)
        return BAD_INPUT


def quiet_warnings() -> None:
    """Keep a dependency's warnings that a user cannot act on off the terminal, for every command.

    lightning.pytorch.utilities._pytree (Lightning 2.6.6) still builds torch's LeafSpec, deprecated in
    torch 2.10, and warns in every run that trains (``fit`` and the annotation loops alike);
    Lightning-AI/pytorch-lightning#21326 was closed by #21502, which only filters it in Lightning's CI:
    drop the filter when _pytree.py uses torch.utils._pytree.treespec_leaf().
    """
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
    )


def _said(error: BaseException) -> str:
    """An error as its line: a file-system error as ``PATH: problem`` (``[Errno 2] …: 'PATH'`` otherwise)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        moved = f" → {error.filename2}" if error.filename2 is not None else ""
        return f"{error.filename}{moved}: {error.strerror}"
    return str(error)


def _first_process() -> bool:
    """Whether this is a run's first process, not another of Lightning's DDP ranks (a Ctrl-C reaches each).

    Lightning starts ranks 1 … with ``LOCAL_RANK`` and ``NODE_RANK`` set: the line is said once.
    """
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def _bad_input(error: BaseException) -> BaseException | None:
    """The package's error or file-system error behind ``error``, or None for anything else.

    Libraries such as jsonargparse wrap the errors a class raises while it is built; anything else,
    a bug, keeps its traceback.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, FrugalsegError | OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


__all__ = ["main", "overview", "run_tool"]
