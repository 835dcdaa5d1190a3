"""`vos test` without a test split is a ConfigError naming --data.test_split, one line on the command line."""

from __future__ import annotations

from pathlib import Path

import lightning  # noqa: F401  (imported before capsys captures stderr: its log handler keeps the stream)
import pytest
from cli_helpers import lightning_args
from data.fake_davis import write_moving_squares

from frugalseg.cli import BAD_INPUT, main
from frugalseg.datamodules.vos import VOSDataModule
from frugalseg.errors import ConfigError

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
