"""Quality and cost of a label store: per-offset scores against ground truth, and human hours.

Every label in the store is compared with the ground truth of its frame where the data set has
one: every frame of the synthetic streets set (``gtFine_sequence``) and of DAVIS-style data, only
the annotated frame (offset 0) of real Cityscapes. Scores are grouped by label kind and frame offset
(for a store an annotation session or loop wrote, `LEDGER_ENGINES`, the offset from the annotated frame
each label came from, its record's ``source_offset``; elsewhere from the clip's anchor):

* **mIoU** — per class, intersection and union summed over all frames at that offset, then the
  mean over classes that occur;
* **J** — the mean IoU of the objects: for object-mask data (DAVIS) the object of every frame (a
  frame where ground truth and label both leave it out scores 1, the DAVIS convention); for
  semantic data every class present in a frame's ground truth;
* **recall@0.5 / recall@0.7** — the fraction of those objects whose IoU reaches the threshold
  (paper 003, Table 2);
* **coverage** — the fraction of pixels labelled (not 255), and **precision** — the fraction of
  labelled pixels (where ground truth exists) that agree with it;
* **confidence** — for labels stored with a confidence map (`frugalseg.autolabel.store.confidence_path`,
  written by engines that make one), the mean confidence of their pixels, with or without ground
  truth; where ground truth exists, **wrong@low10** / **wrong@high10** — the share of wrong pixels
  (label ≠ ground truth, 255 counted wrong) among the 10 % least / most confident pixels of each
  frame with ground truth (pixels pooled over the frames of the offset). A useful map has
  wrong@low10 well above wrong@high10.

Object-mask data are read as two-class maps (`DavisFormat`: background / object), so a sequence
with several objects is scored on their union. Ground-truth pixels marked 255 (void) are left
out. Label pixels marked 255 (unlabelled) count as *not* the class: they lower the IoU of the
class the ground truth holds there. An engine therefore cannot score by leaving hard pixels
unlabelled; how much it leaves out is reported as coverage.

The annotation cost counts the human work behind the store once per source label, with the
constants of `frugalseg.data.costs`: a propagated label costs the manual label it started
from (a fine frame, or one mask per object on object-mask data), a refined coarse label its coarse
label, a clicks label its clicks (listed in the ``*_clicks.json`` beside it, else counted as the
connected groups of labelled pixels of its sparse map) plus the per-frame overhead, a boxes label
its boxes (listed in the ``*_boxes.json`` beside it; without that file it is listed as uncosted). A
pseudo-label that is its own source (a model's label imported as it is) is listed as uncosted too: no
manual label of the store is behind it (it had been costed as a drawn mask).
A store an annotation session or loop wrote (`LEDGER_ENGINES`, the semantic loop's too) books the human
seconds spent on each label in its record's ``seconds`` (0 for a propagated frame), so its cost is
their sum, per label kind, and its units (object masks of its ``fine`` labels, clicks, clicked
frames, boxes) are counted as above; its records hold no machine time (``machine_seconds`` None).
"""

from __future__ import annotations

import inspect
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from frugalseg.autolabel.boxes import boxes_json_path
from frugalseg.autolabel.clicks import clicks_json_path
from frugalseg.autolabel.store import (
    LEDGER_ENGINES,
    LabelStore,
    check_recorded_label,
    check_store_frames,
    confidence_path,
    instances_path,
)
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind, LabelRef
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.data.formats import FORMATS, Format, SyntheticFormat, get_format
from frugalseg.data.io import imread, read_label, write_json_atomic
from frugalseg.errors import DataError, LabelStoreError

REPORT_FILE = "report.json"
PLOT_FILE = "quality.png"
THRESHOLDS = (0.5, 0.7)


def open_store_format(run: dict[str, Any], run_path: Path) -> tuple[str, Format]:
    """The name and reader of the data set a store was made from, rebuilt from its ``run.json``.

    Only reads: a store naming the synthetic format over a folder without generated data is an
    error, never a reason to generate it. Older runs record the reader's class name
    (``CityscapesFormat``, ``DavisFormat``).
    """
    name, root = run.get("format"), run.get("root")
    if not isinstance(name, str) or not isinstance(root, str) or not name or not root:
        raise LabelStoreError(run_path, "lacks the data set 'format' and 'root' needed to find ground truth")
    if not Path(root).exists():
        raise DataError(root, f"data set folder named by {run_path} does not exist")
    legacy = {"CityscapesFormat": "cityscapes", "DavisFormat": "davis"}
    name = legacy.get(name, name)
    if name == "cityscapes" and SyntheticFormat.looks_like(Path(root)):
        name = "synthetic"
    if name not in FORMATS:
        raise LabelStoreError(run_path, f"unknown data format {name!r}; known: {', '.join(FORMATS)}")
    accepted = inspect.signature(FORMATS[name]).parameters
    options = {key: value for key, value in run.items() if key in accepted and key != "root"}
    return name, get_format(name, root, **options)


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
        label: the H×W uint8 label map to score (255 = unlabelled).
        truth: its H×W uint8 ground truth (255 = void).
        num_classes: the number of classes; train ids are 0…num_classes − 1.
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
    confident_labels: int = 0  # labels with a confidence map
    confidence_sum: float = 0.0  # sum over those labels of their mean confidence
    tail_pixels: list[int] = field(default_factory=lambda: [0, 0])  # least / most confident, counted
    tail_wrong: list[int] = field(default_factory=lambda: [0, 0])  # of which wrong

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

    def add_confidence(
        self, confidence: np.ndarray, label: np.ndarray, truth: np.ndarray | None, tail: float = 0.1
    ) -> None:
        """Count a label's confidence map (float 0…1).

        With ground truth, also count the wrong pixels among its ``tail`` least and most confident
        pixels that have ground truth.
        """
        self.confident_labels += 1
        self.confidence_sum += float(confidence.mean())
        if truth is None:
            return
        valid = truth != IGNORE_INDEX
        values = confidence[valid]
        count = int(values.size * tail)
        if count == 0:
            return
        wrong = (label[valid] != truth[valid])[np.argsort(values, kind="stable")]
        self.tail_pixels[0] += count
        self.tail_pixels[1] += count
        self.tail_wrong[0] += int(wrong[:count].sum())
        self.tail_wrong[1] += int(wrong[-count:].sum())

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
            "confident_labels": self.confident_labels,
            "confidence": self.confidence_sum / self.confident_labels if self.confident_labels else None,
            "wrong@low10": self.tail_wrong[0] / self.tail_pixels[0] if self.tail_pixels[0] else None,
            "wrong@high10": self.tail_wrong[1] / self.tail_pixels[1] if self.tail_pixels[1] else None,
        }


def _listed(path: Path, key: str) -> int | None:
    """How many entries the side file ``path`` lists under ``key``; None when there is no such file."""
    if not path.is_file():
        return None
    try:
        return len(json.loads(path.read_text(encoding="utf-8"))[key])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(path, f"expected a JSON object with a {key!r} list ({err!r})") from err


def _count_clicks(label: np.ndarray) -> int:
    """Clicks in a sparse clicks label: its 8-connected groups of labelled pixels."""
    count, _ = cv2.connectedComponents((label != IGNORE_INDEX).astype(np.uint8), connectivity=8)
    result: int = count - 1
    return result


class _CostLedger:
    """Human seconds behind a store, each source label counted once.

    ``booked``: the records' ``seconds`` are the human seconds of each label (`LEDGER_ENGINES`): their
    sum is the cost, the units are counted from the labels alone.
    """

    def __init__(self, fmt: Format, costs: AnnotationCosts, *, booked: bool = False) -> None:
        self.fmt = fmt
        self.costs = costs
        self.booked = booked
        self.seconds: dict[str, float] = defaultdict(float)
        self.units: dict[str, int] = defaultdict(int)
        self.uncosted: dict[str, int] = defaultdict(int)
        self._seen: set[tuple[str, str, int, str]] = set()

    def add(self, record: dict[str, Any], clip: Clip, path: Path, label: np.ndarray) -> None:
        """Count the human work behind one stored label (``path``, already read as ``label``)."""
        kind = LabelKind(record["kind"])
        if self.booked:
            self._add_booked(kind, float(record.get("seconds") or 0.0), clip, record["offset"], path, label)
        elif kind == LabelKind.PSEUDO and record.get("source_offset") == record["offset"]:
            # a model's label imported as it is (`label import`): no manual label of this store behind it
            self.uncosted[kind.value] += 1
        elif kind in (LabelKind.PSEUDO, LabelKind.FINE):
            source = record["source_offset"] if kind == LabelKind.PSEUDO else record["offset"]
            if self._first(clip, source, "fine"):
                self._add_manual(clip, source, path, label)
        elif kind in (LabelKind.COARSE, LabelKind.REFINED_COARSE):
            if self._first(clip, record["source_offset"], "coarse"):
                self.seconds["coarse"] += 60 * self.costs.coarse_frame_minutes
                self.units["coarse frames"] += 1
        elif kind == LabelKind.CLICKS:
            clicks = self._add_clicks(path, label)
            self.seconds["clicks"] += self.costs.clicks_seconds(clicks)
        elif kind == LabelKind.BOXES and (boxes := _listed(boxes_json_path(path), "boxes")) is not None:
            self.seconds["boxes"] += self.costs.boxes_seconds(boxes)
            self.units["boxes"] += boxes
        else:
            self.uncosted[kind.value] += 1

    def _add_booked(
        self, kind: LabelKind, seconds: float, clip: Clip, offset: int, path: Path, label: np.ndarray
    ) -> None:
        """A label of a store that books its human ``seconds``: those, and the units the label shows."""
        self.seconds[kind.value] += seconds
        if kind == LabelKind.FINE:
            what, count = self._manual_units(clip, offset, path, label)
            self.units[what] += count
        elif kind == LabelKind.CLICKS:
            self._add_clicks(path, label)
        elif kind == LabelKind.BOXES:
            self.units["boxes"] += _listed(boxes_json_path(path), "boxes") or 0
        elif kind == LabelKind.PSEUDO and seconds > 0 and self.fmt.object_classes:
            self.units["partly annotated frames"] += 1  # a person's work on some objects, the others carried

    def _add_clicks(self, path: Path, label: np.ndarray) -> int:
        """Count the clicks of a clicks label (its ``*_clicks.json``, else its sparse map) and its frame."""
        clicks = _listed(clicks_json_path(path), "clicks")
        if clicks is None:
            clicks = _count_clicks(label)
        self.units["clicks"] += clicks
        self.units["clicked frames"] += clicks > 0
        return clicks

    def _first(self, clip: Clip, offset: int, what: str) -> bool:
        key = (clip.split, clip.clip_id, offset, what)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _add_manual(self, clip: Clip, offset: int, path: Path, label: np.ndarray) -> None:
        """A manual label: one mask per object on object-mask data, else a dense fine frame."""
        what, count = self._manual_units(clip, offset, path, label)
        if what == "object masks":
            self.seconds["masks"] += self.costs.masks_seconds(count)
        else:
            self.seconds["fine"] += 60 * self.costs.fine_frame_minutes
        self.units[what] += count

    def _manual_units(self, clip: Clip, offset: int, path: Path, label: np.ndarray) -> tuple[str, int]:
        """A manual label's work: (``object masks``, one per object) on object-mask data, else a fine frame.

        The objects are those of the stored label's instance map (what a person drew in an annotation
        tool and imported, or a session booked), else the data set's at the anchor, else the label's
        connected object regions less specks (`object_regions`). An import at the anchor counted the data
        set's objects, not its own.
        """
        if not self.fmt.object_classes:
            return "fine frames", 1
        own = instances_path(path)
        ids = imread(own, cv2.IMREAD_UNCHANGED) if own.is_file() else None
        if ids is None and offset == 0:
            ids = self.fmt.instance_ids(clip)
        if ids is None:
            return "object masks", object_regions(np.isin(label, self.fmt.object_classes))
        return "object masks", int(np.count_nonzero(np.unique(ids)))

    def summary(self) -> dict[str, Any]:
        return {
            "hours": sum(self.seconds.values()) / 3600,
            "seconds": dict(self.seconds),
            "units": dict(self.units),
            "uncosted_labels": dict(self.uncosted),
            "booked": self.booked,
            "constants": self.costs.to_dict(),
        }


#: A connected region under this share of the frame's pixels (41 px at 854×480) is a speck, not an object.
SPECK_SHARE = 1e-4


def object_regions(objects: np.ndarray) -> int:
    """The object masks a label without instance ids holds: its connected object regions, specks left out.

    A mask exported through a tool and imported back (a propagated object's stray pixels, a polygon's
    rasterisation) carries pieces of a few pixels beside the object, each of which had been costed as an
    object mask a person drew (80 s). A region under `SPECK_SHARE` of the frame is not counted (one at
    least is, where the label has object pixels): a small object beside a large one still is.
    """
    count, _, stats, _ = cv2.connectedComponentsWithStats(objects.astype(np.uint8))
    areas = stats[1:count, cv2.CC_STAT_AREA]
    if not areas.size:
        return 0
    return max(1, int(np.count_nonzero(areas >= SPECK_SHARE * objects.size)))


def read_confidence(label_path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The confidence map (float32 in 0…1) stored beside a label, or None when it has none."""
    path = confidence_path(label_path)
    if not path.is_file():
        return None
    image = imread(path, cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 2 or image.dtype != np.uint8:
        raise DataError(path, "not an 8-bit single-channel PNG confidence map")
    if image.shape != shape:
        raise DataError(
            path, f"confidence map size {image.shape[::-1]} differs from its label's {shape[::-1]}"
        )
    return image.astype(np.float32) / 255.0


def _clips_of(fmt: Format, records: list[dict[str, Any]]) -> dict[tuple[str, str], Clip]:
    """The clips of every split the records name, by (split, clip id); those without ground truth too.

    Args:
        fmt: the data set's reader.
        records: the store's manifest records.
    """
    clips: dict[tuple[str, str], Clip] = {}
    for split in sorted({record["split"] for record in records}):
        clips.update(((split, clip.clip_id), clip) for clip in fmt.clips(split, labelled=False))
    return clips


def _read_truth(fmt: Format, ref: LabelRef | None, path: Path, label: np.ndarray) -> np.ndarray | None:
    """The ground truth of a stored label's frame, or None when the frame has none.

    Args:
        fmt: the data set's reader.
        ref: the ground truth of the label's frame, or None.
        path: the stored label's file (named in the error).
        label: the stored label, already read.

    Raises:
        DataError: the ground truth's size differs from the label's.
    """
    if ref is None:
        return None
    truth = fmt.read_label(ref)
    if truth.shape != label.shape:
        raise DataError(
            path, f"label size {label.shape[::-1]} differs from its ground truth's {truth.shape[::-1]}"
        )
    return truth


@dataclass
class _Tally:
    """What scoring a store accumulates: sums per (kind, offset), a row per label, the human and machine cost.

    Attributes:
        num_classes: classes of the data set.
        object_classes: the object classes of object-mask data, None for semantic data.
        ledger: the human cost of the labels added; when it is ``booked`` (the records' seconds are
            human seconds) the labels are grouped by their offset from their source label, and no
            machine time is summed.
        groups: running sums per (kind, offset).
        per_clip: one row per label (clip, kind, offset, source offset, coverage, J, mean confidence).
        machine_seconds: the engine's time behind the labels added, from their records.
    """

    num_classes: int
    object_classes: tuple[int, ...] | None
    ledger: _CostLedger
    groups: dict[tuple[str, int], _Group] = field(default_factory=dict)
    per_clip: list[dict[str, Any]] = field(default_factory=list)
    machine_seconds: float = 0.0

    def add(
        self, record: dict[str, Any], clip: Clip, path: Path, label: np.ndarray, truth: np.ndarray | None
    ) -> None:
        """Score one stored label (``path``, read as ``label``) and count its cost.

        Args:
            record: its manifest record.
            clip: its clip.
            path: its file, beside which a confidence map may lie.
            label: the label map.
            truth: the ground truth of its frame, or None.
        """
        score = None if truth is None else score_frame(label, truth, self.num_classes, self.object_classes)
        offset = record["offset"] - record["source_offset"] if self.ledger.booked else record["offset"]
        group = self.groups.setdefault((record["kind"], offset), _Group(self.num_classes))
        group.add(label, score)
        confidence = read_confidence(path, label.shape)
        if confidence is not None:
            group.add_confidence(confidence, label, truth)
        self.per_clip.append(
            {
                "clip_id": record["clip_id"],
                "split": record["split"],
                "kind": record["kind"],
                "offset": record["offset"],
                "source_offset": record.get("source_offset"),
                "coverage": float((label != IGNORE_INDEX).mean()),
                "j": float(np.mean(score.object_ious)) if score and score.object_ious else None,
                "confidence": float(confidence.mean()) if confidence is not None else None,
            }
        )
        self.ledger.add(record, clip, path, label)
        self.machine_seconds += float(record.get("seconds", 0.0))

    def rows(self) -> list[dict[str, Any]]:
        """The summary of each (kind, offset), in that order."""
        return [
            {"kind": kind, "offset": offset, **self.groups[kind, offset].summary()}
            for kind, offset in sorted(self.groups)
        ]


def evaluate_store(
    store_root: str | Path, costs: AnnotationCosts = DEFAULT_COSTS, *, progress: bool = True
) -> dict[str, Any]:
    """The quality and cost report of a label store (see the module docstring) as a JSON-ready dict."""
    store = LabelStore(store_root)
    run = store.read_run()
    format_name, fmt = open_store_format(run, store.run_path)
    records = store.records()
    if not records:
        raise LabelStoreError(store.manifest_path, "the store holds no labels")
    clips = _clips_of(fmt, records)
    keys = [(r, (r["split"], r["clip_id"])) for r in records]
    check_store_frames(store, run, fmt, [(r, clips[key]) for r, key in keys if key in clips])
    truths: dict[tuple[str, str], dict[int, LabelRef]] = {}
    ledger = _CostLedger(fmt, costs, booked=run.get("engine") in LEDGER_ENGINES)
    tally = _Tally(fmt.num_classes, fmt.object_classes or None, ledger)
    columns = (TextColumn("scoring labels"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        for record in bar.track(records):
            key = (record["split"], record["clip_id"])
            if key not in clips:
                raise LabelStoreError(
                    store.manifest_path, f"clip {key[1]} ({key[0]}) is not in the data set at {fmt.root}"
                )
            if key not in truths:
                truths[key] = fmt.ground_truth(clips[key])
            path = store.root / record["path"]
            check_recorded_label(path, store.root)
            label = read_label(path, tally.num_classes)
            truth = _read_truth(fmt, truths[key].get(record["offset"]), path, label)
            tally.add(record, clips[key], path, label, truth)
    return {
        "store": str(store.root),
        "format": format_name,
        "root": str(fmt.root),
        "split": run.get("split"),
        "engine": run.get("engine"),
        "settings": run.get("settings"),
        "metric": "J" if tally.object_classes is not None else "mIoU",
        "num_classes": tally.num_classes,
        "rows": tally.rows(),
        "per_clip": sorted(tally.per_clip, key=lambda r: (r["kind"], r["clip_id"], r["offset"])),
        "cost": {
            **tally.ledger.summary(),
            "machine_seconds": None if tally.ledger.booked else tally.machine_seconds,
        },
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
        ("confidence", "confidence", "tab:purple"),
    )
    styles = ("-", "--", ":", "-.")
    figure, axes = plt.subplots(figsize=(7, 4))
    kinds = sorted({row["kind"] for row in report["rows"]})
    for kind, style in zip(kinds, styles * len(kinds), strict=False):
        rows = [row for row in report["rows"] if row["kind"] == kind]
        for key, name, colour in series:
            points = [(row["offset"], row.get(key)) for row in rows if row.get(key) is not None]
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
