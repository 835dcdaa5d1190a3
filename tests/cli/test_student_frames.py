"""A TDNet student given another clip length than its sub-networks is one line naming --data.num_frames."""

from __future__ import annotations

from pathlib import Path

import lightning  # noqa: F401  (imported before capsys captures stderr: its log handler keeps the stream)
import pytest

from frugalseg.cli import BAD_INPUT, main
from frugalseg.errors import ConfigError
from frugalseg.zoo import get_model

REPO = Path(__file__).resolve().parents[2]


def test_fit_with_tdnet_and_three_frames_names_data_num_frames(
    tiny_streets: Path, tmp_path: Path, capsys
) -> None:
    runs = str(tmp_path / "runs")
    code = main(
        [
            "fit", "--config", str(REPO / "configs" / "demo.yaml"), "--data.root", str(tiny_streets),
            "--trainer.default_root_dir", runs, "--trainer.logger.init_args.save_dir", runs,
            "--data.loader.num_workers", "0", "--model.student", "tdnet_td2_psp18_small",
            "--trainer.fast_dev_run", "true",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == BAD_INPUT == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: data.num_frames: 'tdnet_td2_psp18_small' has 2 sub-networks and takes num_frames=2, "
        "got num_frames=3 (on the command line: --data.num_frames 2)"
    )


def test_tdnet_refuses_another_clip_length_with_a_config_error() -> None:
    with pytest.raises(ConfigError) as error:
        get_model("tdnet_td4_psp18_small", num_classes=3, num_frames=3)
    assert error.value.option == "num_frames"
    assert str(error.value) == (
        "num_frames: 'tdnet_td4_psp18_small' has 4 sub-networks and takes num_frames=4, "
        "got num_frames=3 (on the command line: --data.num_frames 4)"
    )
