"""The interactive benchmark's protocol (`benchmarks/bench_interactive.py`): its simulated person, NoC, the
summaries it prints; and the objects `benchmarks/camvid_objects.py` and `cityscapes_objects.py` write."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from tool_frames import cityscapes_instance

from frugalseg.active.objects.simulation.simulated_annotator import corrective_click
from frugalseg.active.objects.tools import zoom
from frugalseg.data.formats.camvid import SEGNET_VOID
from frugalseg.errors import DataError

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))


class Scripted:
    """A stand-in click model whose answer after n clicks is the n-th scripted mask."""

    def __init__(self, answers: list[np.ndarray]) -> None:
        self.answers = answers
        self.seen: list[list[tuple[int, int, bool]]] = []

    def correct(self, image, current, clicks, *, known=None):  # noqa: ANN001, ANN201, D102
        self.seen.append([(c.x, c.y, c.positive) for c in clicks])
        return self.answers[len(clicks) - 1]


def test_the_benchmarks_simulator_clicks_deepest_in_the_larger_error_and_counts_clicks() -> None:
    bench = __import__("bench_interactive")
    truth = np.zeros((40, 60), bool)
    truth[10:30, 10:50] = True  # 20 × 40: its deepest point is the middle of the long ridge
    spill = truth.copy()
    spill[0:40, 50:60] = True  # the object and a 40 × 10 spill
    model = Scripted([spill, truth])
    no_void = np.zeros_like(truth)
    scores, seconds = bench.run_clicks(model, None, truth, no_void, start=np.zeros_like(truth), max_clicks=5)
    first, second = model.seen[-1]
    assert first[2] and 10 <= first[1] < 30 and 10 <= first[0] < 50  # positive, inside the object
    expected = corrective_click(np.zeros_like(truth), truth)
    assert expected is not None and (first[0], first[1]) == (expected.x, expected.y)
    assert not second[2] and second[0] >= 50  # negative, in the spill
    assert scores == [0.0, 800 / 1200, 1.0, 1.0, 1.0, 1.0] and len(seconds) == 2
    assert bench.noc(scores, 0.85, 5) == 2 and bench.noc([0.0] * 6, 0.85, 5) == 5


def test_the_benchmark_clicks_as_ritm_does_when_asked() -> None:
    bench = __import__("bench_interactive")
    truth = np.zeros((40, 60), bool)
    truth[20:30, 20:30] = True  # missed: 100 px, 5 deep
    band = np.zeros_like(truth)
    band[0:2, :] = True  # spill: 120 px, 1 deep
    no_void = np.zeros_like(truth)
    for clicker, first in (("largest-region", (29, 0, False)), ("deepest", (24, 24, True))):
        model = Scripted([band, truth])
        scores, _ = bench.run_clicks(model, None, truth, no_void, start=band, max_clicks=3, clicker=clicker)
        assert model.seen[0] == [first] and scores[0] == 0.0
    assert bench.CLICKERS == ("largest-region", "deepest") and bench.DEFAULT_CLICKER == "largest-region"


def test_the_benchmark_gives_noc_by_the_objects_share_of_the_image() -> None:
    bench = __import__("bench_interactive")
    assert [bench.size_band(s) for s in (0.0, 0.0099, 0.01, 0.05, 0.1, 0.2999, 0.3, 1.0)] == [
        "< 1%", "< 1%", "1%–3%", "3%–10%", "10%–30%", "10%–30%", "≥ 30%", "≥ 30%"
    ]  # fmt: skip
    at_two, never, mixed = [0.0, 0.5, 0.95], [0.0, 0.1, 0.2], [0.0, 0.88, 0.91]  # 3 clicks at most
    scores = {"tiny": at_two, "speck": never, "large": mixed}
    shares = {"tiny": 0.004, "speck": 0.0001, "large": 0.6}
    bands = bench.by_size(scores, shares, 3)
    assert list(bands) == ["< 1%", "≥ 30%"]  # smallest first
    assert bands == {
        "< 1%": {"images": 2, "noc85": (2 + 3) / 2, "noc90": (2 + 3) / 2},
        "≥ 30%": {"images": 1, "noc85": 1.0, "noc90": 2.0},
    }


def test_the_benchmark_gives_each_clip_s_noc_and_share() -> None:
    bench = __import__("bench_interactive")
    scores = {  # 5 clicks at most; IoU after 0…5 clicks
        "dog/00001": [0.6, 0.8, 0.91, 0.92, 0.92, 0.92],  # 0.85 at 2 clicks, 0.9 at 2
        "dog/00002": [0.7, 0.86, 0.88, 0.89, 0.95, 0.95],  # 0.85 at 1, 0.9 at 4
        "kite-surf/00003": [0.6, 0.6, 0.6, 0.6, 0.6, 0.6],  # never
    }
    table = bench.by_clip(scores, 5)
    assert list(table) == ["dog", "kite-surf"]
    assert table["dog"] == {
        "frames": 2,
        "noc85": 1.5,
        "noc90": 3.0,
        "within_2_clicks": 0.5,
        "mean_iou@1": pytest.approx(0.83),
        "mean_iou@5": pytest.approx(0.935),
    }
    assert table["kite-surf"]["noc90"] == 5.0 and table["kite-surf"]["within_2_clicks"] == 0.0
    assert "mean_iou@5" not in bench.by_clip(scores, 3)["dog"]


def test_the_summary_gives_the_share_of_answers_over_the_answer_budget() -> None:
    bench = __import__("bench_interactive")
    scores = {"a": [0.0, 0.9], "b": [0.0, 0.5]}
    row = bench.summary(scores, [0.1, 0.2, 0.31, 0.5], 1)
    assert bench.ANSWER_BUDGET == 0.3 and row["share_over_answer_budget"] == 0.5
    assert row["seconds_per_click"] == pytest.approx(0.2775)
    assert bench.summary(scores, [], 1)["share_over_answer_budget"] == 0.0
    # each image's first answer (0.31 s for a, 0.1 s for b) on its own: one of two over the budget
    first = bench.summary(scores, [0.31, 0.2, 0.1, 0.5], 1, first=[0.31, 0.1])
    assert first["first_answer_seconds"] == pytest.approx(0.205)
    assert first["first_answer_share_over_budget"] == 0.5
    assert "first_answer_seconds" not in row


def test_the_summary_counts_the_answers_that_lowered_iou_by_over_a_tenth() -> None:
    bench = __import__("bench_interactive")
    scores = {
        "a": [0.0, 0.8, 0.65, 0.7, 0.7],  # 0.15 lower
        "b": [0.6, 0.55, 0.3, 0.9, 0.9],  # 0.05, then 0.25 lower
        "c": [0.5, 0.45, 0.5, 0.5, 0.5],
    }
    assert bench.WORSE_BY == 0.1 and bench.summary(scores, [0.1], 4)["answers_worse"] == 2


def _grabcut_set(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """RITM's layout of the classic sets: a BMP image with a BMP mask banded 128, a JPEG of two objects."""
    (root / "data_GT").mkdir(parents=True)
    (root / "boundary_GT").mkdir()
    flower = np.zeros((30, 40, 3), np.uint8)
    flower[5:25, 10:30] = 200
    cv2.imwrite(str(root / "data_GT" / "flower.bmp"), flower)
    banded = np.zeros((30, 40), np.uint8)
    banded[4:26, 9:31] = 128  # GrabCut's band around the object, ignored
    banded[6:24, 11:29] = 255
    cv2.imwrite(str(root / "boundary_GT" / "flower.bmp"), banded)
    cv2.imwrite(str(root / "data_GT" / "pair.jpg"), np.full((20, 20, 3), 90, np.uint8))
    first, second = np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8)
    first[0:5, 0:5], second[10:20, 10:20] = 255, 255
    cv2.imwrite(str(root / "boundary_GT" / "pair_1.png"), first)
    cv2.imwrite(str(root / "boundary_GT" / "pair_2.bmp"), second)
    (root / "boundary_GT" / "Thumbs.db").write_bytes(b"not an image")  # not a mask: skipped
    return banded, second


def test_the_benchmark_pairs_bmp_masks_and_an_images_several_objects(tmp_path: Path) -> None:
    bench = __import__("bench_interactive")
    banded, second = _grabcut_set(tmp_path)
    samples = list(bench.paired(tmp_path / "data_GT", tmp_path / "boundary_GT"))
    assert [name for name, *_ in samples] == ["flower", "pair_1", "pair_2"]
    _, image, truth, ignored, known = samples[0]
    assert image.shape == (30, 40, 3) and image[10, 20].tolist() == [200, 200, 200] and known is None
    assert np.array_equal(truth, banded == 255) and np.array_equal(ignored, banded == 128)
    assert ignored.sum() == 22 * 22 - 18 * 18 and truth.sum() == 18 * 18
    assert np.array_equal(samples[2][2], second == 255) and not samples[2][3].any()


def test_the_benchmark_runs_on_the_classic_sets_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = __import__("bench_interactive")
    _grabcut_set(tmp_path)
    out = tmp_path / "out.json"
    folders = ["--images", str(tmp_path / "data_GT"), "--masks", str(tmp_path / "boundary_GT")]
    argv = ["bench_interactive.py", *folders, "--json", str(out), "--max-clicks", "2", "--tools", "box"]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "flower: NoC@90 box  0"  # the box alone: its band ignored
    assert printed[3].startswith("box: 3 images; NoC@85")
    assert sorted(json.loads(out.read_text(encoding="utf-8"))["results"]["box"]["iou"]) == [
        "flower",
        "pair_1",
        "pair_2",
    ]


def test_the_benchmark_names_a_mask_without_its_image_or_of_another_size(tmp_path: Path) -> None:
    bench = __import__("bench_interactive")
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    with pytest.raises(SystemExit, match=r"masks: no masks \(\.jpg .*\.bmp"):
        list(bench.paired(images, masks))
    cv2.imwrite(str(images / "cat.jpg"), np.zeros((20, 30, 3), np.uint8))
    cv2.imwrite(str(masks / "cat.png"), np.zeros((10, 30), np.uint8))
    with pytest.raises(SystemExit, match=r"cat\.png: a mask of \(30, 10\) for an image of \(30, 20\)"):
        list(bench.paired(images, masks))
    cv2.imwrite(str(masks / "dog_1.png"), np.zeros((20, 30), np.uint8))
    with pytest.raises(SystemExit, match=r"dog_1\.png: no image of it in .*images \(1 such masks\)"):
        list(bench.paired(images, masks))
    cv2.imwrite(str(masks / "cat.bmp"), np.zeros((20, 30), np.uint8))
    with pytest.raises(SystemExit, match=r"cat\.png: cat\.bmp has the same name"):
        list(bench.paired(images, masks))
    with pytest.raises(SystemExit, match=r"nowhere: no such folder"):
        list(bench.paired(tmp_path / "nowhere", masks))
    (masks / "cat.bmp").unlink()
    (masks / "dog_1.png").unlink()
    cv2.imwrite(str(masks / "cat.png"), np.eye(20, 30, dtype=np.uint8))  # 0/1: an object nobody could see
    with pytest.raises(SystemExit, match=r"cat\.png: no object \(255\) in a mask of values 0, 1; masks are"):
        list(bench.paired(images, masks))


def _davis_2017(root: Path) -> np.ndarray:
    """A DAVIS 2017-style root of 3 still frames; frame 0's object ids returned.

    Clip 'two': palette masks, objects 1 and 2 on frame 0, object 2 alone on frame 1, none on frame 2; clip
    'one': DAVIS 2016's 0/255 masks, object 1 on frame 0, nothing on frame 1.
    """
    ids = np.zeros((30, 40), np.uint8)
    ids[2:12, 2:14], ids[15:28, 20:38] = 1, 2
    frame = np.full((30, 40, 3), 30, np.uint8)
    frame[ids == 1], frame[ids == 2] = (220, 40, 40), (40, 220, 40)
    for clip in ("one", "two"):
        (root / "JPEGImages" / "480p" / clip).mkdir(parents=True)
        (root / "Annotations" / "480p" / clip).mkdir(parents=True)
        for t in range(3):
            cv2.imwrite(str(root / "JPEGImages" / "480p" / clip / f"{t:05d}.jpg"), frame[..., ::-1])
    for t in range(2):
        palette = Image.fromarray(ids if t == 0 else np.where(ids == 2, 2, 0).astype(np.uint8), mode="P")
        palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
        palette.save(root / "Annotations" / "480p" / "two" / f"{t:05d}.png")
        binary = (ids == 1).astype(np.uint8) * 255 * (t == 0)
        cv2.imwrite(str(root / "Annotations" / "480p" / "one" / f"{t:05d}.png"), binary)
    return ids


def test_the_davis_benchmark_takes_each_object_of_a_davis_2017_mask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = __import__("bench_interactive")
    ids = _davis_2017(tmp_path)
    samples = list(bench.davis_frames([tmp_path], [0], still=False))
    assert [name for name, *_ in samples] == ["one", "two:1", "two:2"]  # DAVIS 2016's clip named as before
    for (_, image, truth, ignored, known), obj in zip(samples, (1, 1, 2), strict=True):
        assert np.array_equal(truth, ids == obj) and not ignored.any() and image.shape == (30, 40, 3)
        assert known is not None and known.neighbour is not None  # frame 1, as a session gives it
    # frame 1 of 'two' holds object 2 alone: still named as one of several; 'one' has an empty frame 1
    assert [name for name, *_ in bench.davis_frames([tmp_path], [1], still=True)] == ["two/00001:2"]
    assert [name for name, *_ in bench.davis_frames([tmp_path], [2, 5], still=True)] == []
    assert capsys.readouterr().out.splitlines() == [
        "one: no object on frame 1",
        "one: no frame 2 with a mask (3 frames)",
        "one: no frame 5 with a mask (3 frames)",
        "two: no frame 2 with a mask (3 frames)",
        "two: no frame 5 with a mask (3 frames)",
    ]
    data, clips = bench.davis_clips(tmp_path)
    frames, truths, masks = bench.propagated_frames(data, "two", 2)
    assert clips == ["one", "two"] and len(frames) == 2
    assert np.array_equal(truths[1], np.where(ids == 2, 2, 0))
    assert np.array_equal(masks[1], ids)  # a still clip: both objects kept where they are
    with pytest.raises(SystemExit, match=r"00002\.jpg: no mask of this frame; corrections need"):
        bench.propagated_frames(data, "two", 3)
    (tmp_path / "images").mkdir()
    with pytest.raises(SystemExit, match=r"images/JPEGImages: folder does not exist: not a DAVIS-style"):
        bench.davis_clips(tmp_path / "images")


def _camvid(root: Path, label: np.ndarray, *, image: bool = True) -> None:
    """A one-frame CamVid (SegNet layout) split 'train' with ``label`` as its label map."""
    (root / "train").mkdir(parents=True)
    (root / "trainannot").mkdir()
    if image:
        cv2.imwrite(str(root / "train" / "f001.jpg"), np.full((*label.shape, 3), 90, np.uint8))
    cv2.imwrite(str(root / "trainannot" / "f001.png"), label)


def test_camvid_objects_writes_each_large_region_with_void_as_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = __import__("camvid_objects")
    label = np.zeros((30, 40), np.uint8)  # 0: sky
    label[2:8, 2:8] = 8  # a car of 36 px
    label[20:22, 30:32] = 8  # a car of 4 px: under the least area
    label[10:30, 20:22] = 2  # a pole of 40 px
    label[0:2, 30:40] = SEGNET_VOID
    _camvid(tmp_path / "camvid", label)
    out = tmp_path / "out"
    argv = ["camvid_objects.py", "--root", str(tmp_path / "camvid"), "--out", str(out), "--splits", "train"]
    monkeypatch.setattr(sys, "argv", [*argv, "--min-area", "10"])
    objects.main()
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["car00_f001.png", "pole00_f001.png"]
    car = cv2.imread(str(out / "masks" / "car00_f001.png"), cv2.IMREAD_GRAYSCALE)
    expected = np.where(label == SEGNET_VOID, 128, 0)
    expected[2:8, 2:8] = 255
    assert np.array_equal(car, expected)
    copied = (out / "images" / "car00_f001.jpg").read_bytes()
    assert copied == (tmp_path / "camvid" / "train" / "f001.jpg").read_bytes()


def test_camvid_objects_names_a_label_without_its_image(tmp_path: Path) -> None:
    objects = __import__("camvid_objects")
    label = np.zeros((10, 10), np.uint8)
    _camvid(tmp_path, label, image=False)
    with pytest.raises(FileNotFoundError, match=r"f001\.jpg: the image of label .*f001\.png is missing"):
        objects.regions(tmp_path, ["train"], 8, 10)
    with pytest.raises(FileNotFoundError, match=r"valannot: no CamVid label folder"):
        objects.regions(tmp_path, ["val"], 8, 10)


def test_cityscapes_objects_writes_each_gtfine_instance_with_unlabeled_as_ignored(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cityscapes_dev's gtFine frame has 13 instances; 12 hold at least 500 px. car02 is instance 26005: 6,072
    # px, and 9 unlabeled px of the frame are ignored.
    objects = __import__("cityscapes_objects")
    root, out = shared_data / "cityscapes_dev", tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["cityscapes_objects.py", "--root", str(root), "--out", str(out)])
    objects.main()
    stems = sorted(p.stem.split("_")[0] for p in (out / "masks").iterdir())
    cars = [f"car{n:02d}" for n in range(7)]
    assert stems == ["bicycle00", "bicycle01", *cars, "person00", "person01", "rider00"]
    frame = "aachen_000000_000019"
    car = cv2.imread(str(out / "masks" / f"car02_{frame}.png"), cv2.IMREAD_GRAYSCALE)
    instances = cv2.imread(
        str(root / f"gtFine/train/aachen/{frame}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED
    )
    assert np.array_equal(car == 255, instances == 26005) and (car == 255).sum() == 6072
    assert (car == 128).sum() == 9 and set(np.unique(car)) == {0, 128, 255}
    copied = (out / "images" / f"car02_{frame}.png").read_bytes()
    assert copied == (root / f"leftImg8bit/train/aachen/{frame}_leftImg8bit.png").read_bytes()


def test_cityscapes_objects_names_an_instance_map_without_its_frame(tmp_path: Path) -> None:
    objects = __import__("cityscapes_objects")
    with pytest.raises(FileNotFoundError, match=r"gtFine: no gtFine instance maps"):
        objects.objects(tmp_path, 500)
    maps = tmp_path / "gtFine" / "val" / "lindau"
    maps.mkdir(parents=True)
    cv2.imwrite(str(maps / "lindau_000001_000019_gtFine_instanceIds.png"), np.zeros((4, 8), np.uint16))
    with pytest.raises(FileNotFoundError, match=r"lindau_000001_000019_leftImg8bit\.png: missing beside"):
        objects.objects(tmp_path, 500)
    labels = maps / "lindau_000001_000019_gtFine_labelIds.png"
    labels.write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"labelIds\.png.*cannot decode"):
        objects.object_masks(maps / "lindau_000001_000019_gtFine_instanceIds.png", [26001])


def test_the_geodesic_benchmark_checks_both_searches_agree_and_times_them(
    shared_data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = __import__("bench_geodesic")
    root = shared_data / "interactive_dev"
    argv = ["bench_geodesic.py", "--images", str(root / "images"), "--masks", str(root / "masks")]
    monkeypatch.setattr(sys, "argv", [*argv, "--every", "160", "--clicks", "2"])
    bench.main()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("2 images;") and printed[3] == "answers that differ: 0 of 4"
    assert printed[1].startswith("from every seed: search") and printed[2].startswith("from the seeds' edge")


def test_the_first_click_benchmark_answers_with_and_without_the_crops(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cityscapes' 665-px pedestrian: the whole frame alone floods (IoU 0.00), the crops fit it (0.49), their
    # cuts two at once as one at a time; the model's crops are as built afterwards.
    image, truth = cityscapes_instance(shared_data, 24000)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "person00.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "masks" / "person00.png"), truth.astype(np.uint8) * 255)
    bench = __import__("bench_first_click")
    argv = ["bench_first_click.py", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks")]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(bench, "usable_cores", lambda: 2)  # the label names the cores used
    monkeypatch.setattr(zoom, "usable_cores", lambda: 2)
    bench.main()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == (
        "1 images; IoU better by > 0.1 with the crops: 1, worse: 0; "
        "answers that differ between the crops' two ways: 0"
    )
    assert printed[1].startswith("crops, 2 cuts at once: IoU after the first click median 0.4")
    assert printed[2].startswith("crops, one cut at a time: IoU after the first click median 0.4")
    assert printed[3].startswith("whole frame alone: IoU after the first click median 0.00")
    assert zoom.FIRST_CLICK_CROPS == (0.5, 0.25, 0.125) and zoom.FIRST_CLICK_THREADS == 2
