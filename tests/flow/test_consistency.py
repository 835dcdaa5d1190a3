"""The forward-backward check: the numpy twin equals the torch one on random fields, a flow and its
exact inverse pass wherever the flow stays in the frame, and a flow that leaves the frame fails.

Both twins test ``|f_ab + f_ba(p + f_ab)|² < alpha·(|f_ab|² + |f_ba(p + f_ab)|²) + beta``. Tolerance and
deliberate differences:

* OpenCV reads ``f_ba`` at the sample point with fixed-point weights of 1/32 px (a 2-channel remap, see
  test_warp.py), so the masks agree wherever the squared round trip is more than 0.05 px² from the
  bound (measured: the pixels where they differ are within 0.026 px² of it, over 60 random pairs);
* at the border torch counts a sample point as inside up to half a pixel past the outermost pixel
  centres and reads zero flow beyond them; numpy passes sample points from the first to the last
  pixel centre (``0 ≤ x ≤ W−1``), those on the last row or column included, and fails the rest.
  So they are compared on sample points in [1/32, W−1−1/32) × [1/32, H−1−1/32), and known answers
  state each twin's border.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from frugalseg.flow import backward_warp, forward_backward_mask, forward_backward_mask_np, photometric_mask_np
from frugalseg.flow.warp import sample_points

H, W = 40, 48
YS, XS = np.mgrid[0:H, 0:W]


def _torch(flow: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1)[None]


def _torch_mask(flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    return forward_backward_mask(_torch(flow_ab), _torch(flow_ba))[0].numpy()


def _constant(dx: float, dy: float) -> np.ndarray:
    flow = np.empty((H, W, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow


def _smooth_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth flow of up to 4 px and a backward flow near its inverse: about half the pixels pass."""
    rng = np.random.default_rng(seed)

    def smooth(reach: float) -> np.ndarray:
        field = cv2.GaussianBlur(rng.normal(0, 1, (H, W, 2)).astype(np.float32), (0, 0), 4)
        return field / np.abs(field).max() * reach

    flow_ab = smooth(4.0)
    inverse, _ = backward_warp(_torch(flow_ab), _torch(flow_ab))
    return flow_ab, -inverse[0].permute(1, 2, 0).numpy() + smooth(1.2)


@pytest.mark.parametrize("seed", range(5))
def test_twins_agree_on_random_fields_away_from_the_border_and_the_bound(seed: int) -> None:
    flow_ab, flow_ba = _smooth_pair(seed)
    expected = _torch_mask(flow_ab, flow_ba)
    found = forward_backward_mask_np(flow_ab, flow_ba)
    assert 0.2 < expected.mean() < 0.8
    back, _ = backward_warp(_torch(flow_ba), _torch(flow_ab))
    back = back[0].permute(1, 2, 0).numpy()
    bound = 0.01 * ((flow_ab**2).sum(-1) + (back**2).sum(-1)) + 0.5
    clear = np.abs(((flow_ab + back) ** 2).sum(-1) - bound) > 0.05
    x, y = XS + flow_ab[..., 0], YS + flow_ab[..., 1]
    edge = 1 / 32
    inside = (x >= edge) & (x < W - 1 - edge) & (y >= edge) & (y < H - 1 - edge)
    compared = inside & clear
    assert compared.mean() > 0.8
    np.testing.assert_array_equal(found[compared], expected[compared])
    # beyond the border: numpy fails from the last pixel centre on, torch half a pixel further out
    assert not found[(x < -edge) | (x >= W - 1) | (y < -edge) | (y >= H - 1)].any()
    assert not expected[(x < -0.5) | (x > W - 0.5) | (y < -0.5) | (y > H - 0.5)].any()


@pytest.mark.parametrize(
    "mask",
    [
        pytest.param(forward_backward_mask_np, id="numpy"),
        pytest.param(lambda ab, ba: _torch_mask(ab, ba), id="torch"),
    ],
)
@pytest.mark.parametrize("shift", [(0, 0), (3, -2), (-5, 4)])
def test_an_integer_flow_and_its_inverse_pass_exactly_where_the_flow_stays_in_the_frame(mask, shift) -> None:
    dx, dy = shift
    stays = (XS + dx >= 0) & (XS + dx <= W - 1) & (YS + dy >= 0) & (YS + dy <= H - 1)
    np.testing.assert_array_equal(mask(_constant(dx, dy), _constant(-dx, -dy)), stays)


def test_a_sub_pixel_flow_and_its_inverse_pass_inside_each_twins_border() -> None:
    """(0.25, −0.5) never lands on a pixel centre: numpy passes where the sample point's four neighbours
    are in the frame; torch passes wherever the sample point is within half a pixel of it, since a
    round trip that reads zero flow past the edge is shorter than the flow, itself under √beta."""
    flow, inverse = _constant(0.25, -0.5), _constant(-0.25, 0.5)
    x, y = XS + 0.25, YS - 0.5
    numpy_border = (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1)
    assert numpy_border.sum() == (W - 1) * (H - 1)  # the last column and the first row fail
    np.testing.assert_array_equal(forward_backward_mask_np(flow, inverse), numpy_border)
    torch_border = (x >= -0.5) & (x <= W - 0.5) & (y >= -0.5) & (y <= H - 0.5)
    assert torch_border.all()
    np.testing.assert_array_equal(_torch_mask(flow, inverse), torch_border)


@pytest.mark.parametrize("twin", ["numpy", "torch"])
def test_a_flow_that_leaves_the_frame_fails_even_with_its_exact_inverse(twin: str) -> None:
    check = forward_backward_mask_np if twin == "numpy" else _torch_mask
    assert not check(_constant(W, 0), _constant(-W, 0)).any()
    assert not check(_constant(0, -H), _constant(0, H)).any()
    half_out = check(_constant(W // 2, 0), _constant(-W // 2, 0))
    assert not half_out[:, W // 2 :].any()
    assert half_out[:, : W // 2].all()  # up to the last column of the frame, last row included


def test_sample_points_handed_in_give_the_same_mask_as_the_flow_alone() -> None:
    """The propagation computes ``p + f_ab`` once and hands it to the check and the warps: same answer,
    bit for bit, as the check computing them itself (against the textbook formula on these fields)."""
    rng = np.random.default_rng(3)
    flow_ab = cv2.GaussianBlur(rng.normal(0, 4, (H, W, 2)).astype(np.float32), (0, 0), 2)
    flow_ba = -flow_ab + rng.normal(0, 0.4, (H, W, 2)).astype(np.float32)
    alone = forward_backward_mask_np(flow_ab, flow_ba, 0.01, 0.5)
    handed = forward_backward_mask_np(flow_ab, flow_ba, 0.01, 0.5, points=sample_points(flow_ab))
    assert np.array_equal(alone, handed) and 0.05 < alone.mean() < 0.95
    map_x, map_y = XS + flow_ab[..., 0], YS + flow_ab[..., 1]
    back = cv2.remap(flow_ba, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR)
    trip = ((flow_ab + back) ** 2).sum(-1)
    bound = 0.01 * ((flow_ab**2).sum(-1) + (back**2).sum(-1)) + 0.5
    inside = (map_x >= 0) & (map_x <= W - 1) & (map_y >= 0) & (map_y <= H - 1)
    # the textbook sums in another order may differ in the last float bit: compare off the bound
    clear = np.abs(trip - bound) > 1e-4
    assert np.array_equal(alone[clear], (inside & (trip < bound))[clear])


def test_photometric_mask_on_a_known_shift_and_brightness_change() -> None:
    """Image b is image a moved right by 2 px: the flow (2, 0) finds every pixel whose sample lies
    in the frame, within 0 grey levels; the last two columns sample 0 (outside); a pixel whose
    grey level changed by more than the tolerance fails, one changed by exactly it passes. Strips
    of rows give the answer the whole frame would (H is not a multiple of them)."""
    rng = np.random.default_rng(4)
    image_a = rng.uniform(20, 235, (H + 5, W)).astype(np.float32)
    image_b = np.zeros_like(image_a)
    image_b[:, 2:] = image_a[:, :-2]
    image_a[3, 5] += 16.0  # exactly the tolerance: passes
    image_a[7, 9] += 16.5  # beyond it: fails
    flow = np.zeros((H + 5, W, 2), np.float32)
    flow[..., 0] = 2.0
    matches = photometric_mask_np(image_a, image_b, sample_points(flow), 16.0)
    expected = np.ones(image_a.shape, bool)
    expected[:, -2:] = image_a[:, -2:] <= 16.0  # sampled outside: 0 against the grey level
    expected[7, 9] = False
    np.testing.assert_array_equal(matches, expected)
    with pytest.raises(ValueError, match="do not fit"):
        photometric_mask_np(image_a, image_b[:, :-1], sample_points(flow), 16.0)
