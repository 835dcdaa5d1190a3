"""`frugalseg` command line: LightningCLI for fit/validate/test/predict, argparse for the tools.

`frugalseg label …` and `frugalseg data …` are tools with their own argparse parsers;
`frugalseg vos fit|validate|test …` is a second LightningCLI for video object segmentation (STM);
every other first word (fit, validate, test, predict) goes to LightningCLI.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from lightning.pytorch.cli import LightningCLI

from frugalseg.autolabel import commands as label_commands
from frugalseg.datamodules import commands as data_commands
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.vos import VOSDataModule
from frugalseg.lightning_modules import VideoSegmentationModule, VOSModule
from frugalseg.lightning_modules.prediction_writer import SegmentationPredictionWriter
from frugalseg.zoo import commands as zoo_commands

DEFAULT_MODEL = f"{VideoSegmentationModule.__module__}.{VideoSegmentationModule.__qualname__}"
TOOL_COMMANDS = ("label", "data", "zoo")


def _tool_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frugalseg", description="frugalseg tools")
    groups = parser.add_subparsers(dest="group", required=True)
    label_commands.register(groups)
    data_commands.register(groups)
    zoo_commands.register(groups)
    return parser


class FrugalsegCLI(LightningCLI):
    """LightningCLI with the data → model links (classes, ignore index, frames, class names).

    The model is any subclass of VideoSegmentationModule (``model.class_path``, e.g.
    ``frugalseg.lightning_modules.DistillationModule``); without a class path a config's
    ``model:`` entries are the arguments of VideoSegmentationModule itself.
    """

    def add_arguments_to_parser(self, parser) -> None:
        # `predict` writes label PNGs and a contact sheet (options: --predict_writer.*).
        parser.add_lightning_class_args(SegmentationPredictionWriter, "predict_writer")
        parser.set_defaults({"model": {"class_path": DEFAULT_MODEL}})
        parser.link_arguments("data.num_frames", "model.init_args.num_frames")
        for name in ("num_classes", "ignore_index", "class_names"):
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def before_predict(self) -> None:
        """The prediction writer saves every map; unless asked, do not also keep them all in memory."""
        config = self.config_init[self.subcommand]
        if config.get("return_predictions") is None:
            config["return_predictions"] = False


def run_lightning_cli(argv: Sequence[str] | None = None) -> FrugalsegCLI:
    """`frugalseg fit|validate|test|predict …` (``--help`` lists every option); None reads sys.argv."""
    return FrugalsegCLI(
        VideoSegmentationModule,
        VideoSegDataModule,
        subclass_mode_model=True,
        args=None if argv is None else list(argv),
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
    )


class VOSCLI(LightningCLI):
    """`frugalseg vos fit|validate|test`: STM (VOSModule) on DAVIS/MOSE-layout data (VOSDataModule)."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """fit, validate and test; VOSModule has no predict step, so `vos predict` is not offered."""
        return {name: args for name, args in LightningCLI.subcommands().items() if name != "predict"}

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.max_objects", "model.max_objects")


def run_vos_cli(argv: Sequence[str] | None = None) -> VOSCLI:
    """`frugalseg vos fit|validate|test …`: ``argv`` holds the words after ``vos`` (None: from sys.argv).

    ``sys.argv`` is left as it is, so Lightning's DDP launcher starts the same command again; the
    warning LightningCLI gives when both ``args`` and ``sys.argv`` hold words is silenced for that.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return VOSCLI(
            VOSModule,
            VOSDataModule,
            args=list(sys.argv[2:] if argv is None else argv),
            parser_kwargs={"prog": "frugalseg vos"},
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
    if words and words[0] == "vos":
        run_vos_cli(words[1:])
        return 0
    run_lightning_cli(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
