"""ClipSampleDataset does its work once: a second epoch computes no flow, and a sample reads the same
with and without the frame and flow caches."""

from __future__ import annotations

import numpy as np
import pytest

from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.datamodules.dataset import ClipSampleDataset
from frugalseg.datamodules.recipes import Sample


def test_a_second_epoch_computes_no_flow(tiny_streets, tmp_path):
    fmt = get_format("synthetic", tiny_streets)
    clips = fmt.clips("val")
    samples = [Sample(clip.clip_id, 0, LabelKind.FINE) for clip in clips]
    dataset = ClipSampleDataset(
        fmt, clips, samples, 1, temporal_pair=True, neighbours=2, flow_cache=tmp_path / "flows"
    )
    first_epoch = [dataset[i] for i in range(len(dataset))]
    assert dataset.flow.computed >= len(samples) * 2  # both directions of each pair, plus neighbours
    again = ClipSampleDataset(fmt, clips, samples, 1, temporal_pair=True, flow_cache=tmp_path / "flows")
    second_epoch = [again[i] for i in range(len(again))]
    assert again.flow.computed == 0  # the temporal pairs come from the cache
    for one, two in zip(first_epoch, second_epoch, strict=True):
        np.testing.assert_allclose(one["flow_to_prev"].numpy(), two["flow_to_prev"].numpy(), atol=1e-2)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_a_sample_reads_the_same_with_and_without_caches(tiny_streets, tmp_path, scale):
    fmt = get_format("synthetic", tiny_streets)
    clips = fmt.clips("val")
    samples = [Sample(clips[0].clip_id, 0, LabelKind.FINE)]
    plain = ClipSampleDataset(fmt, clips, samples, 3, scale=scale, temporal_pair=True)[0]
    cached = ClipSampleDataset(
        fmt,
        clips,
        samples,
        3,
        scale=scale,
        temporal_pair=True,
        frame_cache=tmp_path / "frames",
        flow_cache=tmp_path / "flows",
    )
    for item in (cached[0], cached[0]):
        assert np.array_equal(item["frames"].numpy(), plain["frames"].numpy())
        assert np.array_equal(item["label"].numpy(), plain["label"].numpy())
        np.testing.assert_allclose(item["flow_to_prev"].numpy(), plain["flow_to_prev"].numpy(), atol=1e-2)


def _pseudo_sample_with_confidence(tiny_streets, tmp_path, confidence):
    """A val clip whose anchor carries a stored pseudo label (its manual label copied) with a
    confidence map beside it: the dataset, the clip's label and the confidence."""
    from frugalseg.autolabel.store import confidence_path
    from frugalseg.data.clips import LabelRef
    from frugalseg.data.io import read_label, write_png_atomic

    fmt = get_format("synthetic", tiny_streets)
    clips = fmt.clips("val")
    clip = clips[0]
    truth = fmt.read_label(clip.label(0, LabelKind.FINE))
    path = tmp_path / "store" / "frame_pseudo_labelTrainIds.png"
    write_png_atomic(path, truth)
    if confidence is not None:
        write_png_atomic(confidence_path(path), confidence)
    clip.add_label(0, LabelRef(path, LabelKind.PSEUDO))
    samples = [Sample(clip.clip_id, 0, LabelKind.PSEUDO)]
    return fmt, clips, samples, read_label(path)


def test_pixels_below_the_confidence_threshold_are_ignored_and_the_rest_kept(tiny_streets, tmp_path):
    from frugalseg.data.clips import IGNORE_INDEX

    height, width = 64, 128  # the tiny streets set
    confidence = np.zeros((height, width), np.uint8)
    confidence[:, : width // 2] = 255  # left half sure, right half at 0.4
    confidence[:, width // 2 :] = 102
    fmt, clips, samples, truth = _pseudo_sample_with_confidence(tiny_streets, tmp_path, confidence)
    assert truth.shape == (height, width)
    kept = ClipSampleDataset(fmt, clips, samples, 1, min_confidence=0.0)[0]["label"].numpy()
    assert np.array_equal(kept, truth)
    strict = ClipSampleDataset(fmt, clips, samples, 1, min_confidence=0.5)[0]["label"].numpy()
    assert np.array_equal(strict[:, : width // 2], truth[:, : width // 2])
    assert (strict[:, width // 2 :] == IGNORE_INDEX).all()
    lenient = ClipSampleDataset(fmt, clips, samples, 1, min_confidence=0.3)[0]["label"].numpy()
    assert np.array_equal(lenient, truth)


def test_a_label_without_a_confidence_map_is_kept_whole_and_said_so(tiny_streets, tmp_path, caplog):
    fmt, clips, samples, truth = _pseudo_sample_with_confidence(tiny_streets, tmp_path, None)
    label = ClipSampleDataset(fmt, clips, samples, 1, min_confidence=0.9)[0]["label"].numpy()
    assert np.array_equal(label, truth)
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == (
        "data.labels.min_confidence 0.9 filters none of the 1 pseudo labels: they have no confidence map "
        "(the flow engine writes one)"
    )


def test_a_stored_label_whose_confidence_map_is_gone_is_named(tiny_streets, tmp_path):
    """Its label had been trained on unfiltered while the others were filtered, and nothing said so."""
    from frugalseg.autolabel.store import confidence_path
    from frugalseg.data.clips import LabelRef
    from frugalseg.data.io import write_png_atomic
    from frugalseg.errors import DataError

    fmt, clips, samples, truth = _pseudo_sample_with_confidence(
        tiny_streets, tmp_path, np.full((64, 128), 255, np.uint8)
    )
    other = clips[1]
    path = tmp_path / "store" / "other_pseudo_labelTrainIds.png"
    write_png_atomic(path, truth)
    other.add_label(0, LabelRef(path, LabelKind.PSEUDO))
    samples = [*samples, Sample(other.clip_id, 0, LabelKind.PSEUDO)]
    with pytest.raises(DataError) as error:
        ClipSampleDataset(fmt, clips, samples, 1, min_confidence=0.5)
    assert str(error.value) == (
        f"{confidence_path(path)}: confidence map missing, though the other pseudo labels have theirs: "
        "run the command that made the store again with the same --out: it makes such labels again"
    )
    ClipSampleDataset(fmt, clips, samples, 1, min_confidence=0.0)  # not asked to filter: nothing checked


def test_a_confidence_map_of_the_wrong_size_is_named(tiny_streets, tmp_path):
    from frugalseg.errors import DataError

    fmt, clips, samples, _ = _pseudo_sample_with_confidence(
        tiny_streets, tmp_path, np.full((10, 10), 255, np.uint8)
    )
    with pytest.raises(DataError, match=r"_confidence\.png: confidence map of size 10×10"):
        ClipSampleDataset(fmt, clips, samples, 1, min_confidence=0.5)[0]


def test_an_image_students_pair_at_a_clips_first_frame_takes_the_frame_after(tmp_path):
    """DAVIS anchors at frame 0 had paired frame 0 with itself: a consistency loss of exactly 0 and a TC of
    exactly 1 (``temporal_finetune.yaml`` trained on nothing). Object 1 of the squares moves 2 px right a
    frame, so the flow from frame 0 to frame 1 on it is (+2, 0)."""
    from data.fake_davis import squares, write_moving_squares

    fmt = get_format("davis", write_moving_squares(tmp_path / "davis"))
    clips = [clip for clip in fmt.clips("train") if clip.clip_id.startswith("squares-a")]
    first = min(clips, key=lambda clip: clip.anchor_index)
    offset = first.offsets[0]
    samples = [Sample(first.clip_id, offset, LabelKind.FINE)]
    item = ClipSampleDataset(fmt, clips, samples, 1, temporal_pair=True)[0]
    frames = item["frames"].numpy()
    assert not np.array_equal(frames[0], frames[1])
    after = ClipSampleDataset(fmt, clips, samples, 1).frames(first.frame_path(offset + 1))
    assert np.array_equal(frames[0], after.transpose(2, 0, 1))
    inside = squares(0, 0)[1:-1, 1:-1] == 1  # object 1 on frame 0, off the image border
    to_other = item["flow_to_prev"].numpy()[:, 1:-1, 1:-1]
    assert abs(np.median(to_other[0][inside]) - 2) < 0.5 and abs(np.median(to_other[1][inside])) < 0.5
    video = ClipSampleDataset(fmt, clips, samples, 3, temporal_pair=True)[0]["frames"].numpy()
    assert all(
        np.array_equal(frame, video[-1]) for frame in video
    )  # a video student's windows keep time order
