"""A stand-in SAM image predictor that answers point prompts with ground-truth regions."""

from __future__ import annotations

import cv2
import numpy as np

from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import Format
from frugalseg.data.io import read_frame, read_label


class OracleSAM:
    """Stand-in predictor: the ground-truth region under the first point (grown by ``leak`` pixels).

    Records the class under the first point of every call and every call's arguments.
    """

    def __init__(
        self, truth: np.ndarray | dict[bytes, np.ndarray], leak: int = 0, fail_after: int | None = None
    ):
        self.truth = truth
        self.leak = leak
        self.fail_after = fail_after
        self.images = 0
        self.current: np.ndarray | None = None
        self.calls: list[dict] = []

    def set_image(self, image: np.ndarray) -> None:
        if self.fail_after is not None and self.images == self.fail_after:
            raise RuntimeError("killed")
        self.images += 1
        self.current = self.truth if isinstance(self.truth, np.ndarray) else self.truth[image.tobytes()]

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        x, y = (int(v) for v in point_coords[0])
        self.calls.append(
            {"points": point_coords.copy(), "class": int(self.current[y, x]), "mask_input": mask_input}
        )
        count, regions = cv2.connectedComponents(
            (self.current == self.current[y, x]).astype(np.uint8), connectivity=8
        )
        mask = (regions == regions[y, x]).astype(np.uint8)
        if self.leak:
            mask = cv2.dilate(mask, np.ones((2 * self.leak + 1,) * 2, np.uint8))
        empty = np.zeros_like(mask)
        masks = np.stack([empty, mask, empty]) if multimask_output else mask[None]
        scores = np.array([0.1, 0.9, 0.2]) if multimask_output else np.array([0.9])
        return masks.astype(np.float32), scores, np.zeros((len(scores), 256, 256), np.float32)


def oracle_for(fmt: Format, split: str, **kwargs) -> OracleSAM:
    """An `OracleSAM` that knows the fine label of the anchor frame of every clip of ``split``."""
    truths = {
        read_frame(c.frame_path(0)).tobytes(): read_label(c.label(0, LabelKind.FINE).path)
        for c in fmt.clips(split)
    }
    return OracleSAM(truths, **kwargs)
