"""Command lines for tests: LightningCLI arguments and a `frugalseg label propagate` process."""

from __future__ import annotations

import sys
from pathlib import Path


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
