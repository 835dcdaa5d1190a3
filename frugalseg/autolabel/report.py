"""Quality and cost of a label store: per-offset scores against ground truth, and human hours.

Every label in the store is compared with the ground truth of its frame where the data set has
one: every frame of the synthetic streets set (``gtFine_sequence``) and of DAVIS-style data, only
the annotated frame (offset 0) of real Cityscapes. Scores are grouped by label kind and frame offset:

* **mIoU** — per class, intersection and union summed over all frames at that offset, then the
  mean over classes that occur;
* **J** — the mean IoU of the objects: for object-mask data (DAVIS) the object of every frame (a
  frame where ground truth and label both leave it out scores 1, the DAVIS convention); for
  semantic data every class present in a frame's ground truth;
* **recall@0.5 / recall@0.7** — the fraction of those objects whose IoU reaches the threshold
  (paper 003, Table 2);
* **coverage** — the fraction of pixels labelled (not 255), and **precision** — the fraction of
  labelled pixels (where ground truth exists) that agree with it.

Object-mask data are read as two-class maps (`DavisFormat`: background / object), so a sequence
with several objects is scored on their union. Ground-truth pixels marked 255 (void) are left
out. Label pixels marked 255 (unlabelled) count as *not* the class: they lower the IoU of the
class the ground truth holds there. An engine therefore cannot score by leaving hard pixels
unlabelled; how much it leaves out is reported as coverage.

The annotation cost counts the human work behind the store once per source label, with the
constants of `frugalseg.datamodules.costs`: a propagated label costs the manual label it started
from (a fine frame, or one mask per object on object-mask data), a refined coarse label its coarse
label, a clicks label its clicks (listed in the ``*_clicks.json`` beside it, else counted as the
connected groups of labelled pixels of its sparse map) plus the per-frame overhead, a boxes label
its boxes (listed in the ``*_boxes.json`` beside it; without that file it is listed as uncosted).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from frugalseg.autolabel.boxes import boxes_json_path
from frugalseg.autolabel.clicks import clicks_json_path
from frugalseg.autolabel.store import LabelStore, LabelStoreError
from frugalseg.datamodules.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.datamodules.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.datamodules.io import DataError, read_label, write_json_atomic

REPORT_FILE = "report.json"
PLOT_FILE = "quality.png"
THRESHOLDS = (0.5, 0.7)


def open_store_format(run: dict[str, Any], run_path: Path) -> tuple[str, Any]:
    """The name and reader of the data set a store was made from, rebuilt from its ``run.json``.

    Older runs record the reader's class name (``CityscapesFormat``); a folder holding the
    synthetic generator's parameters is then the synthetic set.
    """
    from frugalseg.datamodules.formats import FORMATS, get_format
    from frugalseg.datamodules.formats.synthetic import PARAMS_FILE

    name, root = run.get("format"), run.get("root")
    if not name or not root:
        raise LabelStoreError(
            f"{run_path}: lacks the data set 'format' and 'root' needed to find ground truth"
        )
    if not Path(root).is_dir():
        raise DataError(root, f"data set folder named by {run_path} does not exist")
    if name == "CityscapesFormat":
        name = "synthetic" if (Path(root) / PARAMS_FILE).is_file() else "cityscapes"
    elif name == "DavisFormat":
        name = "davis"
    if name not in FORMATS:
        raise LabelStoreError(f"{run_path}: unknown data format {name!r}; known: {', '.join(FORMATS)}")
    return name, get_format(name, root)


@dataclass
class FrameScore:
    """Counts from comparing one label map with its ground truth."""

    intersection: np.ndarray  # per class
    union: np.ndarray  # per class, over pixels with ground truth
    object_ious: list[float]
    labelled_with_truth: int


def score_frame(
    label: np.ndarray, truth: np.ndarray, num_classes: int, object_classes: Iterable[int] | None = None
) -> FrameScore:
    """Compare a label map with its ground truth (both H×W uint8, 255 = unlabelled / void).

    Args:
        object_classes: the classes scored as objects of every frame (object-mask data); None
            scores every class present in ``truth`` (semantic data).
    """
    valid = truth != IGNORE_INDEX
    predicted = np.where(label == IGNORE_INDEX, num_classes, label).astype(np.int64)
    pairs = truth[valid].astype(np.int64) * (num_classes + 1) + predicted[valid]
    confusion = np.bincount(pairs, minlength=num_classes * (num_classes + 1)).reshape(
        num_classes, num_classes + 1
    )
    intersection = np.diagonal(confusion).copy()
    union = confusion.sum(axis=1) + confusion[:, :num_classes].sum(axis=0) - intersection
    present = confusion.sum(axis=1) > 0
    classes = list(object_classes) if object_classes is not None else np.flatnonzero(present).tolist()
    ious = [float(intersection[c] / union[c]) if union[c] else 1.0 for c in classes]
    return FrameScore(intersection, union, ious, int(confusion[:, :num_classes].sum()))


@dataclass
class _Group:
    """Running sums for one (kind, offset)."""

    num_classes: int
    labels: int = 0
    scored: int = 0
    pixels: int = 0
    labelled: int = 0
    labelled_with_truth: int = 0
    agreeing: int = 0
    intersection: np.ndarray = field(init=False)
    union: np.ndarray = field(init=False)
    object_ious: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.intersection = np.zeros(self.num_classes, np.int64)
        self.union = np.zeros(self.num_classes, np.int64)

    def add(self, label: np.ndarray, score: FrameScore | None) -> None:
        self.labels += 1
        self.pixels += label.size
        self.labelled += int((label != IGNORE_INDEX).sum())
        if score is not None:
            self.scored += 1
            self.intersection += score.intersection
            self.union += score.union
            self.object_ious += score.object_ious
            self.labelled_with_truth += score.labelled_with_truth
            self.agreeing += int(score.intersection.sum())

    def summary(self) -> dict[str, Any]:
        occurring = self.union > 0
        ious = np.asarray(self.object_ious)
        scored = self.scored > 0
        return {
            "labels": self.labels,
            "scored": self.scored,
            "objects": len(self.object_ious),
            "coverage": self.labelled / self.pixels if self.pixels else None,
            "miou": float((self.intersection[occurring] / self.union[occurring]).mean())
            if scored and occurring.any()
            else None,
            "j": float(ious.mean()) if ious.size else None,
            **{f"recall@{t}": float((ious >= t).mean()) if ious.size else None for t in THRESHOLDS},
            "precision": self.agreeing / self.labelled_with_truth if self.labelled_with_truth else None,
        }


def _ground_truth(fmt: Any, clip: Clip) -> dict[int, Path]:
    """Ground-truth label maps of the clip's frames: the anchor's fine label and any per-frame truth."""
    truth: dict[int, Path] = {}
    fine = clip.label(0, LabelKind.FINE)
    if fine is not None:
        truth[0] = fine.path
    if hasattr(fmt, "sequence_ground_truth"):
        truth.update(fmt.sequence_ground_truth(clip))
    return truth


def _listed(path: Path, key: str) -> int | None:
    """How many entries the side file ``path`` lists under ``key``; None when there is no such file."""
    if not path.is_file():
        return None
    try:
        return len(json.loads(path.read_text())[key])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(path, f"expected a JSON object with a {key!r} list ({err!r})") from err


def _count_clicks(label: np.ndarray) -> int:
    """Clicks in a sparse clicks label: its 8-connected groups of labelled pixels."""
    count, _ = cv2.connectedComponents((label != IGNORE_INDEX).astype(np.uint8), connectivity=8)
    return count - 1


class _CostLedger:
    """Human seconds behind a store, each source label counted once."""

    def __init__(self, fmt: Any, costs: AnnotationCosts) -> None:
        self.fmt = fmt
        self.costs = costs
        self.seconds: dict[str, float] = defaultdict(float)
        self.units: dict[str, int] = defaultdict(int)
        self.uncosted: dict[str, int] = defaultdict(int)
        self._seen: set[tuple[str, str, int, str]] = set()

    def add(self, record: dict[str, Any], clip: Clip, path: Path, label: np.ndarray) -> None:
        """Count the human work behind one stored label (``path``, already read as ``label``)."""
        kind = LabelKind(record["kind"])
        if kind in (LabelKind.PSEUDO, LabelKind.FINE):
            source = record["source_offset"] if kind == LabelKind.PSEUDO else record["offset"]
            if self._first(clip, source, "fine"):
                self._add_manual(clip, source)
        elif kind in (LabelKind.COARSE, LabelKind.REFINED_COARSE):
            if self._first(clip, record["source_offset"], "coarse"):
                self.seconds["coarse"] += 60 * self.costs.coarse_frame_minutes
                self.units["coarse frames"] += 1
        elif kind == LabelKind.CLICKS:
            clicks = _listed(clicks_json_path(path), "clicks")
            if clicks is None:
                clicks = _count_clicks(label)
            self.seconds["clicks"] += self.costs.clicks_seconds(clicks)
            self.units["clicks"] += clicks
            self.units["clicked frames"] += clicks > 0
        elif kind == LabelKind.BOXES and (boxes := _listed(boxes_json_path(path), "boxes")) is not None:
            self.seconds["boxes"] += self.costs.boxes_seconds(boxes)
            self.units["boxes"] += boxes
        else:
            self.uncosted[kind.value] += 1

    def _first(self, clip: Clip, offset: int, what: str) -> bool:
        key = (clip.split, clip.clip_id, offset, what)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _add_manual(self, clip: Clip, offset: int) -> None:
        """A manual label: one mask per object on object-mask data, else a dense fine frame."""
        if getattr(self.fmt, "object_classes", None) is not None:
            mask = self.fmt.mask_paths(clip.clip_id)[clip.anchor_index + offset]
            if mask is None:
                raise DataError(
                    clip.frame_path(offset), f"source frame of clip {clip.clip_id} has no manual mask"
                )
            ids = np.unique(self.fmt.read_mask(mask))
            objects = int(((ids != 0) & (ids != IGNORE_INDEX)).sum())
            self.seconds["masks"] += self.costs.masks_seconds(objects)
            self.units["object masks"] += objects
        else:
            self.seconds["fine"] += 60 * self.costs.fine_frame_minutes
            self.units["fine frames"] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "hours": sum(self.seconds.values()) / 3600,
            "seconds": dict(self.seconds),
            "units": dict(self.units),
            "uncosted_labels": dict(self.uncosted),
            "constants": self.costs.to_dict(),
        }


def evaluate_store(
    store_root: str | Path, costs: AnnotationCosts = DEFAULT_COSTS, *, progress: bool = True
) -> dict[str, Any]:
    """The quality and cost report of a label store (see the module docstring) as a JSON-ready dict."""
    store = LabelStore(store_root)
    if not store.run_path.is_file():
        raise LabelStoreError(f"{store.run_path}: not found; {store.root} is not a label store")
    try:
        run = json.loads(store.run_path.read_text())
    except json.JSONDecodeError as err:
        raise LabelStoreError(f"{store.run_path}: not valid JSON ({err})") from err
    format_name, fmt = open_store_format(run, store.run_path)
    records = store.records()
    if not records:
        raise LabelStoreError(f"{store.manifest_path}: the store holds no labels")
    num_classes = int(fmt.num_classes)
    object_classes = getattr(fmt, "object_classes", None)

    clips: dict[tuple[str, str], Clip] = {}
    for split in sorted({record["split"] for record in records}):
        clips.update(((split, clip.clip_id), clip) for clip in fmt.clips(split))
    truths: dict[tuple[str, str], dict[int, Path]] = {}
    groups: dict[tuple[str, int], _Group] = {}
    per_clip: list[dict[str, Any]] = []
    ledger = _CostLedger(fmt, costs)
    machine_seconds = 0.0
    columns = (TextColumn("scoring labels"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        for record in bar.track(records):
            key = (record["split"], record["clip_id"])
            if key not in clips:
                raise LabelStoreError(
                    f"{store.manifest_path}: clip {key[1]} ({key[0]}) is not in the data set at {fmt.root}"
                )
            clip = clips[key]
            if key not in truths:
                truths[key] = _ground_truth(fmt, clip)
            path = store.root / record["path"]
            label = read_label(path, num_classes)
            score = None
            truth_path = truths[key].get(record["offset"])
            if truth_path is not None:
                truth = read_label(truth_path, num_classes)
                if truth.shape != label.shape:
                    raise DataError(
                        path,
                        f"label size {label.shape[::-1]} differs from its ground truth's {truth.shape[::-1]}",
                    )
                score = score_frame(label, truth, num_classes, object_classes)
            group = groups.setdefault((record["kind"], record["offset"]), _Group(num_classes))
            group.add(label, score)
            per_clip.append(
                {
                    "clip_id": record["clip_id"],
                    "split": record["split"],
                    "kind": record["kind"],
                    "offset": record["offset"],
                    "coverage": float((label != IGNORE_INDEX).mean()),
                    "j": float(np.mean(score.object_ious)) if score and score.object_ious else None,
                }
            )
            ledger.add(record, clip, path, label)
            machine_seconds += float(record.get("seconds", 0.0))

    rows = [
        {"kind": kind, "offset": offset, **groups[kind, offset].summary()} for kind, offset in sorted(groups)
    ]
    return {
        "store": str(store.root),
        "format": format_name,
        "root": str(fmt.root),
        "split": run.get("split"),
        "engine": run.get("engine"),
        "settings": run.get("settings"),
        "metric": "J" if object_classes is not None else "mIoU",
        "num_classes": num_classes,
        "rows": rows,
        "per_clip": sorted(per_clip, key=lambda r: (r["kind"], r["clip_id"], r["offset"])),
        "cost": {**ledger.summary(), "machine_seconds": machine_seconds},
    }


def plot_report(report: dict[str, Any], path: str | Path) -> Path:
    """Plot quality (J or mIoU, recall@0.5/0.7, coverage) against frame offset, one line style per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    primary = "j" if report["metric"] == "J" else "miou"
    series = (
        (primary, report["metric"], "tab:blue"),
        ("recall@0.5", "recall@0.5", "tab:green"),
        ("recall@0.7", "recall@0.7", "tab:olive"),
        ("coverage", "coverage", "tab:grey"),
    )
    styles = ("-", "--", ":", "-.")
    figure, axes = plt.subplots(figsize=(7, 4))
    kinds = sorted({row["kind"] for row in report["rows"]})
    for kind, style in zip(kinds, styles * len(kinds), strict=False):
        rows = [row for row in report["rows"] if row["kind"] == kind]
        for key, name, colour in series:
            points = [(row["offset"], row[key]) for row in rows if row[key] is not None]
            if points:
                x, y = zip(*points, strict=True)
                axes.plot(x, y, style, marker="o", markersize=3, color=colour, label=f"{kind} {name}")
    axes.set_xlabel("frame offset from the manual label")
    axes.set_ylabel("score")
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower left")
    axes.set_title(f"{Path(report['store']).name}: {report['format']} {report['split']}", fontsize=10)
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        figure.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    finally:
        plt.close(figure)
        tmp.unlink(missing_ok=True)
    return path


def write_report(report: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``quality.png`` into ``out`` (atomically); returns both paths."""
    out = Path(out)
    json_path = out / REPORT_FILE
    write_json_atomic(json_path, report)
    return json_path, plot_report(report, out / PLOT_FILE)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    """Print the per-offset table and the cost in a readable form."""
    console = console or Console(width=max(Console().width, 100))
    table = Table(
        title=f"label quality — {report['store']} ({report['format']}, {report['split']})", box=box.SIMPLE
    )
    headers = ("kind", "offset", "labels", "scored", "J", "mIoU", "rec@.5", "rec@.7", "coverage", "precision")
    for name in headers:
        table.add_column(name, justify="left" if name == "kind" else "right", no_wrap=True)
    for row in report["rows"]:
        table.add_row(
            row["kind"],
            f"{row['offset']:+d}",
            str(row["labels"]),
            str(row["scored"]),
            *(_fmt(row[k]) for k in ("j", "miou", "recall@0.5", "recall@0.7", "coverage", "precision")),
        )
    console.print(table)
    cost = report["cost"]
    units = ", ".join(f"{n} {name}" for name, n in cost["units"].items()) or "no manual work"
    console.print(f"annotation cost: {cost['hours']:.2f} h of human work ({units})")
    if cost["uncosted_labels"]:
        listed = ", ".join(f"{n} {kind}" for kind, n in cost["uncosted_labels"].items())
        console.print(f"not costed (no count recorded): {listed}")
