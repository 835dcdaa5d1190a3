"""FrameReader: frames decoded at the scale used equal a full decode resized, and a replaced frame is
decoded anew."""

from __future__ import annotations

import os
import shutil

import numpy as np

from frugalseg.data.io import read_frame, write_png_atomic
from frugalseg.datamodules.frames import FrameReader, resize_by


def test_frames_at_a_load_scale_equal_a_full_decode_resized_and_follow_a_replaced_file(
    tiny_streets, tmp_path
):
    root = tmp_path / "data"
    shutil.copytree(tiny_streets, root)
    frame = next((root / "leftImg8bit_sequence").rglob("*_leftImg8bit.png"))
    reader = FrameReader(0.5, tmp_path / "frames")
    expected = resize_by(read_frame(frame), 0.5)
    np.testing.assert_array_equal(reader(frame), expected)
    (cached,) = (tmp_path / "frames").rglob("*.png")
    np.testing.assert_array_equal(reader(frame), expected)  # second read: from the cache
    stamp = os.stat(frame)
    write_png_atomic(frame, np.zeros((64, 128, 3), np.uint8))
    os.utime(frame, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same modification time as before
    assert not reader(frame).any()  # the new pixels, not the cached ones
    FrameReader(1.0, tmp_path / "full")(frame)
    assert not (tmp_path / "full").exists()  # an image file at full size: nothing to keep


def test_frames_of_a_video_are_kept_at_full_size_too(tmp_path):
    from data.fake_video import numbered_frame, read_number, write_video

    from frugalseg.data.videos import video_frame_path

    video = write_video(tmp_path / "clip.mp4", [numbered_frame(i) for i in range(30)])
    reader = FrameReader(1.0, tmp_path / "frames")
    first = reader(video_frame_path(video, 25))
    assert read_number(first) == 25
    (cached,) = (tmp_path / "frames").rglob("*.png")
    np.testing.assert_array_equal(reader(video_frame_path(video, 25)), first)  # from the PNG
    write_video(video, [numbered_frame(29 - i) for i in range(30)])  # replaced: frames reversed
    assert read_number(reader(video_frame_path(video, 25))) == 4
