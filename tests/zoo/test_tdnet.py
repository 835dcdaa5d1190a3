"""TDNet: streaming one sub-network per frame, attention propagation and the normalisation on known
values, the official dilated backbone, errors, and the official checkpoints' key layout."""

from __future__ import annotations

import functools
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from frugalseg.zoo import Student, get_model, tdnet
from frugalseg.zoo.tdnet import ChannelMapNorm, Propagation, PyramidPoolingGroup, TDNet

from .official_layouts import convert_and_load, official_tdnet_shapes


def _clip(
    model: Student, h: int, w: int, batch: int = 2, seed: int = 0, frames: int | None = None
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames or model.num_frames, 3, h, w, generator=generator)


def _model(name: str, num_classes: int = 3, **kwargs) -> TDNet:
    torch.manual_seed(0)
    return get_model(name, num_classes=num_classes, **kwargs)


@functools.cache
def _shared(name: str) -> TDNet:
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


def _materialised_propagation(
    step: Propagation, key: torch.Tensor, value: torch.Tensor, query: torch.Tensor
) -> torch.Tensor:
    """``Propagation.forward`` as it was before SDPA: the whole HW×hw attention held in memory."""
    b, _, h, w = query.shape
    scores = torch.bmm(query.flatten(2).transpose(1, 2), key.flatten(2)) * step.scale  # B×HW×hw
    attention = F.dropout(torch.softmax(scores, dim=-1), step.attention_dropout, step.training)
    read = torch.bmm(value.flatten(2), attention.transpose(1, 2)).reshape(b, -1, h, w)
    return step.dropout(step.proj(read))


@pytest.mark.parametrize(("ck", "cv"), [(8, 24), (16, 16), (24, 8)])
def test_propagation_equals_the_materialised_attention_values_and_gradients(ck: int, cv: int) -> None:
    torch.manual_seed(0)
    step = Propagation(key_channels=ck, value_channels=cv).eval()
    generator = torch.Generator().manual_seed(4)
    query = torch.randn(2, ck, 6, 9, generator=generator).mul(2).requires_grad_()
    key = torch.randn(2, ck, 2, 3, generator=generator).mul(2).requires_grad_()  # a subsampled past frame
    value = torch.randn(2, cv, 2, 3, generator=generator).requires_grad_()
    inputs = (key, value, query)
    upstream = torch.randn(2, cv, 6, 9, generator=generator)
    new, old = step(*inputs), _materialised_propagation(step, *inputs)
    assert torch.allclose(new, old, atol=1e-5)
    params = (*inputs, *step.parameters())
    new_grads = torch.autograd.grad(new, params, upstream)
    old_grads = torch.autograd.grad(old, params, upstream)
    for new_grad, old_grad in zip(new_grads, old_grads, strict=True):
        assert torch.allclose(new_grad, old_grad, atol=1e-5)


def test_propagation_drops_attention_weights_only_while_training() -> None:
    # The same query/key/value repeated 4000 times: each copy gets its own dropout mask on the
    # attention weights (rescaled by 1/(1 - p)), so copies differ, and their mean is the eval read.
    torch.manual_seed(0)
    step = Propagation(key_channels=4, value_channels=2, dropout=0.5)
    step.dropout = nn.Identity()  # isolate the attention dropout from the output dropout
    generator = torch.Generator().manual_seed(5)
    query, key, value = (torch.randn(1, c, 2, 3, generator=generator) for c in (4, 4, 2))
    expected = _materialised_propagation(step.eval(), key, value, query)
    with torch.no_grad():
        assert torch.allclose(step(key, value, query), expected, atol=1e-6)
        step.train()
        reads = step(*(x.expand(4000, -1, -1, -1) for x in (key, value, query)))
    assert not torch.allclose(reads[0], reads[1])
    assert torch.allclose(reads.mean(0, keepdim=True), expected, atol=0.05)


@pytest.mark.parametrize("name", ["tdnet_td2_psp18_small", "tdnet_td4_psp18_small"])
def test_tdnet_forward_and_step_equal_the_materialised_attention(name: str, monkeypatch) -> None:
    model = _sharpen(_model(name).eval())
    n = model.num_frames
    clip = _clip(model, 32, 48, batch=2)
    video = _clip(model, 32, 48, batch=2, seed=1, frames=n + 2)

    def run() -> tuple[list[dict[str, torch.Tensor]], list[torch.Tensor]]:
        with torch.no_grad():
            outputs = [model.forward_train(clip, path=path) for path in range(n)]
        model.reset()
        return outputs, [model.step(frame) for frame in video.unbind(1)]

    new_outputs, new_stream = run()
    monkeypatch.setattr(Propagation, "forward", _materialised_propagation)
    old_outputs, old_stream = run()
    for path, (new, old) in enumerate(zip(new_outputs, old_outputs, strict=True)):
        assert torch.allclose(new["out"], old["out"], atol=1e-5), path
    for i, (new, old) in enumerate(zip(new_stream, old_stream, strict=True)):
        assert torch.allclose(new, old, atol=1e-5), i


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


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "paths", "r50"), [("tdnet_td2_psp50", 2, True), ("tdnet_td4_psp18", 4, False)]
)
@pytest.mark.parametrize("aux", [True, False])
def test_official_tdnet_checkpoint_layout_loads_strictly(name: str, paths: int, r50: bool, aux: bool) -> None:
    """Training checkpoints (with aux layers) and test checkpoints (without) of both official models."""
    with torch.device("meta"):
        model = get_model(name, num_classes=19, norm_affine_size=(97, 193), aux_head=aux)
    dropped = convert_and_load(official_tdnet_shapes(paths, r50, 19, aux), tdnet.official_key, model)
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
