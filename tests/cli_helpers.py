"""Command lines for tests: LightningCLI arguments, and `frugalseg fit` and `label propagate` processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def lightning_args(
    config: str | Path,
    root: str | Path,
    out: str | Path,
    *,
    workers: str = "loader.num_workers",
    **data: object,
) -> list[str]:
    """``--config``, the data set ``root``, ``--data.KEY VALUE`` for each of ``data`` and no loader
    workers (the option ``workers``), with every file the trainer and logger write under ``out`` and
    no progress bar.

    A group's options come as a dict (``loader={"batch_size": 2}`` gives ``--data.loader.batch_size 2``);
    booleans become ``true``/``false`` as the CLI reads them; other values are passed as ``str``.
    """
    options = {
        f"{key}.{name}": v
        for key, value in data.items()
        if isinstance(value, dict)
        for name, v in value.items()
    }
    options.update({key: value for key, value in data.items() if not isinstance(value, dict)})
    args = ["--config", str(config), "--data.root", str(root)]
    for key, value in {**options, workers: 0}.items():
        args += [f"--data.{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return [
        *args,
        "--trainer.default_root_dir",
        str(out),
        "--trainer.logger.init_args.save_dir",
        str(out),
        "--trainer.enable_progress_bar",
        "false",
    ]


def label_propagate_command(root: str | Path, out: str | Path, *options: str) -> list[str]:
    """``frugalseg label propagate`` on a synthetic streets ``root`` into the store ``out``, as a
    process command (no progress bar), with ``options`` such as ``--k 10`` or ``--devices 2``."""
    return [
        sys.executable,
        "-m",
        "frugalseg",
        "label",
        "propagate",
        "--format",
        "synthetic",
        "--root",
        str(root),
        "--out",
        str(out),
        "--no-progress",
        *options,
    ]


def training_fit(streets: Path, out: Path, *options: str, **popen: Any) -> subprocess.Popen[str]:
    """A `frugalseg fit` process of the demo config on the tiny ``streets``, returned once it trains.

    Its run writes under ``out``; it trains for up to 1000 epochs, to be stopped by a signal; ``options``
    go to the command line, ``popen`` to `subprocess.Popen` (``preexec_fn``).
    """
    repo = Path(__file__).resolve().parents[1]
    args = lightning_args(
        repo / "configs" / "demo.yaml", streets, out, augment={"crop_size": "[64,128]"}, recipe={"budget": 6}
    )
    command = [sys.executable, "-m", "frugalseg", "fit", *args, "--trainer.max_epochs", "1000", *options]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=repo, **popen
    )
    deadline = time.monotonic() + 300
    while not list(out.glob("**/samples.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # into the first epochs
    assert process.poll() is None, process.communicate()[1][-3000:]
    return process
