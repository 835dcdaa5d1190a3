"""Zoo: registry, Student contract, TMANet memory attention, HRNetV2 head and smp wrappers."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from frugalseg.zoo import Student, get_model, list_models
from frugalseg.zoo.tmanet import TMANet, memory_read
from frugalseg.zoo.weights import WeightsError

ALL_MODELS = [
    "deeplabv3plus_mbv2",
    "deeplabv3plus_r101",
    "deeplabv3plus_r18",
    "hrnetv2_w18",
    "hrnetv2_w18_small",
    "hrnetv2_w48",
    "pspnet_mbv2",
    "pspnet_r101",
    "pspnet_r101_os8",
    "pspnet_r18",
    "pspnet_r18_os8_small",
    "pspnet_r50_os8",
    "stm_r18",
    "stm_r50",
    "tdnet_td2_psp18_small",
    "tdnet_td2_psp50",
    "tdnet_td4_psp18",
    "tdnet_td4_psp18_small",
    "tmanet_r18",
    "tmanet_r50",
]
# The segmentation students: every model but STM, which segments objects given their first masks.
SEGMENTATION_MODELS = [name for name in ALL_MODELS if not name.startswith("stm")]
FRAMES = {"tmanet": 3, "tdnet_td2": 2, "tdnet_td4": 4}
AUX_WEIGHTS = {"tmanet": {"aux": 0.4}, "tdnet": {"sub": 0.5, "aux": 0.1}, "_os8": {"aux": 0.4}}


def _clip(model: Student, h: int, w: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, model.num_frames, 3, h, w, generator=generator)


def test_registry_lists_every_model() -> None:
    assert list_models() == ALL_MODELS


@pytest.mark.parametrize("name", SEGMENTATION_MODELS)
def test_every_model_builds_with_its_contract(name: str) -> None:
    model = get_model(name, num_classes=5)
    assert isinstance(model, Student)
    assert model.num_classes == 5
    assert model.num_frames == next((n for p, n in FRAMES.items() if name.startswith(p)), 1)
    assert model.aux_weights == next((w for p, w in AUX_WEIGHTS.items() if p in name), {})


def test_tmanet_forward_train_returns_out_and_aux_at_input_size() -> None:
    torch.manual_seed(0)
    model = get_model("tmanet_r18", num_classes=6)
    outputs = model.forward_train(_clip(model, 64, 96))
    assert set(outputs) == {"out", "aux"}
    assert outputs["out"].shape == outputs["aux"].shape == (2, 6, 64, 96)
    assert set(model.aux_weights) == {"aux"}


def test_image_model_forward_train_is_forward() -> None:
    torch.manual_seed(0)
    model = get_model("hrnetv2_w18_small", num_classes=3).eval()
    frames = _clip(model, 64, 64)
    with torch.no_grad():
        outputs = model.forward_train(frames)
        assert set(outputs) == {"out"}
        assert torch.equal(outputs["out"], model(frames))


def test_tmanet_memory_changes_the_output_and_slots_have_their_own_convs() -> None:
    torch.manual_seed(0)
    model = get_model("tmanet_r18", num_classes=4).eval()
    frames = _clip(model, 64, 64, batch=1)
    with torch.no_grad():
        base = model(frames)
        changed = frames.clone()
        changed[:, 0] = torch.randn_like(changed[:, 0])
        assert not torch.allclose(model(changed), base, atol=1e-4)
        # A plain softmax read is invariant to the order of the memory; per-slot convs are not.
        swapped = frames[:, [1, 0, 2]]
        assert not torch.allclose(model(swapped), base, atol=1e-4)
        # With both slots' projections made identical, swapping no longer matters.
        for projection in (model.decode_head.memory_key_conv, model.decode_head.memory_value_conv):
            for layer in projection:
                layer[1].load_state_dict(layer[0].state_dict())
        assert torch.allclose(model(swapped), model(frames), atol=1e-5)
    head = model.decode_head
    for projection in (head.memory_key_conv, head.memory_value_conv):
        assert len(projection) == 2  # 1×1 then 3×3
        for layer, kernel in zip(projection, (1, 3), strict=True):
            assert len(layer) == model.num_frames - 1
            assert layer[0] is not layer[1]
            assert layer[0].conv.weight.data_ptr() != layer[1].conv.weight.data_ptr()
            assert layer[0].conv.kernel_size == (kernel, kernel)


def test_tmanet_memory_slots_follow_num_frames() -> None:
    model = get_model("tmanet_r18", num_classes=2, num_frames=5)
    assert model.num_frames == 5
    assert len(model.decode_head.memory_value_conv[0]) == 4


def test_memory_read_is_unscaled_softmax_attention_exact_value() -> None:
    # One query pixel with key (1, 0); two memory pixels (one per slot) with keys (ln 3, 5) and (0, 7):
    # scores ln 3 and 0 → weights 3/4 and 1/4 → read 0.75·4 + 0.25·8 = 5 (scaling by 1/√2 would not give 5).
    query_key = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    memory_key = torch.tensor([[math.log(3.0), 5.0], [0.0, 7.0]]).view(1, 2, 2, 1, 1)
    memory_value = torch.tensor([4.0, 8.0]).view(1, 2, 1, 1, 1)
    read = memory_read(query_key, memory_key, memory_value)
    assert read.shape == (1, 1, 1, 1)
    assert read.item() == pytest.approx(5.0, abs=1e-6)


def test_memory_read_matches_a_hand_loop() -> None:
    generator = torch.Generator().manual_seed(1)
    b, m, ck, cv, h, w = 2, 2, 3, 4, 2, 3
    query_key = torch.randn(b, ck, h, w, generator=generator)
    memory_key = torch.randn(b, m, ck, h, w, generator=generator)
    memory_value = torch.randn(b, m, cv, h, w, generator=generator)
    expected = torch.zeros(b, cv, h, w)
    for n in range(b):
        keys = [(t, y, x) for t in range(m) for y in range(h) for x in range(w)]
        for qy in range(h):
            for qx in range(w):
                query = query_key[n, :, qy, qx]
                scores = torch.stack([query @ memory_key[n, t, :, y, x] for t, y, x in keys])
                weights = torch.softmax(scores, dim=0)
                values = torch.stack([memory_value[n, t, :, y, x] for t, y, x in keys])
                expected[n, :, qy, qx] = weights @ values
    assert torch.allclose(memory_read(query_key, memory_key, memory_value), expected, atol=1e-5)


def test_tmanet_step_streams_like_forward_on_the_window() -> None:
    torch.manual_seed(0)
    model = get_model("tmanet_r18", num_classes=3).eval()
    video = torch.randn(1, 4, 3, 48, 64)
    model.reset()
    streamed = [model.step(video[:, i]) for i in range(4)]
    with torch.no_grad():
        first = model(video[:, [0, 0, 0]])
        third = model(video[:, 0:3])
        fourth = model(video[:, 1:4])
    assert torch.allclose(streamed[0], first, atol=1e-5)
    assert torch.allclose(streamed[2], third, atol=1e-5)
    assert torch.allclose(streamed[3], fourth, atol=1e-5)
    with pytest.raises(ValueError, match="reset"):
        model.step(torch.randn(1, 3, 32, 32))


def test_get_model_errors() -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'.*tmanet_r18") as info:
        get_model("nope", num_classes=2)
    assert all(name in str(info.value) for name in ALL_MODELS)
    with pytest.raises(ValueError, match="image model.*num_frames=3"):
        get_model("deeplabv3plus_r18", num_classes=2, num_frames=3)
    with pytest.raises(ValueError, match="num_frames >= 2"):
        get_model("tmanet_r18", num_classes=2, num_frames=1)


def test_wrong_clip_shape_names_expected_and_received() -> None:
    model = get_model("tmanet_r18", num_classes=2)
    with pytest.raises(ValueError, match=r"expects frames of shape B×3×3×H×W .*received 1×2×3×32×32"):
        model(torch.zeros(1, 2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"5-D.*received a 4-D tensor of shape 1×3×32×32"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="3 channels"):
        model(torch.zeros(1, 3, 1, 32, 32))
    image_model = get_model("pspnet_r18", num_classes=2)
    with pytest.raises(ValueError, match=r"B×1×3×H×W .*received 2×3×3×32×32"):
        image_model(torch.zeros(2, 3, 3, 32, 32))


def test_hrnetv2_head_concatenates_all_branches() -> None:
    assert get_model("hrnetv2_w18", num_classes=19).last_layer[0].in_channels == 270
    model = get_model("hrnetv2_w48", num_classes=19)
    assert model.last_layer[0].in_channels == 720
    assert model.last_layer[3].out_channels == 19


def test_tmanet_backbone_weights_load_from_a_local_file(tmp_path) -> None:
    torch.manual_seed(0)
    source = TMANet(2, backbone="resnet18", key_channels=8, value_channels=8, channels=8, aux_channels=8)
    path = tmp_path / "backbone.safetensors"
    state = {k: v.contiguous() for k, v in source.backbone.state_dict().items()}
    save_file(state, str(path))
    torch.manual_seed(1)
    loaded = get_model("tmanet_r18", num_classes=2, backbone_weights=str(path))
    for key, value in loaded.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key

    torch.save({"state_dict": {**state, "fc.weight": torch.zeros(1)}}, tmp_path / "backbone.pth")
    get_model("tmanet_r18", num_classes=2, backbone_weights=str(tmp_path / "backbone.pth"))

    with pytest.raises(WeightsError, match=r"missing\.safetensors: weights file does not exist"):
        get_model("tmanet_r18", num_classes=2, backbone_weights=str(tmp_path / "missing.safetensors"))
    renamed = {f"backbone.{k}": v for k, v in state.items()}
    save_file(renamed, str(tmp_path / "renamed.safetensors"))
    with pytest.raises(WeightsError, match=r"renamed\.safetensors: weights do not fit .*missing"):
        get_model("tmanet_r18", num_classes=2, backbone_weights=str(tmp_path / "renamed.safetensors"))


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
