"""`frugalseg annotate semantic`: the semantic annotation loop of paper 000 (HVSA) with a simulated annotator.

On a data set with ground truth on every frame (the synthetic streets set), each video is annotated
in 3 iterations of: choose samples (frames, rectangles or superpixels) by a selector, label them
from the ground truth, charge their polygon clicks, fine-tune a student on the video, predict every
frame. Writes the quality of the generated labels against clicks % (``curves.json``,
``curves.png``), the Table-3-style summary, the generated labels as label stores and a contact
sheet of each (`frugalseg.active.semantic.simulate`). A rerun into the same ``--out`` resumes; its
curves hold every strategy finished there, the earlier runs' too (it names those).

``--config FILE`` reads option values from a YAML mapping whose keys are the options' names with
underscores (``budget_clicks_percent: [5, 10]``); options after it on the command line override it.
The defaults are the paper's settings: HRNet-W48, 15 epochs per iteration at an initial rate of
0.004 (SGD, momentum 0.9, poly), λ = 1, batches of 2 frames, 3 iterations, 40-pixel rectangles;
``configs/annotate/hvsa_paper.yaml`` holds them with the paper's granularities, selectors and budgets.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalseg.active.semantic.samples import GRANULARITIES, SAMPLE_SELECTORS
from frugalseg.cli.options import ACCELERATORS, count_option, gpu_missing, non_negative, positive, seed_option
from frugalseg.errors import ConfigError, DataError


def _words(text: str) -> list[str]:
    words = [part.strip() for part in text.split(",") if part.strip()]
    if not words:
        raise argparse.ArgumentTypeError(f"expected comma-separated values, got {text!r}")
    return words


def _numbers(text: str) -> list[float]:
    try:
        return [float(word) for word in _words(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def _budgets(text: str) -> list[float]:
    """Click budgets in % of labelling every frame: each in 0 < b ≤ 100."""
    budgets = _numbers(text)
    wrong = [b for b in budgets if not 0 < b <= 100]
    if wrong:
        raise argparse.ArgumentTypeError(f"each budget must lie in 0 < b ≤ 100 (%), got {wrong[0]:g}")
    return budgets


def _scale(text: str) -> float:
    """A frame scale in 0 < s ≤ 1 (frames are shrunk, never enlarged)."""
    value = positive(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must lie in 0 < scale ≤ 1 (0.5 halves each side), got {value:g}")
    return value


#: The library's option names in the loop's errors → this command's flags.
_FLAGS = {
    "budget": "--budget-clicks-percent",
    "frames": "--max-frames",
    "clips": "--clips",
    "size": "--rect-size",
    "selector": "--selectors",
    "scale": "--scale",
    "iterations": "--iterations",
    "out": "--out",
}


class _ConfigFile(argparse.Action):
    """``--config FILE``: set every option the YAML file names, as if given here on the command line.

    A name that is no file here but a shipped config (``configs/annotate/hvsa_paper.yaml``) reads that one.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        import yaml  # type: ignore[import-untyped]

        from frugalseg.cli.configs import shipped_config

        path = Path(str(values))
        path = path if path.is_file() else shipped_config(str(values)) or path
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            parser.error(f"--config {path}: cannot read it ({err})")
        if not isinstance(data, dict):
            parser.error(f"--config {path}: expected a mapping of option names to values")
        actions = {action.dest: action for action in parser._actions if action.dest != "config"}
        unknown = sorted(set(data) - set(actions))
        if unknown:
            parser.error(f"--config {path}: unknown option(s) {', '.join(unknown)}")
        for key, value in data.items():
            setattr(namespace, key, _config_value(parser, path, actions[key], value))


def _config_value(parser: argparse.ArgumentParser, path: Path, action: argparse.Action, value: Any) -> Any:
    """A ``--config`` file's value as its option's would be on the command line: its type and choices.

    A list is its comma-separated words (``[frame, superpixel]`` as ``frame,superpixel``); a flag takes
    true or false; null is the default of an option without one (``max_frames: null``: every frame).
    """
    option = action.option_strings[-1]
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            parser.error(f"--config {path}: {action.dest}: true or false (the flag {option}), got {value!r}")
        return value
    if value is None:
        if action.default is not None:  # an option that always has a value
            parser.error(f"--config {path}: {action.dest} ({option}): expected a value, got null")
        return None
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    try:
        parsed = action.type(text) if callable(action.type) else text
    except (argparse.ArgumentTypeError, ValueError, TypeError) as err:
        parser.error(f"--config {path}: {action.dest} ({option}): {err}")
    if action.choices is not None and parsed not in action.choices:
        choices = ", ".join(map(str, action.choices))
        parser.error(f"--config {path}: {action.dest} ({option}): {parsed!r} is not one of {choices}")
    return parsed


def register_semantic(commands: argparse._SubParsersAction) -> None:
    """Add ``annotate semantic`` to the ``annotate`` group."""
    parser = commands.add_parser(
        "semantic",
        help="the semantic loop of paper 000 (frames / rectangles / superpixels, fine-tuning) with a "
        "simulated annotator; write mIoU-vs-clicks curves and the generated labels",
    )
    semantic_options(parser)


def semantic_options(parser: argparse.ArgumentParser) -> None:
    """``annotate semantic``'s options (`frugalseg annotate` adds them when the command is named)."""
    parser.add_argument("--config", action=_ConfigFile, help="YAML file of option values (see the docs)")
    parser.add_argument(
        "--format",
        default=None,
        help="data set format, ground truth on every frame (default: the layout --root has; without "
        "--root the synthetic set)",
    )
    parser.add_argument("--root", default=None, help="the data set folder")
    parser.add_argument("--split", default=None, help="split to annotate (default: the first)")
    parser.add_argument(
        "--clips",
        type=_words,
        default=None,
        help="clip ids, comma-separated, one per video (default: all; clips of the same frames: one video)",
    )
    parser.add_argument("--max-clips", type=count_option, default=None, help="use only the first n videos")
    parser.add_argument(
        "--max-frames", type=count_option, default=None, help="use only the first n frames of a clip"
    )
    parser.add_argument(
        "--scale", type=_scale, default=1.0, help="shrink frames and labels by this factor (0 < s ≤ 1)"
    )
    parser.add_argument(
        "--granularities",
        type=_words,
        default=["frame"],
        help=f"sample granularities, comma-separated: {', '.join(GRANULARITIES)}",
    )
    parser.add_argument(
        "--rect-size", type=count_option, default=40, help="side of a rectangle sample, in pixels"
    )
    parser.add_argument(
        "--segments", type=count_option, default=100, help="about how many superpixels per frame"
    )
    parser.add_argument(
        "--selectors",
        type=_words,
        default=["diversity"],
        help=f"sample selectors, comma-separated: {', '.join(SAMPLE_SELECTORS)}",
    )
    parser.add_argument(
        "--budget-clicks-percent",
        type=_budgets,
        default=[10.0],
        help="click budgets, %% of labelling every frame fully, comma-separated (one loop each)",
    )
    parser.add_argument(
        "--iterations", type=count_option, default=3, help="the budget is split equally over these"
    )
    parser.add_argument(
        "--seed", type=seed_option, default=0, help="seed of the random selector and of training"
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip flow propagation of the labelled frames"
    )
    parser.add_argument(
        "--student",
        default="hrnetv2_w48",
        help="zoo student fine-tuned on each video (a single-frame semantic one)",
    )
    parser.add_argument("--init-weights", default=None, help="its initial weights (name, file or URL)")
    parser.add_argument("--epochs", type=count_option, default=15, help="fine-tuning epochs per iteration")
    parser.add_argument("--lr", type=positive, default=0.004, help="initial SGD rate of each iteration")
    parser.add_argument("--temporal-weight", type=non_negative, default=1.0, help="λ of the temporal loss")
    parser.add_argument("--batch-size", type=count_option, default=2, help="frames per fine-tuning batch")
    parser.add_argument("--accelerator", default="auto", choices=ACCELERATORS, help="Lightning accelerator")
    parser.add_argument("--sheet-frames", type=count_option, default=8, help="frames on each contact sheet")
    parser.add_argument("--out", default=None, help="output folder (a rerun resumes it)")
    parser.set_defaults(func=_semantic)


def _chosen_split(fmt: Any, split: str | None) -> str:
    """``split``, or the first split; a root without any split of the layout is refused."""
    found = fmt.splits()
    if not found:
        raise DataError(
            fmt.root,
            f"no split of the {fmt.name} layout found, so no frames to annotate (--format {fmt.name})",
        )
    return split or found[0]


def _chosen_clips(
    fmt: Any, split: str, names: list[str] | None, most: int | None, max_frames: int | None
) -> list[Any]:
    """The clips of ``split`` to annotate, one per video: those ``names`` names (checked), ``most`` at most.

    Clips reading the same frames are one video (`distinct_videos`); naming two of them is refused.
    """
    from frugalseg.active.semantic.simulate import distinct_videos

    clips = fmt.clips(split)
    if not clips:
        raise ConfigError("--split", f"split {split!r} of {fmt.root} holds no clip to annotate")
    if names is not None:
        named = {clip.clip_id: clip for clip in clips}
        missing = [name for name in names if name not in named]
        if missing:
            raise ConfigError("clips", f"no clip {missing[0]!r} in split {split!r} of {fmt.root}")
        clips = [named[name] for name in names]
    videos = distinct_videos(clips, max_frames)
    if names is not None and len(videos) < len(clips):
        again = next(clip for clip in clips if clip not in videos)
        raise ConfigError(
            "--clips", f"{again.clip_id} reads the same frames as another clip named: name one clip per video"
        )
    return videos[:most]


def _check_student(name: str) -> None:
    """Refuse a student the loop cannot fine-tune: unknown, multi-frame (video) or object segmentation."""
    from frugalseg.zoo import list_models, model_config

    usable = [model for model in list_models(task="semantic") if model_config(model).num_frames == 1]
    if name in usable:
        return
    if name not in list_models():
        problem = f"unknown model {name!r}"
    elif model_config(name).task != "semantic":
        problem = f"{name} is an object-segmentation model"
    else:
        problem = f"{name} is a {model_config(name).num_frames}-frame video model"
    raise ConfigError(
        "--student", f"{problem}; the loop fine-tunes single-frame semantic students: {', '.join(usable)}"
    )


def _check_choices(option: str, what: str, names: Sequence[str], choices: Sequence[str]) -> None:
    """Refuse the first of ``names`` not among ``choices`` (given on the command line or in ``--config``)."""
    for name in names:
        if name not in choices:
            raise ConfigError(option, f"unknown {what} {name!r}; choose from {', '.join(choices)}")


def _report(loop: Any) -> None:
    """One line per finished loop: its strategy, budget, video, mIoU and clicks (and the flow baseline).

    Clicks over the budget are said: every iteration labels one sample at least.
    """
    last = loop.history[-1]
    budget = loop.config.budget_percent
    over = ""
    if last.clicks_percent > budget:
        over = f" (over the {budget:g} %: a sample per iteration at least)"
    base = "" if last.baseline is None else f"; flow propagation mIoU {last.baseline.miou:.3f}"
    print(
        f"{loop.config.name} b{budget:g} {loop.video.name}: "
        f"mIoU {last.quality.miou:.3f} at {last.clicks_percent:.2f} % clicks{over}{base}",
        flush=True,
    )


def _semantic(args: argparse.Namespace) -> int:
    """Run ``annotate semantic``; an error the loop names by its own option names this command's flag."""
    try:
        return _run_semantic(args)
    except ConfigError as err:
        if err.option not in _FLAGS:
            raise
        raise ConfigError(_FLAGS[err.option], err.problem) from err


def _run_semantic(args: argparse.Namespace) -> int:
    from frugalseg.active.semantic.samples import Granularity
    from frugalseg.active.semantic.simulate import configs, simulate_semantic
    from frugalseg.autolabel.store import check_store_apart
    from frugalseg.data.formats import detect_format, get_format
    from frugalseg.lightning_modules.semantic_learner import FineTuningLearner

    if args.out is None:
        raise ConfigError("out", "--out is required (on the command line or in --config)")
    if gpu_missing(args.accelerator):  # Lightning says so after the data are read, in a traceback
        raise ConfigError(
            "--accelerator",
            f"{args.accelerator!r}, but this machine has no CUDA GPU torch can use: give cpu (or auto)",
        )
    if args.root is None:  # the synthetic street clips the demo trains on, made once into the cache
        if args.format not in (None, "synthetic"):
            raise ConfigError("root", f"--format {args.format} reads a data set: give its folder as --root")
        from frugalseg.data.formats.synthetic import default_synthetic_root, generate_synthetic_streets

        args.root, args.format = generate_synthetic_streets(default_synthetic_root()), "synthetic"
        print(f"no --root: the synthetic street clips in {args.root}", file=sys.stderr)
    check_store_apart(args.out, args.root)  # the label stores never go into the data set
    _check_student(args.student)
    _check_choices("--granularities", "sample granularity", args.granularities, GRANULARITIES)
    _check_choices("--selectors", "sample selector", args.selectors, tuple(SAMPLE_SELECTORS))
    granularities = [
        Granularity(name, size=args.rect_size, segments=args.segments) for name in args.granularities
    ]
    loop_configs = configs(
        granularities,
        args.selectors,
        args.budget_clicks_percent,
        iterations=args.iterations,
        seed=args.seed,
        baseline=not args.no_baseline,
    )
    fmt = get_format(args.format or detect_format(args.root), args.root)
    clips = _chosen_clips(fmt, _chosen_split(fmt, args.split), args.clips, args.max_clips, args.max_frames)
    learner = FineTuningLearner(
        student=args.student,
        num_classes=fmt.num_classes,
        init_weights=args.init_weights,
        epochs=args.epochs,
        lr=args.lr,
        temporal_weight=args.temporal_weight,
        batch_size=args.batch_size,
        seed=args.seed,
        trainer_args={"accelerator": args.accelerator},
    )

    data, loops = simulate_semantic(
        fmt,
        clips,
        args.out,
        loop_configs,
        learner,
        max_frames=args.max_frames,
        scale=args.scale,
        report=_report,
    )
    _contact_sheets(Path(args.out), loops, fmt.palette, args.sheet_frames)
    _report_earlier(data, loops, args.out)
    for row in data["table3"]:
        best = row["cheapest"]
        reached = (
            "not reached"
            if best is None
            else f"{best['strategy']} at {best['clicks_percent']:.2f} % clicks (mIoU {best['miou']:.3f})"
        )
        print(f"mIoU {row['miou']:.2f}: {reached}")
    print(f"curves: {args.out}/curves.json, {args.out}/curves.png; labels: {args.out}/labels/")
    return 0


def _report_earlier(data: dict[str, Any], loops: Sequence[Any], out: str) -> None:
    """Name the strategies and budgets the curves hold that earlier runs into ``out`` finished."""
    ran = {(loop.config.name, loop.config.budget_percent) for loop in loops}
    earlier = {
        f"{name} b{point['budget_percent']:g}"
        for name, strategy in data["strategies"].items()
        for point in strategy["points"]
        if (name, point["budget_percent"]) not in ran
    }
    if earlier:
        print(f"the curves also hold {', '.join(sorted(earlier))}, finished in {out} by an earlier run")


def _contact_sheets(out: Path, loops: Sequence[Any], palette: Sequence[Sequence[int]], frames: int) -> None:
    """``labels/<store>_contact_sheet.png``: frame | generated-label overlay pairs, spread over the videos."""
    import numpy as np

    from frugalseg.active.semantic.simulate import store_name
    from frugalseg.data.io import write_png_atomic
    from frugalseg.lightning_modules.prediction_writer import colorize, contact_sheet

    colours = np.asarray(palette, np.uint8)
    by_store: dict[str, list[Any]] = {}
    for loop in loops:
        by_store.setdefault(store_name(loop.config), []).append(loop)
    for name, runs in by_store.items():
        shown = [(loop, t) for loop in runs for t in range(len(loop.labels))]
        picks = sorted({round(i * (len(shown) - 1) / max(1, frames - 1)) for i in range(max(1, frames))})
        pairs = []
        for loop, t in (shown[i] for i in picks):
            frame = loop.video.frames[t]
            overlay = (0.5 * frame + 0.5 * colorize(loop.labels[t], colours)).astype(np.uint8)
            pairs.append((frame, overlay))
        write_png_atomic(out / "labels" / f"{name}_contact_sheet.png", contact_sheet(pairs))
