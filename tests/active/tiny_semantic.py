"""A student that trains in a blink, for the semantic loop's tests."""

from __future__ import annotations

import torch
from torch import nn

from frugalseg.zoo import ImageStudent


class TinyStudent(ImageStudent):
    """Two convolutions, with 8 feature channels before the classifier."""

    def __init__(self, num_classes: int, num_frames: int = 1) -> None:
        super().__init__(num_classes, num_frames)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(8, num_classes, 1)

    def segment(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(image))


def tiny_semantic_student(num_classes: int, num_frames: int = 1) -> TinyStudent:
    """The zoo factory of `TinyStudent`."""
    return TinyStudent(num_classes, num_frames)
