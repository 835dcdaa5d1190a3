"""Optical flow: engines, warping and the forward-backward occlusion check.

Flow convention everywhere: ``flow[y, x] = (dx, dy)`` maps pixel ``(x, y)`` of the *first* image
to ``(x + dx, y + dy)`` in the *second*. Backward warping a map that lives on the second image by
the flow first→second brings it onto the first image.
"""

from frugalseg.flow.cache import FlowCache
from frugalseg.flow.consistency import forward_backward_mask, forward_backward_mask_np, photometric_mask_np
from frugalseg.flow.dis import DISFlow
from frugalseg.flow.warp import backward_warp, backward_warp_np, sample_points

__all__ = [
    "DISFlow",
    "FlowCache",
    "backward_warp",
    "backward_warp_np",
    "forward_backward_mask",
    "forward_backward_mask_np",
    "photometric_mask_np",
    "sample_points",
]
