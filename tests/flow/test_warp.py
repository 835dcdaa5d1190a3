"""Backward warping: the numpy twin (OpenCV ``remap``) equals the torch one (``grid_sample``), and a
constant integer flow moves a map by exactly that many pixels.

Tolerances and deliberate differences between the twins:

* bilinear values agree within 1e-5 for sources of 1, 3 or 4 channels; OpenCV interpolates 2-channel
  float images (flows) with fixed-point weights of 1/32 px, so there they agree within 1/32 of the
  largest step between neighbouring source values;
* nearest sampling (label maps) agrees exactly wherever the sample point is inside the frame;
* outside the frame numpy writes ``fill`` and torch writes 0 and returns an ``inside`` mask, in which
  a sample point up to half a pixel past the outermost pixel centres counts as inside
  (``align_corners=False``); a bilinear sample reads its neighbours past the border as 0 in torch and
  as ``fill`` in numpy, so with ``fill=0`` the two agree there too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from frugalseg.flow import backward_warp, backward_warp_np, sample_points
from frugalseg.flow.warp import points_flow

H, W = 24, 32


def _torch(array: np.ndarray) -> torch.Tensor:
    """H×W×C (or H×W) numpy → 1×C×H×W torch."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return (tensor[..., None] if tensor.dim() == 2 else tensor).permute(2, 0, 1)[None]


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """1×C×H×W torch → H×W×C numpy."""
    return tensor[0].permute(1, 2, 0).numpy()


def _random_flow(seed: int, reach: float = 4.0) -> np.ndarray:
    """Sub-pixel flow vectors up to ``reach`` px: about a quarter of the sample points leave the frame."""
    return np.random.default_rng(seed).uniform(-reach, reach, (H, W, 2)).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_bilinear_twins_agree_on_random_fields(channels: int) -> None:
    rng = np.random.default_rng(channels)
    source = rng.random((H, W, channels)).astype(np.float32)
    flow = _random_flow(channels)
    expected, _ = backward_warp(_torch(source), _torch(flow), mode="bilinear")
    warped = backward_warp_np(source[..., 0] if channels == 1 else source, flow, nearest=False, fill=0)
    step = max(np.abs(np.diff(source, axis=0)).max(), np.abs(np.diff(source, axis=1)).max())
    tolerance = step / 32 if channels == 2 else 1e-5
    # within half a pixel outside the edge centres the torch warp reads the edge, OpenCV mixes in the fill
    points = sample_points(flow)
    full = ((points >= 0) & (points <= np.array([W - 1, H - 1], np.float32))).all(-1)
    assert 0.1 < full.mean() < 0.9
    got = warped.reshape(H, W, channels)[full]
    np.testing.assert_allclose(got, _numpy(expected)[full], rtol=0, atol=tolerance)


def test_a_bilinear_warp_within_half_a_pixel_of_the_edge_reads_the_edge() -> None:
    """Probabilities warped by a flow reaching 0.4 px past the frame's edge still sum to 1 there, not 0.6."""
    probs = torch.zeros(1, 2, 4, 6)
    probs[:, 0] = 1
    for dx, dy in ((-0.4, 0.0), (0.4, 0.0), (0.0, 0.45), (-0.3, -0.3)):
        flow = torch.tensor([dx, dy]).view(1, 2, 1, 1).expand(1, 2, 4, 6)
        warped, inside = backward_warp(probs, flow)
        assert inside.all()
        torch.testing.assert_close(warped, probs, rtol=0, atol=1e-6)
    warped, inside = backward_warp(probs, torch.full((1, 2, 4, 6), -0.6))
    assert inside.sum() == 15 and (warped[:, 0][~inside] == 0).all()  # past half a pixel: outside, zero


def test_nearest_twins_agree_on_a_random_label_map_and_on_what_is_inside() -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 19, (H, W), dtype=np.uint8)
    flow = _random_flow(1)
    warped, inside = backward_warp(_torch(label), _torch(flow), mode="nearest")
    warped, inside = warped[0, 0].numpy(), inside[0].numpy()
    expected = backward_warp_np(label, flow, nearest=True, fill=255)
    assert 0.1 < inside.mean() < 0.9  # both sides of the border are compared
    np.testing.assert_array_equal(expected[inside], warped[inside])
    assert (expected[~inside] == 255).all() and (warped[~inside] == 0).all()


@pytest.mark.parametrize("shift", [(3, -2), (-5, 0), (0, 7)])
def test_a_constant_integer_flow_moves_a_map_by_exactly_that(shift: tuple[int, int]) -> None:
    """flow = (dx, dy) everywhere: the result at (x, y) is the source at (x + dx, y + dy), or nothing."""
    dx, dy = shift
    source = np.random.default_rng(0).random((H, W, 3)).astype(np.float32)
    label = np.arange(H * W, dtype=np.int64).reshape(H, W) % 251
    flow = np.empty((H, W, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    ys, xs = np.mgrid[0:H, 0:W]
    inside = (xs + dx >= 0) & (xs + dx < W) & (ys + dy >= 0) & (ys + dy < H)
    moved = np.zeros_like(source)
    moved[inside] = source[(ys + dy)[inside], (xs + dx)[inside]]
    moved_label = np.where(inside, np.roll(label, (-dy, -dx), axis=(0, 1)), 255).astype(np.uint8)

    np.testing.assert_array_equal(backward_warp_np(source, flow, nearest=False, fill=0), moved)
    np.testing.assert_array_equal(backward_warp_np(label.astype(np.uint8), flow, fill=255), moved_label)
    warped, found = backward_warp(_torch(source), _torch(flow), mode="bilinear")
    np.testing.assert_array_equal(found[0].numpy(), inside)
    np.testing.assert_allclose(_numpy(warped), moved, rtol=0, atol=1e-6)
    warped, _ = backward_warp(_torch(label), _torch(flow), mode="nearest")
    np.testing.assert_array_equal(np.where(inside, warped[0, 0].numpy(), 255), moved_label)


def test_sample_points_are_each_pixel_plus_its_flow_and_warp_as_the_flow_does() -> None:
    flow = np.random.default_rng(1).normal(0, 3, (H, W, 2)).astype(np.float32)
    points = sample_points(flow)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    assert points.shape == (H, W, 2) and points.dtype == np.float32
    np.testing.assert_array_equal(points[..., 0], xs + flow[..., 0])
    np.testing.assert_array_equal(points[..., 1], ys + flow[..., 1])
    np.testing.assert_allclose(points_flow(points), flow, atol=1e-5)  # its inverse: each point less its pixel
    label = (np.arange(H * W) % 7).reshape(H, W).astype(np.uint8)
    np.testing.assert_array_equal(
        backward_warp_np(label, None, fill=255, points=points), backward_warp_np(label, flow, fill=255)
    )
    with pytest.raises(
        ValueError, match=r"points of shape \(24, 32, 2\) do not fit a source of shape \(24, 31\)"
    ):
        backward_warp_np(label[:, :-1], None, points=points)


def test_a_flow_that_does_not_fit_the_source_names_both_shapes() -> None:
    expected = r"flow of shape \(24, 31, 2\) does not fit a source of shape \(24, 32\)"
    with pytest.raises(ValueError, match=expected):
        backward_warp_np(np.zeros((H, W), np.float32), np.zeros((H, W - 1, 2), np.float32))
    with pytest.raises(ValueError, match=r"flow of shape \(1, 2, 24, 31\) does not fit a source of shape"):
        backward_warp(torch.zeros(1, 3, H, W), torch.zeros(1, 2, H, W - 1))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_flow_samples_a_wide_frame_at_float32_points(dtype: torch.dtype) -> None:
    """Half precision cannot hold x up to 767 (bf16 steps by 2 above 256): the grid is built in float32.

    grid_sample's normalised coordinates leave float32 round-off (under 1e-4 px at 768 px wide).
    """
    width = 768
    xs = torch.arange(width, dtype=torch.float32).expand(1, 1, 4, width)  # each pixel holds its x
    flow = torch.zeros(1, 2, 4, width, dtype=dtype)
    flow[:, 0] = -3  # read 3 px to the left
    warped, inside = backward_warp(xs, flow)
    assert warped.dtype == torch.float32
    assert inside[0].sum(0).tolist() == [0] * 3 + [4] * (width - 3)
    torch.testing.assert_close(warped[..., 3:], xs[..., :-3], rtol=0, atol=1e-4)
    # A half-precision source is warped in float32, then rounded back to its dtype.
    source = torch.randn(2, 3, 4, width, generator=torch.Generator().manual_seed(0)).to(dtype)
    flow = torch.zeros(2, 2, 4, width, dtype=dtype)
    warped, inside = backward_warp(source, flow)
    assert warped.dtype == dtype and bool(inside.all())
    assert torch.equal(warped, backward_warp(source.float(), flow.float())[0].to(dtype))
    assert float((warped.float() - source.float()).abs().max()) < 1e-3
