"""Human annotation time of each kind of label, in one place.

The defaults are the figures the papers work with: 90 minutes for a dense manual label of a
Cityscapes frame and 7 for a coarse one (Cityscapes paper, quoted by paper 001); 80 seconds to draw
one object mask on one frame, 1.5 seconds per click plus 1 second once per clicked frame to find the
object, and 7 seconds per bounding box (paper 002 and the EVA-VOS code). Propagated labels and
SAM-refined coarse labels add no human time beyond the labels they start from. Every figure can be
overridden, e.g. ``DEFAULT_COSTS.replace(fine_frame_minutes=60)`` or from ``KEY=VALUE`` text.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

from frugalseg.data.clips import LabelKind
from frugalseg.errors import ConfigError


@dataclass(frozen=True)
class AnnotationCosts:
    """Time a human spends per unit of annotation.

    Attributes:
        fine_frame_minutes: dense manual label of one semantic-segmentation frame.
        coarse_frame_minutes: coarse polygon label of one frame (also behind a SAM-refined one).
        vos_mask_seconds: one object mask drawn on one frame (video object segmentation).
        click_seconds: one click on an object.
        clicked_frame_seconds: overhead paid once per frame that gets clicks (locating the objects).
        box_seconds: one bounding box.
    """

    fine_frame_minutes: float = 90.0
    coarse_frame_minutes: float = 7.0
    vos_mask_seconds: float = 80.0
    click_seconds: float = 1.5
    clicked_frame_seconds: float = 1.0
    box_seconds: float = 7.0

    def __post_init__(self) -> None:
        wrong = {k: v for k, v in dataclasses.asdict(self).items() if not 0 <= v < math.inf}
        if wrong:  # inf had been reported as "inf h" and written to JSON as Infinity, which is not JSON
            raise ConfigError("costs", f"annotation costs must be finite and ≥ 0, got {wrong}")

    def replace(self, **overrides: float) -> AnnotationCosts:
        """A copy with some figures changed; unknown names raise `ValueError` listing the known ones."""
        unknown = sorted(set(overrides) - set(self.to_dict()))
        if unknown:
            raise ConfigError(
                "costs", f"unknown annotation cost {', '.join(unknown)}; known: {', '.join(self.to_dict())}"
            )
        return dataclasses.replace(self, **{k: float(v) for k, v in overrides.items()})

    def with_overrides(self, items: Iterable[str]) -> AnnotationCosts:
        """A copy with ``KEY=VALUE`` overrides applied (the form a command line gives)."""
        overrides: dict[str, float] = {}
        for item in items:
            key, sep, value = item.partition("=")
            try:
                if not sep:
                    raise ValueError
                overrides[key.strip()] = float(value)
            except ValueError:
                raise ConfigError(
                    "costs", f"annotation cost override must read KEY=NUMBER, got {item!r}"
                ) from None
        return self.replace(**overrides)

    def to_dict(self) -> dict[str, float]:
        """The costs as a JSON-able dict."""
        return dataclasses.asdict(self)

    def frame_minutes(self, kind: LabelKind | str) -> float:
        """Minutes behind one label of a per-frame ``kind`` (fine, coarse, refined_coarse, pseudo).

        A pseudo-label costs nothing itself (count the label it was propagated from); clicks and
        boxes depend on their number (`clicks_seconds`, `boxes_seconds`) and raise here.
        """
        kind = LabelKind(kind)
        if kind == LabelKind.FINE:
            return self.fine_frame_minutes
        if kind in (LabelKind.COARSE, LabelKind.REFINED_COARSE):
            return self.coarse_frame_minutes
        if kind == LabelKind.PSEUDO:
            return 0.0
        raise ValueError(
            f"no per-frame annotation cost for label kind {kind.value!r}: it depends on the number "
            "of clicks or boxes"
        )

    def masks_seconds(self, objects: int) -> float:
        """Seconds to draw ``objects`` object masks on one frame."""
        return objects * self.vos_mask_seconds

    def clicks_seconds(self, clicks: int) -> float:
        """Seconds for ``clicks`` clicks on one frame, with the per-frame overhead when there are any."""
        return clicks * self.click_seconds + (self.clicked_frame_seconds if clicks > 0 else 0.0)

    def boxes_seconds(self, boxes: int) -> float:
        """Seconds to draw ``boxes`` bounding boxes."""
        return boxes * self.box_seconds


DEFAULT_COSTS = AnnotationCosts()
