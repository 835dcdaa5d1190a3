"""`frugalseg label …`: the pseudo-label factory on the command line."""

from __future__ import annotations

import argparse
import re
import sys

from frugalseg.autolabel.propagate import FlowPropagator, propagate_split
from frugalseg.autolabel.store import LabelStore

FORMATS = ("cityscapes", "synthetic")
ENGINES = {"flow": "available", "sam2": "not available yet"}


def _offsets(text: str) -> list[int]:
    """Parse ``-10,10`` into ``[-10, 10]``."""
    try:
        offsets = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"offsets must be comma-separated integers, got {text!r}") from err
    if not offsets or 0 in offsets:
        raise argparse.ArgumentTypeError(f"offsets must be non-zero (0 is the manual label), got {text!r}")
    return offsets


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--k must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``label`` group (``label propagate``) to the tool parser."""
    group = subparsers.add_parser("label", help="make pseudo-labels into a label store")
    commands = group.add_subparsers(dest="label_command", required=True)
    propagate = commands.add_parser(
        "propagate", help="carry the manual label of each clip's anchor frame to nearby frames"
    )
    propagate.add_argument("--format", required=True, choices=FORMATS, help="data set layout")
    propagate.add_argument("--root", required=True, help="data set folder")
    propagate.add_argument("--split", default="train", help="split to label (default: train)")
    propagate.add_argument("--out", required=True, help="label store folder (one per labelling run)")
    which = propagate.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--offsets", type=_offsets, help="comma-separated offsets from the anchor, e.g. -10,10"
    )
    which.add_argument("--k", type=_positive, help="every offset ±1…±k")
    propagate.add_argument("--engine", default="flow", help=f"propagation engine ({', '.join(ENGINES)})")
    propagate.add_argument(
        "--preset",
        default="medium",
        choices=("ultrafast", "fast", "medium"),
        help="DIS optical flow preset of the flow engine",
    )
    propagate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    # argparse takes "-10,10" for an option name; let it read as a value like "-10" does
    propagate._negative_number_matcher = re.compile(r"^-\d+(,-?\d+)*$")
    propagate.set_defaults(func=_propagate)


def _propagate(args: argparse.Namespace) -> int:
    """Run ``label propagate``; prints one summary line and returns the exit code."""
    from frugalseg.datamodules.formats import get_format

    if args.engine != "flow":
        listed = ", ".join(f"{name} ({state})" for name, state in ENGINES.items())
        state = "not available yet" if args.engine in ENGINES else "unknown"
        print(f"error: propagation engine {args.engine!r} is {state}; engines: {listed}", file=sys.stderr)
        return 2
    offsets = (
        args.offsets if args.offsets is not None else [s * o for o in range(1, args.k + 1) for s in (-1, 1)]
    )
    try:
        fmt = get_format(args.format, args.root)
        summary = propagate_split(
            fmt,
            args.split,
            LabelStore(args.out),
            offsets,
            FlowPropagator(preset=args.preset),
            progress=not args.no_progress,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"label propagate: {summary.clips} clips, {summary.written} labels written, "
        f"{summary.skipped} skipped (already in {args.out}), {summary.seconds:.1f} s"
    )
    return 0
