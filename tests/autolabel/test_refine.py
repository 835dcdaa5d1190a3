"""SAM refinement of coarse labels: objects, the point prompts and their iterations, the > 90 % rule,
refine_split over synthetic streets (and resuming a killed run), and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.autolabel.objects import split_objects
from frugalseg.autolabel.refine import (
    REFINE_CLASSES,
    AutoMaskRefiner,
    PointRefiner,
    assign_generated_masks,
    class_ids,
    paint,
    refine_split,
)
from frugalseg.autolabel.runs import image_rng
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import run_tool
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import CityscapesFormat, get_format
from frugalseg.data.formats.cityscapes import instances
from frugalseg.data.io import read_label

from .sam_stand_ins import OracleSAM, oracle_for

ROAD, BUILDING, POLE, VEGETATION, PERSON, CAR = 0, 2, 5, 8, 11, 13
EIGHT = class_ids(REFINE_CLASSES, CityscapesFormat.classes.names)


def erode_classes(fine: np.ndarray) -> np.ndarray:
    """A coarse map: each class region eroded by one pixel, the borders between regions ignored."""
    coarse = np.full_like(fine, IGNORE_INDEX)
    for value in np.unique(fine):
        inside = cv2.erode(
            (fine == value).astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE
        )
        coarse[inside.astype(bool)] = value
    return coarse


def street() -> np.ndarray:
    """16×20: building, road, a car, a pole, vegetation and a person."""
    fine = np.full((16, 20), BUILDING, np.uint8)
    fine[10:, :] = ROAD
    fine[7:13, 2:9] = CAR
    fine[2:10, 11:14] = POLE
    fine[1:6, 15:19] = VEGETATION
    fine[6:13, 15:18] = PERSON
    return fine


def test_class_ids_and_unknown_names() -> None:
    assert EIGHT == [5, 6, 7, 11, 12, 13, 17, 18]
    with pytest.raises(ValueError, match=r"'tree'.*valid names: road, sidewalk, building"):
        class_ids(["car", "tree"], CityscapesFormat.classes.names)


def test_split_objects_uses_instances_then_components() -> None:
    label = np.full((6, 10), BUILDING, np.uint8)
    label[1:4, 0:6] = CAR
    label[4:6, 7:10] = CAR
    label[0:2, 8:10] = PERSON
    ids = np.full(label.shape, 11, np.int32)  # building's label id
    ids[1:4, 0:3], ids[1:4, 3:6] = 26001, 26002  # two touching cars
    ids[4:6, 7:10] = 26  # a car group: no instance number
    ids[0:2, 8:10] = 24001
    objects = split_objects(label, instances(ids), train_ids=[CAR])
    assert [(o.train_id, o.instance_id, o.area) for o in objects] == [
        (CAR, 26001, 9),
        (CAR, 26002, 9),
        (CAR, None, 6),
    ]
    assert objects[2].mask[4:6, 7:10].all()
    # without instance ids the two touching cars are one component
    objects = split_objects(label, train_ids=[CAR, PERSON])
    assert [(o.train_id, o.area) for o in objects] == [(PERSON, 4), (CAR, 18), (CAR, 6)]


def test_refinement_touches_only_the_eight_classes() -> None:
    fine = street()
    coarse = erode_classes(fine)
    sam = OracleSAM(fine)
    refined = PointRefiner(sam, EIGHT).refine(
        np.zeros((16, 20, 3), np.uint8), coarse, None, image_rng(0, "x")
    )
    # car, pole and person are grown to their true extent; 3 calls (prompt + 2 iterations) each
    assert sorted({call["class"] for call in sam.calls}) == [POLE, PERSON, CAR] and len(sam.calls) == 9
    for value in (POLE, PERSON, CAR):
        assert (refined[fine == value] == value).all()
    # everything else is the coarse map as it was, ignored borders included
    others = ~np.isin(fine, [POLE, PERSON, CAR])
    assert np.array_equal(refined[others], coarse[others])
    assert (
        (refined[fine == VEGETATION] == IGNORE_INDEX).sum()
        == (coarse[fine == VEGETATION] == IGNORE_INDEX).sum()
        > 0
    )


def test_leaking_masks_keep_other_coarse_labels_unless_overwrite() -> None:
    fine = street()
    coarse = erode_classes(fine)
    image = np.zeros((16, 20, 3), np.uint8)
    kept = PointRefiner(OracleSAM(fine, leak=2), [CAR]).refine(image, coarse, None, image_rng(0, "x"))
    grown = cv2.dilate((fine == CAR).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    expected = coarse.copy()
    expected[grown & (coarse == IGNORE_INDEX)] = CAR
    assert np.array_equal(kept, expected)
    over = PointRefiner(OracleSAM(fine, leak=2), [CAR], overwrite=True).refine(
        image, coarse, None, image_rng(0, "x")
    )
    expected[grown] = CAR
    assert np.array_equal(over, expected)


class ScriptedSAM:
    """Returns a fixed mask per call; logits of call n (1-based), candidate k are filled with 10·n + k."""

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.masks = masks
        self.calls: list[dict] = []

    def set_image(self, image: np.ndarray) -> None:
        pass

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        self.calls.append(
            {
                "points": point_coords,
                "labels": point_labels,
                "mask_input": mask_input,
                "multi": multimask_output,
            }
        )
        n, count = len(self.calls), 3 if multimask_output else 1
        logits = np.stack([np.full((256, 256), 10.0 * n + k, np.float32) for k in range(count)])
        scores = np.array([0.2, 0.8, 0.5][:count])
        masks = np.stack([self.masks[n - 1]] * count).astype(np.float32)
        return masks, scores, logits


def test_iterations_feed_back_the_previous_logits_and_keep_the_last_mask() -> None:
    obj = np.zeros((8, 8), bool)
    obj[2:6, 2:6] = True
    outputs = [np.zeros((8, 8), bool) for _ in range(3)]
    outputs[0][0, 0] = outputs[1][1, 1] = True
    outputs[2][1:7, 1:7] = True
    sam = ScriptedSAM(outputs)
    mask = PointRefiner(sam, [CAR]).refine_mask(obj, image_rng(3, "clip"))
    assert np.array_equal(mask, outputs[2])
    assert [c["multi"] for c in sam.calls] == [True, False, False]
    assert sam.calls[0]["mask_input"] is None
    assert sam.calls[1]["mask_input"].shape == (1, 256, 256) and (sam.calls[1]["mask_input"] == 11).all()
    assert (sam.calls[2]["mask_input"] == 20).all()  # call 2 had one candidate, index 0
    points = sam.calls[0]["points"]
    assert all(np.array_equal(c["points"], points) for c in sam.calls) and (sam.calls[0]["labels"] == 1).all()
    assert len({tuple(p) for p in points}) == 2 and all(obj[int(y), int(x)] for x, y in points)
    again = ScriptedSAM(outputs)
    PointRefiner(again, [CAR]).refine_mask(obj, image_rng(3, "clip"))
    assert np.array_equal(again.calls[0]["points"], points)  # seeded


def test_generated_mask_takes_a_class_only_above_ninety_percent() -> None:
    coarse = np.full((10, 10), IGNORE_INDEX, np.uint8)
    coarse[0, :] = CAR
    coarse[1, :] = CAR
    coarse[1, 8:] = ROAD  # row 1: 8 car, 2 road
    coarse[5, :] = BUILDING
    exactly_90 = np.zeros((10, 10), bool)
    exactly_90[0:3, :] = True  # 18 car + 2 road labelled, 10 ignored: 90 % is not more than 90 %
    ninety_five = np.zeros((10, 10), bool)
    ninety_five[0:2, 1:] = True
    ninety_five[1, 9] = False  # 16 car + 1 road labelled: 94 %
    ninety_five[2, 1:5] = True  # and 4 unlabelled pixels
    unlabelled = np.zeros((10, 10), bool)
    unlabelled[7:9, :] = True
    other_class = np.zeros((10, 10), bool)
    other_class[4:7, :] = True  # all building, not a chosen class
    masks = [exactly_90, ninety_five, unlabelled, other_class]
    claimed = assign_generated_masks(coarse, masks, [CAR, ROAD])
    assert [(c, m is ninety_five) for c, m in claimed] == [(CAR, True)]

    class Generator:
        def generate(self, image):
            return [{"segmentation": m, "area": int(m.sum())} for m in masks]

    refined = AutoMaskRefiner(Generator(), [CAR, ROAD]).refine(
        np.zeros((10, 10, 3), np.uint8), coarse, None, None
    )
    expected = coarse.copy()
    expected[ninety_five & (coarse == IGNORE_INDEX)] = CAR
    assert np.array_equal(refined, expected)
    assert (refined[2, 1:5] == CAR).all() and (refined[2, 5:] == IGNORE_INDEX).all()
    assert refined[1, 8] == ROAD  # the disagreeing coarse pixel keeps its label by default
    overwritten = AutoMaskRefiner(Generator(), [CAR, ROAD], overwrite=True).refine(
        np.zeros((10, 10, 3), np.uint8), coarse, None, None
    )
    assert overwritten[1, 8] == CAR and overwritten[1, 9] == ROAD and overwritten[5, 0] == BUILDING


def test_paint_puts_smaller_objects_on_top() -> None:
    big, small = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    big[:, :3], small[1:3, 1:3] = True, True
    out = paint(np.full((4, 4), IGNORE_INDEX, np.uint8), [(PERSON, small), (CAR, big)])
    assert out.tolist() == [[13, 13, 13, 255], [13, 11, 11, 255], [13, 11, 11, 255], [13, 13, 13, 255]]


def test_refine_split_resumes_a_killed_run_without_redoing_or_corrupting(
    tiny_streets: Path, tmp_path: Path
) -> None:
    fmt = get_format("synthetic", tiny_streets)
    root = tmp_path / "store"
    with pytest.raises(RuntimeError, match="killed"):
        refine_split(
            fmt,
            "train",
            LabelStore(root),
            PointRefiner(oracle_for(fmt, "train", fail_after=2), EIGHT),
            progress=False,
        )
    first = LabelStore(root).records()
    assert len(first) == 2
    before = {
        r["path"]: ((root / r["path"]).stat().st_mtime_ns, (root / r["path"]).read_bytes()) for r in first
    }

    sam = oracle_for(fmt, "train")
    summary = refine_split(fmt, "train", LabelStore(root), PointRefiner(sam, EIGHT), progress=False)
    assert (summary.clips, summary.written, summary.skipped) == (4, 2, 2) and sam.images == 2
    for path, (mtime, data) in before.items():
        assert (root / path).stat().st_mtime_ns == mtime and (root / path).read_bytes() == data
    store = LabelStore(root)
    assert sorted(r["clip_id"] for r in store.records()) == sorted(c.clip_id for c in fmt.clips("train"))
    assert json.loads(store.run_path.read_text(encoding="utf-8"))["engine"] == "sam_points"

    fresh = tmp_path / "fresh"
    refine_split(
        fmt, "train", LabelStore(fresh), PointRefiner(oracle_for(fmt, "train"), EIGHT), progress=False
    )
    clips = fmt.clips("train")
    for clip in clips:
        path = store.label_path(clip, 0, LabelKind.REFINED_COARSE)
        assert (
            path.read_bytes() == LabelStore(fresh).label_path(clip, 0, LabelKind.REFINED_COARSE).read_bytes()
        )
        # the oracle returns true objects: each car and person with coarse pixels becomes exact
        # (a thin person that the coarse map lost entirely stays ignored), the rest stays coarse
        fine = read_label(clip.label(0, LabelKind.FINE).path)
        coarse = read_label(clip.label(0, LabelKind.COARSE).path)
        expected = coarse.copy()
        for value in (PERSON, CAR):
            for obj in split_objects(fine, train_ids=[value]):
                if (coarse[obj.mask] == value).any():
                    expected[obj.mask] = value
        assert np.array_equal(read_label(path), expected)
        assert (expected != coarse).any()
    assert not list(root.rglob("*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "trainer"),
    [("points", ()), ("auto", ()), ("auto", ("--devices", "1", "--accelerator", "cpu"))],
)
def test_cli_runs_with_a_random_sam2(
    tiny_streets: Path, tmp_path: Path, monkeypatch, method: str, trainer: tuple[str, ...]
) -> None:
    """The whole command with the real SAM 2 image predictor (random weights, 128 px): the pipeline
    only, in one process or through Lightning's Trainer.predict (``trainer``)."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from frugalseg.autolabel import sam2_loading

    real, init = sam2_loading.build_sam2_image_predictor, SAM2ImagePredictor.__init__

    def init_for_any_size(self, model, **options) -> None:
        init(self, model, **options)  # it assumes 1024 px inputs for the backbone feature sizes
        self._bb_feat_sizes = [(model.image_size // s, model.image_size // s) for s in (4, 8, 16)]

    monkeypatch.setattr(SAM2ImagePredictor, "__init__", init_for_any_size)
    monkeypatch.setattr(
        sam2_loading,
        "build_sam2_image_predictor",
        lambda config, checkpoint, device="cpu": real(
            config, None, device, random_weights=True, image_size=128
        ),
    )
    out = tmp_path / "store"
    argv = ["label", "refine-coarse", "--format", "synthetic", "--root", str(tiny_streets), "--split", "val"]
    argv += [
        "--out",
        str(out),
        "--sam2-config",
        "sam2.1_hiera_t",
        "--sam2-checkpoint",
        "x.pt",
        "--no-progress",
    ]
    argv += ["--method", method, "--classes", "car,person", "--points-per-side", "4", *trainer]
    assert run_tool(argv) == 0
    fmt = get_format("synthetic", tiny_streets)
    records = LabelStore(out).records()
    assert len(records) == 3 and all(r["kind"] == "refined_coarse" for r in records)
    for clip in fmt.clips("val"):
        refined = read_label(LabelStore(out).label_path(clip, 0, LabelKind.REFINED_COARSE))
        coarse = read_label(clip.label(0, LabelKind.COARSE).path)
        stuff = ~np.isin(coarse, [PERSON, CAR, IGNORE_INDEX])
        assert np.array_equal(refined[stuff], coarse[stuff])  # other classes kept, whatever SAM says
