"""Clip-consistent geometry: one transform for every frame and the label, ignore padding."""

import numpy as np
import torch

from frugalseg.datamodules.transforms import ClipRandomGeometry, Normalize


def _ramp_clip(batch=2, steps=3, height=16, width=24):
    """Frames whose value is the x coordinate (bilinear warping of a ramp is exact) and a label = x."""
    xs = torch.arange(width, dtype=torch.float32).expand(height, width)
    frames = xs.expand(batch, steps, 3, height, width).clone()
    label = xs.long().expand(batch, height, width).clone()
    return frames, label


def test_identity_geometry_keeps_everything():
    frames, label = _ramp_clip()
    geometry = ClipRandomGeometry(crop_size=(16, 24), scale_range=(1.0, 1.0), flip_prob=0.0)
    out_frames, out_label = geometry(frames, label)
    assert torch.allclose(out_frames, frames, atol=1e-4)
    assert torch.equal(out_label, label)


def test_flip_mirrors_frames_and_label_together():
    frames, label = _ramp_clip()
    geometry = ClipRandomGeometry(crop_size=(16, 24), scale_range=(1.0, 1.0), flip_prob=1.0)
    out_frames, out_label = geometry(frames, label)
    assert torch.allclose(out_frames, frames.flip(-1), atol=1e-4)
    assert torch.equal(out_label, label.flip(-1))


def test_padding_is_ignore_for_labels_and_zero_for_frames():
    frames, label = _ramp_clip(height=8, width=8)
    geometry = ClipRandomGeometry(crop_size=(12, 10), scale_range=(1.0, 1.0), flip_prob=0.0)
    out_frames, out_label = geometry(frames, label)
    assert torch.equal(out_label[:, :8, :8], label)
    assert (out_label[:, 8:, :] == 255).all() and (out_label[:, :, 8:] == 255).all()
    assert out_frames[..., 8:, :].abs().max() < 1e-4 and out_frames[..., :, 8:].abs().max() < 1e-4


def test_random_geometry_is_shared_by_all_frames_and_the_label():
    torch.manual_seed(0)
    frames, label = _ramp_clip(batch=8, steps=3, height=32, width=48)
    geometry = ClipRandomGeometry(crop_size=(20, 30), scale_range=(0.5, 2.0), flip_prob=0.5)
    out_frames, out_label = geometry(frames, label)
    assert torch.equal(out_frames[:, 0], out_frames[:, 1]) and torch.equal(out_frames[:, 1], out_frames[:, 2])
    inside = out_label != 255
    # The label (nearest) and the frame ramp (bilinear) sample the same point: within half a pixel.
    difference = (out_frames[:, -1, 0][inside] - out_label[inside].float()).abs()
    assert difference.max() <= 0.5 / 0.5 + 1e-4  # at scale 0.5 one output pixel spans two input pixels
    assert inside.float().mean() > 0.5


def test_normalize_standardises_uint8():
    frames = torch.full((1, 1, 3, 2, 2), 128, dtype=torch.uint8)
    out = Normalize(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))(frames)
    assert torch.allclose(out, torch.full_like(out, (128 - 127.5) / 63.75))


def test_cropping_raw_frames_then_normalising_equals_normalising_then_cropping():
    """The datamodule crops first (fewer pixels to normalise); padding with the mean colour makes it exact."""
    from frugalseg.data.normalization import IMAGENET_MEAN
    from frugalseg.datamodules.transforms import Normalize

    generator = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 3, 3, 20, 30), generator=generator, dtype=torch.uint8)
    label = torch.randint(0, 5, (2, 20, 30), generator=generator)
    normalize = Normalize()
    before = ClipRandomGeometry((24, 24), scale_range=(0.6, 0.9), flip_prob=0.5)
    after = ClipRandomGeometry(
        (24, 24), scale_range=(0.6, 0.9), flip_prob=0.5, fill=tuple(255.0 * m for m in IMAGENET_MEAN)
    )
    torch.manual_seed(3)
    expected, expected_label = before(normalize(frames), label)
    torch.manual_seed(3)
    cropped, cropped_label = after(frames.float(), label)
    torch.testing.assert_close(normalize(cropped), expected, rtol=0, atol=1e-4)
    assert torch.equal(cropped_label, expected_label)
    assert (expected_label == 255).any()  # the crop reaches past the frame: padding was compared


def test_a_click_survives_shrinking_when_its_label_is_marked_sparse():
    from frugalseg.datamodules.transforms import ClipRandomGeometry

    geometry = ClipRandomGeometry((10, 10), scale_range=(0.5, 0.5), flip_prob=0.0)
    frames = torch.zeros(1, 1, 3, 20, 20)
    label = torch.full((1, 20, 20), 255, dtype=torch.long)
    label[0, 5, 9] = 3  # an odd column: the half-size grid samples even pixels only
    torch.manual_seed(0)
    _, dense = geometry(frames, label)
    assert (dense == 255).all()  # nearest sampling loses the click
    torch.manual_seed(0)
    _, sparse = geometry(frames, label, torch.tensor([True]))
    assert torch.nonzero(sparse != 255).tolist() == [[0, 2, 4]]  # (5, 9) × 0.5, rounded half to even
    assert sparse[0, 2, 4] == 3


def test_resize_sparse_keeps_every_click_at_its_scaled_pixel():
    from frugalseg.datamodules.frames import resize_by, resize_sparse

    label = np.full((8, 8), 255, np.uint8)
    label[1, 1], label[3, 5] = 4, 7
    assert (resize_by(label, 0.5, nearest=True) == 255).all()  # both clicks lie between the samples
    out = resize_sparse(label, 0.5)
    expected = np.full((4, 4), 255, np.uint8)
    expected[0, 0], expected[1, 2] = 4, 7
    assert np.array_equal(out, expected)
