"""The datamodule's options in groups: the command line nests them, and a flat config of an earlier
release is refused with each moved key and its new place."""

from __future__ import annotations

import pytest
import yaml

from frugalseg.cli import main
from frugalseg.datamodules.options import MOVED_OPTIONS

DEMO = "configs/demo.yaml"
#: The demo config's data block as earlier releases wrote it.
FLAT_DEMO = {
    "root": None,
    "recipe": "B3",
    "budget": 72,
    "num_frames": 3,
    "crop_size": [128, 256],
    "batch_size": 4,
}
GROUPED_HINT = (
    "(the data options are grouped now: nest them in the config, e.g. `loader: {batch_size: 8}` under "
    "`data:`, or give --data.loader.batch_size 8)"
)


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out + err


def test_a_flat_config_names_every_moved_key_and_its_group(tmp_path, capsys):
    config = tmp_path / "flat.yaml"
    config.write_text(yaml.safe_dump({"data": FLAT_DEMO}, sort_keys=False), encoding="utf-8")
    code, message = _run(["fit", "--config", str(config), "--print_config"], capsys)
    assert code == 2
    assert message.strip() == (
        f"error: --config: {config}: data.recipe is now data.recipe.name, data.budget is now "
        "data.recipe.budget, data.crop_size is now data.augment.crop_size, data.batch_size is now "
        f"data.loader.batch_size {GROUPED_HINT}"
    )


def test_a_flat_data_file_or_mapping_names_its_moved_keys(tmp_path, capsys):
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({"root": None, "num_workers": 0}), encoding="utf-8")
    code, message = _run(["fit", "--config", DEMO, "--data", str(data), "--print_config"], capsys)
    assert code == 2
    assert (
        message.strip()
        == f"error: --data: {data}: data.num_workers is now data.loader.num_workers {GROUPED_HINT}"
    )
    code, message = _run(["fit", "--config", DEMO, "--data={seed: 3}", "--print_config"], capsys)
    assert code == 2
    assert message.strip() == f"error: --data: data.seed is now data.recipe.seed {GROUPED_HINT}"


@pytest.mark.parametrize(
    ("words", "key", "new"),
    [
        (["--data.batch_size", "2"], "batch_size", "loader.batch_size"),
        (["--data.pseudo_labels=/tmp/store"], "pseudo_labels", "labels.pseudo"),
        (["--data.recipe", "N1"], "recipe", "recipe.name"),
    ],
)
def test_a_flat_option_on_the_command_line_names_its_new_key(words, key, new, capsys):
    code, message = _run(["fit", "--config", DEMO, *words, "--print_config"], capsys)
    assert code == 2
    assert message.strip() == f"error: --data.{key}: data.{key} is now data.{new} {GROUPED_HINT}"


def test_groups_nest_on_the_command_line_and_in_the_printed_config(capsys):
    words = [
        "--data.recipe",
        "{name: N1}",
        "--data.loader.batch_size",
        "2",
        "--data.labels.min_confidence",
        "0.5",
    ]
    code, message = _run(["fit", "--config", DEMO, *words, "--print_config"], capsys)
    assert code == 0
    data = yaml.safe_load(message)["data"]
    assert data["recipe"] == {"name": "N1", "budget": 72, "seed": 0}  # the config's budget stays
    assert data["loader"]["batch_size"] == 2 and data["loader"]["num_workers"] == 2
    assert data["labels"]["min_confidence"] == 0.5 and data["augment"]["crop_size"] == [128, 256]
    assert sorted(data) == sorted(
        [
            "root",
            "format",
            "masks",
            "num_frames",
            "synthetic_clips",
            *{new.split(".")[0] for new in MOVED_OPTIONS.values()},
        ]
    )


def test_help_lists_each_group_with_its_options(capsys):
    code, message = _run(["fit", "--help"], capsys)
    assert code == 0
    for new in MOVED_OPTIONS.values():
        assert f"--data.{new} " in message, new
    for old in MOVED_OPTIONS:
        assert f"--data.{old} " not in message or old == "recipe", old


@pytest.mark.parametrize("command", ["fit", "validate", "predict"])
def test_the_ckpt_path_help_names_what_frugalseg_reads(command, capsys):
    """It was Lightning's, offering "hpc" and "registry", which frugalseg refuses."""
    code, message = _run([command, "--help"], capsys)
    help_text = " ".join(message.split("--ckpt_path CKPT_PATH")[-1].split())
    assert code == 0
    assert help_text.startswith("a checkpoint of `frugalseg fit`: a file, an http(s) URL, 'last'")
    assert "hpc" not in help_text.split("--")[0]
