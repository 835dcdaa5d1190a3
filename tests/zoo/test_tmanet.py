"""TMANet: the memory attention read on known values, per-slot memory projections, streaming over a
video, local backbone weights, align_corners, and the official mmseg checkpoint's key layout."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from safetensors.torch import save_file

from frugalseg.errors import ConfigError, WeightsError
from frugalseg.zoo import Student, get_model, tmanet
from frugalseg.zoo.tmanet import TMANet, memory_read

from .official_layouts import convert_and_load, official_tmanet_shapes


def _clip(
    model: Student, h: int, w: int, batch: int = 2, seed: int = 0, frames: int | None = None
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames or model.num_frames, 3, h, w, generator=generator)


def _model(num_classes: int = 3, **kwargs) -> TMANet:
    torch.manual_seed(0)
    return get_model("tmanet_r18", num_classes=num_classes, **kwargs)


@functools.cache
def _shared() -> TMANet:
    """One eval-mode model for the tests that do not change weights (builds are slow)."""
    return _model(num_classes=4).eval()


def test_tmanet_forward_train_returns_out_and_aux_at_input_size() -> None:
    torch.manual_seed(0)
    model = get_model("tmanet_r18", num_classes=6)
    outputs = model.forward_train(_clip(model, 64, 96))
    assert set(outputs) == {"out", "aux"}
    assert outputs["out"].shape == outputs["aux"].shape == (2, 6, 64, 96)
    assert set(model.aux_weights) == {"aux"}


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


def _materialised_read(
    query_key: torch.Tensor, memory_key: torch.Tensor, memory_value: torch.Tensor
) -> torch.Tensor:
    """The read as it was before SDPA: the whole HW×(M·H'·W') softmax held in memory."""
    b, ck, h, w = query_key.shape
    cv = memory_value.shape[2]
    q = query_key.flatten(2).transpose(1, 2)  # B×HW×Ck
    k = memory_key.transpose(1, 2).flatten(2)  # B×Ck×(M·H'·W')
    v = memory_value.transpose(1, 2).flatten(2)  # B×Cv×(M·H'·W')
    attention = torch.softmax(torch.bmm(q, k), dim=-1)  # B×HW×(M·H'·W'), no 1/sqrt(Ck)
    return torch.bmm(attention, v.transpose(1, 2)).transpose(1, 2).reshape(b, cv, h, w)


@pytest.mark.parametrize(("ck", "cv", "memory_size"), [(8, 24, (5, 7)), (16, 16, (6, 4)), (24, 8, (5, 7))])
def test_memory_read_equals_the_materialised_read_values_and_gradients(
    ck: int, cv: int, memory_size: tuple[int, int]
) -> None:
    generator = torch.Generator().manual_seed(2)
    b, m, h, w = 2, 3, 5, 7
    query_key = torch.randn(b, ck, h, w, generator=generator).requires_grad_()
    memory_key = torch.randn(b, m, ck, *memory_size, generator=generator).requires_grad_()
    memory_value = torch.randn(b, m, cv, *memory_size, generator=generator).requires_grad_()
    inputs = (query_key, memory_key, memory_value)
    upstream = torch.randn(b, cv, h, w, generator=generator)
    new, old = memory_read(*inputs), _materialised_read(*inputs)
    assert torch.allclose(new, old, atol=1e-5)
    new_grads = torch.autograd.grad(new, inputs, upstream)
    old_grads = torch.autograd.grad(old, inputs, upstream)
    for new_grad, old_grad in zip(new_grads, old_grads, strict=True):
        assert torch.allclose(new_grad, old_grad, atol=1e-5)


def test_tmanet_forward_and_step_equal_the_materialised_read(monkeypatch) -> None:
    # Random weights give keys near 0 and a uniform read that any softmax axis or scale would
    # reproduce; scaling the key projections makes the attention peaked (the unscaled read then
    # differs by ~3e-3 from a 1/sqrt(Ck)-scaled one, far above the tolerance).
    model = _model(num_classes=4).eval()
    head = model.decode_head
    with torch.no_grad():
        for layer in (head.query_key_conv[1], *head.memory_key_conv[1]):
            layer.bn.weight.mul_(30.0)
            layer.bn.bias.mul_(30.0)
    clip = _clip(model, 48, 64, batch=2)
    video = _clip(model, 48, 64, batch=2, seed=1, frames=4)

    def run() -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        with torch.no_grad():
            outputs = model.forward_train(clip)
        model.reset()
        return outputs, [model.step(frame) for frame in video.unbind(1)]

    new_outputs, new_stream = run()
    monkeypatch.setattr(tmanet, "memory_read", _materialised_read)
    old_outputs, old_stream = run()
    for key in ("out", "aux"):
        assert torch.allclose(new_outputs[key], old_outputs[key], atol=1e-5), key
    for i, (new, old) in enumerate(zip(new_stream, old_stream, strict=True)):
        assert torch.allclose(new, old, atol=1e-5), i


def test_tmanet_needs_a_memory_frame() -> None:
    with pytest.raises(ConfigError, match="num_frames: TMANet needs num_frames ≥ 2"):
        get_model("tmanet_r18", num_classes=2, num_frames=1)


def test_tmanet_step_equals_clip_forward_on_the_same_frames() -> None:
    model = _shared()
    video = _clip(model, 32, 48, batch=2, frames=6)
    model.reset()
    streamed = [model.step(video[:, i]) for i in range(6)]
    with torch.no_grad():
        for i in range(6):
            # Before two past frames exist the memory repeats the first frame: [0, 0, 0], [0, 0, 1], …
            expected = model(video[:, [max(0, i - 2), max(0, i - 1), i]])
            assert torch.allclose(streamed[i], expected, atol=1e-5), i


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


def test_tmanet_align_corners_option_keeps_the_corner_logits() -> None:
    """With ``align_corners=True`` (official Cityscapes config) the corner pixels of the resized
    logits are exactly the corner logits at 1/8 resolution."""
    model = _model(align_corners=True).eval()
    frames = _clip(model, 64, 96, batch=1)
    with torch.no_grad():
        out = model(frames)
        layer4 = model.backbone(frames[0])[1]
        low = model.decode_head(layer4[-1:], layer4[None, :-1])
    assert low.shape[-2:] == (8, 12)
    for y, x in ((0, 0), (-1, -1), (0, -1)):
        assert torch.allclose(out[..., y, x], low[..., y, x], atol=1e-5)


def test_tmanet_official_key_examples() -> None:
    assert tmanet.official_key("backbone.stem.0.weight") == "backbone.conv1.0.weight"
    assert tmanet.official_key("backbone.stem.7.running_var") == "backbone.bn1.running_var"
    assert tmanet.official_key("backbone.layer3.5.conv2.weight") == "backbone.layer3.5.conv2.weight"
    assert (
        tmanet.official_key("decode_head.memory_key_conv.1.0.bn.bias")
        == "decode_head.memory_key_conv.1.0.bn.bias"
    )
    assert tmanet.official_key("auxiliary_head.conv_seg.bias") == "auxiliary_head.conv_seg.bias"
    with pytest.raises(KeyError, match="'module.conv1.weight' is not a key of an official TMANet"):
        tmanet.official_key("module.conv1.weight")
    assert tmanet.MEMORY_FRAMES == {"cityscapes": 2, "camvid": 4}


@pytest.mark.slow
@pytest.mark.parametrize("memory", [2, 4])
def test_official_tmanet_checkpoint_layout_loads_strictly(memory: int) -> None:
    with torch.device("meta"):
        model = get_model("tmanet_r50", num_classes=19, num_frames=memory + 1)
    assert convert_and_load(official_tmanet_shapes(19, memory), tmanet.official_key, model) == set()
    assert len(model.decode_head.memory_key_conv[0]) == memory
    # mmseg dilations (1, 1, 2, 4) with contract_dilation: a dilated stage's first block at half rate.
    assert [b.conv2.dilation[0] for b in model.backbone.layer3] == [1, 2, 2, 2, 2, 2]
    assert [b.conv2.dilation[0] for b in model.backbone.layer4] == [2, 4, 4]
