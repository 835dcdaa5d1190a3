"""The SAM 2 propagation engine end to end with a randomly initialised sam2.1_hiera_t (no weights needed).

Random weights say nothing about quality; these tests check the pipeline: the objects go in as
SAM 2 masks and come back with their classes, all objects share one inference state and one pass
per direction, labels land in the store and resume, and bad input fails before anything is written.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from frugalseg.autolabel.objects import merge_objects, split_objects
from frugalseg.autolabel.propagate import propagate_split
from frugalseg.autolabel.sam2_loading import build_sam2_image_predictor, build_sam2_video_predictor
from frugalseg.autolabel.sam2_propagate import SAM2Propagator, _reach
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main
from frugalseg.data.formats import get_format
from frugalseg.data.formats.synthetic import generate_synthetic_streets
from frugalseg.errors import DataError

IMAGE_SIZE = 64  # sam2_engine's input size (conftest.py), the smallest SAM 2 input; masks are 16×16


@pytest.fixture(scope="module")
def streets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 48×64 synthetic clip of 21 frames (anchor at frame 19, one frame after it)."""
    root = tmp_path_factory.mktemp("streets") / "one"
    return generate_synthetic_streets(root, clips_per_split={"train": 1}, size=(48, 64), num_frames=21)


def _frames(count: int, size: int = IMAGE_SIZE) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


def _blocks() -> np.ndarray:
    """A fully labelled 64×64 map: road left, sky right, a car and two people (5 objects)."""
    label = np.zeros((64, 64), dtype=np.uint8)
    label[:, 32:] = 10
    label[16:40, 8:24] = 13
    label[44:60, 36:52] = 11
    label[0:8, 40:48] = 11
    return label


def test_anchor_masks_come_back_through_sam2_with_their_classes(sam2_engine: SAM2Propagator) -> None:
    label = _blocks()
    objects = split_objects(label)
    [(index, logits)] = list(sam2_engine._track(_frames(1), 0, objects, 0, 0))
    assert index == 0 and tuple(logits.shape) == (len(objects), 1, IMAGE_SIZE // 4, IMAGE_SIZE // 4)
    merged = merge_objects(logits, objects.classes, label.shape)
    # SAM 2 keeps an input mask at a quarter of the resolution, smoothed: pixels 8 px or more away
    # from every boundary must come back exactly, the rest nearly.
    uniform = np.ones(label.shape, dtype=bool)
    for value in np.unique(label):
        inside = cv2.erode((label == value).astype(np.uint8), np.ones((17, 17), np.uint8), borderValue=1)
        uniform &= (inside > 0) | (label != value)
    assert uniform.sum() > 1000
    np.testing.assert_array_equal(merged[uniform], label[uniform])
    assert (merged == label).mean() > 0.95


def test_all_objects_in_one_state_and_one_pass_per_direction(
    sam2_engine: SAM2Propagator, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = sam2_engine.predictor
    calls = {"encoder": 0, "passes": 0, "masks": 0}

    def counting(name: str, method):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return method(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(predictor, "forward_image", counting("encoder", predictor.forward_image))
    monkeypatch.setattr(predictor, "propagate_in_video", counting("passes", predictor.propagate_in_video))
    monkeypatch.setattr(predictor, "add_new_mask", counting("masks", predictor.add_new_mask))
    frames = _frames(3)
    label = _blocks()
    seen = {}
    for name, anchor_label in (("one object", np.full_like(label, 13)), ("five objects", label)):
        calls.update(encoder=0, passes=0, masks=0)
        out = sam2_engine.propagate(frames, 1, anchor_label, [0, 1, 2])
        seen[name] = dict(calls)
        assert sorted(out) == [0, 1, 2]
        np.testing.assert_array_equal(out[1], anchor_label)
        for index in (0, 2):
            assert out[index].shape == label.shape and out[index].dtype == np.uint8
            assert set(np.unique(out[index])) <= set(np.unique(anchor_label)) | {255}
    # the image encoder runs once per frame (plus the predictor's warm-up on the first frame),
    # whatever the number of objects; every object is one mask prompt
    assert seen["one object"] == {"encoder": 4, "passes": 2, "masks": 1}
    assert seen["five objects"] == {"encoder": 4, "passes": 2, "masks": 5}


def test_tracking_state_stays_bounded_on_a_long_clip(
    sam2_engine: SAM2Propagator, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = sam2_engine.predictor
    original = predictor.propagate_in_video
    stored = []

    def watching(state, *args, **kwargs):
        for item in original(state, *args, **kwargs):
            stored.append(len(state["output_dict_per_obj"][0]["non_cond_frame_outputs"]))
            yield item

    monkeypatch.setattr(predictor, "propagate_in_video", watching)
    reach = _reach(predictor)
    frames = _frames(reach + 8, size=32)
    out = sam2_engine.propagate(frames, 0, np.full((32, 32), 13, np.uint8), [len(frames) - 1])
    assert list(out) == [len(frames) - 1]
    # the model reads at most `reach` frames back; older outputs are dropped as the pass goes on, so
    # at most the frame just tracked and the `reach` frames before it are held
    assert len(stored) == len(frames) and max(stored) == reach + 1 and stored[-1] == reach + 1


def test_only_asked_targets_and_bad_arguments(sam2_engine: SAM2Propagator) -> None:
    frames = _frames(3)
    assert sam2_engine.propagate(frames, 1, _blocks(), [1]).keys() == {1}
    with pytest.raises(ValueError, match="no objects to track"):
        sam2_engine.propagate(frames, 1, np.full((64, 64), 255, np.uint8), [0])
    with pytest.raises(ValueError, match=r"target indices \[3\] outside the 3 frames"):
        sam2_engine.propagate(frames, 1, _blocks(), [3])
    with pytest.raises(ValueError, match="does not fit a frame"):
        sam2_engine.propagate(frames, 1, _blocks()[:10], [0])


def test_propagate_split_into_store_with_instance_ids_and_resume(
    sam2_engine: SAM2Propagator, streets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = []
    original = sam2_engine.propagate

    def spy(*args, **kwargs):
        given.append(kwargs["instance_ids"])
        return original(*args, **kwargs)

    monkeypatch.setattr(sam2_engine, "propagate", spy)
    fmt = get_format("synthetic", streets)
    store = LabelStore(tmp_path / "store")
    summary = propagate_split(fmt, "train", store, [-1, 1], sam2_engine, progress=False)
    assert (summary.clips, summary.written, summary.skipped) == (1, 2, 0)
    # the synthetic anchor has a Cityscapes instance-id map; the engine got it
    [instance_ids] = given
    assert instance_ids is not None and (instance_ids >= 1000).any()
    records = store.records()
    assert [r["offset"] for r in records] == [-1, 1]
    assert {r["engine"] for r in records} == {"sam2"}
    assert records[0]["settings"] == json.loads(json.dumps(sam2_engine.settings))
    for record in records:
        written = cv2.imread(str(store.root / record["path"]), cv2.IMREAD_UNCHANGED)
        assert written.shape == (48, 64) and written.dtype == np.uint8
    again = propagate_split(fmt, "train", store, [-1, 1], sam2_engine, progress=False)
    assert (again.written, again.skipped) == (0, 2)


def test_an_anchor_label_with_no_objects_fails_before_anything_is_written(
    sam2_engine: SAM2Propagator, streets: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    shutil.copytree(streets, empty)
    [label_path] = (empty / "gtFine" / "train").glob("*/*_gtFine_labelTrainIds.png")
    cv2.imwrite(str(label_path), np.full((48, 64), 255, np.uint8))
    store = LabelStore(tmp_path / "empty_store")
    with pytest.raises(DataError, match="no objects to track") as caught:
        propagate_split(get_format("synthetic", empty), "train", store, [-1], sam2_engine, progress=False)
    assert caught.value.path == label_path
    assert not store.root.exists()


def test_cli_with_a_checkpoint_file(streets: Path, sam2_checkpoint: Path, tmp_path: Path, capsys) -> None:
    def run(*extra: str) -> int:
        argv = ["label", "propagate", "--format", "synthetic", "--root", str(streets), "--offsets", "-1"]
        return main([*argv, "--engine", "sam2", "--no-progress", "--sam2-device", "cpu", *extra])

    out = tmp_path / "store"
    sized = ("--sam2-image-size", str(IMAGE_SIZE))
    assert run("--out", str(out), "--sam2-checkpoint", str(sam2_checkpoint), *sized) == 0
    assert "1 clips, 1 labels written" in capsys.readouterr().out
    [record] = LabelStore(out).records()
    assert record["engine"] == "sam2" and record["settings"]["checkpoint"] == "tiny_random.pt"
    assert record["settings"]["config"] == "sam2.1_hiera_t" and record["settings"]["image_size"] == IMAGE_SIZE
    assert len(record["settings"]["checkpoint_sha256"]) == 64

    wrong = tmp_path / "wrong"
    checkpoint = str(sam2_checkpoint)
    assert run("--out", str(wrong), "--sam2-checkpoint", checkpoint, "--sam2-config", "sam2.1_hiera_s") == 2
    err = capsys.readouterr().err
    assert checkpoint in err and "is a SAM 2 model of config sam2.1_hiera_t, not sam2.1_hiera_s" in err
    assert not wrong.exists()


def test_cli_with_a_sam2_id_reads_the_model_from_the_hub_cache(
    streets: Path, sam2_checkpoint: Path, tmp_path: Path, hub_cache, capsys
) -> None:
    """``--sam2-checkpoint facebook/sam2.1-hiera-tiny``: the file the id names, from an offline cache."""

    def run(*extra: str) -> int:
        argv = ["label", "propagate", "--format", "synthetic", "--root", str(streets), "--offsets", "-1"]
        argv += [
            "--engine",
            "sam2",
            "--no-progress",
            "--sam2-device",
            "cpu",
            "--sam2-image-size",
            str(IMAGE_SIZE),
        ]
        return main([*argv, *extra])

    hub_cache.add("facebook/sam2.1-hiera-tiny", {"sam2.1_hiera_tiny.pt": sam2_checkpoint.read_bytes()})
    by_file, by_id = tmp_path / "by_file", tmp_path / "by_id"
    assert run("--out", str(by_file), "--sam2-checkpoint", str(sam2_checkpoint)) == 0
    assert run("--out", str(by_id), "--sam2-checkpoint", "facebook/sam2.1-hiera-tiny") == 0
    [file_record], [id_record] = LabelStore(by_file).records(), LabelStore(by_id).records()
    assert id_record["settings"]["config"] == "sam2.1_hiera_t"  # chosen from the id
    assert id_record["settings"]["checkpoint"] == "sam2.1_hiera_tiny.pt"
    assert id_record["settings"]["checkpoint_sha256"] == file_record["settings"]["checkpoint_sha256"]
    labels = sorted(p.relative_to(by_file) for p in by_file.rglob("*.png"))
    assert labels and labels == sorted(p.relative_to(by_id) for p in by_id.rglob("*.png"))
    for name in labels:
        assert np.array_equal(cv2.imread(str(by_file / name)), cv2.imread(str(by_id / name))), name
    capsys.readouterr()
    other = tmp_path / "other"
    model = ("--sam2-checkpoint", "facebook/sam2.1-hiera-tiny", "--sam2-config", "sam2.1_hiera_s")
    assert run("--out", str(other), *model) == 2
    err = capsys.readouterr().err
    assert "--sam2-config: sam2.1_hiera_s is not the model facebook/sam2.1-hiera-tiny names" in err
    assert not other.exists()


def test_missing_sam2_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sam2", None)  # what an absent package looks like to import
    with pytest.raises(ImportError, match=r"pip install 'frugalseg\[sam2\]'"):
        build_sam2_video_predictor("sam2.1_hiera_t", None, random_weights=True)


def test_loading_checks_the_checkpoint(sam2_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a SAM 2 checkpoint file is needed"):
        build_sam2_video_predictor("sam2.1_hiera_t", None)
    with pytest.raises(ValueError, match="valid configs: sam2.1_hiera_t, sam2.1_hiera_s, sam2.1_hiera_b\\+"):
        build_sam2_video_predictor("sam2_hiera_t", sam2_checkpoint)
    other = tmp_path / "resnet.pt"
    torch.save({"model": {"conv1.weight": torch.zeros(8, 3, 7, 7)}}, other)
    with pytest.raises(DataError, match="resnet.pt: not a SAM 2 model") as caught:
        build_sam2_image_predictor("sam2.1_hiera_t", other)
    assert caught.value.path == other
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        build_sam2_image_predictor("sam2.1_hiera_t", junk)
    assert str(caught.value) == (  # torch's six lines advised loading it with weights_only=False
        f"{junk}: cannot be read with torch.load(weights_only=True): not a PyTorch checkpoint or weights "
        "file, or a damaged one"
    )
    predictor = build_sam2_image_predictor("sam2.1_hiera_t", sam2_checkpoint, image_size=IMAGE_SIZE)
    assert type(predictor).__name__ == "SAM2ImagePredictor" and predictor.model.image_size == IMAGE_SIZE
    stored = torch.load(sam2_checkpoint, weights_only=True)["model"]["sam_mask_decoder.iou_token.weight"]
    assert torch.equal(predictor.model.state_dict()["sam_mask_decoder.iou_token.weight"], stored.float())
