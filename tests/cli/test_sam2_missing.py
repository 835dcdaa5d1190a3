"""A wheel without the ``sam2`` extra: ``--sam2-checkpoint`` given a Hub id or a mistyped path gets one line
and exit code 2 (the id: the install hint; the path: the missing file), never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from frugalseg.cli import main


@pytest.fixture
def no_sam2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SAM 2 package as an install without the extra has it: not importable."""
    for name in [n for n in sys.modules if n == "sam2" or n.startswith("sam2.")] or ["sam2"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "sam2.build_sam", None)


def propagate(root: Path, out: Path, checkpoint: str) -> list[str]:
    command = ["label", "propagate", "--engine", "sam2", "--format", "synthetic", "--root", str(root)]
    return [*command, "--out", str(out), "--sam2-checkpoint", checkpoint, "--no-progress"]


HINT = "a SAM 2 id needs the SAM 2 package (rf-sam-2 wheel): pip install 'frugalseg[sam2]'"


@pytest.mark.parametrize(
    "checkpoint", ["facebook/sam2.1-hiera-tiny", "hf-hub:facebook/sam2.1-hiera-tiny@main"]
)
def test_a_sam2_id_without_the_package_is_one_line(
    no_sam2, tiny_streets: Path, tmp_path: Path, capsys, checkpoint: str
) -> None:
    assert main(propagate(tiny_streets, tmp_path / "out", checkpoint)) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: --sam2-checkpoint: {checkpoint} is no file here, and {HINT}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["sam2.1_hiera_tiny.pt", "checkpoints/sam2.1_hiera_tiny.pt"])
def test_a_mistyped_path_without_the_package_names_the_file(
    no_sam2, tiny_streets: Path, tmp_path: Path, capsys, monkeypatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(propagate(tiny_streets, tmp_path / "out", name)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {name}: SAM 2 checkpoint file does not exist") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_annotate_with_a_sam2_id_without_the_package_is_one_line(no_sam2, tmp_path: Path, capsys) -> None:
    command = ["annotate", "simulate", "--root", str(tmp_path), "--out", str(tmp_path / "run")]
    command += ["--budget-hours", "0.1"]
    command += ["--click-model", "sam2", "--sam2-checkpoint", "facebook/sam2.1-hiera-tiny"]
    assert main(command) == 2
    assert capsys.readouterr().err == (
        f"error: --sam2-checkpoint: facebook/sam2.1-hiera-tiny is no file here, and {HINT}\n"
    )


def test_a_sam2_checkpoint_file_without_the_package_is_one_line(
    no_sam2, tiny_streets: Path, tmp_path: Path, capsys
) -> None:
    checkpoint = tmp_path / "sam2.1_hiera_tiny.pt"
    parts = [
        "image_encoder.trunk.patch_embed.proj.weight",
        "memory_attention.",
        "memory_encoder.",
        "sam_mask_decoder.",
    ]
    torch.save({"model": {name: torch.zeros(1) for name in parts}}, checkpoint)  # a SAM 2 model's keys
    assert main(propagate(tiny_streets, tmp_path / "out", str(checkpoint))) == 2
    assert capsys.readouterr().err == (
        "error: the SAM 2 engines need the SAM 2 package (rf-sam-2 wheel, imported as `sam2`), which is not "
        "installed: pip install 'frugalseg[sam2]'\n"
    )
    assert not (tmp_path / "out").exists()
