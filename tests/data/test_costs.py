"""Annotation cost constants: defaults, minutes per label kind, overrides, the cost of a recipe's samples."""

from __future__ import annotations

import pytest

from frugalseg.data.clips import LabelKind
from frugalseg.data.costs import AnnotationCosts
from frugalseg.datamodules.recipes import Sample, annotation_cost


def test_cost_constants() -> None:
    costs = AnnotationCosts()
    assert costs.to_dict() == {
        "fine_frame_minutes": 90.0,
        "coarse_frame_minutes": 7.0,
        "vos_mask_seconds": 80.0,
        "click_seconds": 1.5,
        "clicked_frame_seconds": 1.0,
        "box_seconds": 7.0,
    }
    assert costs.frame_minutes("fine") == 90 and costs.frame_minutes(LabelKind.REFINED_COARSE) == 7
    assert costs.frame_minutes("pseudo") == 0
    assert costs.clicks_seconds(0) == 0 and costs.clicks_seconds(3) == 5.5
    assert costs.boxes_seconds(2) == 14 and costs.masks_seconds(3) == 240
    with pytest.raises(ValueError, match="depends on the number of clicks or boxes"):
        costs.frame_minutes("clicks")
    assert costs.with_overrides(["fine_frame_minutes=60", " box_seconds = 5"]).box_seconds == 5.0
    with pytest.raises(ValueError, match="must read KEY=NUMBER"):
        costs.with_overrides(["fine_frame_minutes"])
    with pytest.raises(ValueError, match="must be finite and ≥ 0"):
        costs.replace(click_seconds=-1)
    with pytest.raises(ValueError, match=r"must be finite and ≥ 0, got \{'vos_mask_seconds': inf\}"):
        costs.with_overrides(["vos_mask_seconds=inf"])  # "inf h" had been reported, Infinity written to JSON
    samples = [
        Sample("a", 0, LabelKind.FINE),
        Sample("b", 0, LabelKind.FINE),
        Sample("a", 10, LabelKind.PSEUDO),
    ]
    assert annotation_cost(samples, costs.replace(fine_frame_minutes=60)).total_hours == 2.0
    assert annotation_cost(samples).total_hours == 3.0
