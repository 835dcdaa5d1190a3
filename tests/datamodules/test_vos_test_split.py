"""`vos test` without a test split, a sequence too short to evaluate or a clip longer than every training
sequence: an error naming the option or the folder, one line on the command line."""

from __future__ import annotations

from pathlib import Path

import lightning  # noqa: F401  (imported before capsys captures stderr: its log handler keeps the stream)
import pytest
from cli_helpers import lightning_args
from data.fake_davis import squares, write_davis, write_moving_squares

from frugalseg.cli import BAD_INPUT, main
from frugalseg.datamodules.vos import VOSDataModule
from frugalseg.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]
MESSAGE = (
    "data.test_split: `test` needs a split whose frames all have masks: give --data.test_split "
    "(`all` for a folder without ImageSets)"
)


def test_testing_without_a_test_split_is_a_config_error(tmp_path: Path) -> None:
    data = VOSDataModule(str(write_moving_squares(tmp_path / "davis")), num_workers=0)
    with pytest.raises(ConfigError) as error:
        data.setup("test")
    assert error.value.option == "data.test_split"
    assert str(error.value) == MESSAGE


def test_vos_test_without_a_test_split_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_moving_squares(tmp_path / "davis")
    args = lightning_args(REPO / "configs" / "stm_davis.yaml", root, tmp_path / "run", workers="num_workers")
    code = main(["vos", "test", *args])
    err = capsys.readouterr().err
    assert code == BAD_INPUT == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"error: {MESSAGE}"
    assert (  # it had named `frugalseg fit` and --model.init_args.init_weights, which vos has not
        "warning: test scores the model as built, untrained: give --ckpt_path (a checkpoint of "
        "`frugalseg vos fit`) or weights (--model.student_args '{weights: ID or FILE}')\n"
    ) in err


def test_a_sequence_of_two_frames_to_evaluate_is_named(tmp_path: Path) -> None:
    root = write_davis(
        tmp_path / "davis", {"long": [squares(t, 0) for t in range(4)], "short": [squares(0, 1)] * 2}
    )
    data = VOSDataModule(str(root), val_split="all", num_workers=0)
    with pytest.raises(DataError) as error:
        data.setup("validate")
    assert error.value.path == root / "JPEGImages" / "480p" / "short"
    assert error.value.problem.startswith("2 frame(s): J&F leaves out a sequence's first and last frame")


@pytest.mark.parametrize("stage", ["fit", "validate"])
def test_a_root_of_frames_only_is_refused_naming_its_missing_masks_folder(tmp_path: Path, stage: str) -> None:
    """It had said "…/Annotations/long/00000.png: evaluation needs a mask on every frame" (a path without the
    resolution folder, blaming one mask) for a root that has no masks at all."""
    import shutil

    root = write_davis(tmp_path / "davis", {"long": [squares(t, 0) for t in range(4)]})
    shutil.rmtree(root / "Annotations")
    data = VOSDataModule(str(root), train_split="all", val_split="all", num_workers=0)
    with pytest.raises(DataError) as error:
        data.setup(stage)
    assert str(error.value) == (
        f"{root / 'Annotations'}: folder does not exist: training and scoring objects need their masks "
        "(Annotations/<sequence>/*.png beside JPEGImages/); `frugalseg annotate` makes them from frames alone"
    )


def test_a_validation_split_with_the_first_masks_alone_is_said_to_be_one(tmp_path: Path) -> None:
    """MOSE's valid split ships frame 0's masks alone (its server scores the rest): "4 of sequence … have
    none" had not said why, nor where J&F can be scored."""
    root = write_davis(tmp_path / "davis", {"long": [squares(t, 0) for t in range(5)]})
    for mask in sorted((root / "Annotations").rglob("*.png"))[1:]:
        mask.unlink()
    data = VOSDataModule(str(root), train_split="all", val_split="all", num_workers=0)
    with pytest.raises(
        DataError,
        match=r"4 of sequence 'long' have none: only its first frame has one, as a "
        r"VOS validation split ships them \(MOSE valid; its server scores the rest\)",
    ):
        data.setup("validate")


def test_a_clip_longer_than_every_training_sequence_names_data_clip_length(tmp_path: Path) -> None:
    root = write_davis(tmp_path / "davis", {"short": [squares(t, 0) for t in range(4)]})
    data = VOSDataModule(str(root), train_split="all", val_split="all", clip_length=5, num_workers=0)
    data.setup("fit")
    with pytest.raises(ConfigError) as error:
        data.train_dataset(0)
    assert error.value.option == "data.clip_length"
    assert "the most is 4" in error.value.problem


@pytest.mark.parametrize(("stage", "option"), [("validate", "val_split"), ("fit", "train_split")])
def test_a_split_the_folder_does_not_have_names_its_option(tmp_path: Path, stage: str, option: str) -> None:
    """``--data.val_split val`` on a folder without ImageSets had said "split 'val' does not exist" alone."""
    root = write_davis(tmp_path / "davis", {"long": [squares(t, 0) for t in range(4)]})
    data = VOSDataModule(
        str(root), **{"train_split": "all", "val_split": "all", option: "val"}, num_workers=0
    )
    with pytest.raises(ConfigError) as error:
        data.setup(stage)
    assert error.value.option == f"data.{option}"
    assert error.value.problem == f"split 'val' does not exist in {root}; splits found: all"
