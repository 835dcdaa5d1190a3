"""A training split without clips is one line saying so, not a recipe offset over a blank list of spans."""

from __future__ import annotations

from pathlib import Path

import lightning  # noqa: F401  (imported before capsys captures stderr: its log handler keeps the stream)
import pytest
from data.test_check_empty_split_and_file import empty_train_split

from frugalseg.cli import BAD_INPUT, main
from frugalseg.datamodules.recipes import check_served, get_recipe
from frugalseg.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
HINT = "`frugalseg data check DATA_ROOT` lists what is wrong with the data set"


def test_an_empty_pool_says_the_split_has_no_clips() -> None:
    with pytest.raises(ConfigError) as error:
        check_served(get_recipe("N1"), [], "train")
    assert error.value.option == "data.splits.train"
    assert str(error.value) == (
        f"data.splits.train: split 'train' has no clips, so recipe N1 has nothing to draw from; {HINT}"
    )
    with pytest.raises(ConfigError) as error:
        check_served(get_recipe("N1"), [])
    assert str(error.value) == (
        f"data.splits.train: the training split has no clips, so recipe N1 has nothing to draw from; {HINT}"
    )


def test_fit_on_an_empty_training_split_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = empty_train_split(tmp_path / "camvid")
    out = str(tmp_path / "run")
    code = main(
        [
            "fit", "--config", str(REPO / "configs" / "weclick_camvid_dense.yaml"), "--data.root", str(root),
            "--trainer.accelerator", "cpu", "--trainer.fast_dev_run", "true",
            "--data.loader.num_workers", "0",
            "--model.student_args", "{encoder_weights: null}", "--trainer.default_root_dir", out,
            "--trainer.logger.init_args.save_dir", out,
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == BAD_INPUT == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] in {  # the datamodule may name the split
        f"error: data.splits.train: {named} has no clips, so recipe N1 has nothing to draw from; {HINT}"
        for named in ("the training split", "split 'train'")
    }
