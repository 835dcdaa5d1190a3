"""Every data set layout: the formats known by name, each generated tree detected as its own format,
the real samples detected, and ``frugalseg fit`` trained on each of the newer readers' trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import lightning_args

from frugalseg.data.formats import FORMATS, check_layout, detect_format, get_format
from frugalseg.errors import DataError

from . import fake_camvid as camvid
from . import fake_idd as idd
from . import fake_veis as veis
from .fake_cityscapes import write_snippets
from .fake_davis import write_davis

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
SMALL = ["--model.student", "deeplabv3plus_mbv2", "--data.num_frames", "1", "--trainer.fast_dev_run", "true"]


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known formats: synthetic, cityscapes"):
        get_format("kitti", "/nowhere")
    assert {"cityscapes", "synthetic", "davis", "mose"} <= set(FORMATS)


def test_a_folder_without_a_split_of_the_format_asked_names_the_format_problem(tmp_path: Path) -> None:
    """A CamVid folder read as Cityscapes said "split 'train' does not exist; splits found: none": the folder
    is named as not of that format, with what it holds, the formats and the one it looks like."""
    formats = "synthetic, cityscapes, idd, camvid, mose, davis, veis, video"
    root = camvid.write_segnet(tmp_path / "camvid")
    with pytest.raises(DataError) as error:
        check_layout(get_format("cityscapes", root))
    assert error.value.problem == (
        "no cityscapes data set here (no split found): the folder holds train/, trainannot/, val/, "
        f"valannot/; formats: {formats}; it looks like camvid (--format camvid)"
    )
    check_layout(get_format("camvid", root))  # its own format finds its splits
    for name in "abcdefg":
        (tmp_path / "other" / name).mkdir(parents=True)
    with pytest.raises(DataError) as error:
        check_layout(get_format("idd", tmp_path / "other"))
    assert error.value.problem == (
        "no idd data set here (no split found): the folder holds a/, b/, c/, d/, e/, f/ and 1 more; "
        f"formats: {formats}; it matches none of them"
    )


def test_each_layout_is_detected_as_its_own_format(tiny_streets: Path, tmp_path: Path) -> None:
    one_mask = {"seq": [np.zeros((8, 8), np.uint8)]}
    trees = {
        "synthetic": tiny_streets,
        "cityscapes": write_snippets(tmp_path / "cityscapes"),
        "davis": write_davis(tmp_path / "davis", one_mask),
        "mose": write_davis(tmp_path / "mose", one_mask, resolution=None),
        "camvid (SegNet)": camvid.write_segnet(tmp_path / "segnet"),
        "camvid (original)": camvid.write_original(tmp_path / "original"),
        "idd": idd.write_idd(tmp_path / "idd"),
        "veis": veis.write_veis(tmp_path / "veis"),
    }
    assert {layout: detect_format(root) for layout, root in trees.items()} == {
        "synthetic": "synthetic",
        "cityscapes": "cityscapes",
        "davis": "davis",
        "mose": "mose",
        "camvid (SegNet)": "camvid",
        "camvid (original)": "camvid",
        "idd": "idd",
        "veis": "veis",
    }
    for name in ("idd", "camvid", "veis"):  # the newer readers claim none of the older layouts
        for older in ("synthetic", "cityscapes", "davis", "mose"):
            assert not FORMATS[name].looks_like(trees[older]), (name, older)


def test_real_cityscapes_and_davis_are_detected(shared_data: Path) -> None:
    assert detect_format(shared_data / "cityscapes_dev") == "cityscapes"
    assert detect_format(shared_data / "cityscapes_tiny") == "cityscapes"
    assert detect_format(shared_data / "davis_dev") == "davis"


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["idd", "veis", "camvid_segnet", "camvid_original"])
def test_fit_fast_dev_run_trains_on_each_tree(layout: str, tmp_path: Path) -> None:
    from frugalseg.cli.lightning import run_lightning_cli

    writers = {
        "idd": idd.write_idd,
        "veis": veis.write_veis,
        "camvid_segnet": camvid.write_segnet,
        "camvid_original": camvid.write_original,
    }
    root = writers[layout](tmp_path / layout)
    name = layout.split("_")[0]
    args = lightning_args(
        CONFIG,
        root,
        tmp_path / "run",
        format=name,
        recipe={"name": "N1"},
        augment={"crop_size": "null"},
        loader={"batch_size": 2},
        splits={"val": "val"},
        temporal={"consistency": False},
    )
    cli = run_lightning_cli(["fit", *args, *SMALL])
    assert cli.trainer.state.finished
    assert cli.datamodule.format_name == name
    assert cli.model.hparams.num_classes == FORMATS[name].classes.num_classes
    assert "train/loss" in cli.trainer.callback_metrics and "val/mIoU" in cli.trainer.callback_metrics
