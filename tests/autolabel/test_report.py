"""`frugalseg label report` on hand-made stores with known IoUs, and the annotation cost of each kind."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import write_davis

from frugalseg.active.semantic.simulate import ENGINE as SEMANTIC_LOOP
from frugalseg.autolabel.report import evaluate_store, score_frame, write_report
from frugalseg.autolabel.store import LabelStore, LabelStoreError, confidence_path
from frugalseg.cli import label as commands
from frugalseg.data.clips import LabelKind
from frugalseg.data.costs import DEFAULT_COSTS
from frugalseg.data.formats import get_format
from frugalseg.data.io import read_label
from frugalseg.errors import DataError

H, W = 4, 5
N = 255


def _columns(*cols: int, value: int = 1) -> np.ndarray:
    """A 4×5 map that is ``value`` in the given columns and 0 elsewhere."""
    out = np.zeros((H, W), np.uint8)
    out[:, list(cols)] = value
    return out


# ground truth of two 3-frame sequences; "s" has two objects (ids 1 and 2) in its first frame
TRUTH = {
    "s": [_columns(0) + _columns(4, value=2), _columns(0, 1), _columns(1, 2)],
    "t": [_columns(3), _columns(3), np.zeros((H, W), np.uint8)],
}


@pytest.fixture
def davis_store(tmp_path: Path) -> Path:
    """A DAVIS folder with known masks and a store of pseudo-labels at offsets +1 and +2."""
    root = write_davis(tmp_path / "davis", TRUTH)
    fmt = get_format("davis", root)
    store = LabelStore(tmp_path / "store")
    store.open_run({"engine": "hand", "settings": {}, "split": "all", "format": "davis", "root": str(root)})
    predicted = {
        "s": {1: _columns(0, 1, 2), 2: np.where(_columns(2) == 1, N, _columns(1)).astype(np.uint8)},
        "t": {1: _columns(3), 2: np.zeros((H, W), np.uint8)},
    }
    for clip in fmt.clips("all"):
        for offset, label in predicted[clip.clip_id].items():
            store.write(
                clip,
                offset,
                LabelKind.PSEUDO,
                label,
                engine="hand",
                settings={},
                source_offset=0,
                seconds=0.5,
            )
    return store.root


def test_object_masks_per_offset(davis_store: Path) -> None:
    report = evaluate_store(davis_store, progress=False)
    assert report["format"] == "davis" and report["metric"] == "J" and report["split"] == "all"
    rows = {row["offset"]: row for row in report["rows"]}
    assert sorted(rows) == [1, 2]
    one, two = rows[1], rows[2]
    # +1: s predicts columns 0-2 for truth 0-1 (IoU 8/12), t is exact (IoU 1)
    assert (one["labels"], one["scored"], one["objects"]) == (2, 2, 2)
    assert one["j"] == pytest.approx((2 / 3 + 1) / 2)
    assert (one["recall@0.5"], one["recall@0.7"]) == (1.0, 0.5)
    assert one["coverage"] == 1.0
    assert one["precision"] == pytest.approx((16 + 20) / 40)
    # mIoU over both clips: background I 8+16, U 12+16; object I 8+4, U 12+4
    assert one["miou"] == pytest.approx(((8 + 16) / (12 + 16) + (8 + 4) / (12 + 4)) / 2)
    # +2: s leaves column 2 of the object unlabelled (255 counts as not-object: IoU 4/8);
    # t has no object in truth or label, which scores 1 (DAVIS convention)
    assert two["j"] == pytest.approx((0.5 + 1) / 2)
    assert (two["recall@0.5"], two["recall@0.7"]) == (1.0, 0.5)
    assert two["coverage"] == pytest.approx((16 + 20) / 40)
    assert two["precision"] == 1.0
    assert two["miou"] == pytest.approx(((12 + 20) / (12 + 20) + 4 / 8) / 2)
    per_clip = {(r["clip_id"], r["offset"]): r for r in report["per_clip"]}
    assert per_clip["s", 2]["j"] == 0.5 and per_clip["s", 2]["coverage"] == 0.8
    # cost: the first-frame masks, 2 objects in s and 1 in t, 80 s each; machine time summed
    cost = report["cost"]
    assert cost["units"] == {"object masks": 3} and cost["seconds"] == {"masks": 240.0}
    assert cost["hours"] == pytest.approx(240 / 3600) and cost["machine_seconds"] == pytest.approx(2.0)
    cheaper = evaluate_store(davis_store, DEFAULT_COSTS.replace(vos_mask_seconds=40), progress=False)
    assert cheaper["cost"]["hours"] == pytest.approx(120 / 3600)


def test_score_frame_counts_unlabelled_as_wrong() -> None:
    truth = np.array([[0, 0, 1, 1], [2, 2, 2, N]], np.uint8)
    label = np.array([[0, N, 1, 2], [2, 2, N, 0]], np.uint8)
    score = score_frame(label, truth, 3)
    assert score.intersection.tolist() == [1, 1, 2]
    # class 0: truth 2 px, label 0 on a truth pixel once (the void one is left out) → U 2
    assert score.union.tolist() == [2, 2, 4]
    assert score.object_ious == [0.5, 0.5, 0.5] and score.labelled_with_truth == 5
    assert score_frame(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), 2, (1,)).object_ious == [1.0]


def test_synthetic_store_scores_every_frame(tiny_streets: Path, tmp_path: Path) -> None:
    """Labels equal to the ground truth score 1; with the road left unlabelled, exactly its share drops."""
    fmt = get_format("synthetic", tiny_streets)
    clips = fmt.clips("val")
    store = LabelStore(tmp_path / "store")
    store.open_run(
        {
            "engine": "copy",
            "settings": {},
            "split": "val",
            "format": "CityscapesFormat",
            "root": str(tiny_streets),
        }
    )
    road = 0
    road_pixels = total = classes = road_objects = 0
    for clip in clips:
        truth = fmt.ground_truth(clip)
        exact = read_label(truth[1].path)
        holed = read_label(truth[-1].path)
        road_pixels += int((holed == road).sum())
        total += holed.size
        classes += len(np.unique(holed))
        road_objects += int((holed == road).any())
        holed[holed == road] = N
        for offset, label in ((1, exact), (-1, holed)):
            store.write(clip, offset, "pseudo", label, engine="copy", settings={}, source_offset=0, seconds=0)
    report = evaluate_store(store.root, progress=False)
    assert report["format"] == "synthetic" and report["metric"] == "mIoU"
    rows = {row["offset"]: row for row in report["rows"]}
    assert rows[1]["miou"] == rows[1]["j"] == rows[1]["precision"] == rows[1]["coverage"] == 1.0
    minus = rows[-1]
    assert minus["coverage"] == pytest.approx(1 - road_pixels / total) and minus["precision"] == 1.0
    assert minus["j"] == pytest.approx(1 - road_objects / classes)
    assert minus["recall@0.7"] == pytest.approx(1 - road_objects / classes)
    present = len(np.unique(np.concatenate([fmt.read_label(fmt.ground_truth(c)[-1]).ravel() for c in clips])))
    assert minus["miou"] == pytest.approx((present - 1) / present)
    assert report["cost"]["units"] == {"fine frames": 3}
    assert report["cost"]["hours"] == pytest.approx(3 * 1.5)


def test_cityscapes_scores_the_annotated_frame_only(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "cityscapes_dev"
    fmt = get_format("cityscapes", root)
    (clip,) = fmt.clips("train")
    truth = read_label(clip.label(0, LabelKind.FINE).path, 19)
    store = LabelStore(tmp_path / "store")
    store.open_run(
        {"engine": "copy", "settings": {}, "split": "train", "format": "cityscapes", "root": str(root)}
    )
    store.write(clip, 0, "refined_coarse", truth, engine="copy", settings={}, source_offset=0, seconds=0)
    store.write(clip, 1, "pseudo", truth, engine="copy", settings={}, source_offset=0, seconds=0)
    report = evaluate_store(store.root, progress=False)
    rows = {(row["kind"], row["offset"]): row for row in report["rows"]}
    anchor, after = rows["refined_coarse", 0], rows["pseudo", 1]
    assert anchor["scored"] == 1 and anchor["miou"] == anchor["j"] == 1.0
    assert anchor["coverage"] == pytest.approx((truth != N).mean())
    assert after["scored"] == 0 and after["j"] is None and after["miou"] is None and after["labels"] == 1
    assert report["cost"]["units"] == {"coarse frames": 1, "fine frames": 1}
    assert report["cost"]["hours"] == pytest.approx((7 + 90) / 60)


def _clicks_store(tiny_streets: Path, tmp_path: Path) -> tuple[Path, list]:
    fmt = get_format("synthetic", tiny_streets)
    clips = fmt.clips("val")
    store = LabelStore(tmp_path / "store")
    store.open_run(
        {"engine": "sim", "settings": {}, "split": "val", "format": "synthetic", "root": str(tiny_streets)}
    )
    return store, clips


def test_a_semantic_loop_store_costs_the_seconds_it_booked(
    tiny_streets: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`annotate semantic`'s labels are all ``pseudo``: their cost is the person's booked seconds, not one
    fine frame (90 min) per frame they came from."""
    fmt = get_format("synthetic", tiny_streets)
    clip = fmt.clips("val")[0]
    store = LabelStore(tmp_path / "store")
    store.open_run({"engine": SEMANTIC_LOOP, "settings": {}, "split": "val", **fmt.describe()})
    truth = fmt.ground_truth(clip)
    for offset, seconds in ((-1, 101.5), (1, 0.0)):  # the clicked frame, and one propagated from it
        label = read_label(truth[offset].path)
        store.write(
            clip,
            offset,
            "pseudo",
            label,
            engine=SEMANTIC_LOOP,
            settings={},
            source_offset=-1,
            seconds=seconds,
        )
    report = evaluate_store(store.root, progress=False)
    cost = report["cost"]
    assert cost["booked"] and cost["seconds"] == {"pseudo": 101.5}
    assert cost["hours"] == pytest.approx(101.5 / 3600)
    commands.print_report(report)  # its clicks' seconds: the line had said "no manual work"
    printed = capsys.readouterr().out
    booked = "(booked by the run that wrote it: 101.5 s on pseudo labels)"
    assert f"annotation cost: 0.03 h of human work {booked}" in printed
    assert "not scored" not in printed  # the synthetic set has truth on every frame
    report["rows"][0]["scored"] = 0  # a frame without truth: the row had shown a bare "0" and dashes
    commands.print_report(report)
    assert "1 of 2 labels not scored: the data set has no truth on their frames\n" in capsys.readouterr().out


def test_clicks_and_boxes_cost(tiny_streets: Path, tmp_path: Path) -> None:
    store, clips = _clicks_store(tiny_streets, tmp_path)
    sparse = np.full((64, 128), N, np.uint8)
    sparse[5, 5] = sparse[20, 40] = 0  # two clicks, no side file: counted from the map
    store.write(clips[0], 0, "clicks", sparse, engine="sim", settings={}, source_offset=0, seconds=0)
    listed = store.write(clips[1], 0, "clicks", sparse, engine="sim", settings={}, source_offset=0, seconds=0)
    listed.with_name(listed.name.replace("_clicks_labelTrainIds.png", "_clicks.json")).write_text(
        json.dumps({"clicks": [{"x": 1, "y": 1}] * 3}), encoding="utf-8"
    )
    boxed = store.write(clips[2], 0, "boxes", sparse, engine="sim", settings={}, source_offset=0, seconds=0)
    report = evaluate_store(store.root, progress=False)
    cost = report["cost"]
    assert cost["units"] == {"clicks": 5, "clicked frames": 2}
    assert cost["seconds"] == {"clicks": pytest.approx((2 * 1.5 + 1) + (3 * 1.5 + 1))}
    assert cost["uncosted_labels"] == {"boxes": 1}
    boxed.with_name(boxed.name.replace("_boxes_labelTrainIds.png", "_boxes.json")).write_text(
        json.dumps({"boxes": [{}, {}]}), encoding="utf-8"
    )
    cost = evaluate_store(store.root, progress=False)["cost"]
    assert cost["seconds"]["boxes"] == 14.0 and cost["uncosted_labels"] == {}
    boxed.with_name(boxed.name.replace("_boxes_labelTrainIds.png", "_boxes.json")).write_text(
        "{oops", encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"_boxes\.json: expected a JSON object with a 'boxes' list"):
        evaluate_store(store.root, progress=False)


def test_bad_stores_are_named(davis_store: Path, tmp_path: Path) -> None:
    with pytest.raises(LabelStoreError, match=r"nowhere: label store folder does not exist"):
        evaluate_store(tmp_path / "nowhere", progress=False)
    (tmp_path / "plain").mkdir()
    with pytest.raises(LabelStoreError, match=r"run\.json: not found: .*plain is not a label store"):
        evaluate_store(tmp_path / "plain", progress=False)
    (tmp_path / "plain" / "run.json").write_text("[]", encoding="utf-8")
    with pytest.raises(LabelStoreError, match=r"run\.json: not a label store's run record"):
        evaluate_store(tmp_path / "plain", progress=False)
    records = [
        json.loads(line) for line in (davis_store / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    label = davis_store / records[0]["path"]
    cv2.imwrite(str(label), np.zeros((H + 1, W), np.uint8))
    with pytest.raises(
        DataError, match=rf"{label.name}: label size \(5, 5\) differs from its ground truth's"
    ):
        evaluate_store(davis_store, progress=False)
    label.unlink()  # it said "file does not exist" alone
    with pytest.raises(LabelStoreError) as error:
        evaluate_store(davis_store, progress=False)
    assert str(error.value) == (
        f"{label}: recorded in the store but missing or cut short: run the command that made the store again "
        f"with the same --out ({davis_store}): it makes such labels again"
    )
    run = json.loads((davis_store / "run.json").read_text(encoding="utf-8"))
    shutil.rmtree(run["root"])
    with pytest.raises(DataError, match="data set folder named by .*run.json does not exist"):
        evaluate_store(davis_store, progress=False)


def test_cli_writes_json_plot_and_table(
    davis_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    top = argparse.ArgumentParser(prog="frugalseg")
    commands.register(top.add_subparsers(dest="group", required=True))
    out = tmp_path / "out"
    args = top.parse_args(
        [
            "label",
            "report",
            str(davis_store),
            "--out",
            str(out),
            "--cost",
            "vos_mask_seconds=60",
            "--no-progress",
        ]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "pseudo" in printed and "0.833" in printed and "annotation cost: 0.05 h" in printed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["cost"]["constants"]["vos_mask_seconds"] == 60.0
    plot = cv2.imread(str(out / "quality.png"))
    assert plot is not None and plot.shape[0] > 100
    paths = write_report(report, tmp_path / "again")
    assert [p.name for p in paths] == ["report.json", "quality.png"]


def test_confidence_per_offset_and_wrong_pixels_in_the_tails(davis_store: Path) -> None:
    """Confidence maps beside the +1 labels: mean confidence per offset, and the share of wrong
    pixels among each frame's 10 % least / most confident pixels with ground truth."""
    store = LabelStore(davis_store)
    records = {(r["clip_id"], r["offset"]): r for r in store.records()}
    # s at +1 labels column 2 wrongly (object where truth is background): least confident there
    low = np.where(_columns(2) == 1, 0.1, 1.0)
    maps = {"s": low, "t": np.full((H, W), 0.5)}
    for clip_id, confidence in maps.items():
        label_path = davis_store / records[clip_id, 1]["path"]
        image = np.rint(confidence * 255).astype(np.uint8)
        cv2.imwrite(str(confidence_path(label_path)), image)
    rows = {row["offset"]: row for row in evaluate_store(davis_store, progress=False)["rows"]}
    one, two = rows[1], rows[2]
    assert one["confident_labels"] == 2
    assert one["confidence"] == pytest.approx(((16 + 4 * 26 / 255) / 20 + 128 / 255) / 2)
    # 20 pixels a frame: 2 least confident each; s: 2 of column 2 (wrong), t: 2 right ones
    assert one["wrong@low10"] == pytest.approx(2 / 4) and one["wrong@high10"] == 0.0
    assert two["confident_labels"] == 0 and two["confidence"] is None and two["wrong@low10"] is None
    per_clip = {
        (r["clip_id"], r["offset"]): r for r in evaluate_store(davis_store, progress=False)["per_clip"]
    }
    assert (
        per_clip["t", 1]["confidence"] == pytest.approx(128 / 255) and per_clip["t", 2]["confidence"] is None
    )


def test_labels_without_a_map_have_no_confidence_and_a_bad_map_is_named(davis_store: Path) -> None:
    report = evaluate_store(davis_store, progress=False)
    assert all(row["confidence"] is None for row in report["rows"])
    store = LabelStore(davis_store)
    path = davis_store / store.records()[0]["path"]
    cv2.imwrite(str(confidence_path(path)), np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DataError, match="confidence map size"):
        evaluate_store(davis_store, progress=False)


def test_a_store_made_from_other_frames_is_refused_not_scored(tiny_streets, tmp_path):
    """A data set whose frames changed since the store was made (another seed at its recorded root) had been
    scored without a word (J 0.05 where the store's frames give 0.98), where `fit` refuses it."""
    from frugalseg.cli import main

    root = tmp_path / "streets"
    shutil.copytree(tiny_streets, root)
    store = tmp_path / "store"
    argv = ["label", "propagate", "--format", "synthetic", "--root", str(root), "--out", str(store)]
    assert main([*argv, "--offsets=1", "--no-progress"]) == 0
    assert evaluate_store(store, progress=False)["rows"]
    record = LabelStore(store).records()[0]
    clip = next(
        c for c in get_format("synthetic", root).clips(record["split"]) if c.clip_id == record["clip_id"]
    )
    frame = clip.frame_path(record["offset"])
    frame.write_bytes(frame.read_bytes()[:-16] + bytes(16))  # the same name and size, other pixels
    with pytest.raises(LabelStoreError, match=f"made from other frames than the data set {root}"):
        evaluate_store(store, progress=False)


def test_an_imported_label_without_instance_ids_counts_its_objects_not_its_specks() -> None:
    """A propagated blob exported to CVAT and imported back had cost 7 object masks for 3 labels of one
    object: each stray piece of 1-41 px was counted as a mask a person drew (a helper's walkthrough)."""
    from frugalseg.autolabel.report import object_regions

    one = np.zeros((480, 854), bool)  # 409,920 px: a speck is under 41
    one[100:300, 100:300] = True  # 40,000 px
    one[400, 400:402] = one[10, 10:12] = True  # 2-px specks
    one[450:453, 700:705] = True  # 15 px
    assert object_regions(one) == 1
    two = one.copy()
    two[400:415, 600:620] = True  # 300 px, 0.75 % of the object pixels: a phone beside a person
    assert object_regions(two) == 2
    specks = np.zeros((480, 854), bool)
    specks[0, 0] = specks[5, 5] = True
    assert object_regions(specks) == 1 and object_regions(np.zeros((4, 4), bool)) == 0


def test_a_pseudo_label_that_is_its_own_source_is_not_costed_as_a_drawn_mask(tmp_path: Path) -> None:
    """`annotate export` then `label import` of its COCO file recorded each propagated frame as its own
    source: the report costed every one as a drawn mask (45 object masks, 1.01 h, for a 0.01 h session)."""
    root = write_davis(tmp_path / "davis", TRUTH)
    fmt = get_format("davis", root)
    store = LabelStore(tmp_path / "store")
    store.open_run({"engine": "import", "settings": {}, "split": "all", "format": "davis", "root": str(root)})
    for clip in fmt.clips("all"):
        for offset in (1, 2):
            store.write(clip, offset, LabelKind.PSEUDO, _columns(3), engine="import", settings={},
                        source_offset=offset, seconds=0.0)  # fmt: skip
    cost = evaluate_store(store.root, progress=False)["cost"]
    assert cost["units"] == {} and cost["hours"] == 0.0 and cost["uncosted_labels"] == {"pseudo": 4}


def test_a_store_on_frames_without_masks_is_reported_not_scored(tmp_path: Path) -> None:
    """``label import`` onto a DAVIS root of frames alone: the report had refused the store ("mask of the
    first frame of sequence … does not exist"), where a video-format root reports it not scored."""
    root = write_davis(tmp_path / "davis", TRUTH)
    shutil.rmtree(root / "Annotations")
    fmt = get_format("davis", root)
    store = LabelStore(tmp_path / "store")
    store.open_run({"engine": "import", "settings": {}, "split": "all", "format": "davis", "root": str(root)})
    clip = fmt.clips("all", labelled=False)[0]
    store.write(
        clip, 1, LabelKind.FINE, _columns(3), engine="import", settings={}, source_offset=1, seconds=80.0
    )
    report = evaluate_store(store.root, progress=False)
    assert report["cost"]["hours"] == pytest.approx(80 / 3600)
    assert [(row["labels"], row["scored"]) for row in report["rows"]] == [(1, 0)]
