"""A CVAT for video file that gives no frame size (an image task exported as video): masks take the
size of the frame found on disk."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
from data.fake_davis import write_moving_squares

from frugalseg.autolabel.store import LabelStore
from frugalseg.data.formats import get_format
from frugalseg.errors import DataError
from frugalseg.interop import ClassMapping, import_export, read_export

HEAD = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><name>squares-b</name><size>10</size><mode>annotation</mode>
<start_frame>0</start_frame><stop_frame>9</stop_frame><labels><label><name>object</name></label></labels>
</task></meta>
"""


def test_a_mask_of_a_file_without_the_frame_size_takes_the_frame_s(tmp_path):
    davis = write_moving_squares(tmp_path / "davis")  # 64×48 frames
    path = tmp_path / "annotations.xml"
    mask = (
        '<mask frame="2" keyframe="1" outside="0" rle="0, 3, 1" left="{left}" top="40" width="2" height="2"/>'
    )
    path.write_text(HEAD + f'<track id="0" label="object">{mask.format(left=62)}</track></annotations>')
    export = read_export("cvat-video", path)
    assert [(f.key, f.size) for f in export.frames] == [(2, None)]
    fmt = get_format("davis", davis)
    store = LabelStore(tmp_path / "store")
    import_export(export, fmt, "train", store, ClassMapping(fmt.class_names))
    (record,) = store.records()
    assert (record["clip_id"], record["offset"]) == ("squares-b", 2)
    ids = cv2.imread(str(store.root / record["path"].replace("labelTrainIds", "instanceIds")), -1)
    assert ids.shape == (48, 64) and np.argwhere(ids).tolist() == [[40, 62], [40, 63], [41, 62]]
    path.write_text(HEAD + f'<track id="0" label="object">{mask.format(left=63)}</track></annotations>')
    message = f"{path}: track 0 (frame 2): mask box (63, 40) 2×2 leaves the 64×48 frame"
    with pytest.raises(DataError, match=re.escape(message)):
        import_export(read_export("cvat-video", path), fmt, "train", LabelStore(tmp_path / "s2"),
                      ClassMapping(fmt.class_names))  # fmt: skip
