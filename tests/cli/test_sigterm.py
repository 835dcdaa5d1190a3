"""A SIGTERM (``kill``, a CI timeout) ends `frugalseg fit` at once with one line and exit code 143, not 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import lightning_args

from frugalseg.cli import TERMINATED, main

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_during_a_lightning_command_exits_143(monkeypatch, capsys) -> None:
    from frugalseg.cli import lightning

    before = signal.getsignal(signal.SIGTERM)
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
    assert main(["fit"]) == TERMINATED == 143
    assert capsys.readouterr().err.strip() == "frugalseg: terminated (SIGTERM); the run did not finish"
    assert steps[0] == "noted" and len(steps) <= 2
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.slow
def test_a_killed_fit_exits_143(tiny_streets: Path, tmp_path: Path) -> None:
    args = lightning_args(
        REPO / "configs" / "demo.yaml",
        tiny_streets,
        tmp_path,
        augment={"crop_size": "[64,128]"},
        recipe={"budget": 6},
    )
    command = [sys.executable, "-m", "frugalseg", "fit", *args, "--trainer.max_epochs", "1000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 300
    while (
        not list(tmp_path.glob("**/samples.json")) and process.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    time.sleep(2)  # into the first epochs
    assert process.poll() is None, process.communicate()[1][-3000:]
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == TERMINATED, err[-3000:]
    assert err.strip().splitlines()[-1] == "frugalseg: terminated (SIGTERM); the run did not finish"
