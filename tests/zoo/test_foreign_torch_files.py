"""A file torch cannot read as a checkpoint is named as no PyTorch checkpoint, with torch's reason kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from frugalseg.cli import BAD_INPUT, main
from frugalseg.errors import WeightsError
from frugalseg.zoo import torch_load

REFUSED = "cannot be read with torch.load(weights_only=True)"
FOREIGN = f"{REFUSED}: not a PyTorch checkpoint or weights file, or a damaged one"


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"hello world", " (KeyError: 101)"),  # the bytes read as unknown pickle opcodes
        (b"", " (EOFError)"),
        (b"i am garbage", ""),  # torch: "Unsupported operand", no detail worth keeping
    ],
)
def test_a_file_that_is_no_torch_file_is_named_so(tmp_path: Path, content: bytes, detail: str) -> None:
    path = tmp_path / "g.ckpt"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as error:
        torch_load(path)
    assert str(error.value) == f"{path}: {FOREIGN}{detail}"


def test_a_truncated_checkpoint_keeps_torchs_reason(tmp_path: Path) -> None:
    whole = tmp_path / "whole.ckpt"
    torch.save({"a": torch.zeros(3)}, whole)
    path = tmp_path / "half.ckpt"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(WeightsError) as error:
        torch_load(path)
    assert str(error.value).startswith(
        f"{path}: {FOREIGN} (RuntimeError: PytorchStreamReader failed reading zip archive"
    )


def test_a_file_that_cannot_be_opened_is_not_called_foreign(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "locked.ckpt"
    path.write_bytes(b"")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(torch, "load", denied)
    with pytest.raises(WeightsError) as error:
        torch_load(path)
    assert str(error.value) == f"{path}: {REFUSED} (PermissionError: [Errno 13] Permission denied)"


def test_zoo_publish_of_a_garbage_checkpoint_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "g.ckpt"
    path.write_bytes(b"hello world")
    code = main(["zoo", "publish", str(path), "--name", "x", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == BAD_INPUT == 2
    assert err.strip().splitlines() == [f"error: {path}: {FOREIGN} (KeyError: 101)"]
    assert not (tmp_path / "out").exists()
