"""`frugalseg data …`: inspect data set folders."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import Progress

from frugalseg.data.check import check_dataset
from frugalseg.data.formats import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group (``data check``) to the tool parser."""
    group = subparsers.add_parser("data", help="inspect data sets")
    commands = group.add_subparsers(dest="data_command", required=True)
    check = commands.add_parser("check", help="list every problem in a data set in one pass")
    check.add_argument("root", help="data set folder")
    check.add_argument(
        "--format",
        default="auto",
        choices=["auto", *FORMATS],
        help="on-disk layout (default: detected from the folder)",
    )
    check.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    """Print each problem and a summary; exit code 1 when there are errors, 0 with warnings only."""
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=args.no_progress) as progress:

        def on_clips(total: int):
            task = progress.add_task(f"checking {args.root}", total=total)
            return lambda: progress.advance(task)

        problems = check_dataset(args.root, None if args.format == "auto" else args.format, on_clips)
    for problem in problems:
        print(problem)
    errors = sum(not problem.warning for problem in problems)
    warnings = len(problems) - errors
    if errors:
        print(f"{errors} problem(s) and {warnings} warning(s) found in {args.root}")
        return 1
    if warnings:
        print(f"no problems found in {args.root} ({warnings} warning(s))")
    else:
        print(f"no problems found in {args.root}")
    return 0
