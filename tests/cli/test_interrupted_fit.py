"""Ctrl-C ends `frugalseg fit` with one line and exit code 130, though the Trainer catches it and exits 1."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import training_fit

from frugalseg.cli import INTERRUPTED, main
from frugalseg.cli.signals import raise_if_signalled


def _ctrl_c() -> None:
    """Send this process a SIGINT, as a terminal's Ctrl-C does, and wait for its KeyboardInterrupt."""
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(100):  # the signal is delivered between two of these sleeps
        time.sleep(0.01)
    raise AssertionError("the run went on after SIGINT")


def test_the_trainers_exit_after_a_ctrl_c_is_an_interrupt(monkeypatch, capsys) -> None:
    from frugalseg.cli import lightning

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # an xdist worker ignores SIGINT
    shown = []

    def fit(words: list[str]) -> None:
        # as Lightning's _call_and_handle_interrupt does: log a line, ignore SIGINT, exit 1
        try:
            _ctrl_c()
        except KeyboardInterrupt:
            record = logging.LogRecord(
                "x", logging.INFO, "", 0, "\nDetected KeyboardInterrupt, …", None, None
            )
            shown.append(logging.getLogger("lightning.pytorch.utilities.rank_zero").filter(record))
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            sys.exit(1)

    monkeypatch.setattr(lightning, "run_lightning_cli", fit)
    try:
        assert main(["fit"]) == INTERRUPTED == 130
        assert capsys.readouterr().err.strip() == "frugalseg: interrupted"
        assert shown == [False]  # Lightning's line is not shown
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize(
    ("variable", "said"), [("LOCAL_RANK", []), ("NODE_RANK", []), (None, ["interrupted"])]
)
def test_a_ctrl_c_is_said_by_the_first_process_of_a_ddp_run_alone(
    monkeypatch, capsys, variable, said
) -> None:
    """A Ctrl-C reaches every rank of a DDP fit: each had printed "frugalseg: interrupted"."""
    from frugalseg.cli import lightning

    def fit(words: list[str]) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(lightning, "run_lightning_cli", fit)
    if variable is not None:
        monkeypatch.setenv(variable, "1")
    assert main(["fit"]) == INTERRUPTED
    assert [line.removeprefix("frugalseg: ") for line in capsys.readouterr().err.splitlines()] == said


def test_a_ctrl_c_caught_by_a_tool_commands_trainer_is_an_interrupt(monkeypatch, capsys) -> None:
    """`annotate semantic` fine-tunes with a Trainer: its exit 1 after a Ctrl-C is an interrupt."""
    import frugalseg.cli as cli

    before = signal.signal(signal.SIGINT, signal.default_int_handler)

    def tool(words: list[str]) -> int:
        try:
            _ctrl_c()
        except KeyboardInterrupt:
            sys.exit(1)

    monkeypatch.setattr(cli, "run_tool", tool)
    try:
        assert main(["annotate", "semantic"]) == INTERRUPTED
        assert capsys.readouterr().err.strip() == "frugalseg: interrupted"
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_dropped_in_a_finalizer_stops_the_run_before_its_next_batch(monkeypatch, capsys) -> None:
    """Python prints and drops an exception raised in a finalizer: a Ctrl-C then let a CI run go on."""
    from frugalseg.cli import lightning
    from frugalseg.cli.callbacks import SignalsStopTheRun

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    batches = []

    class Finalized:
        def __del__(self) -> None:
            _ctrl_c()

    def fit(words: list[str]) -> None:
        Finalized()  # collected at once: its KeyboardInterrupt is "Exception ignored in"
        hooks = SignalsStopTheRun()
        try:
            for batch in range(3):
                hooks.on_train_batch_start(None, None, batch, batch)
                batches.append(batch)
        except KeyboardInterrupt:  # as Lightning's _call_and_handle_interrupt does
            sys.exit(1)

    monkeypatch.setattr(lightning, "run_lightning_cli", fit)
    try:
        assert main(["fit"]) == INTERRUPTED
        assert capsys.readouterr().err.strip().splitlines()[-1] == "frugalseg: interrupted"
        assert batches == []
        raise_if_signalled()  # the command's Ctrl-C stops no run after it
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_dropped_after_the_last_batch_is_still_an_interrupt(monkeypatch, capsys) -> None:
    """No batch came after it (the last checkpoint, the writer's end): the run had ended with exit code 0."""
    from frugalseg.cli import lightning

    before = signal.signal(signal.SIGINT, signal.default_int_handler)

    class Finalized:
        def __del__(self) -> None:
            _ctrl_c()

    def fit(words: list[str]) -> None:
        Finalized()  # collected at once: its KeyboardInterrupt is "Exception ignored in"

    monkeypatch.setattr(lightning, "run_lightning_cli", fit)
    try:
        assert main(["fit"]) == INTERRUPTED
        assert capsys.readouterr().err.strip().splitlines()[-1] == "frugalseg: interrupted"
    finally:
        signal.signal(signal.SIGINT, before)


def test_an_exit_1_without_a_ctrl_c_stays_an_exit_1(monkeypatch) -> None:
    from frugalseg.cli import lightning

    monkeypatch.setattr(lightning, "run_lightning_cli", lambda words: sys.exit(1))
    with pytest.raises(SystemExit) as exit:
        main(["fit"])
    assert exit.value.code == 1


@pytest.mark.slow
def test_ctrl_c_during_fit_exits_130_with_one_line(tiny_streets: Path, tmp_path: Path) -> None:
    # pytest-xdist workers ignore SIGINT and a child inherits that; a terminal's Ctrl-C reaches a
    # process that has the default disposition, which Python turns into KeyboardInterrupt.
    process = training_fit(
        tiny_streets, tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    )
    for _ in range(4):  # a person presses Ctrl-C again when the run goes on
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=30)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        process.kill()
        raise AssertionError(f"the run went on after 4 Ctrl-C: {process.communicate()[1][-3000:]}")
    assert process.returncode == INTERRUPTED, err[-3000:]
    assert err.strip().splitlines()[-1] == "frugalseg: interrupted"
    # A KeyboardInterrupt raised while Python runs a finalizer is printed and dropped by Python itself
    # ("Exception ignored in"), for any handler; the run stops before its next batch (SignalsStopTheRun).
    first, *ignored = err.split("Exception ignored in")
    shown = "\n".join(
        [first, *(part.split("\nKeyboardInterrupt", 1)[-1].split("\n", 1)[-1] for part in ignored)]
    )
    assert "KeyboardInterrupt" not in out + shown
    assert "Traceback" not in shown


def test_two_ctrl_c_to_a_fit_with_loader_workers_exit_130_with_one_line(
    tiny_streets: Path, tmp_path: Path
) -> None:
    """A terminal's Ctrl-C reaches the whole group, and ``timeout`` sends it on again: the DataLoader workers
    raised KeyboardInterrupt in their exit's finalizers (exit 1, "Process Process-1" tracebacks) and torch's
    ``DataLoader worker … exited unexpectedly`` RuntimeError ended the run with exit 1."""
    process = training_fit(
        tiny_streets,
        tmp_path,
        "--data.loader.num_workers",
        "2",
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.001)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == INTERRUPTED, err[-3000:]
    assert "RuntimeError" not in err and "Process Process" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == "frugalseg: interrupted"


def test_a_loader_worker_lost_after_a_ctrl_c_is_the_interrupt(monkeypatch, capsys) -> None:
    """A worker forked as the Ctrl-C came, before it knew itself a worker, was stopped by it, and the main
    process found it gone before its own (dropped) KeyboardInterrupt: exit 1 and torch's traceback. Seen once
    in `.ci/run` of the test above."""
    import frugalseg.cli

    def interrupted_then_lost(words):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # noted, its KeyboardInterrupt dropped (a finalizer's)
            time.sleep(0.1)
        except KeyboardInterrupt:
            pass
        raise RuntimeError("DataLoader worker (pid(s) 16812) exited unexpectedly")

    monkeypatch.setattr(frugalseg.cli, "_run_lightning", interrupted_then_lost)
    previous = signal.signal(
        signal.SIGINT, signal.default_int_handler
    )  # a terminal's (an xdist worker ignores it)
    try:
        assert main(["fit"]) == INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    assert capsys.readouterr().err.strip().splitlines()[-1] == "frugalseg: interrupted"
    monkeypatch.setattr(
        frugalseg.cli, "_run_lightning", lambda words: (_ for _ in ()).throw(RuntimeError("odd"))
    )
    with pytest.raises(RuntimeError, match="odd"):  # without a Ctrl-C, an error is an error
        main(["fit", "--debug"])
