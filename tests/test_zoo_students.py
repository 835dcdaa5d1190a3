"""Per-student test matrix (every registered student but STM) and the TDNet / TMANet specifics.

Small widths and random weights; frames 64×96 and 70×90 (not a multiple of 32).
"""

from __future__ import annotations

import functools
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from frugalseg.zoo import Student, get_model, list_models, tdnet, tmanet
from frugalseg.zoo.convert import convert_state_dict
from frugalseg.zoo.tdnet import ChannelMapNorm, Propagation, PyramidPoolingGroup, TDNet

SMALL = [
    "tmanet_r18",
    "tdnet_td2_psp18_small",
    "tdnet_td4_psp18_small",
    "hrnetv2_w18_small",
    "deeplabv3plus_r18",
    "deeplabv3plus_mbv2",
    "pspnet_r18",
    "pspnet_mbv2",
    "pspnet_r18_os8_small",
]
FULL = [
    "tmanet_r50",
    "tdnet_td2_psp50",
    "tdnet_td4_psp18",
    "hrnetv2_w18",
    "hrnetv2_w48",
    "deeplabv3plus_r101",
    "pspnet_r101",
    "pspnet_r50_os8",
    "pspnet_r101_os8",
]
VIDEO = [name for name in SMALL if name.startswith(("tmanet", "tdnet"))]
SIZES = [(64, 96), (70, 90)]


def _clip(
    model: Student, h: int, w: int, batch: int = 2, seed: int = 0, frames: int | None = None
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames or model.num_frames, 3, h, w, generator=generator)


def _model(name: str, num_classes: int = 3, **kwargs) -> Student:
    torch.manual_seed(0)
    return get_model(name, num_classes=num_classes, **kwargs)


@functools.cache
def _shared(name: str) -> Student:
    """One eval-mode model per name for the tests that do not change weights (builds are slow)."""
    return _model(name, num_classes=4).eval()


def _sharpen(model: TDNet, gain: float = 30.0) -> TDNet:
    """Scale the query/key projections so attention is peaked.

    With random weights attention is nearly uniform, the read is the same at every position and
    the per-channel-map normalisation removes it, hiding the past frames' effect.
    """
    with torch.no_grad():
        for encoder in model.encoders:
            encoder.query[3].weight.mul_(gain)
            encoder.key[3].weight.mul_(gain)
    return model


def test_matrix_covers_every_registered_student_but_stm() -> None:
    registered = {name for name in list_models() if not name.startswith("stm")}
    assert registered == set(SMALL) | set(FULL)


# --- the matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("size", SIZES)
def test_forward_at_two_sizes_is_per_sample(name: str, size: tuple[int, int]) -> None:
    """Logits at the input size; each sample's logits equal those it gets alone (no batch mixing)."""
    model = _shared(name)
    frames = _clip(model, *size)
    with torch.no_grad():
        logits = model(frames)
        alone = model(frames[1:])
    assert logits.shape == (2, 4, *size)
    assert torch.isfinite(logits).all()
    assert torch.allclose(logits[1:], alone, atol=1e-4)
    assert (logits[0] - logits[1]).abs().max() > 1e-6  # the samples' own logits, not one shared map


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_sgd_steps_lower_the_loss_on_a_fixed_batch(name: str) -> None:
    """SGD on one batch with the student's weighted aux losses: the last 4 steps' mean loss falls
    below 80 % of the first 4 steps' (TDNet rotates its current sub-network every step)."""
    model = _model(name)
    frames = _clip(model, 32, 48)
    target = torch.zeros(2, 32, 48, dtype=torch.long)
    target[:, :16] = 1
    target[:, :, 24:] = 2
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    model.train()
    losses = []
    for _ in range(12):
        outputs = model.forward_train(frames)
        loss = F.cross_entropy(outputs["out"], target)
        for key, weight in model.aux_weights.items():
            loss = loss + weight * F.cross_entropy(outputs[key], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-4:]) < 0.8 * sum(losses[:4]), losses


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_torch_export_of_the_clip_forward_matches_eager(name: str) -> None:
    """``torch.export`` of ``forward`` (a clip of ``num_frames`` frames; one frame for image models).

    Streaming ``step`` keeps Python state between calls and is not exported; TDNet's export fixes
    ``path`` to its default (N−1).
    """
    model = _shared(name)
    frames = _clip(model, 64, 96)
    exported = torch.export.export(model, (frames,))
    with torch.no_grad():
        assert torch.allclose(exported.module()(frames), model(frames), atol=1e-5)


@pytest.mark.parametrize("name", SMALL)
def test_wrong_number_of_frames_is_a_clear_error(name: str) -> None:
    model = _shared(name)
    frames = _clip(model, 32, 32, frames=model.num_frames + 1)
    with pytest.raises(
        ValueError, match=rf"{model.num_frames} frames per clip.*received 2×{model.num_frames + 1}×3"
    ):
        model(frames)


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL)
def test_full_width_students_build_and_run(name: str) -> None:
    model = _model(name, num_classes=5).eval()
    with torch.no_grad():
        logits = model(_clip(model, 70, 90, batch=1))
    assert logits.shape == (1, 5, 70, 90)
    assert torch.isfinite(logits).all()


# --- streaming ----------------------------------------------------------------------------------


def test_tmanet_step_equals_clip_forward_on_the_same_frames() -> None:
    model = _shared("tmanet_r18")
    video = _clip(model, 32, 48, batch=2, frames=6)
    model.reset()
    streamed = [model.step(video[:, i]) for i in range(6)]
    with torch.no_grad():
        for i in range(6):
            # Before two past frames exist the memory repeats the first frame: [0, 0, 0], [0, 0, 1], …
            expected = model(video[:, [max(0, i - 2), max(0, i - 1), i]])
            assert torch.allclose(streamed[i], expected, atol=1e-5), i


@pytest.mark.parametrize("name", ["tdnet_td2_psp18_small", "tdnet_td4_psp18_small"])
def test_tdnet_step_equals_clip_forward_on_the_same_frames(name: str) -> None:
    model = _sharpen(_model(name).eval())
    n = model.num_frames
    video = _clip(model, 32, 48, batch=2, frames=n + 3)
    model.reset()
    streamed = [model.step(video[:, i]) for i in range(n + 3)]
    with torch.no_grad():
        for i in range(n - 1, n + 3):
            expected = model(video[:, i - n + 1 : i + 1], path=i % n)
            assert torch.allclose(streamed[i], expected, atol=1e-5), i
        # Until the FIFO holds N-1 frames the output is the sub-network path alone.
        for i in range(n - 1):
            clip = torch.cat([video[:, : n - 1], video[:, i : i + 1]], dim=1)
            assert torch.allclose(streamed[i], model.forward_train(clip, path=i)["sub"], atol=1e-5), i
        assert not torch.allclose(
            streamed[n], model.forward_train(video[:, 1 : n + 1], path=0)["sub"], atol=1e-3
        )


def test_tdnet_stream_runs_one_sub_network_per_frame_in_turn() -> None:
    model = _model("tdnet_td4_psp18_small").eval()
    calls: list[int] = []
    for index, backbone in enumerate(model.backbones):
        backbone.register_forward_hook(lambda *_, index=index: calls.append(index))
    model.reset()
    for frame in _clip(model, 32, 32, batch=1, frames=6).unbind(1):
        model.step(frame)
    assert calls == [0, 1, 2, 3, 0, 1]
    assert len(model._fifo) == 3
    model.reset()
    calls.clear()
    model.step(torch.randn(1, 3, 32, 32))
    assert calls == [0]


@pytest.mark.parametrize("name", VIDEO)
def test_step_refuses_a_frame_that_does_not_match_its_memory(name: str) -> None:
    model = _shared(name)
    model.reset()
    model.step(torch.randn(1, 3, 48, 64))
    with pytest.raises(ValueError, match="reset"):
        model.step(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="B×3×H×W"):
        model.step(torch.randn(1, 1, 3, 48, 64))


# --- TDNet --------------------------------------------------------------------------------------


def test_tdnet_forward_train_outputs_and_path_rotation() -> None:
    model = _model("tdnet_td2_psp18_small").train()
    frames = _clip(model, 64, 96)
    assert model.aux_weights == {"sub": 0.5, "aux": 0.1}
    paths = []
    for _ in range(4):
        outputs = model.forward_train(frames)
        paths.append(model.last_path)
    assert paths == [0, 1, 0, 1]
    assert set(outputs) == {"out", "sub", "aux"}
    assert all(value.shape == (2, 3, 64, 96) for value in outputs.values())
    assert [model.group_of(p) for p in range(2)] == [0, 1]
    assert [_shared("tdnet_td4_psp18_small").group_of(p) for p in range(4)] == [0, 1, 0, 1]
    no_aux = TDNet(
        3, 2, backbone="resnet18", backbone_channels=(8, 8, 16, 16), aux_head=False, value_channels=8
    )
    assert no_aux.aux_weights == {"sub": 0.5}
    assert set(no_aux.forward_train(frames)) == {"out", "sub"}


@pytest.mark.parametrize("name", ["tdnet_td2_psp18_small", "tdnet_td4_psp18_small"])
def test_tdnet_past_frames_reach_out_but_not_sub(name: str) -> None:
    """Every past frame, the oldest through the whole chain, changes ``out``; ``sub``/``aux`` see the
    current frame only (the chain attenuates with random weights, hence the small threshold: the
    computation is deterministic, so any change comes from the changed frame)."""
    model = _sharpen(_model(name).eval())
    frames = _clip(model, 32, 48, batch=1)
    with torch.no_grad():
        base = model.forward_train(frames, path=1)
        for j in range(model.num_frames - 1):
            changed = frames.clone()
            changed[:, j] = torch.randn_like(changed[:, j])
            other = model.forward_train(changed, path=1)
            assert torch.equal(base["sub"], other["sub"])
            assert torch.equal(base["aux"], other["aux"])
            assert (base["out"] - other["out"]).abs().max() > 1e-6, j


def test_tdnet_frame_to_sub_network_assignment_follows_the_stream() -> None:
    """With path c, frame j of an N-frame clip goes through sub-network (c - (N-1-j)) mod N."""
    model = _model("tdnet_td4_psp18_small").eval()
    seen: list[tuple[int, float]] = []
    for index, backbone in enumerate(model.backbones):
        backbone.register_forward_hook(
            lambda _m, inputs, _o, index=index: seen.append((index, inputs[0].mean().item()))
        )
    frames = (
        torch.arange(1.0, 5.0).view(1, 4, 1, 1, 1).expand(1, 4, 3, 32, 32)
    )  # frame j is filled with j + 1
    with torch.no_grad():
        model(frames, path=1)
    assert seen == [(2, 1.0), (3, 2.0), (0, 3.0), (1, 4.0)]


def test_tdnet_errors() -> None:
    model = _shared("tdnet_td2_psp18_small")
    with pytest.raises(ValueError, match=r"at least 16×16 pixels, received 8×40"):
        model(torch.randn(1, 2, 3, 8, 40))
    with pytest.raises(ValueError, match=r"at least 16×16 pixels, received 12×12"):
        model.step(torch.randn(1, 3, 12, 12))
    with pytest.raises(ValueError, match=r"path must be in 0\.\.1, got 2"):
        model(torch.randn(1, 2, 3, 32, 32), path=2)
    with pytest.raises(
        ValueError, match=r"'tdnet_td4_psp18_small' has 4 sub-networks and takes num_frames=4, got"
    ):
        get_model("tdnet_td4_psp18_small", num_classes=3, num_frames=3)
    with pytest.raises(ValueError, match="num_frames >= 2"):
        TDNet(3, 1)
    with pytest.raises(ValueError, match="multiple of psp_groups"):
        TDNet(3, 3, backbone="resnet18", backbone_channels=(8, 8, 16, 16))


def test_tdnet_dilated_backbone_has_the_official_multi_grid() -> None:
    """Official dilated ResNet: layer3 first block 1 then 2; layer4 blocks 4, 8, 16 (basic blocks'
    second conv at 4), output stride 8."""
    r50 = tdnet.dilated_resnet("resnet50s")
    assert [b.conv2.dilation[0] for b in r50.layer3] == [1, 2, 2, 2, 2, 2]
    assert [b.conv2.dilation[0] for b in r50.layer4] == [4, 8, 16]
    assert [b.conv2.padding[0] for b in r50.layer4] == [4, 8, 16]
    assert r50.conv1[0].out_channels == 64 and r50.conv1[6].out_channels == 128  # deep 64-64-128 stem
    r18 = tdnet.dilated_resnet("resnet18")
    assert [(b.conv1.dilation[0], b.conv2.dilation[0]) for b in r18.layer3] == [(1, 2), (2, 2)]
    assert [(b.conv1.dilation[0], b.conv2.dilation[0]) for b in r18.layer4] == [(4, 4), (8, 4)]
    assert [f.shape[-2:] for f in r18(torch.randn(1, 3, 64, 96))] == [(8, 12), (8, 12)]


def test_propagation_is_scaled_dot_product_attention_exact_value() -> None:
    # Key channels 4 → scale 1/2. Query (2 ln 3, 0, 0, 0); source keys (1, 0, 0, 0) and 0:
    # scores ln 3 and 0 → weights 3/4, 1/4 → read 0.75·4 + 0.25·8 = 5 (unscaled would give 6.4).
    step = Propagation(key_channels=4, value_channels=1).eval()
    nn.init.ones_(step.proj.weight)
    nn.init.zeros_(step.proj.bias)
    query = torch.tensor([2 * math.log(3.0), 0, 0, 0]).view(1, 4, 1, 1)
    key = torch.tensor([[1.0, 0.0], [0, 0], [0, 0], [0, 0]]).view(1, 4, 1, 2)
    value = torch.tensor([4.0, 8.0]).view(1, 1, 1, 2)
    assert step(key, value, query).item() == pytest.approx(5.0, abs=1e-5)


def test_channel_map_norm_equals_the_official_layer_norm_and_works_at_any_size() -> None:
    torch.manual_seed(0)
    official = nn.LayerNorm([97, 193])
    nn.init.normal_(official.weight)
    nn.init.normal_(official.bias)
    norm = ChannelMapNorm(3, affine_size=(97, 193))
    norm.load_state_dict(official.state_dict())
    x = torch.randn(2, 3, 97, 193) * 3 + 1
    assert torch.allclose(norm(x), official(x), atol=1e-5)
    # Another size: the same statistics, the official maps resized (corners stay exact).
    small = torch.randn(1, 3, 13, 25)
    out = norm(small)
    normalised = F.layer_norm(small, [13, 25])
    assert torch.allclose(
        out[..., 0, 0], normalised[..., 0, 0] * official.weight[0, 0] + official.bias[0, 0], atol=1e-5
    )
    assert torch.allclose(
        out[..., -1, -1], normalised[..., -1, -1] * official.weight[-1, -1] + official.bias[-1, -1], atol=1e-5
    )
    # Per-channel affine: instance statistics with a weight and bias per channel (GroupNorm(C, C)).
    per_channel, reference = ChannelMapNorm(3), nn.GroupNorm(3, 3)
    for module in (per_channel, reference):
        module.weight.data = torch.tensor([1.0, 2.0, -1.0])
        module.bias.data = torch.tensor([0.0, 0.5, 3.0])
    assert torch.allclose(per_channel(small), reference(small), atol=1e-5)


def test_pyramid_pooling_groups_are_slices_of_the_full_psp_feature() -> None:
    torch.manual_seed(0)
    groups = [PyramidPoolingGroup(16, 2, g).eval() for g in range(2)]
    groups[1].load_state_dict(groups[0].state_dict())
    x = torch.randn(1, 16, 9, 11)
    out = [g(x) for g in groups]
    assert out[0].shape == (1, 16, 9, 11)  # 16/2 input channels + 4 branches × 4/2
    assert torch.equal(out[0][:, :8], x[:, :8]) and torch.equal(out[1][:, :8], x[:, 8:])
    with torch.no_grad():
        pooled = groups[0].convs[0](x.mean(dim=(2, 3), keepdim=True))  # bin 1: the global mean
    assert torch.allclose(out[0][:, 8:10], pooled[:, :2].expand(-1, -1, 9, 11), atol=1e-6)
    assert torch.allclose(out[1][:, 8:10], pooled[:, 2:4].expand(-1, -1, 9, 11), atol=1e-6)


# --- official checkpoints -----------------------------------------------------------------------


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (channels,),
        f"{prefix}.bias": (channels,),
        f"{prefix}.running_mean": (channels,),
        f"{prefix}.running_var": (channels,),
        f"{prefix}.num_batches_tracked": (),
    }


def _resnet(prefix: str, stem: dict[str, tuple[int, ...]], inplanes: int, bottleneck: bool, blocks, fc: bool):
    """Shapes of a torchvision-style ResNet (``layer{1..4}.{i}.conv/bn/downsample``) after ``stem``."""
    shapes = {f"{prefix}.{k}": v for k, v in stem.items()}
    expansion = 4 if bottleneck else 1
    for layer, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), start=1):
        for i in range(count):
            p = f"{prefix}.layer{layer}.{i}"
            if bottleneck:
                convs = [(planes, inplanes, 1), (planes, planes, 3), (planes * 4, planes, 1)]
            else:
                convs = [(planes, inplanes, 3), (planes, planes, 3)]
            for c, (out_c, in_c, k) in enumerate(convs, start=1):
                shapes[f"{p}.conv{c}.weight"] = (out_c, in_c, k, k)
                shapes.update(_bn(f"{p}.bn{c}", out_c))
            if i == 0 and (layer == 2 or inplanes != planes * expansion):
                shapes[f"{p}.downsample.0.weight"] = (planes * expansion, inplanes, 1, 1)
                shapes.update(_bn(f"{p}.downsample.1", planes * expansion))
            inplanes = planes * expansion
    if fc:
        shapes[f"{prefix}.fc.weight"] = (1000, inplanes)
        shapes[f"{prefix}.fc.bias"] = (1000,)
    return shapes


def _conv_module(prefix: str, out_c: int, in_c: int, k: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.conv.weight": (out_c, in_c, k, k), **_bn(f"{prefix}.bn", out_c)}


def _official_tmanet_shapes(num_classes: int, memory: int) -> dict[str, tuple[int, ...]]:
    """mmseg ``tmanet_r50-d8``: ResNetV1c-50 (stem 32-32-64), TMAHead (64/256/512), FCNHead aux 256."""
    stem = {"stem.0.weight": (32, 3, 3, 3), "stem.3.weight": (32, 32, 3, 3), "stem.6.weight": (64, 32, 3, 3)}
    stem |= _bn("stem.1", 32) | _bn("stem.4", 32) | _bn("stem.7", 64)
    shapes = _resnet("backbone", stem, 64, True, (3, 4, 6, 3), fc=False)
    head = "decode_head"
    for name, channels in (("key", 64), ("value", 256)):
        for t in range(memory):
            shapes |= _conv_module(f"{head}.memory_{name}_conv.0.{t}", channels, 2048, 1)
            shapes |= _conv_module(f"{head}.memory_{name}_conv.1.{t}", channels, channels, 3)
        shapes |= _conv_module(f"{head}.query_{name}_conv.0", channels, 2048, 1)
        shapes |= _conv_module(f"{head}.query_{name}_conv.1", channels, channels, 3)
    shapes |= _conv_module(f"{head}.bottleneck", 512, 512, 3)
    shapes |= {f"{head}.conv_seg.weight": (num_classes, 512, 1, 1), f"{head}.conv_seg.bias": (num_classes,)}
    shapes |= _conv_module("auxiliary_head.convs.0", 256, 1024, 3)
    shapes |= {
        "auxiliary_head.conv_seg.weight": (num_classes, 256, 1, 1),
        "auxiliary_head.conv_seg.bias": (num_classes,),
    }
    return shapes


def _official_tdnet_shapes(paths: int, r50: bool, num_classes: int, aux: bool) -> dict[str, tuple[int, ...]]:
    """``td2_psp`` (R50, d_v 512, head ↓2) / ``td4_psp`` (R18, d_v 512, head ↓4) state-dict shapes."""
    if r50:
        stem = {
            "conv1.0.weight": (64, 3, 3, 3),
            "conv1.3.weight": (64, 64, 3, 3),
            "conv1.6.weight": (128, 64, 3, 3),
        }
        stem |= _bn("conv1.1", 64) | _bn("conv1.4", 64) | _bn("bn1", 128)
        c3, c4, inplanes, blocks, down = 1024, 2048, 128, (3, 4, 6, 3), 2
    else:
        stem = {"conv1.weight": (64, 3, 7, 7)} | _bn("bn1", 64)
        c3, c4, inplanes, blocks, down = 256, 512, 64, (2, 2, 2, 2), 4
    d_model, d_v = c4, 512
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, paths + 1):
        shapes |= _resnet(f"pretrained{i}", stem, inplanes, r50, blocks, fc=True)
        for b in range(1, 5):
            shapes[f"psp{i}.conv{b}.0.weight"] = (c4 // 4, c4, 1, 1)
            shapes |= _bn(f"psp{i}.conv{b}.1", c4 // 4)
        for w in ("w_qs", "w_ks"):
            shapes |= {f"enc{i}.{w}.0.conv.weight": (64, d_model, 1, 1), f"enc{i}.{w}.0.conv.bias": (64,)}
            shapes |= _bn(f"enc{i}.{w}.0.bn", 64)
            shapes |= {f"enc{i}.{w}.1.conv.weight": (64, 64, 1, 1), f"enc{i}.{w}.1.conv.bias": (64,)}
        shapes |= {f"enc{i}.w_vs.0.conv.weight": (d_v, d_model, 1, 1), f"enc{i}.w_vs.0.conv.bias": (d_v,)}
        shapes |= {f"layer_norm{i}.ln.weight": (97, 193), f"layer_norm{i}.ln.bias": (97, 193)}
        shapes[f"head{i}.conv5.0.weight"] = (d_v // down, d_v, 3, 3)
        shapes |= _bn(f"head{i}.conv5.1", d_v // down)
        shapes |= {
            f"head{i}.conv5.4.weight": (num_classes, d_v // down, 1, 1),
            f"head{i}.conv5.4.bias": (num_classes,),
        }
        if aux:
            shapes[f"auxlayer{i}.conv5.0.weight"] = (c3 // 4, c3, 3, 3)
            shapes |= _bn(f"auxlayer{i}.conv5.1", c3 // 4)
            shapes |= {f"auxlayer{i}.conv5.4.weight": (num_classes, c3 // 4, 1, 1)}
            shapes |= {f"auxlayer{i}.conv5.4.bias": (num_classes,)}
    names = (
        [f"atn{c}" for c in (1, 2)]
        if paths == 2
        else [f"atn{c}_{s}" for c in range(1, 5) for s in range(1, 5) if s != c]
    )
    for name in names:
        shapes |= {f"{name}.fc.0.conv.weight": (d_v, d_v, 1, 1), f"{name}.fc.0.conv.bias": (d_v,)}
    return shapes


def _convert_and_load(shapes: dict[str, tuple[int, ...]], official_key, model: nn.Module) -> set[str]:
    """Random tensors in the official layout, converted and loaded strictly; returns the dropped keys."""
    generator = torch.Generator().manual_seed(0)
    official = {
        k: torch.randint(0, 100, s, generator=generator)
        if k.endswith("num_batches_tracked")
        else torch.randn(s, generator=generator)
        for k, s in shapes.items()
    }
    state, report = convert_state_dict(official, model, official_key)
    assert report.ok and not report.counters, report.problems()  # every model tensor from the layout
    model.load_state_dict(state, strict=True)
    loaded = model.state_dict()
    for key, target in report.mapped:
        assert torch.equal(loaded[target], official[key]), key
    return set(report.dropped)


@pytest.mark.slow
@pytest.mark.parametrize("memory", [2, 4])
def test_official_tmanet_checkpoint_layout_loads_strictly(memory: int) -> None:
    model = get_model("tmanet_r50", num_classes=19, num_frames=memory + 1)
    assert _convert_and_load(_official_tmanet_shapes(19, memory), tmanet.official_key, model) == set()
    assert len(model.decode_head.memory_key_conv[0]) == memory
    # mmseg dilations (1, 1, 2, 4) with contract_dilation: a dilated stage's first block at half rate.
    assert [b.conv2.dilation[0] for b in model.backbone.layer3] == [1, 2, 2, 2, 2, 2]
    assert [b.conv2.dilation[0] for b in model.backbone.layer4] == [2, 4, 4]


def test_tmanet_align_corners_option_keeps_the_corner_logits() -> None:
    """With ``align_corners=True`` (official Cityscapes config) the corner pixels of the resized
    logits are exactly the corner logits at 1/8 resolution."""
    model = _model("tmanet_r18", align_corners=True).eval()
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
@pytest.mark.parametrize(
    ("name", "paths", "r50"), [("tdnet_td2_psp50", 2, True), ("tdnet_td4_psp18", 4, False)]
)
@pytest.mark.parametrize("aux", [True, False])
def test_official_tdnet_checkpoint_layout_loads_strictly(name: str, paths: int, r50: bool, aux: bool) -> None:
    """Training checkpoints (with aux layers) and test checkpoints (without) of both official models."""
    model = get_model(name, num_classes=19, norm_affine_size=(97, 193), aux_head=aux)
    dropped = _convert_and_load(_official_tdnet_shapes(paths, r50, 19, aux), tdnet.official_key, model)
    assert dropped == {f"pretrained{i}.fc.{p}" for i in range(1, paths + 1) for p in ("weight", "bias")}


def test_tdnet_official_key_follows_the_attention_chain() -> None:
    """Official TD4 ``forward_path2`` runs atn2_3, atn2_4, atn2_1 in that order; path 1 atn1_2, 1_3, 1_4."""
    chain = [tdnet.official_key(f"atn2_{s}.fc.0.conv.weight") for s in (3, 4, 1)]
    assert chain == [f"propagation.1.{j}.proj.weight" for j in range(3)]
    chain = [tdnet.official_key(f"atn1_{s}.fc.0.conv.bias") for s in (2, 3, 4)]
    assert chain == [f"propagation.0.{j}.proj.bias" for j in range(3)]
    assert tdnet.official_key("atn2.fc.0.conv.weight") == "propagation.1.0.proj.weight"
    assert tdnet.official_key("enc3.w_ks.1.conv.bias") == "encoders.2.key.3.bias"
    assert tdnet.official_key("enc1.w_qs.0.bn.running_mean") == "encoders.0.query.1.running_mean"
    assert tdnet.official_key("layer_norm2.ln.weight") == "norms.1.weight"
    assert tdnet.official_key("pretrained4.layer4.1.conv1.weight") == "backbones.3.layer4.1.conv1.weight"
    assert tdnet.official_key("pretrained1.fc.weight") is None
    with pytest.raises(KeyError, match=re.escape("'teacher.head.weight' is not a key of an official TDNet")):
        tdnet.official_key("teacher.head.weight")
