"""`frugalseg data …`: inspect data set folders, and download the public sets that allow it."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from frugalseg.cli.options import positive
from frugalseg.data.check import check_dataset
from frugalseg.data.clips import Clip
from frugalseg.data.download import MARKER, SOURCES, download
from frugalseg.data.formats import FORMATS, Format, formats_like
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group (``data check``, ``data download``) to the tool parser."""
    group = subparsers.add_parser("data", help="inspect data sets, download public ones")
    commands = group.add_subparsers(dest="data_command", required=True)
    check = commands.add_parser("check", help="list every problem in a data set in one pass")
    check.add_argument("root", help="data set folder")
    check.add_argument(
        "--format",
        default="auto",
        choices=["auto", *FORMATS],
        help="on-disk layout (default: detected from the folder)",
    )
    check.add_argument(
        "--masks",
        help="the folder of a video's (or frame folder's) object masks, as `annotate --masks` and data.masks "
        "take it (format video; default: Annotations/<clip>/ beside the clips)",
    )
    check.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    check.set_defaults(func=_check)
    _register_download(commands)


def _register_download(commands: argparse._SubParsersAction) -> None:
    """``data download NAME --root DIR``; the names and their notes come from the registry (`SOURCES`)."""
    lines = ["data sets (official sources; each under its own terms):"]
    for source in SOURCES.values():
        how = "" if source.direct else " [files fetched by hand first]"
        terms = f" ({source.terms})" if source.terms else ""
        lines.append(f"  {source.name:<8} {source.title}{how}: {source.page}{terms}")
    download_parser = commands.add_parser(
        "download",
        help="download a public data set from its official source, verify and extract it",
        description="Download NAME into ROOT/downloads (resuming a broken download), check its size and\n"
        "sha256, and extract it into ROOT/NAME in the layout its --format reads. A second run finds\n"
        "ROOT/NAME and does nothing. Where no checksum is published, the computed sha256 is printed.",
        epilog="\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    download_parser.add_argument("name", choices=list(SOURCES), help="the data set")
    download_parser.add_argument("--root", required=True, help="folder that gets NAME/ and downloads/")
    download_parser.add_argument(
        "--remove-archives", action="store_true", help="delete the downloaded files once extracted"
    )
    download_parser.add_argument(
        "--timeout", type=positive, default=60.0, help="seconds to wait for the server"
    )
    download_parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    download_parser.set_defaults(func=_download)


def _check(args: argparse.Namespace) -> int:
    """Print each problem and a summary; exit code 1 when there are errors, 0 with warnings only.

    A set of frames only (no clip has its manual label: a person's frames, a video) is no error: it is
    said in one line.
    """
    console = Console(stderr=True)
    clips: list[Clip] = []
    masked, objects = False, True
    with Progress(console=console, transient=True, disable=args.no_progress) as progress:

        def on_clips(fmt: Format, found: list[Clip]):
            nonlocal masked, objects
            clips.extend(found)
            masked = any(clip.labels or fmt.ground_truth(clip) for clip in found)
            objects = isinstance(fmt, DavisFormat)  # object masks (DAVIS, MOSE, a video); else class maps
            task = progress.add_task(f"checking {args.root}", total=len(found))
            return lambda: progress.advance(task)

        options = {} if args.masks is None else {"masks": args.masks}
        name = None if args.format == "auto" else args.format
        if args.masks is not None and name is None:
            like = formats_like(args.root, "video") if Path(args.root).is_dir() else []
            if like:  # it had been read as a folder of videos, and "held no video files"
                raise ConfigError(
                    "--masks",
                    f"gives the masks of a folder of frames or a video; {args.root} is a {like[0]} data set, "
                    "whose labels it holds: check it without --masks",
                )
            name = "video"  # masks of their own folder are the video format's option
        problems = check_dataset(args.root, name, on_clips, **options)
    if clips and not masked:
        problems = [problem for problem in problems if not problem.missing_label or problem.own_files]
        # an IDD tree before createLabels.py, say, lacks class maps, not a first frame's mask
        said = "(the class map of its annotated frame): `fit`, `validate` and `label` need them"
        if objects:
            said = "(the first frame's mask): `annotate` and `label` take it; `vos fit` and J&F scores need"
            said += " the masks"
        print(f"note: {args.root}: frames only, none of its {len(clips)} clip(s) has its manual label {said}")
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


def _download(args: argparse.Namespace) -> int:
    """Download a data set with a progress bar per file; print where it is and how to read it."""
    source = SOURCES[args.name]
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True, disable=args.no_progress) as progress:

        def on_file(name: str, total: int | None, done: int):
            task = progress.add_task(name, total=total, completed=done)
            return lambda n: progress.advance(task, n)

        result = download(
            source, args.root, on_file=on_file, timeout=args.timeout, remove_archives=args.remove_archives
        )
    if not result.created:
        how = "" if (result.folder / MARKER).is_file() else " (not written by this command; left as it is)"
        print(f"{source.title} is already in {result.folder}{how}: nothing to do")
    else:
        print(f"{source.title} is in {result.folder}")
    for sub in source.roots:
        folder = result.folder / sub if sub else result.folder
        print(f"  read it with: --format {source.format} --root {folder}")
    return 0
