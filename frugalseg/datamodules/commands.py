"""`frugalseg data …` tools."""

from __future__ import annotations

import argparse

from frugalseg.datamodules.check import check_dataset
from frugalseg.datamodules.formats import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group (``data check``) to the tool parser."""
    group = subparsers.add_parser("data", help="inspect data sets")
    commands = group.add_subparsers(dest="data_command", required=True)
    check = commands.add_parser("check", help="list every problem in a data set in one pass")
    check.add_argument("root", help="data set folder")
    check.add_argument("--format", default="cityscapes", choices=FORMATS, help="on-disk layout")
    check.add_argument(
        "--num-classes", type=int, default=19, help="label values must lie below this (or be 255)"
    )
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    """Print each problem and a summary; exit code 1 when there are problems, else 0."""
    problems = check_dataset(args.root, args.format, args.num_classes)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) found in {args.root}")
        return 1
    print(f"no problems found in {args.root}")
    return 0
