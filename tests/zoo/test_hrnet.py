"""HRNetV2: the head over all branches, official bilinear fusion, and official HRNet-Seg checkpoints."""

from __future__ import annotations

import pytest
import torch

from frugalseg.cli import main
from frugalseg.zoo import get_model
from frugalseg.zoo.hrnet import official_key

from .official_layouts import W18, W18_SMALL, W48, official_hrnet_checkpoint


def test_hrnetv2_head_concatenates_all_branches() -> None:
    with torch.device("meta"):  # layer shapes only
        assert get_model("hrnetv2_w18", num_classes=19).last_layer[0].in_channels == 270
        model = get_model("hrnetv2_w48", num_classes=19)
    assert model.last_layer[0].in_channels == 720
    assert model.last_layer[3].out_channels == 19


def test_hrnet_fuses_branches_bilinearly_as_the_official_model() -> None:
    """timm's nearest fusion upsamplers are replaced: a fuse path equals conv+BN then bilinear ×2."""
    model = get_model("hrnetv2_w18_small", num_classes=3).eval()
    path = model.backbone.get_submodule("stage2.0.fuse_layers.0.1")
    low = torch.randn(1, path[0].in_channels, 6, 10)
    expected = torch.nn.functional.interpolate(
        path[1](path[0](low)), scale_factor=2, mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(path(low), expected)
    modes = {m.mode for m in model.modules() if isinstance(m, torch.nn.Upsample)}
    assert modes == {"bilinear"}
    timm_like = get_model("hrnetv2_w18_small", num_classes=3, fusion="nearest")
    assert {m.mode for m in timm_like.modules() if isinstance(m, torch.nn.Upsample)} == {"nearest"}


@pytest.mark.parametrize(
    ("config", "architecture"),
    [
        (W18_SMALL, "hrnetv2_w18_small"),
        (W18, "hrnetv2_w18"),
        pytest.param(W48, "hrnetv2_w48", marks=pytest.mark.slow),
    ],
)
def test_official_hrnet_layout_converts_and_loads_strictly(tmp_path, capsys, config, architecture):
    official = official_hrnet_checkpoint(config, num_classes=19)
    source = tmp_path / "hrnet_cs_official.pth"
    torch.save({"epoch": 484, "best_mIoU": 0.8, "state_dict": official}, source)
    out = tmp_path / "zoo"
    assert main(["zoo", "convert", "--from", "hrnet", str(source), "--out", str(out), "--name", "hr"]) == 0
    printed = capsys.readouterr().out
    assert (
        f"{len(official) - 1} tensors mapped onto HRNetV2, 1 dropped by design (loss.criterion.weight)"
        in printed
    )
    (weights,) = out.glob("hr-*.safetensors")
    model = get_model(architecture, weights=str(weights))
    assert model.num_classes == 19
    state = model.state_dict()
    assert len(state) == len(official) - 1
    for key, tensor in official.items():
        target = official_key(key)
        if target is not None:
            assert torch.equal(state[target], tensor), key
