"""`frugalseg annotate …`: the annotation loop of paper 002.

``annotate simulate`` runs it with a simulated annotator on data with ground truth; ``annotate
propose`` and ``annotate add`` serve a real person on data without: what to annotate next, and
taking in what they made; ``annotate export`` writes a session's masks as a label store, and
``annotate train-policy`` trains the learned type policy on simulated loops.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from frugalseg.active.annotation import POLICY_NAMES
from frugalseg.active.selection import SELECTORS
from frugalseg.cli.annotate_semantic import register_semantic

if TYPE_CHECKING:
    from frugalseg.active.session import AnnotationSession

FORMATS = ("davis", "mose")


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``annotate`` group (``simulate``, ``propose``, ``add``) to the tool parser."""
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
        help=f"annotation type policies, comma-separated: {', '.join(POLICY_NAMES)}",
    )
    simulate.add_argument(
        "--policy", default=None, help="weights of the 'learned' type policy (from `annotate train-policy`)"
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

    propose = commands.add_parser(
        "propose",
        help="say which frame of which video a person should annotate next, and how (no ground truth)",
    )
    _session_options(propose)
    propose.add_argument("--video", default=None, help="propose on this video only (default: any)")
    propose.add_argument(
        "--frames",
        default="uncertainty",
        help=f"frame selector: {', '.join(n for n in SELECTORS if n != 'oracle')}",
    )
    propose.add_argument(
        "--types",
        default="mask",
        help=f"annotation type policy: {', '.join(n for n in POLICY_NAMES if n != 'oracle')}",
    )
    propose.add_argument(
        "--policy", default=None, help="weights of the 'learned' type policy (from `annotate train-policy`)"
    )
    propose.add_argument("--seed", type=int, default=0, help="seed of the random selector and policy")
    propose.add_argument("--json", action="store_true", help="print the proposal as one JSON object")
    propose.set_defaults(func=_propose)

    add = commands.add_parser(
        "add", help="add a mask PNG or a clicks JSON a person made, propagate again, save the loop state"
    )
    _session_options(add)
    add.add_argument("--video", required=True, help="the video annotated")
    add.add_argument(
        "--frame", type=int, required=True, help="the frame annotated (its number in the sequence)"
    )
    made = add.add_mutually_exclusive_group(required=True)
    made.add_argument("--mask", help="PNG of object ids (palette or grey, 0 background), of the frame's size")
    made.add_argument(
        "--clicks", help='JSON {"clicks": [{"object": 1, "x": 10, "y": 20, "positive": true}, …]}'
    )
    add.add_argument(
        "--object", type=int, default=None, help="the --mask shows this one object (every non-zero pixel)"
    )
    add.add_argument(
        "--new-objects", action="store_true", help="accept object ids not annotated before (they appear here)"
    )
    add.set_defaults(func=_add)

    export = commands.add_parser(
        "export", help="write a session's current masks as a label store the datamodules train from"
    )
    export.add_argument("--state", required=True, help="the session folder")
    export.add_argument(
        "--out", required=True, help="the label store folder (a new one after more additions)"
    )
    export.set_defaults(func=_export)

    train = commands.add_parser(
        "train-policy",
        help="train the learned annotation-type policy on the loop states of `annotate simulate` runs",
    )
    train.add_argument(
        "--runs", type=_names, required=True, help="`annotate simulate` output folders, comma-separated"
    )
    train.add_argument(
        "--videos", type=_names, default=None, help="train on these videos only (default: all)"
    )
    train.add_argument(
        "--loops",
        type=_names,
        default=None,
        help="use only these loops, <frames>-<types>/seed<k>, comma-separated (default: all)",
    )
    train.add_argument("--epochs", type=int, default=200, help="passes over the samples")
    train.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    train.add_argument("--out", required=True, help="the policy's safetensors file")
    train.set_defaults(func=_train_policy)
    register_semantic(commands)


def _session_options(parser: argparse.ArgumentParser) -> None:
    """Options of a session's folder and, to start one, of its data set and engine."""
    parser.add_argument("--state", required=True, help="the session folder (made by the first `add`)")
    parser.add_argument(
        "--format", default=None, choices=FORMATS, help="data set layout (to start a session; default davis)"
    )
    parser.add_argument("--root", default=None, help="the data set folder (to start a session)")
    parser.add_argument("--split", default=None, help="split to annotate (default: the only or first one)")
    parser.add_argument("--stride", type=int, default=None, help="use every n-th frame of each video")
    parser.add_argument("--max-frames", type=int, default=None, help="use only the first n frames")
    parser.add_argument(
        "--preset", default=None, choices=("ultrafast", "fast", "medium"), help="DIS preset (default medium)"
    )
    parser.add_argument(
        "--flow-downscale",
        type=int,
        default=None,
        help="compute the flow on frames shrunk n times (default 1)",
    )


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
        policy=args.policy,
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


def _open(args: argparse.Namespace) -> AnnotationSession:
    from frugalseg.active.session import AnnotationSession

    return AnnotationSession.open(
        args.state,
        format=args.format,
        root=args.root,
        split=args.split,
        stride=args.stride,
        max_frames=args.max_frames,
        preset=args.preset,
        flow_downscale=args.flow_downscale,
    )


def _propose(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    proposal = _open(args).propose(
        video=args.video, frames=args.frames, types=args.types, seed=args.seed, policy=args.policy
    )
    if proposal is None:
        print("nothing to propose: every frame is annotated")
        return 0
    if args.json:
        print(json.dumps(asdict(proposal)))
        return 0
    count = len(proposal.objects)
    what = (
        f"object{'s' if count > 1 else ''} {', '.join(map(str, proposal.objects))}"
        if count
        else "every object on it (this declares the video's objects)"
    )
    print(f"next: {proposal.video} frame {proposal.frame} ({proposal.frame_path}): {proposal.kind} of {what}")
    print(f"why: {proposal.reason}")
    made = "--mask YOUR_MASK.png" if proposal.kind == "mask" else "--clicks YOUR_CLICKS.json"
    print(
        f"then: frugalseg annotate add --state {args.state} --video {proposal.video} "
        f"--frame {proposal.frame} {made}"
    )
    return 0


def _add(args: argparse.Namespace) -> int:
    added = _open(args).add(
        args.video,
        args.frame,
        mask=args.mask,
        clicks=args.clicks,
        object_id=args.object,
        new_objects=args.new_objects,
    )
    record = added.record
    objects = ", ".join(map(str, added.objects))
    what = (
        f"object{'s' if len(added.objects) > 1 else ''} {objects}" if objects else "no object (none visible)"
    )
    print(
        f"{added.video} frame {added.frame}: {record.kind} of {what} ({record.seconds:g} s); "
        f"{added.annotated_frames} of {added.num_frames} frames annotated, "
        f"{record.total_seconds / 3600:.3f} h in all"
    )
    print(f"current masks of every frame: {added.masks}/")
    return 0


def _export(args: argparse.Namespace) -> int:
    from frugalseg.active.session import AnnotationSession

    written = AnnotationSession.open(args.state).export(args.out)
    print(f"{written} labels written to {args.out} (train from it: data.pseudo_labels={args.out})")
    return 0


def _train_policy(args: argparse.Namespace) -> int:
    import numpy as np

    from frugalseg.active.annotation import ANNOTATION_TYPES
    from frugalseg.active.policy import FEATURES, run_samples
    from frugalseg.lightning_modules.type_policy import fit_type_gain
    from frugalseg.zoo import save_type_gain

    parts = [run_samples(run, args.videos, loops=args.loops) for run in args.runs]
    features = np.concatenate([p[0] for p in parts])
    gains = np.concatenate([p[1] for p in parts])
    videos = sorted({v for p in parts for v in p[2]})
    net = fit_type_gain(features, gains, epochs=args.epochs, seed=args.seed)
    save_type_gain(net, args.out, list(ANNOTATION_TYPES), list(FEATURES))
    mean = ", ".join(f"{k} {v:+.3f}" for k, v in zip(ANNOTATION_TYPES, gains.mean(0), strict=True))
    print(f"{len(features)} samples of {len(videos)} videos ({', '.join(videos)}); mean gain {mean}")
    print(f"policy: {args.out}")
    return 0
