"""``encoder_weights``: an smp student's encoder read from a local file, never downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from frugalseg.errors import WeightsError
from frugalseg.zoo import get_model, read_torch_weights


def _encoder_state(seed: int) -> dict[str, torch.Tensor]:
    """The state dict of a randomly initialised ResNet-18 encoder, plus an ImageNet classifier."""
    torch.manual_seed(seed)
    encoder = get_model("deeplabv3plus_r18", num_classes=3, num_frames=1).net.encoder
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    return state


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_encoder_weights_from_a_local_file_are_loaded_exactly(tmp_path: Path, suffix: str) -> None:
    state = _encoder_state(seed=1)
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".pt":
        torch.save(state, path)
    else:
        save_file(state, path)
    torch.manual_seed(2)  # another random initialisation for everything else
    student = get_model("deeplabv3plus_r18", num_classes=3, num_frames=1, encoder_weights=str(path))
    loaded = student.net.encoder.state_dict()
    assert set(loaded) == set(state) - {"fc.weight", "fc.bias"}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key
    torch.manual_seed(2)
    random = get_model("deeplabv3plus_r18", num_classes=3, num_frames=1)
    assert not torch.equal(random.net.encoder.conv1.weight, state["conv1.weight"])
    assert student.eval()(torch.zeros(1, 1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "imagenet_resnet18.pth"
    with pytest.raises(WeightsError, match="imagenet_resnet18.pth") as caught:
        get_model("deeplabv3plus_r18", num_classes=3, num_frames=1, encoder_weights=str(missing))
    assert "does not exist" in str(caught.value)


def test_weights_of_another_encoder_are_an_error_naming_the_file_and_keys(tmp_path: Path) -> None:
    state = _encoder_state(seed=3)
    path = tmp_path / "wrong.pt"
    torch.save({**state, "conv1.weight": torch.zeros(64, 4, 7, 7)}, path)
    with pytest.raises(WeightsError, match=r"wrong\.pt.*conv1\.weight"):
        get_model("deeplabv3plus_r18", num_classes=3, num_frames=1, encoder_weights=str(path))
    mobilenet = get_model("deeplabv3plus_mbv2", num_classes=3, num_frames=1).net.encoder.state_dict()
    torch.save(mobilenet, path)
    with pytest.raises(WeightsError, match=r"wrong\.pt.*missing"):
        get_model("deeplabv3plus_r18", num_classes=3, num_frames=1, encoder_weights=str(path))


def test_the_task_reads_them_from_student_args_and_its_checkpoint_does_not_need_the_file(
    tmp_path: Path,
) -> None:
    from frugalseg.lightning_modules import VideoSegmentationModule

    state = _encoder_state(seed=4)
    path = tmp_path / "resnet18.pt"
    torch.save(state, path)
    task = VideoSegmentationModule(
        student="deeplabv3plus_r18", student_args={"encoder_weights": str(path)}, num_classes=3, num_frames=1
    )
    if not hasattr(task, "student"):
        task.configure_models()
    assert torch.equal(task.student.net.encoder.conv1.weight, state["conv1.weight"])
    checkpoint = tmp_path / "fit.ckpt"
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}, checkpoint)
    path.unlink()  # the trained weights replace the file's: a checkpoint must load without it
    loaded = read_torch_weights(checkpoint)
    assert "encoder_weights" not in loaded.card["architecture_args"]
    student = get_model("deeplabv3plus_r18", weights=loaded)
    assert torch.equal(student.net.encoder.conv1.weight, state["conv1.weight"])
