"""`frugalseg` command line: LightningCLI for fit/validate/test/predict, argparse for the tools.

`frugalseg label …` and `frugalseg data …` are tools with their own argparse parsers; every
other first word (fit, validate, test, predict) goes to LightningCLI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lightning.pytorch.cli import LightningCLI

from frugalseg.autolabel import commands as label_commands
from frugalseg.datamodules import commands as data_commands
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.lightning_modules import VideoSegmentationModule

TOOL_COMMANDS = ("label", "data")


def _tool_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frugalseg", description="frugalseg tools")
    groups = parser.add_subparsers(dest="group", required=True)
    label_commands.register(groups)
    data_commands.register(groups)
    return parser


class FrugalsegCLI(LightningCLI):
    """LightningCLI with the data → model links (classes, ignore index, frames, class names)."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.num_frames", "model.num_frames")
        for name in ("num_classes", "ignore_index", "class_names"):
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")


def run_lightning_cli(argv: Sequence[str] | None = None) -> FrugalsegCLI:
    """`frugalseg fit|validate|test|predict …` (``--help`` lists every option); None reads sys.argv."""
    return FrugalsegCLI(
        VideoSegmentationModule,
        VideoSegDataModule,
        args=None if argv is None else list(argv),
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
    )


def run_tool(argv: Sequence[str]) -> int:
    """Run a `label`/`data` tool command and return its exit code."""
    args = _tool_parser().parse_args(list(argv))
    return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in TOOL_COMMANDS:
        return run_tool(words)
    run_lightning_cli(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
