"""import(export(store)) gives back the store's label maps and instance ids bit for bit, every format."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import squares, write_moving_squares

from frugalseg.autolabel.runs import run_config
from frugalseg.autolabel.store import LabelStore, instances_path
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import DavisFormat, get_format
from frugalseg.data.io import encode_png, write_bytes_atomic
from frugalseg.interop import WRITERS, ClassMapping, import_export, read_export, stored_frames, write_export


def _labels() -> dict[tuple[int, LabelKind], tuple[np.ndarray, np.ndarray | None]]:
    """Labels of clip squares-a of every kind, with 255 holes, two objects, and thin shapes."""
    ids = squares(0, 0)
    fine = (ids > 0).astype(np.uint8)
    fine[0, :5] = IGNORE_INDEX
    pseudo = (squares(3, 0) > 0).astype(np.uint8)
    pseudo[40:, 60:] = IGNORE_INDEX
    clicks = np.full(ids.shape, IGNORE_INDEX, np.uint8)
    clicks[10, 10], clicks[25, 45], clicks[2, 60] = 1, 1, 0
    boxes = np.full(ids.shape, IGNORE_INDEX, np.uint8)
    boxes[8:20, 14:26] = 1
    coarse = np.full(ids.shape, IGNORE_INDEX, np.uint8)
    coarse[30:40, 0:20] = 0
    coarse[32:38, 40:55] = 1
    return {
        (0, LabelKind.FINE): (fine, ids.astype(np.uint16)),
        (3, LabelKind.PSEUDO): (pseudo, None),
        (0, LabelKind.CLICKS): (clicks, None),
        (5, LabelKind.BOXES): (boxes, None),
        (9, LabelKind.COARSE): (coarse, None),
    }


@pytest.fixture(scope="module")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_squares(tmp_path_factory.mktemp("davis"))


def write_store(root: Path, davis: Path) -> LabelStore:
    fmt = get_format("davis", davis)
    clip = next(c for c in fmt.clips("train") if c.clip_id == "squares-a")
    store = LabelStore(root)
    with store.run(run_config(fmt, "train", "test", {})):
        for (offset, kind), (label, instances) in _labels().items():
            if instances is not None:
                path = instances_path(store.label_path(clip, offset, kind))
                write_bytes_atomic(path, encode_png(instances, path))
            store.write(clip, offset, kind, label, engine="test", settings={}, source_offset=0, seconds=0)
    return store


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("tool", list(WRITERS))
def test_import_of_export_is_the_store(tool, davis, tmp_path):
    fmt = get_format("davis", davis)
    store = write_store(tmp_path / "store", davis)
    suffix = ".xml" if tool.startswith("cvat") else ".json"
    out = tmp_path / f"export{suffix}"
    write_export(tool, out, stored_frames(store, fmt), list(fmt.class_names))
    back = LabelStore(tmp_path / "back")
    summary = import_export(read_export(tool, out), fmt, "train", back, ClassMapping(fmt.class_names))
    assert summary.written == {"fine": 1, "pseudo": 1, "clicks": 1, "boxes": 1, "coarse": 1}
    key = lambda r: (r["clip_id"], r["offset"], r["kind"])  # noqa: E731
    original, imported = sorted(store.records(), key=key), sorted(back.records(), key=key)
    assert [key(r) for r in imported] == [key(r) for r in original]
    for a, b in zip(original, imported, strict=True):
        assert a["path"] == b["path"]
        np.testing.assert_array_equal(_read(back.root / b["path"]), _read(store.root / a["path"]))
        has_ids = instances_path(store.root / a["path"]).is_file()
        assert instances_path(back.root / b["path"]).is_file() == has_ids
        if has_ids:
            ids = _read(instances_path(back.root / b["path"]))
            assert ids.dtype == np.uint8  # object ids 1 and 2: a DAVIS-style object mask
            np.testing.assert_array_equal(ids, _read(instances_path(store.root / a["path"])))
            np.testing.assert_array_equal(DavisFormat.read_mask(instances_path(back.root / b["path"])), ids)


@pytest.fixture(scope="module")
def street_flow(tiny_streets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flow labels of a Cityscapes-layout set (19 classes, 255 where the flow gave up) at ±1, four clips."""
    from frugalseg.cli import main

    flow = tmp_path_factory.mktemp("streets") / "flow"
    argv = ["label", "propagate", "--format", "synthetic", "--root", str(tiny_streets), "--offsets=-1,1"]
    assert main([*argv, "--out", str(flow), "--no-progress"]) == 0
    return flow


@pytest.mark.parametrize("tool", list(WRITERS))
def test_a_propagated_store_of_street_scenes_comes_back(tool, tiny_streets, street_flow, tmp_path):
    fmt = get_format("synthetic", tiny_streets)
    frames = stored_frames(LabelStore(street_flow), fmt)
    if tool == "cvat-video":  # one video a file
        frames = [f for f in frames if f.clip.clip_id == frames[0].clip.clip_id]
    out = tmp_path / "export"
    write_export(tool, out, frames, list(fmt.class_names))
    back = LabelStore(tmp_path / "back")
    import_export(read_export(tool, out), fmt, "train", back, ClassMapping(fmt.class_names))
    assert len(back.records()) == len(frames) > 1
    for record in back.records():
        original = _read(street_flow / record["path"])
        assert (original == 255).any() and len(np.unique(original)) > 3
        np.testing.assert_array_equal(_read(back.root / record["path"]), original)
