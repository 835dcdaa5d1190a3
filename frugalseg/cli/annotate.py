"""`frugalseg annotate …`: the annotation loop of paper 002 (``annotate simulate``)."""

from __future__ import annotations

import argparse

from frugalseg.active.annotation import POLICIES
from frugalseg.active.selection import SELECTORS

FORMATS = ("davis", "mose")


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``annotate`` group (``annotate simulate``) to the tool parser."""
    group = subparsers.add_parser(
        "annotate", help="the annotation loop: which frame to annotate next, and how"
    )
    commands = group.add_subparsers(dest="annotate_command", required=True)
    simulate = commands.add_parser(
        "simulate",
        help="run the loop with a simulated annotator on data with ground truth; write J&F-vs-hours curves",
    )
    simulate.add_argument("--format", default="davis", choices=FORMATS, help="data set layout")
    simulate.add_argument("--root", required=True, help="the data set folder")
    simulate.add_argument("--split", default=None, help="split to annotate (default: the only or first one)")
    simulate.add_argument(
        "--budget-hours", type=float, required=True, help="human hours for the whole data set (> 0)"
    )
    simulate.add_argument(
        "--frames",
        type=_names,
        default=["uniform"],
        help=f"frame selectors, comma-separated: {', '.join(SELECTORS)}",
    )
    simulate.add_argument(
        "--types",
        type=_names,
        default=["mask"],
        help=f"annotation type policies, comma-separated: {', '.join(POLICIES)}",
    )
    simulate.add_argument(
        "--seeds", type=int, default=5, help="runs of a random strategy (their mean is plotted)"
    )
    simulate.add_argument("--stride", type=int, default=1, help="use every n-th frame of each video")
    simulate.add_argument(
        "--max-frames", type=int, default=None, help="use only the first n frames of each video"
    )
    simulate.add_argument("--engine", default="flow", choices=("flow",), help="propagation engine")
    simulate.add_argument(
        "--preset",
        default="medium",
        choices=("ultrafast", "fast", "medium"),
        help="DIS preset of the flow engine",
    )
    simulate.add_argument(
        "--flow-downscale", type=int, default=1, help="compute the flow on frames shrunk n times"
    )
    simulate.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
    simulate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    simulate.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from frugalseg.active.simulate import check_budget, simulate, strategies
    from frugalseg.autolabel.propagate import FlowPropagator
    from frugalseg.data.formats import get_format
    from frugalseg.data.formats.davis import DavisFormat
    from frugalseg.errors import ConfigError

    check_budget(args.budget_hours)
    strategies(args.frames, args.types, args.seeds)
    fmt = get_format(args.format, args.root)
    if not isinstance(fmt, DavisFormat):
        raise ConfigError("format", f"the annotation loop reads DAVIS-style videos, not {fmt.name!r}")
    split = args.split or fmt.splits()[0]
    engine = FlowPropagator(preset=args.preset, downscale=args.flow_downscale)
    curves = simulate(
        fmt,
        args.out,
        split=split,
        budget_hours=args.budget_hours,
        frames=args.frames,
        types=args.types,
        seeds=args.seeds,
        stride=args.stride,
        max_frames=args.max_frames,
        engine=engine,
        progress=not args.no_progress,
    )
    for name, curve in curves["strategies"].items():
        reach = curve["hours_to_target"]
        reached = "not reached" if reach is None else f"{reach:.2f} h"
        print(
            f"{name}: J&F {curve['final_jf']:.3f} after {curve['final_hours']:.2f} h; "
            f"J&F {curves['target_jf']}: {reached}"
        )
    print(f"curves: {args.out}/curves.json, {args.out}/curves.png; labels: {args.out}/labels/")
    return 0
