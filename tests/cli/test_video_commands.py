"""Every command on a video file, end to end: what it makes from ``clip.mp4`` equals what it makes from
the same decoded frames saved as PNG files (the only difference is where the pixels come from)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import COLOURS, SQUARES_FRAMES, palette_png, squares
from data.fake_video import write_video

from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main
from frugalseg.data.io import read_frame
from frugalseg.data.videos import video_frame_path

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


@pytest.fixture(scope="module")
def squares_video(tmp_path_factory) -> dict[str, Path]:
    """``clip.mp4`` of two moving squares with its masks in ``Annotations/clip/``, and ``frames/``: the
    video's decoded frames as PNG files ``00000.png`` …"""
    root = tmp_path_factory.mktemp("squares")
    ids = [squares(t, 0) for t in range(SQUARES_FRAMES)]
    video = write_video(root / "videos" / "clip.mp4", [COLOURS[i] for i in ids])
    masks = root / "videos" / "Annotations" / "clip"
    for t, frame_ids in enumerate(ids):
        palette_png(masks / f"{t:05d}.png", frame_ids)
    frames = root / "frames"
    frames.mkdir()
    for t in range(SQUARES_FRAMES):
        cv2.imwrite(
            str(frames / f"{t:05d}.png"),
            cv2.cvtColor(read_frame(video_frame_path(video, t)), cv2.COLOR_RGB2BGR),
        )
    return {"video": video, "masks": masks, "frames": frames}


def _labels(store: Path) -> dict[int, np.ndarray]:
    found = {}
    for record in LabelStore(store).records():
        found[record["offset"]] = cv2.imread(str(store / record["path"]), cv2.IMREAD_UNCHANGED)
    return found


def test_label_propagate_and_report_on_a_video_equal_those_on_its_frames(squares_video, tmp_path):
    stores = {}
    for name in ("video", "frames"):
        stores[name] = tmp_path / name
        argv = "label propagate --format video --split all --offsets 1,2,3,4 --no-progress".split()
        argv += [
            "--root",
            str(squares_video[name]),
            "--masks",
            str(squares_video["masks"]),
            "--out",
            str(stores[name]),
        ]
        assert main(argv) == 0
    from_video, from_frames = _labels(stores["video"]), _labels(stores["frames"])
    assert sorted(from_video) == [1, 2, 3, 4]
    for offset, label in from_video.items():
        np.testing.assert_array_equal(label, from_frames[offset])
    assert (stores["video"] / "all" / "clip.mp4" / "00004_pseudo_labelTrainIds.png").is_file()
    assert main(["label", "report", str(stores["video"])]) == 0
    rows = json.loads((stores["video"] / "report" / "report.json").read_text(encoding="utf-8"))["rows"]
    assert [row["scored"] for row in rows] == [1, 1, 1, 1]  # every label against its frame's mask
    assert min(row["j"] for row in rows) > 0.8


@pytest.mark.slow
def test_predict_on_a_video_equals_predict_on_its_frames(squares_video, tiny_streets, tmp_path):
    outputs = {}
    for name, source in (("video", squares_video["video"]), ("frames", squares_video["frames"])):
        outputs[name] = tmp_path / name
        argv = [
            "predict",
            "--config",
            str(CONFIG),
            "--data.root",
            str(tiny_streets),
            "--data.loader.num_workers",
            "0",
        ]
        argv += [
            "--model.student",
            "hrnetv2_w18_small",
            "--model.student_args",
            '{"weights": "streets-hrnetv2-w18s"}',
        ]
        argv += ["--data.num_frames", "1", "--data.predict.frames", str(source)]
        argv += [
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "runs"),
            "--trainer.enable_progress_bar",
            "false",
        ]
        argv += ["--predict_writer.output_dir", str(outputs[name]), "--predict_writer.formats", "[trainIds]"]
        assert main(argv) == 0
    written = sorted((outputs["video"] / "trainIds" / "clip").glob("*.png"))
    assert [p.name for p in written] == [f"{t:05d}.png" for t in range(SQUARES_FRAMES)]
    for path in written:
        twin = outputs["frames"] / "trainIds" / "frames" / path.name
        np.testing.assert_array_equal(cv2.imread(str(path), -1), cv2.imread(str(twin), -1))


@pytest.mark.slow
def test_fit_trains_on_a_video_with_its_masks(squares_video, tmp_path):
    argv = [
        "fit",
        "--config",
        str(CONFIG),
        "--data.root",
        str(squares_video["video"]),
        "--data.loader.num_workers",
        "0",
    ]
    argv += [
        "--data.recipe.name",
        "F2s",
        "--data.recipe.budget",
        "2",
        "--data.splits.train",
        "all",
        "--data.splits.val",
        "all",
    ]
    argv += [
        "--data.augment.crop_size",
        "null",
        "--trainer.max_epochs",
        "1",
        "--trainer.enable_progress_bar",
        "false",
    ]
    argv += [
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
    ]
    assert main(argv) == 0
    (samples,) = tmp_path.rglob("samples.json")
    drawn = json.loads(samples.read_text(encoding="utf-8"))
    assert sorted((s["clip_id"], s["offset"], s["kind"]) for s in drawn["samples"]) == [
        ("clip", 0, "fine"),
        ("clip", 1, "pseudo"),
    ]


def test_annotate_simulate_add_and_propose_on_a_video(squares_video, tmp_path, capsys):
    root = str(squares_video["video"])
    out = tmp_path / "sim"
    simulate = ["annotate", "simulate", "--format", "video", "--root", root, "--budget-hours", "0.05"]
    assert (
        main([*simulate, "--frames", "uniform", "--types", "mask", "--out", str(out), "--no-progress"]) == 0
    )
    curves = json.loads((out / "curves.json").read_text(encoding="utf-8"))
    assert curves["strategies"]["uniform-mask"]["mean"]["hours"][0] == pytest.approx(
        160 / 3600, abs=1e-6
    )  # 2 objects
    # a video without Annotations/ beside it, its masks named with --masks (the option had been missing)
    alone = tmp_path / "alone" / "clip.mp4"
    alone.parent.mkdir()
    alone.write_bytes(squares_video["video"].read_bytes())
    named = [*simulate[:5], str(alone), *simulate[6:], "--masks", str(squares_video["masks"])]
    again = ["--frames", "uniform", "--types", "mask", "--out", str(tmp_path / "sim2"), "--no-progress"]
    assert main([*named, *again]) == 0
    assert (
        json.loads((tmp_path / "sim2" / "curves.json").read_text(encoding="utf-8"))["strategies"]
        == (curves["strategies"])
    )
    state = str(tmp_path / "session")
    mask = str(squares_video["masks"] / "00000.png")
    add = ["annotate", "add", "--state", state, "--format", "video", "--root", root, "--video", "clip"]
    assert main([*add, "--frame", "0", "--mask", mask]) == 0
    capsys.readouterr()
    assert main(["annotate", "propose", "--state", state]) == 0
    assert "next: clip frame " in capsys.readouterr().out
