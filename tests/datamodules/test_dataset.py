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
