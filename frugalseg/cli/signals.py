"""What a Lightning command does with SIGTERM and SIGINT: stop at once, and tell `main` which one it was.

A SIGTERM (``kill``, a CI timeout) raises `Terminated` in the main thread, as Ctrl-C raises
KeyboardInterrupt; `main` prints one line for either and exits 143 or 130. Lightning's own SIGTERM
handler would only stop the loops at the end of a batch and exit 0, as if the run had succeeded.

A SIGTERM sent to the process group (``timeout``, a CI runner) kills the DataLoader workers too, and
torch's SIGCHLD handler raises its ``DataLoader worker … is killed by signal`` RuntimeError wherever
the main thread is, even inside Lightning's handler as it logs the signal. `note_sigterm` switches
that handler off; `frugalseg.cli.callbacks.SignalsStopTheRun`, on every Lightning command's trainer, calls it
before Lightning's handler runs. Nothing here imports Lightning: the tools' commands stay fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any


class Terminated(BaseException):
    """A SIGTERM during a Lightning command, raised in the main thread as Ctrl-C raises KeyboardInterrupt."""


#: The SIGTERMs the running Lightning command received (`sigterm_raises`).
_SIGTERMS: list[int] = []
#: The SIGINTs the running command received (`sigint_noted`).
_SIGINTS: list[int] = []
#: Which of the two the running command watches: `raise_if_signalled` acts only inside its blocks (a
#: Trainer run after a command, by a test or a notebook, is not stopped by the command's signal).
_WATCHED = {signal.SIGTERM: False, signal.SIGINT: False}


def sigterm_received() -> bool:
    """Whether the running Lightning command received a SIGTERM: a worker's error after it is its echo."""
    return bool(_SIGTERMS)


def _dropped_quietly(hook: Callable[[Any], object]) -> Callable[[Any], object]:
    """``hook`` (`sys.unraisablehook`), silent for a dropped `Terminated` (`raise_if_signalled` raises it).

    A SIGTERM that lands in a finalizer (logging's lock release after a fork, a ``__del__``) was printed as
    "Exception ignored in" with its traceback before the run's one line; so were the finalizers of what it
    left half-built (a DataLoader's iterator stopped while its workers started).
    """

    def quiet(unraisable: Any) -> object:
        return None if isinstance(unraisable.exc_value, Terminated) or _SIGTERMS else hook(unraisable)

    return quiet


def raise_if_signalled() -> None:
    """Raise `Terminated` or KeyboardInterrupt again for a signal whose first one Python dropped.

    An exception raised while Python runs a finalizer (``__del__``, a weakref callback) is printed
    as "Exception ignored in" and dropped, so a Ctrl-C or SIGTERM that arrives then was lost and the
    run went on; `frugalseg.cli.callbacks.SignalsStopTheRun` calls this before every batch.
    """
    if _WATCHED[signal.SIGTERM] and _SIGTERMS:
        raise Terminated
    if _WATCHED[signal.SIGINT] and _SIGINTS:
        raise KeyboardInterrupt


def worker_terminated(error: BaseException) -> bool:
    """Whether ``error`` is torch's report of a DataLoader worker that a SIGTERM killed.

    A SIGTERM sent to the process group between the Trainer's start and the first hook of its stage
    (`~frugalseg.cli.callbacks.SignalsStopTheRun`) reaches Lightning's handler first, and torch's
    SIGCHLD handler may raise this before the SIGTERM is noted.
    """
    return isinstance(error, RuntimeError) and "is killed by signal: Terminated" in str(error)


def worker_lost(error: BaseException) -> bool:
    """Whether ``error`` is torch's report of a DataLoader worker that died (by a signal or otherwise).

    After a Ctrl-C it is the Ctrl-C's echo: a worker forked as the signal came, before it knew itself a
    worker (`sigint_noted`), is stopped by it, and the main process may find it gone before its own
    KeyboardInterrupt is raised.
    """
    text = str(error)
    return (
        isinstance(error, RuntimeError)
        and "DataLoader worker" in text
        and ("exited unexpectedly" in text or "killed by signal" in text)
    )


def forget_signals() -> None:
    """Forget the signals an earlier command in this process received, before the next one runs."""
    _SIGTERMS.clear()
    _SIGINTS.clear()


def note_sigterm(signum: int) -> None:
    """Note a SIGTERM and stop torch from reporting the DataLoader workers the same signal killed."""
    _SIGTERMS.append(signum)
    _ignore_children()


def _ignore_children() -> None:
    """Make torch's SIGCHLD handler a no-op (not SIG_DFL: one already pending would still be reported)."""
    signal.signal(signal.SIGCHLD, lambda *_: None)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn a SIGTERM into `Terminated` while the block runs.

    The Trainer's signal connector keeps a handler it finds and calls it after its own, so the run
    stops at once and fails. Off the main thread, where no handler can be set, it changes nothing.
    Once the block ends after a SIGTERM, torch's SIGCHLD handler is switched off again: the Trainer's
    teardown puts back every handler it found, torch's too, and a worker's death reported as the
    interpreter exits was a traceback after the one line; the quiet `sys.unraisablehook` stays, as a
    half-built DataLoader iterator's finalizer run then had printed its AttributeError.
    """
    main = os.getpid()

    def terminate(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != main:  # a DataLoader worker forked before torch set its handler: die as it would
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        note_sigterm(signum)
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread
        yield
        return
    _WATCHED[signal.SIGTERM] = True
    unraisable, sys.unraisablehook = sys.unraisablehook, _dropped_quietly(sys.unraisablehook)
    try:
        yield
    finally:
        _WATCHED[signal.SIGTERM] = False
        if not _SIGTERMS:  # after one, the finalizers run as the process ends stay quiet too
            sys.unraisablehook = unraisable
        signal.signal(signal.SIGTERM, previous)
        if _SIGTERMS:
            _ignore_children()


class _LightningInterruptLine(logging.Filter):
    """Drop the line Lightning logs when it catches a KeyboardInterrupt; frugalseg prints its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Detected KeyboardInterrupt" not in str(record.msg)


def _loader_worker() -> bool:
    """Whether this process is a DataLoader worker (torch is loaded there already: it is not imported)."""
    data = sys.modules.get("torch.utils.data")
    return data is not None and data.get_worker_info() is not None


@contextlib.contextmanager
def sigint_noted() -> Iterator[list[int]]:
    """Note each SIGINT (Ctrl-C) while the block runs, then raise KeyboardInterrupt as Python's default does.

    The Trainer catches the KeyboardInterrupt, logs its own line and ends with ``sys.exit(1)``; the
    list the block gets (one entry per SIGINT) tells that exit from others. Lightning's line is kept
    off the terminal. A process that ignores SIGINT, or set its own handler, keeps it.

    A terminal's Ctrl-C reaches the DataLoader workers too (``timeout`` sends it on a second time): a
    loader worker forked with this handler ignores it and is stopped by the main process as the run ends, and
    torch's SIGCHLD handler is switched off (`_ignore_children`), so a worker's exit is no RuntimeError.
    """
    main = os.getpid()

    def interrupt(signum: int, frame: object) -> None:
        if os.getpid() != main and _loader_worker():  # forked with this handler: the main process stops it
            return
        _SIGINTS.append(signum)
        _ignore_children()
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield _SIGINTS
        return
    try:
        previous = signal.signal(signal.SIGINT, interrupt)
    except ValueError:  # not the main thread
        yield _SIGINTS
        return
    line = _LightningInterruptLine()
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # where rank_zero_info logs
    logger.addFilter(line)
    _WATCHED[signal.SIGINT] = True
    try:
        yield _SIGINTS
    finally:
        _WATCHED[signal.SIGINT] = False
        logger.removeFilter(line)
        signal.signal(signal.SIGINT, previous)  # the Trainer ignores SIGINT while it shuts down
