"""DISFlow on a textured scene moved by a known integer motion: the flow first→second recovers the
motion within 0.5 px in the interior, for every preset, at full resolution and downscaled, and
warping the second frame back by it gives the first (the package's flow convention)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from frugalseg.errors import ConfigError
from frugalseg.flow import DISFlow, backward_warp_np

H, W = 96, 128
MARGIN = 16  # the interior: DIS extrapolates where content enters or leaves the frame


def _world() -> np.ndarray:
    """A smooth random grey texture (RGB) of 160×224: larger than a frame, so a shift brings in content."""
    noise = np.random.default_rng(0).uniform(0, 255, (160, 224)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    grey = ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _pair(dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """Two frames of the world; what is at (x, y) in the first is at (x + dx, y + dy) in the second."""
    world, top, left = _world(), 32, 48
    return world[top : top + H, left : left + W], world[top - dy : top - dy + H, left - dx : left - dx + W]


@pytest.mark.parametrize("downscale", [1, 2])
@pytest.mark.parametrize("preset", ["ultrafast", "fast", "medium"])
@pytest.mark.parametrize("motion", [(3, -2), (-5, 4)])
def test_a_known_integer_motion_is_recovered_within_half_a_pixel(
    motion: tuple[int, int], preset: str, downscale: int
) -> None:
    first, second = _pair(*motion)
    flow = DISFlow(preset, downscale)(first, second)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    interior = (slice(MARGIN, H - MARGIN), slice(MARGIN, W - MARGIN))
    error = np.abs(flow[interior] - np.array(motion, np.float32))
    assert error.max() < 0.5, f"largest error {error.max():.3f} px"  # measured: 0.33 px at most
    # rounded, it is the motion itself: warping the second frame back by it gives the first exactly
    exact = np.rint(flow)
    np.testing.assert_array_equal(backward_warp_np(second, exact)[interior], first[interior])


def test_identical_frames_give_zero_flow() -> None:
    first, _ = _pair(0, 0)
    assert not DISFlow("medium")(first, first.copy()).any()


def test_bad_settings_and_frames_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown DIS preset 'slow'"):
        DISFlow("slow")
    with pytest.raises(ConfigError, match="must be >= 1, got 0"):
        DISFlow(downscale=0)
    with pytest.raises(ValueError, match=r"frames differ in size: \(96, 128\) vs \(96, 127\)"):
        DISFlow()(np.zeros((H, W), np.uint8), np.zeros((H, W - 1), np.uint8))


def test_a_flow_does_not_depend_on_the_flows_computed_before_it() -> None:
    """The same pair gives the same flow, bit for bit, before and after other pairs on the same
    engine (and thread): OpenCV's DIS object is reused, but never handed a buffer, which it would
    take as the initial flow (a buffer reused across calls starts each flow from the last one)."""
    rng = np.random.default_rng(5)
    frames = [
        cv2.GaussianBlur(rng.uniform(0, 255, (64, 80)).astype(np.float32), (0, 0), 2).astype(np.uint8)
        for _ in range(3)
    ]
    dis = DISFlow()
    first = dis(frames[0], frames[1])
    dis(frames[2], frames[0])
    dis(frames[1], frames[2])
    np.testing.assert_array_equal(dis(frames[0], frames[1]), first)


def test_a_flow_does_not_depend_on_a_small_frame_s_flow_before_it() -> None:
    """OpenCV's DIS lowers its finest scale for a frame under about 32 px a side and keeps it lowered: a
    16×20 pair in the same thread changed every later flow (a kite-surf pair at the click tools' working
    scale by up to 7.5 px), so a process's flows depended on the frames it had seen. The engine now sets
    the preset's finest scale for every flow."""
    first, second = _pair(3, -2)
    dis = DISFlow("medium")
    before = dis(first, second)
    dis(first[:16, :20], second[:16, :20])
    np.testing.assert_array_equal(dis(first, second), before)
