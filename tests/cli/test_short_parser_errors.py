"""A misspelt option gets the tip and one line naming the option, its config file and the nearest option."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from frugalseg.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def _typo(tmp_path: Path) -> Path:
    """demo.yaml with ``data.loader.batch_size`` spelt ``batchsize``."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["data"]["loader"]["batchsize"] = config["data"]["loader"].pop("batch_size")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("words", "error"),
    [
        (
            lambda t: ["fit", "--config", str(_typo(t))],
            "error: Subcommand 'fit' does not accept option 'data.loader.batchsize' (in {typo}; did you mean "
            "'data.loader.batch_size'?)",
        ),
        (
            lambda t: ["fit", "--config", str(CONFIG), "--data.loader.batchsize", "3"],
            "error: unrecognized arguments: --data.loader.batchsize 3 "
            "(did you mean 'data.loader.batch_size'?)",
        ),
        (
            lambda t: ["fit", "--config", str(CONFIG), "--data.zzz", "3"],
            "error: unrecognized arguments: --data.zzz 3",
        ),
        (  # a prefix of an option is not taken for it (argparse's default had set max_epochs)
            lambda t: ["fit", "--config", str(CONFIG), "--trainer.max_epoch", "1"],
            "error: unrecognized arguments: --trainer.max_epoch 1 (did you mean 'trainer.max_epochs'?)",
        ),
        (
            lambda t: ["fit", "--config", str(CONFIG), "--data.loader.batch", "7"],
            "error: unrecognized arguments: --data.loader.batch 7 (did you mean 'data.loader.batch_size'?)",
        ),
    ],
)
def test_a_misspelt_option_is_the_tip_and_one_line(words, error, tmp_path, capsys):
    with pytest.raises(SystemExit) as ended:  # jsonargparse ends a bad command line this way
        main(words(tmp_path))
    assert ended.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "tip: For details of accepted options run: frugalseg fit --help",
        error.format(typo=tmp_path / "typo.yaml"),
    ]
