"""The shipped configs without the repository: `frugalseg configs list|copy`, and a ``--config`` that names a
shipped config where no such file is."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from frugalseg.cli import main
from frugalseg.cli.configs import SHIPPED, shipped_configs, with_shipped_configs

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_the_shipped_configs_are_the_repository_configs():
    names = shipped_configs()
    assert names == sorted(p.relative_to(REPO_CONFIGS).as_posix() for p in REPO_CONFIGS.rglob("*.yaml"))
    assert {"demo.yaml", "annotate/hvsa_paper.yaml", "published/streets_hrnetv2_w18s.yaml"} <= set(names)


def test_a_config_named_but_not_here_reads_the_shipped_one(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stm_davis.yaml").write_text(
        "seed_everything: 1\n", encoding="utf-8"
    )  # a file of the user's own wins
    words = ["fit", "--config", "configs/demo.yaml", "--config=published/streets_hrnetv2_w18s", "-c", "demo"]
    words += ["--config", "stm_davis.yaml", "--config", "mine.yaml", "--data.root", "demo.yaml"]
    with caplog.at_level(logging.INFO, logger="frugalseg.cli.configs"):
        resolved = with_shipped_configs(words)
    assert resolved == [
        "fit",
        "--config",
        str(SHIPPED / "demo.yaml"),
        f"--config={SHIPPED / 'published' / 'streets_hrnetv2_w18s.yaml'}",
        "-c",
        str(SHIPPED / "demo.yaml"),
        "--config",
        "stm_davis.yaml",
        "--config",
        "mine.yaml",  # neither here nor shipped: jsonargparse's check names it
        "--data.root",
        "demo.yaml",
    ]
    assert (
        caplog.messages[0]
        == f"--config configs/demo.yaml: no such file here; reading the shipped {SHIPPED}/demo.yaml"
    )


def test_fit_reads_the_shipped_demo_config_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "demo.yaml", "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "student: tmanet_r18" in printed and "recipe:\n    name: B3" in printed


def test_configs_list_and_copy(tmp_path, capsys):
    assert main(["configs", "list"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert len(lines) == len(shipped_configs())
    assert lines[shipped_configs().index("demo.yaml")].split()[:3] == ["demo.yaml", "The", "demo:"]

    assert main(["configs", "copy", "demo", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "demo.yaml")
    assert (tmp_path / "demo.yaml").read_bytes() == (SHIPPED / "demo.yaml").read_bytes()
    (tmp_path / "demo.yaml").write_text("mine", encoding="utf-8")
    assert main(["configs", "copy", "demo.yaml", str(tmp_path / "demo.yaml")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: configs copy: {tmp_path / 'demo.yaml'}: already exists (--force overwrites it)"
    )
    assert (tmp_path / "demo.yaml").read_text(encoding="utf-8") == "mine"
    assert main(["configs", "copy", "configs/demo.yaml", str(tmp_path / "demo.yaml"), "--force"]) == 0
    assert (tmp_path / "demo.yaml").read_bytes() == (SHIPPED / "demo.yaml").read_bytes()
    assert main(["configs", "copy", "nothing", str(tmp_path)]) == 2
    assert (
        "error: configs copy: no shipped config 'nothing'; choose from all, annotate/"
        in capsys.readouterr().err
    )


def test_configs_copy_to_a_new_folder_and_all_of_them(tmp_path, capsys):
    """``DIR/`` had written demo.yaml as a file named DIR; every config is copied at once with ``all``."""
    assert main(["configs", "copy", "demo", f"{tmp_path / 'new'}/"]) == 0
    assert (tmp_path / "new" / "demo.yaml").read_bytes() == (SHIPPED / "demo.yaml").read_bytes()
    assert main(["configs", "copy", "all", str(tmp_path / "every")]) == 0
    written = sorted(
        p.relative_to(tmp_path / "every").as_posix() for p in (tmp_path / "every").rglob("*.yaml")
    )
    assert written == shipped_configs() and "published/streets_hrnetv2_w18s.yaml" in written
    capsys.readouterr()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert main(["configs", "copy", "demo", f"{tmp_path / 'file'}/"]) == 2
    target = tmp_path / "file" / "demo.yaml"
    assert capsys.readouterr().err.strip() == (
        f"error: configs copy: {tmp_path / 'file'} is a file, not a folder: {target} cannot be written"
    )


def test_configs_list_shows_each_description_to_the_end_of_its_sentence(capsys, monkeypatch):
    """It cut every description at the end of its first comment line, mid-sentence."""
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["configs", "list"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 100 for line in out.splitlines())
    entries = " ".join(out.split("\n ")).splitlines()  # each config's wrapped lines as one
    text = {entry.split()[0]: " ".join(entry.split()[1:]) for entry in entries}
    assert text["demo.yaml"].endswith(
        "pseudo-labels at +/-10) of the synthetic streets set that frugalseg generates into its cache."
    )
    assert "lambda*Gated CRF (lambda = 0.1, eq. 2)" in text["weclick_teacher.yaml"]  # "eq." ends no sentence
    assert text["weclick_camvid_clicks_gcrf.yaml"].endswith("with partial CE + lambda*Gated CRF.")  # "(eq."


def test_no_shipped_config_defaults_to_the_development_machines_data():
    """cityscapes_dev.yaml and stm_davis.yaml read ../shared/data, which users lack: a root is theirs."""
    import yaml

    def strings(value):
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    for name in shipped_configs():
        assert not [
            s for s in strings(yaml.safe_load((SHIPPED / name).read_text(encoding="utf-8"))) if "shared/" in s
        ], name


def test_a_folder_that_cannot_be_made_is_named_with_its_problem(capsys):
    """A file-system error had been printed as Python words it: ``[Errno 2] No such file …: '/proc/x'``."""
    assert main(["configs", "copy", "demo", "/proc/frugalseg-test/"]) == 2
    assert capsys.readouterr().err.strip() == "error: /proc/frugalseg-test: No such file or directory"
