"""`frugalseg label import|export`: annotation tools' files into label stores, and label stores back out."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from frugalseg.cli.options import typed_text
from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import FORMATS
from frugalseg.errors import ConfigError

DENSE = ("fine", "coarse", "pseudo", "refined_coarse")


def _pair(text: str) -> tuple[str, str]:
    """``tool name=class name``, as typed (`typed_text`: a tool's label ``objét`` under the C locale too)."""
    text = typed_text(text)
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected 'tool label=class', got {text!r}")
    tool_name, class_name = text.rsplit("=", 1)
    return tool_name.strip(), class_name.strip()


def register_interop(commands: argparse._SubParsersAction) -> None:
    """Add ``label import`` and ``label export`` to the ``label`` group (options added when named)."""
    commands.add_parser(
        "import",
        help="read what an annotation tool exported (CVAT, COCO, Label Studio, LabelMe, MOTS) into a label "
        "store",
        fill=_import_options,
    )
    commands.add_parser(
        "export", help="write a label store as a file an annotation tool opens", fill=_export_options
    )


def _import_options(parser: argparse.ArgumentParser) -> None:
    """``label import``'s options (the tools' formats: `frugalseg.interop.formats`, which imports torch)."""
    from frugalseg.interop.formats import READERS

    parser.add_argument(
        "file",
        help="the tool's export: an XML or JSON file, or a CVAT zip (cvat-mask: a zip or folder; labelme: "
        "a folder; mots: the folder of a subset, holding instances/ and instances/labels.txt)",
    )
    _tool_option(parser, READERS, "the tool's export format (versions read: {})")
    parser.add_argument(
        "--format", required=True, choices=list(FORMATS), help="layout of the data set annotated"
    )
    parser.add_argument("--root", required=True, help="data set folder whose frames the tool annotated")
    parser.add_argument(
        "--masks",
        help="format video: folder of its mask PNGs, recorded with the store (as label propagate takes)",
    )
    parser.add_argument(
        "--split", help="split holding those frames (default: the data set's only split, else train)"
    )
    parser.add_argument("--out", required=True, help="label store folder to write")
    parser.add_argument("--mapping", help="file of tool label → class (JSON object or 'tool = class' lines)")
    parser.add_argument(
        "--map", action="append", type=_pair, default=[], metavar="TOOL=CLASS",
        help="map one tool label to a class (repeatable; 'ignore' leaves its pixels unlabelled)",
    )  # fmt: skip
    parser.add_argument(
        "--kind", default="fine", choices=DENSE,
        help="label kind of masks and polygons (default fine; boxes are boxes, points and lines clicks)",
    )  # fmt: skip
    parser.add_argument(
        "--background",
        help="class (name or train id) of the pixels no mask or polygon covers, or 'ignore' (default: the "
        "data set's 'background' class in fine and pseudo labels whose shapes do not draw it, else ignore; "
        "ignore for COCO panoptic, whose uncovered pixels are void)",
    )
    parser.add_argument(
        "--clip",
        help="clip a video export is of (default: the one named like its video), or whose frames a file "
        "names by file name alone (Label Studio's uploads on a set of several clips)",
    )
    parser.set_defaults(func=_import)


def _tool_option(parser: argparse.ArgumentParser, registry: Mapping[str, Any], help: str) -> None:
    """``--tool``, one of ``registry``'s formats, each listed in ``help`` with its version."""
    versions = ", ".join(f"{name} {entry.format.version}" for name, entry in registry.items())
    parser.add_argument("--tool", required=True, choices=tuple(registry), help=help.format(versions))


def _export_options(export: argparse.ArgumentParser) -> None:
    """``label export``'s options."""
    from frugalseg.interop.formats import WRITERS

    export.add_argument("--store", required=True, help="label store folder (any engine, or an import)")
    _tool_option(export, WRITERS, "the tool's file format (versions written: {})")
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--clip", help="export only this clip (cvat-video holds one video)")
    export.add_argument(
        "--frames-out",
        type=Path,
        help="also write the exported frames here as image files and name them so in the file (a frame "
        "inside a video file as a PNG): the folder to serve as Label Studio's local files root",
    )
    export.set_defaults(func=_export)


def _import(args: argparse.Namespace) -> int:
    """Run ``label import``; prints one summary line."""
    from frugalseg.autolabel.store import LabelStore, check_store_apart, check_store_folder
    from frugalseg.data.formats import get_format
    from frugalseg.interop import ClassMapping, import_export, read_export, read_mapping

    check_store_apart(args.out, args.root)
    check_store_folder(args.out)
    fmt = get_format(args.format, args.root, **({"masks": args.masks} if args.masks else {}))
    names = read_mapping(args.mapping) if args.mapping else {}
    names.update(dict(args.map))
    mapping = ClassMapping(fmt.class_names, names)
    export = read_export(args.tool, args.file)
    split = args.split or fmt.default_split()
    summary = import_export(
        export, fmt, split, LabelStore(args.out), mapping,
        dense_kind=LabelKind(args.kind), background=args.background, clip=args.clip,
    )  # fmt: skip
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.written.items())) or "none"
    print(
        f"label import: {summary.frames} frames, {export.shape_count()} shapes of {args.file} → "
        f"{sum(summary.written.values())} labels ({kinds}) in {args.out}, {summary.skipped} already there"
        + (f", {len(summary.left_out)} frames left out (not in {args.root})" if summary.left_out else "")
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    """Run ``label export``; prints one summary line."""
    from frugalseg.autolabel.report import open_store_format
    from frugalseg.autolabel.store import LabelStore, check_store_apart
    from frugalseg.errors import LabelStoreError
    from frugalseg.interop import stored_frames, with_frame_files, with_object_names, write_export
    from frugalseg.interop.label_studio import LABEL_STUDIO, config_path
    from frugalseg.interop.registry import WRITERS

    if Path(args.out).is_dir():
        raise ConfigError("--out", f"{args.out} is a folder: name the file to write")
    if Path(args.out).resolve().is_relative_to(Path(args.store).resolve()):
        raise ConfigError(
            "--out", f"{args.out} lies in the store {args.store}: write the tool's file elsewhere"
        )
    store = LabelStore(args.store)
    run = store.read_run()
    _, fmt = open_store_format(run, store.run_path)
    check_store_apart(str(args.out), str(fmt.root), "--out", "the tool's file")
    if args.frames_out is not None:
        check_store_apart(str(args.frames_out), str(fmt.root), "--frames-out", "a folder for the frames")
    wanted = WRITERS[args.tool].format.suffix  # an XML had been written into x.json without a word
    if wanted and Path(args.out).suffix and Path(args.out).suffix.lower() != wanted:
        raise ConfigError("--out", f"{args.out}: --tool {args.tool} writes a {wanted} file")
    names = run.get("object_names") or {}  # an annotation session's export: the names the person gave
    named = isinstance(names, dict) and all(isinstance(own, dict) for own in names.values())
    if not named or not all(isinstance(name, str) for own in names.values() for name in own.values()):
        raise LabelStoreError(store.run_path, "object_names is not {clip: {object id: name}}")
    frames = with_object_names(stored_frames(store, fmt), names)
    if args.clip is not None:
        frames = [f for f in frames if f.clip.clip_id == args.clip]
        if not frames:
            raise ConfigError("--clip", f"{args.store} holds no labels of clip {args.clip!r}")
    given = sorted({name for own in names.values() for name in own.values()} - set(fmt.class_names))
    clips = sorted({frame.clip.clip_id for frame in frames})
    if WRITERS[args.tool].per_clip and len(clips) > 1:  # refused before a frame file is written
        raise ConfigError(
            "--clip", f"a {args.tool} file holds one video; the store has clips {', '.join(clips)}: name one"
        )
    if args.frames_out is not None:
        frames = with_frame_files(frames, args.frames_out)
    write_export(args.tool, Path(args.out), frames, [*fmt.class_names, *given])
    background = {name for name in fmt.class_names if name.lower() == "background"}
    objects = sum(name not in background for f in frames for _, name, _, _ in f.objects)
    shown = f"; the frames as image files in {args.frames_out}" if args.frames_out is not None else ""
    if args.tool == LABEL_STUDIO.name:
        shown += f"; the project's labeling config in {config_path(args.out)}"
    print(
        f"label export: {len(frames)} frames, {objects} objects of {args.store} → {args.out} ({args.tool})"
        + shown
    )
    return 0
