"""The CamVid reader on tiny generated trees with known labels (SegNet layout, original colour release)
and on the real sample.

The trees come from ``fake_camvid.py``; labels hold hand-chosen classes, so a decoded pixel is compared
with its class, not with what the reader computed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.data.check import check_dataset
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import detect_format, get_format
from frugalseg.data.io import write_png_atomic

from . import fake_camvid as camvid
from .reading import clips_by_id
from .reading import problems as found_problems

# --- SegNet layout -------------------------------------------------------------------------------


@pytest.fixture
def segnet(tmp_path: Path) -> Path:
    return camvid.write_segnet(tmp_path / "camvid")


def test_camvid_segnet_clips_are_the_stills_of_a_sequence_in_time_order(segnet: Path) -> None:
    fmt = get_format("camvid", segnet)
    assert fmt.splits() == ["train", "val"]
    train = clips_by_id(fmt, "train")
    assert sorted(train) == sorted(camvid.SEGNET_STILLS["train"])
    clip = train["0001TP_006720"]
    assert [p.name for p in clip.frames] == ["0001TP_006690.jpg", "0001TP_006720.jpg", "0001TP_006750.jpg"]
    assert clip.anchor_index == 1 and clip.frame_path(-1).name == "0001TP_006690.jpg"
    assert [p.name for p in train["Seq05VD_f00030"].frames] == ["Seq05VD_f00000.jpg", "Seq05VD_f00030.jpg"]
    assert train["Seq05VD_f00030"].anchor_index == 1
    assert sorted(clips_by_id(fmt, "val")) == ["0016E5_07959", "0016E5_07961"]


def test_camvid_segnet_labels_decode_to_the_11_classes_and_void_to_ignore(segnet: Path) -> None:
    fmt = get_format("camvid", segnet)
    assert fmt.class_names == (
        "Sky",
        "Building",
        "Pole",
        "Road",
        "Pavement",
        "Tree",
        "SignSymbol",
        "Fence",
        "Car",
        "Pedestrian",
        "Bicyclist",
    )
    assert fmt.classes.instance_classes == ()
    clip = clips_by_id(fmt, "train")["0001TP_006750"]
    label = fmt.read_label(clip.label(0, LabelKind.FINE))
    assert label.dtype == np.uint8 and label.shape == (camvid.H, camvid.W)
    np.testing.assert_array_equal(label, camvid.expected_label(2))
    assert label[25, 44] == fmt.class_names.index("Bicyclist") and label[30, 0] == IGNORE_INDEX
    truth = fmt.ground_truth(clip)
    assert sorted(truth) == [-2, -1, 0]
    np.testing.assert_array_equal(fmt.read_label(truth[-2]), camvid.expected_label(0))


def test_camvid_segnet_is_detected_and_checks_clean(segnet: Path) -> None:
    assert detect_format(segnet) == "camvid"
    assert check_dataset(segnet) == []


def test_camvid_segnet_check_names_each_planted_fault(segnet: Path) -> None:
    write_png_atomic(segnet / "trainannot/0001TP_006690.png", np.zeros((camvid.H, camvid.W + 2), np.uint8))
    bad_value = camvid.expected_label(1)
    bad_value[0, 0] = 12
    write_png_atomic(segnet / "trainannot/0001TP_006720.png", bad_value)
    (segnet / "val/0016E5_07961.png").write_bytes(b"not a png")
    write_png_atomic(segnet / "valannot/0016E5_08001.png", camvid.expected_label(0))  # no frame
    assert found_problems(segnet) == {
        (
            "trainannot/0001TP_006690.png",
            "label size 50×32 differs from its frame's 48×32 (0001TP_006690.jpg)",
            False,
        ),
        (
            "trainannot/0001TP_006720.png",
            "label values [12] outside CamVid's 0..10, 11 (void) and 255",
            False,
        ),
        ("val/0016E5_07961.png", "cannot decode image (corrupt or not an image)", False),
        ("valannot/0016E5_08001.png", "label has no frame (0016E5_08001.*) in split 'val'", False),
    }


# --- original release ---------------------------------------------------------------------------


@pytest.fixture
def original(tmp_path: Path) -> Path:
    return camvid.write_original(tmp_path / "camvid_original")


def test_camvid_original_colours_map_to_the_same_11_classes(original: Path) -> None:
    assert detect_format(original) == "camvid"
    fmt = get_format("camvid", original)
    assert fmt.splits() == ["train", "val"]  # from train.txt and val.txt
    train = clips_by_id(fmt, "train")
    assert sorted(train) == sorted(camvid.SEGNET_STILLS["train"])
    clip = train["0001TP_006750"]
    assert [p.name for p in clip.frames] == ["0001TP_006690.png", "0001TP_006720.png", "0001TP_006750.png"]
    assert clip.anchor_index == 2
    label = fmt.read_label(clip.label(0, LabelKind.FINE))
    np.testing.assert_array_equal(label, camvid.expected_label(2))
    # one pixel per grouped colour: Wall → Building, SUVPickupTruck → Car, LaneMkgsDriv → Road, …
    names = fmt.class_names
    assert label[10, 0] == names.index("Building")
    assert label[10, 30] == names.index("Tree")
    assert label[22, 30] == names.index("Car")
    assert label[18, 30] == names.index("Road")
    assert label[21, 2] == names.index("Pedestrian")
    assert label[17, 10] == names.index("Pole")
    assert label[30, 30] == IGNORE_INDEX
    assert {offset: fmt.read_label(ref)[0, 0] for offset, ref in fmt.ground_truth(clip).items()} == {
        -2: names.index("Sky"),
        -1: names.index("Building"),
        0: names.index("Pole"),
    }
    assert check_dataset(original) == []


def test_camvid_original_without_lists_or_colour_file(original: Path) -> None:
    (original / "train.txt").unlink()
    (original / "val.txt").unlink()
    (original / "label_colors.txt").unlink()  # the built-in table of the 32 colours
    fmt = get_format("camvid", original)
    assert fmt.splits() == ["all"]
    clips = clips_by_id(fmt, "all")
    assert len(clips) == 7 and [p.name for p in clips["0016E5_07961"].frames] == [
        "0016E5_07959.png",
        "0016E5_07961.png",
    ]
    label = fmt.read_label(clips["0001TP_006690"].label(0, LabelKind.FINE))
    np.testing.assert_array_equal(label, camvid.expected_label(0))
    assert check_dataset(original) == []


def test_camvid_original_check_names_an_unknown_colour_and_a_missing_still(original: Path) -> None:
    path = original / "LabeledApproved_full/0001TP_006720_L.png"
    rgb = cv2.imread(str(path))[..., ::-1].copy()
    rgb[5, 5] = (1, 2, 3)
    write_png_atomic(path, rgb)
    with (original / "val.txt").open("a", encoding="utf-8") as listing:
        listing.write("/SegNet/CamVid/val/0016E5_09999.png /SegNet/CamVid/valannot/0016E5_09999.png\n")
    assert found_problems(original) == {
        ("LabeledApproved_full/0001TP_006720_L.png", "colours (1, 2, 3) are no CamVid class", False),
        ("701_StillsRaw_full/0016E5_09999.png", "listed in val.txt line 3, does not exist", False),
    }


# --- the real sample ----------------------------------------------------------------------------


def test_real_camvid_dev_splits_and_a_known_pixel(shared_data: Path) -> None:
    assert detect_format(shared_data / "camvid_dev") == "camvid"
    fmt = get_format("camvid", shared_data / "camvid_dev")
    train, val = clips_by_id(fmt, "train"), clips_by_id(fmt, "val")
    assert (len(train), len(val)) == (367, 101)
    clip = train["0001TP_006690"]
    assert clip.anchor_index == 0 and len(clip.frames) == 62  # the 0001TP stills of train, 1 s apart
    assert train["0001TP_006720"].frame_path(-1).name == "0001TP_006690.jpg"
    label = fmt.read_label(clip.label(0, LabelKind.FINE))
    assert label.shape == (360, 480)
    assert fmt.class_names[label[250, 400]] == "Car"  # the dark car on the right
    assert fmt.class_names[label[50, 300]] == "Building"  # the church tower
    assert label[359, 240] == IGNORE_INDEX  # the bonnet, void (11) in the file
    assert len(fmt.ground_truth(clip)) == 62


# --- the WeClick CamVid configs ----------------------------------------------------------------

CONFIGS = Path(__file__).resolve().parents[2] / "frugalseg" / "configs"
WECLICK_CAMVID = [
    "weclick_camvid_dense.yaml",
    "weclick_camvid_clicks.yaml",
    "weclick_camvid_clicks_gcrf.yaml",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", WECLICK_CAMVID)
def test_weclick_camvid_config_trains_a_step_on_a_fake_camvid_tree(
    name: str, segnet: Path, tmp_path: Path, monkeypatch
) -> None:
    """Each config runs as its header says (fast_dev_run, CPU), on the SegNet layout read as camvid."""
    import math
    import warnings

    from frugalseg.cli.lightning import run_lightning_cli

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    clicks = (
        '{"class_path": "frugalseg.autolabel.sources.SimulatedClicks", "init_args": {"min_stuff_area": 16}}'
    )
    args = ["fit", "--config", str(CONFIGS / name), "--data.root", str(segnet), "--data.format", "camvid"]
    args += [
        "--data.augment.crop_size",
        "[32,48]",
        "--data.loader.batch_size",
        "2",
        "--data.loader.num_workers",
        "0",
    ]
    args += ["--trainer.accelerator", "cpu", "--trainer.fast_dev_run", "true"]
    args += ["--trainer.default_root_dir", str(out), "--trainer.logger.init_args.save_dir", str(out)]
    args += ["--checkpoint.dirpath", str(out / "checkpoints"), "--trainer.enable_progress_bar", "false"]
    args += ["--model.student_args", "{encoder_weights: null}"]  # offline: random encoders
    if "clicks" in name:  # the 32×48 stills have no 512 px region: a smaller minimum for the test
        args += ["--data.labels.clicks", clicks]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cli = run_lightning_cli(args)
    assert cli.datamodule.format_name == "camvid" and cli.model.hparams.num_classes == 11
    assert cli.model.student.net.encoder.conv1.weight.shape == (64, 3, 7, 7)  # DeepLabV3+-R18
    metrics = cli.trainer.callback_metrics
    for metric in ("train/loss", "val/mIoU"):
        assert metric in metrics and math.isfinite(float(metrics[metric])), metric
    if name.endswith("gcrf.yaml"):
        assert {"train/loss_clicks_partial_ce", "train/loss_clicks_gated_crf"} <= set(metrics)
        assert cli.model.label_loss.losses["clicks"]["gated_crf"].normalize == "neighbourhood"


def test_a_checkpoint_is_evaluated_without_the_configs_starting_weights(
    segnet: Path, tmp_path: Path, monkeypatch
) -> None:
    """A run trained from random encoders, evaluated with its config (``encoder_weights: imagenet``): the
    checkpoint's state dict replaces the starting weights, which `test` had tried to download (offline:
    an error)."""
    import warnings

    from frugalseg.cli.lightning import run_lightning_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    common = ["--config", str(CONFIGS / "weclick_camvid_dense.yaml"), "--data.root", str(segnet)]
    common += ["--data.format", "camvid", "--data.augment.crop_size", "[32,48]"]
    common += ["--data.loader.batch_size", "2"]
    common += ["--data.loader.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.logger", "false"]
    common += ["--trainer.default_root_dir", str(out), "--checkpoint.dirpath", str(out / "checkpoints")]
    common += ["--trainer.enable_progress_bar", "false"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_lightning_cli(["fit", *common, "--model.student_args", "{encoder_weights: null}",
                           "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1"])  # fmt: skip
        cli = run_lightning_cli(["test", *common, "--ckpt_path", "last"])
    assert "test/mIoU" in cli.trainer.callback_metrics
