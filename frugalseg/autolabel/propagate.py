"""Propagating the manual label of the anchor frame to its neighbours, and writing them to a store.

`FlowPropagator` is the weight-free engine (OpenCV DIS flow, CPU only). `propagate_split` runs any
engine over the clips of a dataset split and writes the results to a `LabelStore`, resuming where a
killed run stopped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from frugalseg.autolabel.store import LabelStore
from frugalseg.datamodules.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.datamodules.io import DataError, read_frame, read_label
from frugalseg.flow import DISFlow, backward_warp_np, forward_backward_mask_np


class PropagationEngine(Protocol):
    """What `propagate_split` needs from an engine."""

    name: str

    @property
    def settings(self) -> dict[str, Any]: ...

    def propagate(
        self,
        frames: Sequence[np.ndarray],
        anchor_index: int,
        anchor_label: np.ndarray,
        targets: Sequence[int],
    ) -> dict[int, np.ndarray]: ...


class FlowPropagator:
    """Carry a label to nearby frames by chained backward warping along DIS optical flow.

    For a target one step further from the anchor (frame ``t+1`` after ``t``, or ``t−1`` before it)
    the flow from the target to the nearer frame is computed and the nearer frame's label is sampled
    at ``p + flow(p)`` with nearest sampling. A pixel becomes 255 (ignore) where its sample lands
    outside the frame or the flows in both directions fail the forward-backward check (occlusion,
    bad match) or, with ``photo_tol``, where the frame's grey level differs from the nearer frame's at
    the sample point by more than ``photo_tol`` (disoccluded pixels that the smooth flow filled
    with a neighbour's motion pass the forward-backward check but land on the wrong texture);
    255 is carried along, so an unreliable pixel stays unreliable further down the chain.
    Each consecutive flow is computed once per clip, and only between the anchor and the farthest
    target on each side.

    Re-sampling the label at every step was kept over composing the flows and sampling the anchor
    label once: on 3 synthetic streets clips (no photometric check) re-sampling agrees with the
    ground truth on 98.8 % of the labelled pixels at ±10 against 98.2 % for composition, at the same
    coverage, and needs no warps of an accumulated flow.

    Args:
        preset: DIS preset (``ultrafast``, ``fast``, ``medium``).
        fb_alpha, fb_beta: tolerance of the forward-backward check (Sundaram et al. 2010).
        downscale: compute the flow on frames shrunk by this factor (speed on large frames).
        photo_tol: largest grey-level difference (0–255) at a reliable pixel; None turns the
            check off. On 3 synthetic streets clips it lifts agreement at ±10 from 98.8 % to 99.8 %
            of the labelled pixels, for a coverage of 90 % instead of 93 %.
    """

    name = "flow"

    def __init__(
        self,
        preset: str = "medium",
        fb_alpha: float = 0.01,
        fb_beta: float = 0.5,
        downscale: int = 1,
        photo_tol: float | None = 16.0,
    ) -> None:
        self.flow = DISFlow(preset=preset, downscale=downscale)
        self.fb_alpha = fb_alpha
        self.fb_beta = fb_beta
        self.photo_tol = photo_tol

    @property
    def settings(self) -> dict[str, Any]:
        """The settings recorded in the manifest and ``run.json``."""
        return {
            "preset": self.flow.preset,
            "fb_alpha": self.fb_alpha,
            "fb_beta": self.fb_beta,
            "downscale": self.flow.downscale,
            "photo_tol": self.photo_tol,
        }

    def propagate(
        self,
        frames: Sequence[np.ndarray],
        anchor_index: int,
        anchor_label: np.ndarray,
        targets: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Labels for the frames at indices ``targets`` (uint8, 255 where unreliable).

        Args:
            frames: the clip's frames, H×W×3 uint8 RGB, in time order.
            anchor_index: index in ``frames`` of the annotated frame.
            anchor_label: its H×W uint8 label (255 = ignore).
            targets: indices in ``frames`` to label; the anchor itself gets a copy of its label.
        """
        if not 0 <= anchor_index < len(frames):
            raise ValueError(f"anchor index {anchor_index} outside the {len(frames)} frames given")
        if anchor_label.shape != frames[anchor_index].shape[:2] or anchor_label.dtype != np.uint8:
            raise ValueError(
                f"anchor label of shape {anchor_label.shape} and dtype {anchor_label.dtype} does not "
                f"fit a frame of shape {frames[anchor_index].shape} (expected H×W uint8)"
            )
        bad = [t for t in targets if not 0 <= t < len(frames)]
        if bad:
            raise ValueError(f"target indices {bad} outside the {len(frames)} frames given")
        wanted = set(targets)
        results: dict[int, np.ndarray] = {}
        if anchor_index in wanted:
            results[anchor_index] = anchor_label.copy()
        for step, farthest in (
            (1, max(wanted, default=anchor_index)),
            (-1, min(wanted, default=anchor_index)),
        ):
            label = anchor_label
            for near in range(anchor_index, farthest, step):
                label = self._step(label, frames[near], frames[near + step])
                if near + step in wanted:
                    results[near + step] = label
        return results

    def _step(self, near_label: np.ndarray, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """The label of frame ``far`` sampled from its neighbour ``near``, 255 where unreliable."""
        flow_far_near = self.flow(far, near)
        flow_near_far = self.flow(near, far)
        label = backward_warp_np(near_label, flow_far_near, nearest=True, fill=IGNORE_INDEX)
        # Samples landing outside the frame fail this check too (their round trip reads NaN).
        reliable = forward_backward_mask_np(flow_far_near, flow_near_far, self.fb_alpha, self.fb_beta)
        if self.photo_tol is not None:
            grey_near = cv2.cvtColor(near, cv2.COLOR_RGB2GRAY).astype(np.float32)
            grey_far = cv2.cvtColor(far, cv2.COLOR_RGB2GRAY).astype(np.float32)
            sampled = backward_warp_np(grey_near, flow_far_near, nearest=False, fill=0)
            reliable &= np.abs(sampled - grey_far) <= self.photo_tol
        label[~reliable] = IGNORE_INDEX
        return label


@dataclass
class PropagationSummary:
    """What one `propagate_split` call did."""

    clips: int
    written: int
    skipped: int
    seconds: float


def _check_clip(clip: Clip, offsets: Sequence[int]) -> None:
    """Raise before anything is written if ``clip`` lacks a frame that ``offsets`` need."""
    for offset in offsets:
        index = clip.anchor_index + offset
        if not 0 <= index < len(clip.frames):
            lo, hi = -clip.anchor_index, len(clip.frames) - 1 - clip.anchor_index
            raise DataError(
                clip.frames[clip.anchor_index],
                f"clip {clip.clip_id} ({clip.split}): offset {offset:+d} "
                f"lies outside the clip, which has {len(clip.frames)} frames (offsets {lo:+d}…{hi:+d})",
            )
    for index in range(clip.anchor_index + min(0, *offsets), clip.anchor_index + max(0, *offsets) + 1):
        if not clip.frames[index].is_file():
            raise DataError(
                clip.frames[index],
                f"frame of clip {clip.clip_id} missing (needed to propagate to "
                f"offsets {min(offsets):+d}…{max(offsets):+d})",
            )


def propagate_split(
    fmt: Any,
    split: str,
    store: LabelStore,
    offsets: Sequence[int],
    engine: PropagationEngine,
    *,
    progress: bool = True,
) -> PropagationSummary:
    """Write ``pseudo`` labels at ``offsets`` for every clip of ``split`` that has a fine label at offset 0.

    Labels already recorded in ``store`` are skipped, so a killed run resumes where it stopped.
    Every clip is checked (offsets inside the clip, frames present) before anything is written.

    Args:
        fmt: a dataset format (`frugalseg.datamodules.formats.get_format`): ``clips(split)`` and
            ``num_classes``.
        split: the split to label.
        store: where the labels go; its ``run.json`` gets (or must already hold) the engine, its
            settings, the format's name and root, and the split.
        offsets: non-zero offsets from the anchor frame.
        engine: the propagation engine (`FlowPropagator`).
        progress: show a rich progress bar.
    """
    offsets = sorted(set(offsets))
    if not offsets or 0 in offsets:
        raise ValueError(f"offsets must be non-empty and non-zero (0 is the manual label), got {offsets}")
    clips = [clip for clip in fmt.clips(split) if clip.label(0, LabelKind.FINE) is not None]
    for clip in clips:
        _check_clip(clip, offsets)
    store.open_run(
        {
            "engine": engine.name,
            "settings": engine.settings,
            "split": split,
            "format": getattr(fmt, "name", type(fmt).__name__),
            "root": str(getattr(fmt, "root", "")),
        }
    )
    start = time.perf_counter()
    written = skipped = 0
    columns = (
        TextColumn("propagating {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("clips"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(split, total=len(clips))
        for clip in clips:
            todo = [o for o in offsets if not store.has(clip.clip_id, o, LabelKind.PSEUDO, split=clip.split)]
            skipped += len(offsets) - len(todo)
            if todo:
                written += _propagate_clip(clip, todo, store, engine, getattr(fmt, "num_classes", None))
            bar.advance(task)
    return PropagationSummary(
        clips=len(clips), written=written, skipped=skipped, seconds=time.perf_counter() - start
    )


def _propagate_clip(
    clip: Clip, todo: list[int], store: LabelStore, engine: PropagationEngine, num_classes: int | None
) -> int:
    """Propagate the fine label of ``clip`` to the offsets ``todo`` and write them; returns the count."""
    start = time.perf_counter()
    first = min(0, *todo)
    frames = [read_frame(clip.frame_path(o)) for o in range(first, max(0, *todo) + 1)]
    anchor_label = read_label(clip.label(0, LabelKind.FINE).path, num_classes)
    labels = engine.propagate(frames, -first, anchor_label, [o - first for o in todo])
    seconds = (time.perf_counter() - start) / len(todo)
    for offset in todo:
        store.write(
            clip,
            offset,
            LabelKind.PSEUDO,
            labels[offset - first],
            engine=engine.name,
            settings=engine.settings,
            source_offset=0,
            seconds=seconds,
        )
    return len(todo)
