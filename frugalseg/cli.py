"""`frugalseg` command line: LightningCLI for fit/validate/test/predict, argparse for the tools.

`frugalseg label …`, `frugalseg data …` and `frugalseg zoo …` are small tools with their own
parsers; every other first word goes to LightningCLI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

TOOL_COMMANDS = ("label", "data")


def _tool_parser() -> argparse.ArgumentParser:
    from frugalseg.autolabel import commands as label_commands
    from frugalseg.datamodules import commands as data_commands

    parser = argparse.ArgumentParser(prog="frugalseg", description="frugalseg tools")
    groups = parser.add_subparsers(dest="group", required=True)
    label_commands.register(groups)
    data_commands.register(groups)
    return parser


def run_tool(argv: Sequence[str]) -> int:
    """Run a `label`/`data` tool command and return its exit code."""
    args = _tool_parser().parse_args(list(argv))
    return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOL_COMMANDS:
        return run_tool(argv)
    from frugalseg.lightning_modules.cli import run_lightning_cli

    run_lightning_cli(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
