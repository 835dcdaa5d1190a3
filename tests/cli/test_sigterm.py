"""A SIGTERM (``kill``, a CI timeout) ends `frugalseg fit` at once with one line and exit code 143, not 0."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from cli_helpers import training_fit
from torch.utils.data import DataLoader

from frugalseg.cli import TERMINATED, main
from frugalseg.cli.signals import raise_if_signalled


def test_sigterm_during_a_lightning_command_exits_143(monkeypatch, capsys, tmp_path: Path) -> None:
    from frugalseg.cli import lightning

    before, children = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGCHLD)
    steps = []

    def fit(words: list[str]) -> None:
        # as Lightning's signal connector does: call the handler it found after its own, which only
        # notes the signal (its loops then stop at the end of a batch and exit 0)
        found = signal.getsignal(signal.SIGTERM)
        assert callable(found)
        signal.signal(signal.SIGTERM, lambda signum, frame: (steps.append("noted"), found(signum, frame)))
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):  # the signal is delivered between two of these steps
            time.sleep(0.01)
            steps.append("step")
        raise AssertionError("the run went on after SIGTERM")

    monkeypatch.setattr(lightning, "run_lightning_cli", fit)
    try:
        assert main(["fit"]) == TERMINATED == 143
    finally:
        signal.signal(signal.SIGCHLD, children)
    assert capsys.readouterr().err.strip() == "frugalseg: terminated (SIGTERM); the run did not finish"
    assert steps[0] == "noted" and len(steps) <= 2
    assert signal.getsignal(signal.SIGTERM) == before
    raise_if_signalled()  # the command's signal stops no run after it (a test's, a notebook's)
    # nor is a later command's error taken for it
    nowhere = ["--format", "davis", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s")]
    assert main(["label", "propagate", *nowhere, "--offsets", "1"]) == 2
    assert "data set folder does not exist" in capsys.readouterr().err


def test_a_worker_killed_by_sigterm_before_the_run_noted_its_own_exits_143(monkeypatch, capsys) -> None:
    """A SIGTERM to the group as the Trainer starts: torch's error about a worker came before any note."""
    from frugalseg.cli import lightning

    def fit(words: list[str]) -> None:
        raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Terminated. ")

    monkeypatch.setattr(lightning, "run_lightning_cli", fit)
    assert main(["fit"]) == TERMINATED
    assert capsys.readouterr().err.strip() == "frugalseg: terminated (SIGTERM); the run did not finish"


@pytest.mark.parametrize("noted", [True, False], ids=["frugalseg-noted-it", "only-lightning-saw-it"])
def test_lightnings_sigterm_exception_exits_143_not_0(noted: bool, monkeypatch, capsys) -> None:
    """Lightning ends a run whose signal connector saw a SIGTERM in SIGTERMException, a SystemExit of code 0:
    where frugalseg's own exception was dropped in a finalizer, the killed fit exited 0 (a CI failure)."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from frugalseg.cli import lightning, signals

    def fit(words: list[str]) -> None:
        if noted:  # as the handler does before the exception it raises is dropped
            signals._SIGTERMS.append(signal.SIGTERM)
        raise SIGTERMException

    monkeypatch.setattr(lightning, "run_lightning_cli", fit)
    children = signal.getsignal(signal.SIGCHLD)
    try:
        assert main(["fit"]) == TERMINATED
    finally:
        signal.signal(signal.SIGCHLD, children)
    assert capsys.readouterr().err.strip() == "frugalseg: terminated (SIGTERM); the run did not finish"


def test_a_lightning_commands_own_exit_code_is_kept(monkeypatch) -> None:
    """A SystemExit that no SIGTERM caused (jsonargparse's ``--help``, a usage error) keeps its code."""
    from frugalseg.cli import lightning

    def fit(words: list[str]) -> None:
        raise SystemExit(2)

    monkeypatch.setattr(lightning, "run_lightning_cli", fit)
    with pytest.raises(SystemExit) as exit:
        main(["fit"])
    assert exit.value.code == 2


class _SigtermInTrainingStep(L.LightningModule):
    """Sends its process SIGTERM in its first training step, and waits for the run to stop."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch: torch.Tensor, index: int) -> torch.Tensor:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            time.sleep(0.01)
        raise AssertionError("the run went on after SIGTERM")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _WorkerDiesAsLightningLogs(logging.Filter):
    """A DataLoader worker's SIGCHLD, handled while Lightning logs "Received SIGTERM" (the CI failure)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "SIGTERM" in str(record.msg):
            os.kill(os.getpid(), signal.SIGCHLD)
            time.sleep(0.01)
        return True


def test_a_workers_sigchld_inside_lightnings_sigterm_handler_still_exits_143(monkeypatch, capsys) -> None:
    """The DataLoader workers died of the group's SIGTERM, and torch's SIGCHLD handler raised its RuntimeError
    inside the Trainer's SIGTERM handler as it logged, before the handler it found ran: exit code 1."""
    from frugalseg.cli import lightning
    from frugalseg.cli.callbacks import SignalsStopTheRun

    def torchs_sigchld_handler(signum: int, frame: object) -> None:
        raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated.")

    def fit(words: list[str]) -> None:
        signal.signal(signal.SIGCHLD, torchs_sigchld_handler)
        options = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
        trainer = L.Trainer(max_steps=1, accelerator="cpu", callbacks=[SignalsStopTheRun()], **options)
        trainer.fit(_SigtermInTrainingStep(), DataLoader(torch.zeros(4, 1), batch_size=2))

    logger = logging.getLogger("lightning.pytorch.trainer.connectors.signal_connector")
    worker_dies, level = _WorkerDiesAsLightningLogs(), logger.level
    logger.addFilter(worker_dies)
    logger.setLevel(logging.INFO)
    before = signal.getsignal(signal.SIGCHLD)
    monkeypatch.setattr(lightning, "run_lightning_cli", fit)
    try:
        assert main(["fit"]) == TERMINATED
    finally:
        signal.signal(signal.SIGCHLD, before)
        logger.removeFilter(worker_dies)
        logger.setLevel(level)
    assert capsys.readouterr().err.strip() == "frugalseg: terminated (SIGTERM); the run did not finish"


@pytest.mark.slow
def test_a_killed_fit_exits_143(tiny_streets: Path, tmp_path: Path) -> None:
    process = training_fit(tiny_streets, tmp_path)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == TERMINATED, err[-3000:]
    assert err.strip().splitlines()[-1] == "frugalseg: terminated (SIGTERM); the run did not finish"


@pytest.mark.slow
def test_a_fit_whose_process_group_is_killed_with_its_loader_workers_exits_143(
    tiny_streets: Path, tmp_path: Path
) -> None:
    """``timeout`` or a CI runner signals the whole group: the DataLoader workers die of it too, and
    torch's ``DataLoader worker … is killed by signal`` RuntimeError ended the run in two tracebacks."""
    process = training_fit(tiny_streets, tmp_path, "--data.loader.num_workers", "2", start_new_session=True)
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == TERMINATED, err[-3000:]
    assert "Traceback" not in err and "RuntimeError" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == "frugalseg: terminated (SIGTERM); the run did not finish"


def test_a_sigterm_python_drops_in_a_finalizer_prints_no_traceback(monkeypatch) -> None:
    """A SIGTERM in logging's lock release after a fork was printed as "Exception ignored in" with its
    traceback before the run's one line; the run stops at its next batch (`raise_if_signalled`)."""
    import types

    from frugalseg.cli import signals
    from frugalseg.cli.signals import Terminated, sigterm_raises

    def dropped(error: BaseException) -> types.SimpleNamespace:
        return types.SimpleNamespace(exc_type=type(error), exc_value=error, exc_traceback=None)

    printed: list[BaseException] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: printed.append(unraisable.exc_value))
    monkeypatch.setattr(signals, "_SIGTERMS", [])  # no SIGTERM received yet
    own = ValueError("a finalizer's own error")
    with sigterm_raises():
        for error in (Terminated(), own):
            sys.unraisablehook(dropped(error))
        assert printed == [own]  # the dropped signal alone is quiet
        signals._SIGTERMS.append(signal.SIGTERM)  # once it came, what it left half-built is quiet too
        sys.unraisablehook(dropped(AttributeError("a half-built DataLoader iterator")))
    assert printed == [own]
    # after the block too: the finalizers run as the process ends (a half-built iterator's, once in .ci/run)
    sys.unraisablehook(dropped(AttributeError("'_MultiProcessingDataLoaderIter' has no '_workers_status'")))
    assert printed == [own]
    signals.forget_signals()  # a later command in this process: its own errors are printed again
    sys.unraisablehook(dropped(own))
    assert printed == [own, own]
