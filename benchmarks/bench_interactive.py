"""The click models by the field's click protocol: NoC@85/90 from an empty mask or a box, and corrections.

The field's simulated person (`simulated_annotator.corrective_click`) clicks the point deepest inside
the larger error region: a positive click on missed object, a negative one on spill (``--clicker deepest``:
as RITM's evaluation code clicks, `simulated_annotator.deepest_error_click`). After every click the model
answers with all the clicks so far:

- ``clicks`` starts from an empty mask (`ClickToMask.correct` with an empty current mask);
- ``box`` starts from the mask's box grown by 5 px (`ClickToMask.box`), then adds clicks.

Images and masks are paired by file stem (`paired`: a mask ``<image>_<n>`` is one of several objects of an
image, and BMP files are read, as RITM packages the classic GrabCut and Berkeley sets); a mask is 0
(background) or 255 (object), any other value ignored (the GrabCut set's 128 band). Printed per tool: NoC@85
and NoC@90 (``--max-clicks`` when never reached), the median IoU after 0, 1, 3 and 5 clicks, seconds per click
(and the share of answers over `ANSWER_BUDGET`; of each image's first answer alone too: from an empty mask a
first click's crops make it the slowest), the answers that lowered IoU by more than `WORSE_BY` (a person would
undo them), and NoC@85/90 by the object's share of the image (`SIZE_BANDS`: small objects are where
weight-free clicks fail); the JSON holds every image's IoU after each click and its object's share.

``--davis ROOT`` (one or more DAVIS-layout roots: DAVIS 2016's 0/255 masks, or DAVIS 2017's and MOSE's palette
masks, each object of them one sample named ``<clip>:<id>``) runs the same protocol on each clip's first frame
with ``--first-frames`` (or on the frames ``--frame-indices`` names), the model seeing how the frame moves
towards its neighbour (`ObjectPrior.neighbour`: the previous frame, the next for frame 0, as a session gives
it; ``--still``: single images); without it, it corrects propagated frames (issue 44, goal 2): each clip's
first ``--max-frames`` frames are propagated from frame 0's truth by the weight-free flow engine (the loop's,
at half size), every frame whose IoU lies in [0.5, 0.9] gets corrective clicks from its propagated mask
(`ClickToMask.correct`), once alone and once with the previous frame as its neighbour (what a session gives);
printed: the share reaching IoU 0.9 within 2 clicks and NoC@90, and by clip (`by_clip`: NoC@85/90, that share
and the mean IoU after 1 and 5 clicks).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_interactive.py \\
        --images ../shared/data/interactive_dev/images --masks ../shared/data/interactive_dev/masks \\
        --json /tmp/interactive.json
    PYTHONPATH=. .venv/bin/python benchmarks/bench_interactive.py --davis ../shared/data/davis_dev \\
        --davis ../shared/data/davis_hard --first-frames --json /tmp/davis_first.json
    PYTHONPATH=. .venv/bin/python benchmarks/bench_interactive.py --davis ../shared/data/davis_dev \\
        --davis ../shared/data/davis_hard --json /tmp/davis_propagated.json
"""

from __future__ import annotations

import argparse
import bisect
import json
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from provenance import provenance, provenance_line  # benchmarks/ is the script's own folder

from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.active.objects.simulation.annotation_types import neighbour_index, padded_box
from frugalseg.active.objects.simulation.simulated_annotator import (
    CorrectiveClick,
    corrective_click,
    deepest_error_click,
)
from frugalseg.active.objects.tools import max_flow
from frugalseg.active.objects.tools.click_models import (
    CLICK_MODELS,
    DEFAULT_CLICK_MODEL,
    ClickToMask,
    get_click_model,
)
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.data.io import read_frame
from frugalseg.errors import DataError

BOX_PAD = 5
REPORTED = (0, 1, 3, 5)
#: Corrections of propagated frames: the frames whose propagated IoU lies in this range, and the goal.
PROPAGATED_RANGE = (0.5, 0.9)
GOAL_CLICKS, GOAL_IOU = 2, 0.9
#: The seconds an answer may take (issue 44's goal 4); the share of answers over it is printed.
ANSWER_BUDGET = 0.3
#: A click whose answer lowers IoU by more than this is counted (a person would undo it).
WORSE_BY = 0.1
#: Upper edges of the object-size bands NoC is also given by (the object's share of the image's pixels).
SIZE_BANDS = (0.01, 0.03, 0.1, 0.3)
#: The simulated person's clickers (``--clicker``): the deepest point of the larger 8-connected error region
#: by area (`corrective_click`, the loop's annotator), or of all the missed object or all the spill, whichever
#: reaches deeper (`deepest_error_click`, as RITM's evaluation code clicks).
CLICKERS = ("largest-region", "deepest")
DEFAULT_CLICKER = "largest-region"
#: The files ``--images`` and ``--masks`` pair (the classic GrabCut set has BMP images and masks).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def iou(found: np.ndarray, truth: np.ndarray, ignore: np.ndarray) -> float:
    """IoU of two bool masks outside ``ignore`` (1 when both are empty there)."""
    union = np.count_nonzero((found | truth) & ~ignore)
    return 1.0 if union == 0 else np.count_nonzero(found & truth & ~ignore) / union


def read_truth(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(object, ignored) bool masks of a 0/255 mask file; other values are ignored."""
    values = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if values is None:
        raise SystemExit(f"cannot read the mask {path}")
    found = np.unique(values)
    if 255 not in found and not np.isin(found, (0, 128)).all():  # object ids, or 0/1: not what is read
        shown = ", ".join(str(value) for value in found[:8]) + (" …" if len(found) > 8 else "")
        raise SystemExit(f"{path}: no object (255) in a mask of values {shown}; masks are 0 and 255")
    return values == 255, (values != 0) & (values != 255)


#: (name, image, truth, ignored, what the model knows of the object or None) of one image.
Sample = tuple[str, np.ndarray, np.ndarray, np.ndarray, ObjectPrior | None]


def _by_stem(folder: Path) -> dict[str, Path]:
    """The image files in ``folder`` (`IMAGE_SUFFIXES`) by stem; two files of one stem are an error."""
    if not folder.is_dir():
        raise SystemExit(f"{folder}: no such folder")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in files:
            raise SystemExit(f"{path}: {files[path.stem].name} has the same name; which one is meant?")
        files[path.stem] = path
    return files


def _image_of(mask: str, images: dict[str, Path]) -> str | None:
    """The stem of the image a mask's stem belongs to: the same stem, or the stem and ``_<number>``."""
    if mask in images:
        return mask
    stem, _, number = mask.rpartition("_")
    return stem if number.isdigit() and stem in images else None


def paired(images: Path, masks: Path) -> Iterator[Sample]:
    """Each mask with its image, in name order; single images: nothing known.

    A mask belongs to the image of its stem or, for an image of several objects, of its stem less an
    ``_<number>`` ending (``124084_1.png``, ``124084_2.png``; RITM's layout of the classic sets): each mask
    is one sample, named by its own stem. Images and masks may be any of `IMAGE_SUFFIXES` (the GrabCut
    set's masks are BMP files). Images without a mask are skipped; a mask without its image, a mask of
    another size than its image, or no mask at all is an error naming the file or the folders.
    """
    image_files, mask_files = _by_stem(images), _by_stem(masks)
    if not mask_files:
        raise SystemExit(f"{masks}: no masks ({' '.join(IMAGE_SUFFIXES)}) for the images in {images}")
    owners = {stem: _image_of(stem, image_files) for stem in mask_files}
    pairs = {stem: (image_files[owner], mask_files[stem]) for stem, owner in owners.items() if owner}
    orphans = [mask_files[stem] for stem in mask_files if stem not in pairs]
    if orphans:
        raise SystemExit(f"{orphans[0]}: no image of it in {images} ({len(orphans)} such masks)")
    for stem, (image_path, path) in pairs.items():
        image = read_frame(image_path)
        truth, ignored = read_truth(path)
        if truth.shape != image.shape[:2]:
            size = f"a mask of {truth.shape[::-1]} for an image of {image.shape[1::-1]} (width, height)"
            raise SystemExit(f"{path}: {size}")
        yield stem, image, truth, ignored, None


def davis_clips(root: Path) -> tuple[DavisFormat, list[str]]:
    """A DAVIS-layout root (DAVIS 2016 or 2017, MOSE: `DavisFormat`) and the clips it annotates, by name."""
    try:
        data = DavisFormat(root)
    except DataError as err:
        raise SystemExit(str(err)) from err
    if not data.mask_dir.is_dir():
        raise SystemExit(f"{data.mask_dir}: no such folder (the clips' masks)")
    return data, sorted(path.name for path in data.mask_dir.iterdir() if path.is_dir())


def objects_of(ids: np.ndarray) -> list[int]:
    """The object ids of a `DavisFormat.read_mask` map (0 is background, `IGNORE_INDEX` void)."""
    return [int(obj) for obj in np.unique(ids) if obj not in (0, IGNORE_INDEX)]


def object_name(name: str, obj: int, objects: list[int]) -> str:
    """A sample's name: the frame's, with ``:<object>`` unless its clip's first mask holds object 1 alone."""
    return name if objects == [1] else f"{name}:{obj}"


def davis_frames(roots: list[Path], indices: list[int], *, still: bool) -> Iterator[Sample]:
    """Each object on frames ``indices`` of the DAVIS roots' clips, with its neighbour unless ``still``.

    The neighbour is the previous frame (the next, for frame 0), as a session gives it. A frame past a
    clip's end, without a mask, or with no object in its mask is skipped, and said so.
    """
    for root in roots:
        data, clips = davis_clips(root)
        for clip in clips:
            paths, masks = data.frame_paths(clip), data.mask_paths(clip)
            first = next((mask for mask in masks if mask is not None), None)
            named = [] if first is None else objects_of(DavisFormat.read_mask(first))  # the clip's objects
            for index in indices:
                mask = masks[index] if index < len(paths) else None
                if mask is None:
                    print(f"{clip}: no frame {index} with a mask ({len(paths)} frames)", flush=True)
                    continue
                ids = DavisFormat.read_mask(mask)
                objects = objects_of(ids)
                if not objects:
                    print(f"{clip}: no object on frame {index}", flush=True)
                    continue
                nearest = neighbour_index(index, len(paths))
                neighbour = None if still or nearest is None else read_frame(paths[nearest])
                known = None if neighbour is None else ObjectPrior(neighbour=neighbour)
                image = read_frame(paths[index])
                name = clip if indices == [0] else f"{clip}/{paths[index].stem}"
                for obj in objects:
                    yield object_name(name, obj, named), image, ids == obj, ids == IGNORE_INDEX, known


def next_click(
    clicker: str, found: np.ndarray, truth: np.ndarray, ignored: np.ndarray, clicks: list[CorrectiveClick]
) -> CorrectiveClick | None:
    """The simulated person's next click on ``found`` by the clicker named (`CLICKERS`), or None."""
    if clicker == "largest-region":
        return corrective_click(found, truth, ignore=ignored)
    return deepest_error_click(found, truth, ignore=ignored, clicked=[(c.x, c.y) for c in clicks])


def run_clicks(
    model: ClickToMask,
    image: np.ndarray,
    truth: np.ndarray,
    ignored: np.ndarray,
    *,
    start: np.ndarray | tuple[int, int, int, int],
    max_clicks: int,
    known: ObjectPrior | None = None,
    clicker: str = DEFAULT_CLICKER,
) -> tuple[list[float], list[float]]:
    """IoU after 0…``max_clicks`` clicks from ``start`` (a mask, or a box) and each answer's seconds.

    Each click is the ``clicker``'s (`CLICKERS`). Stops early once IoU reaches 0.9 or no error is left; the
    last IoU then stands for the rest.
    """
    if isinstance(start, tuple):
        began = time.perf_counter()
        found = model.box(image, start, known=known)
        seconds = [time.perf_counter() - began]
    else:
        found, seconds = start, []
    scores = [iou(found, truth, ignored)]
    clicks: list[CorrectiveClick] = []
    while len(clicks) < max_clicks and scores[-1] < GOAL_IOU:
        click = next_click(clicker, found, truth, ignored, clicks)
        if click is None:
            break
        clicks.append(click)
        began = time.perf_counter()
        if isinstance(start, tuple):
            found = model.box(image, start, clicks, known=known)
        else:
            found = model.correct(image, start, clicks, known=known)
        seconds.append(time.perf_counter() - began)
        scores.append(iou(found, truth, ignored))
    return scores + [scores[-1]] * (max_clicks + 1 - len(scores)), seconds


def noc(scores: list[float], threshold: float, max_clicks: int) -> int:
    """Clicks needed to reach ``threshold`` (``max_clicks`` when never; a box alone counts as 0 clicks)."""
    return next((n for n, score in enumerate(scores) if score >= threshold), max_clicks)


def noc_means(rows: list[list[float]], max_clicks: int) -> dict[str, float]:
    """The mean NoC@85 and NoC@90 (``noc85``, ``noc90``) of images' IoU after each click."""
    return {
        "noc85": float(np.mean([noc(s, 0.85, max_clicks) for s in rows])),
        "noc90": float(np.mean([noc(s, 0.90, max_clicks) for s in rows])),
    }


def size_band(share: float) -> str:
    """The `SIZE_BANDS` band of an object covering ``share`` of its image: "< 1%", "1%–3%", …, "≥ 30%"."""
    index = bisect.bisect_right(SIZE_BANDS, share)
    if index == 0:
        return f"< {SIZE_BANDS[0]:.0%}"
    if index == len(SIZE_BANDS):
        return f"≥ {SIZE_BANDS[-1]:.0%}"
    return f"{SIZE_BANDS[index - 1]:.0%}–{SIZE_BANDS[index]:.0%}"


def by_size(
    per_image: dict[str, list[float]], shares: dict[str, float], max_clicks: int
) -> dict[str, dict[str, float]]:
    """NoC@85/90 of the images in each `size_band`, smallest first; empty bands left out."""
    bands: dict[str, list[list[float]]] = {}
    for name, scores in sorted(per_image.items(), key=lambda item: shares[item[0]]):
        bands.setdefault(size_band(shares[name]), []).append(scores)
    return {band: {"images": len(rows), **noc_means(rows, max_clicks)} for band, rows in bands.items()}


def summary(
    per_image: dict[str, list[float]], seconds: list[float], max_clicks: int, first: list[float] | None = None
) -> dict[str, float]:
    """NoC@85/90, median (and quartiles of) IoU after `REPORTED` clicks, seconds per call, and the clicks
    whose answer lowered IoU by more than `WORSE_BY` (``answers_worse``); with ``first`` (each image's first
    answer's seconds, among ``seconds``), their mean and share over `ANSWER_BUDGET` too."""
    table = np.array(list(per_image.values()))
    row = {
        "images": len(table),
        **noc_means(table.tolist(), max_clicks),
        "seconds_per_click": float(np.mean(seconds)) if seconds else 0.0,
        "seconds_per_click_p90": float(np.quantile(seconds, 0.9)) if seconds else 0.0,
        "share_over_answer_budget": float(np.mean(np.array(seconds) > ANSWER_BUDGET)) if seconds else 0.0,
        "answers_worse": int((np.diff(table, axis=1) < -WORSE_BY).sum()),
    }
    if first:
        row["first_answer_seconds"] = float(np.mean(first))
        row["first_answer_share_over_budget"] = float(np.mean(np.array(first) > ANSWER_BUDGET))
    for clicks in REPORTED:
        if clicks <= max_clicks:
            quartiles = np.quantile(table[:, clicks], [0.25, 0.5, 0.75])
            row[f"iou@{clicks}"] = float(quartiles[1])
            row[f"iou@{clicks}_quartiles"] = [float(quartiles[0]), float(quartiles[2])]  # type: ignore[assignment]
    return row


def by_clip(per_frame: dict[str, list[float]], max_clicks: int) -> dict[str, dict[str, float]]:
    """Per clip (a frame is named ``clip/index``): frames, NoC@85/90, the share at IoU 0.9 within 2 clicks,
    and the mean IoU after 1 and 5 clicks (where reached)."""
    clips: dict[str, list[list[float]]] = {}
    for name, scores in sorted(per_frame.items()):
        clips.setdefault(name.split("/")[0], []).append(scores)
    table: dict[str, dict[str, float]] = {}
    for clip, rows in clips.items():
        cell = {
            "frames": len(rows),
            **noc_means(rows, max_clicks),
            "within_2_clicks": float(np.mean([noc(s, GOAL_IOU, max_clicks) <= GOAL_CLICKS for s in rows])),
        }
        for clicks in (1, 5):
            if clicks <= max_clicks:
                cell[f"mean_iou@{clicks}"] = float(np.mean([s[clicks] for s in rows]))
        table[clip] = cell
    return table


def protocol(
    model: ClickToMask,
    samples: Iterator[Sample],
    tools: list[str],
    max_clicks: int,
    every: int,
    clicker: str = DEFAULT_CLICKER,
) -> dict[str, dict[str, object]]:
    """Each tool's IoU per image after each click and its summary (module docstring)."""
    results: dict[str, dict[str, list[float]]] = {tool: {} for tool in tools}
    seconds: dict[str, list[float]] = {tool: [] for tool in tools}
    first: dict[str, list[float]] = {tool: [] for tool in tools}  # each image's first answer
    shares: dict[str, float] = {}
    for number, (name, image, truth, ignored, known) in enumerate(samples):
        if number % every:
            continue
        shares[name] = float(np.count_nonzero(truth)) / truth.size
        for tool in tools:
            start = padded_box(truth, BOX_PAD) if tool == "box" else np.zeros_like(truth)
            scores, spent = run_clicks(
                model, image, truth, ignored, start=start, max_clicks=max_clicks, known=known, clicker=clicker
            )
            results[tool][name], seconds[tool] = scores, seconds[tool] + spent
            first[tool] += spent[:1]
        line = "  ".join(f"{tool} {noc(results[tool][name], 0.9, max_clicks):2d}" for tool in tools)
        print(f"{name}: NoC@90 {line}", flush=True)
    return {
        tool: {
            "summary": {
                **summary(results[tool], seconds[tool], max_clicks, first[tool]),
                "by_size": by_size(results[tool], shares, max_clicks),
            },
            "iou": results[tool],
            "object_share": shares,
        }
        for tool in tools
    }


def propagated_frames(
    data: DavisFormat, clip: str, max_frames: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """A clip's first ``max_frames`` frames, object-id truths and masks flow-propagated from frame 0's."""
    paths, masks = data.frame_paths(clip)[:max_frames], data.mask_paths(clip)[:max_frames]
    missing = next((path for path, mask in zip(paths, masks, strict=True) if mask is None), None)
    if missing is not None:
        raise SystemExit(f"{missing}: no mask of this frame; corrections need every frame's truth")
    frames = [read_frame(path) for path in paths]
    truths = [DavisFormat.read_mask(mask) for mask in masks if mask is not None]
    first = np.where(truths[0] == IGNORE_INDEX, 0, truths[0])
    engine = get_loop_engine("flow", downscale=2)
    return frames, truths, engine.propagate(frames, {0: first}).masks


def corrections(
    model: ClickToMask,
    roots: list[Path],
    max_frames: int,
    max_clicks: int,
    every: int,
    clicker: str = DEFAULT_CLICKER,
) -> dict[str, object]:
    """Goal 2 of issue 44 (module docstring): propagated frames corrected, alone and with their neighbour."""
    per_frame: dict[str, dict[str, list[float]]] = {"alone": {}, "with the previous frame": {}}
    seconds: dict[str, list[float]] = {"alone": [], "with the previous frame": []}
    first: dict[str, list[float]] = {"alone": [], "with the previous frame": []}  # each frame's first answer
    for root in roots:
        data, clips = davis_clips(root)
        for clip in clips:
            frames, truths, masks = propagated_frames(data, clip, max_frames)
            low, high = PROPAGATED_RANGE
            objects = objects_of(truths[0])
            chosen = [
                (t, obj)
                for t in range(1, len(frames))
                for obj in objects
                if low <= iou(masks[t] == obj, truths[t] == obj, truths[t] == IGNORE_INDEX) <= high
            ][::every]
            for t, obj in chosen:
                moving = ObjectPrior(neighbour=frames[t - 1])
                for variant, prior in (("alone", None), ("with the previous frame", moving)):
                    scores, spent = run_clicks(
                        model,
                        frames[t],
                        truths[t] == obj,
                        truths[t] == IGNORE_INDEX,
                        start=masks[t] == obj,
                        max_clicks=max_clicks,
                        known=prior,
                        clicker=clicker,
                    )
                    name = object_name(f"{clip}/{t:05d}", obj, objects)
                    per_frame[variant][name], seconds[variant] = scores, seconds[variant] + spent
                    first[variant] += spent[:1]
            print(f"{clip}: {len(chosen)} frames in {PROPAGATED_RANGE}", flush=True)
    out: dict[str, object] = {}
    for variant, table in per_frame.items():
        row = summary(table, seconds[variant], max_clicks, first[variant])
        reached = [noc(scores, GOAL_IOU, max_clicks) <= GOAL_CLICKS for scores in table.values()]
        row["share_within_2_clicks"] = float(np.mean(reached)) if reached else 0.0
        row["by_clip"] = by_clip(table, max_clicks)  # type: ignore[assignment]
        out[variant] = {"summary": row, "iou": table}
    return out


def show(results: dict[str, object]) -> None:
    """Print each tool's (or variant's) summary: NoC, median IoU after `REPORTED` clicks, seconds."""
    for tool, result in results.items():
        row = result["summary"]  # type: ignore[index]
        ious = " / ".join(f"{row[f'iou@{n}']:.3f}" for n in REPORTED if f"iou@{n}" in row)
        reached = row.get("share_within_2_clicks")
        share = "" if reached is None else f"; IoU 0.9 within 2 clicks: {reached:.3f}"
        first = ""
        if "first_answer_seconds" in row:
            first = (
                f"; an image's first {row['first_answer_seconds']:.2f} s, "
                f"{row['first_answer_share_over_budget']:.1%} over"
            )
        print(
            f"{tool}: {row['images']} {'frames' if share else 'images'}; NoC@85 {row['noc85']:.2f}, "
            f"NoC@90 {row['noc90']:.2f}{share}; median IoU after {', '.join(map(str, REPORTED))} clicks: "
            f"{ious}; {row['seconds_per_click']:.2f} s per answer (90th percentile "
            f"{row['seconds_per_click_p90']:.2f}; {row['share_over_answer_budget']:.1%} over "
            f"{ANSWER_BUDGET} s{first}); {row['answers_worse']} "
            f"answer{'' if row['answers_worse'] == 1 else 's'} lowered IoU by over {WORSE_BY}"
        )
        if "by_size" in row:
            bands = "; ".join(
                f"{band}: {cell['images']}, {cell['noc85']:.2f} / {cell['noc90']:.2f}"
                for band, cell in row["by_size"].items()
            )
            print(f"  by the object's share of the image (images, NoC@85 / NoC@90): {bands}")
        if "by_clip" in row:
            print("  by clip (frames; NoC@85 / NoC@90; IoU 0.9 within 2 clicks; mean IoU after 1 / 5 clicks)")
            for clip, cell in row["by_clip"].items():
                after = " / ".join(f"{cell[key]:.3f}" for key in ("mean_iou@1", "mean_iou@5") if key in cell)
                print(
                    f"    {clip}: {cell['frames']}; {cell['noc85']:.2f} / {cell['noc90']:.2f}; "
                    f"{cell['within_2_clicks']:.3f}; {after}"
                )


def main() -> None:
    """Run the protocol the arguments name; print the summaries and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="folder of images")
    parser.add_argument("--masks", type=Path, help="folder of 0/255 masks named as the images")
    parser.add_argument("--davis", type=Path, action="append", nargs="+", help="DAVIS-layout roots")
    parser.add_argument("--first-frames", action="store_true", help="with --davis: the clips' first frames")
    parser.add_argument(
        "--frame-indices", default="0", help="with --first-frames: these frames of each clip instead"
    )
    parser.add_argument("--still", action="store_true", help="with --first-frames: no neighbouring frame")
    parser.add_argument("--json", type=Path, required=True, help="where to write every IoU")
    parser.add_argument("--max-clicks", type=int, default=20)
    parser.add_argument("--tools", default="clicks,box", help="comma-separated: clicks, box")
    parser.add_argument("--model", default=DEFAULT_CLICK_MODEL, choices=sorted(CLICK_MODELS))
    parser.add_argument("--max-frames", type=int, default=40, help="--davis: frames propagated per clip")
    parser.add_argument("--every", type=int, default=1, help="use every n-th image or frame (a quick look)")
    parser.add_argument(
        "--clicker",
        default=DEFAULT_CLICKER,
        choices=CLICKERS,
        help="the simulated person: the larger error region's deepest point, or RITM's (`CLICKERS`)",
    )
    args = parser.parse_args()
    max_flow.prepare()  # numba's compiler before the first answer is timed
    model = get_click_model(args.model)
    tools = [tool for tool in args.tools.split(",") if tool]
    roots = [root for group in args.davis or [] for root in group]
    if not args.first_frames and (args.still or args.frame_indices != "0"):
        parser.error("--frame-indices and --still go with --davis … --first-frames")
    started = time.perf_counter()
    if roots and not args.first_frames:
        results = corrections(model, roots, args.max_frames, args.max_clicks, args.every, args.clicker)
    elif roots:
        indices = [int(index) for index in args.frame_indices.split(",")]
        samples = davis_frames(roots, indices, still=args.still)
        results = protocol(model, samples, tools, args.max_clicks, args.every, args.clicker)
    elif args.images and args.masks:
        samples = paired(args.images, args.masks)
        results = protocol(model, samples, tools, args.max_clicks, args.every, args.clicker)
    else:
        parser.error("give --images and --masks, or --davis")
    elapsed = time.perf_counter() - started
    show(results)
    print(f"{elapsed:.0f} s; {provenance_line()}")
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "model": model.settings, "seconds": elapsed}
    args.json.write_text(
        json.dumps({**record, "provenance": provenance(), "results": results}), encoding="utf-8"
    )


if __name__ == "__main__":
    main()
