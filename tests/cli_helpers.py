"""Arguments for running the LightningCLI in tests (``from cli_helpers import lightning_args``)."""

from __future__ import annotations

from pathlib import Path


def lightning_args(config: str | Path, root: str | Path, out: str | Path, **data: object) -> list[str]:
    """``--config``, the data set ``root``, ``--data.KEY VALUE`` for each of ``data`` and no loader
    workers, with every file the trainer and logger write under ``out`` and no progress bar.

    Booleans become ``true``/``false`` as the CLI reads them; other values are passed as ``str``.
    """
    args = ["--config", str(config), "--data.root", str(root)]
    for key, value in {**data, "num_workers": 0}.items():
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
