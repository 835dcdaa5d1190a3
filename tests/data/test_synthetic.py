"""The synthetic street generator: determinism, exact motion, coarse labels, caching."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.data.formats.synthetic import default_synthetic_root, generate_synthetic_streets
from frugalseg.data.io import read_label
from frugalseg.errors import DataError

PARAMS = {"clips_per_split": {"train": 3, "val": 1}, "size": (64, 128), "num_frames": 22, "seed": 7}
TRAIN_TO_LABEL_ID = {0: 7, 1: 8, 2: 11, 8: 21, 10: 23}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_streets(tmp_path_factory.mktemp("synth") / "streets", **PARAMS)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(synth: Path, tmp_path: Path) -> None:
    again = generate_synthetic_streets(tmp_path / "again", **PARAMS)
    assert _files(again) == _files(synth)
    other = generate_synthetic_streets(tmp_path / "other", **{**PARAMS, "seed": 8})
    frame = "leftImg8bit/train/synthtown/synthtown_000000_000019_leftImg8bit.png"
    assert (other / frame).read_bytes() != (synth / frame).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "other"]  # no temporary folders left


def test_layout_reads_as_cityscapes(synth: Path) -> None:
    data = get_format("synthetic", synth)
    assert data.splits() == ["train", "val"]
    clips = data.clips("train")
    assert [c.clip_id for c in clips] == [f"synthtown_00000{i}_000019" for i in range(3)]
    clip = clips[1]
    assert len(clip.frames) == 22 and clip.anchor_index == 19
    assert clip.frame_path(-19).name == "synthtown_000001_000000_leftImg8bit.png"
    truth = data.ground_truth(clip)
    assert sorted(truth) == list(range(-19, 3))
    fine = clip.label(0, LabelKind.FINE).path
    assert fine.read_bytes() == truth[0].path.read_bytes()
    assert (synth / "leftImg8bit/train/synthtown/synthtown_000001_000019_leftImg8bit.png").read_bytes() == (
        clip.frame_path(0).read_bytes()
    )
    assert set(np.unique(read_label(fine, 19))) <= {0, 1, 2, 8, 10, 11, 13}


def test_instance_ids_follow_cityscapes(synth: Path) -> None:
    gt = synth / "gtFine/train/synthtown/synthtown_000000_000019_gtFine_"
    instances = cv2.imread(str(gt) + "instanceIds.png", cv2.IMREAD_UNCHANGED)
    train = read_label(str(gt) + "labelTrainIds.png")
    assert instances.dtype == np.uint16
    for train_id, label_id in TRAIN_TO_LABEL_ID.items():
        assert (instances[train == train_id] == label_id).all()
    assert (instances[train == 13] // 1000 == 26).all() and (instances[train == 11] // 1000 == 24).all()


def test_car_moves_by_its_known_motion(synth: Path) -> None:
    moved = 0
    for number in range(3):
        name = f"synthtown_{number:06d}"
        motion = json.loads(
            (synth / f"motion/train/synthtown/{name}_000019_motion.json").read_text(encoding="utf-8")
        )
        instances = cv2.imread(
            str(synth / f"gtFine/train/synthtown/{name}_000019_gtFine_instanceIds.png"), -1
        )
        seq = synth / "gtFine_sequence/train/synthtown"
        for car in (o for o in motion["objects"] if o["train_id"] == 13):
            rows, cols = np.nonzero(instances == car["instance_id"])
            for step in (1, -1, 2):
                later = read_label(seq / f"{name}_{19 + step:06d}_gtFine_labelTrainIds.png")
                shifted = cols + car["dx"] * step
                inside = (shifted >= 0) & (shifted < later.shape[1])
                assert (later[rows[inside], shifted[inside]] == 13).all()
                left, right = (max(c + car["dx"] * step, 0) for c in (cols.min(), cols.max() + 1))
                box = later[rows.min() : rows.max() + 1, left:right]
                assert int((box == 13).sum()) == int(inside.sum())  # the moved car, nothing more
            moved += car["dx"] != 0
    assert moved >= 1


def test_coarse_is_fine_eroded_with_ignored_borders(synth: Path) -> None:
    for number in range(3):
        stem = f"synthtown_{number:06d}_000019"
        fine = read_label(synth / f"gtFine/train/synthtown/{stem}_gtFine_labelTrainIds.png")
        coarse = read_label(synth / f"gtCoarse/train/synthtown/{stem}_gtCoarse_labelTrainIds.png")
        labelled = coarse != 255
        assert (coarse[labelled] == fine[labelled]).all()
        assert 0.3 < labelled.mean() < 0.95
        edge = fine[:, 1:] != fine[:, :-1]
        assert (coarse[:, 1:][edge] == 255).all() and (coarse[:, :-1][edge] == 255).all()


def test_cache_returns_at_once_and_refuses_other_params(synth: Path) -> None:
    record = synth / "synthetic.json"
    before = record.stat().st_mtime_ns
    assert generate_synthetic_streets(synth, **PARAMS) == synth
    assert record.stat().st_mtime_ns == before
    expected = r"synthetic\.json: holds synthetic data made with .*'seed': 7.*use another root"
    with pytest.raises(DataError, match=expected):
        generate_synthetic_streets(synth, **{**PARAMS, "seed": 1})


def test_refuses_a_folder_that_is_not_synthetic(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="holds no synthetic.json"):
        generate_synthetic_streets(tmp_path / "mine", **PARAMS)


def test_default_root_depends_on_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRUGALSEG_CACHE", str(tmp_path))
    default = default_synthetic_root()
    assert default.parent == tmp_path and default.name.startswith("synthetic_streets-")
    explicit = default_synthetic_root(clips_per_split={"val": 6, "train": 24}, size=(128, 256), num_frames=30)
    assert default == explicit
    assert default != default_synthetic_root(seed=1)


def test_generates_into_an_existing_empty_folder(tmp_path: Path) -> None:
    small = {**PARAMS, "clips_per_split": {"val": 1}, "num_frames": 20}
    assert generate_synthetic_streets(tmp_path, **small) == tmp_path
    assert len(get_format("synthetic", tmp_path).clips("val")[0].frames) == 20
