"""PSPNet on a dilated ResNet (output stride 8) and its TDNet teacher groups: exact checks on tiny models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from frugalseg.lightning_modules import DistillationModule
from frugalseg.lightning_modules.distillation import KDTerm
from frugalseg.zoo import get_model
from frugalseg.zoo.pspnet import PSPNet, group_indices, paired_group
from frugalseg.zoo.tdnet import PyramidPoolingGroup

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = "pspnet_r18_os8_small"


def _tiny(num_classes: int = 3, **kwargs) -> PSPNet:
    torch.manual_seed(0)
    return get_model(TINY, num_classes=num_classes, **kwargs)


def _frames(h: int, w: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_backbone_is_dilated_to_output_stride_8() -> None:
    model = _tiny()
    layer3, layer4 = model.backbone(torch.randn(1, 3, 64, 96))
    assert layer3.shape[-2:] == layer4.shape[-2:] == (8, 12)
    assert (layer3.shape[1], layer4.shape[1]) == (64, 128)
    with torch.device("meta"):  # the paper-size models as shapes only: their layers and output sizes
        r101 = get_model("pspnet_r101_os8", num_classes=19)
        backbone = r101.backbone
        assert backbone.conv1[0].out_channels == 64 and backbone.conv1[6].out_channels == 128  # deep stem
        assert [b.conv2.dilation[0] for b in backbone.layer3] == [1] + [2] * 22
        assert [b.conv2.dilation[0] for b in backbone.layer4] == [4, 8, 16]
        with torch.no_grad():
            assert [f.shape[-2:] for f in backbone.eval()(torch.randn(1, 3, 32, 48))] == [(4, 6), (4, 6)]
        assert r101.psp.out_channels == 4096 and r101.head[0].out_channels == 512
        assert r101.aux_head[0].in_channels == 1024 and r101.aux_head[0].out_channels == 256
        assert get_model("pspnet_r50_os8", num_classes=19).backbone.feature_info.channels() == [1024, 2048]


def test_pyramid_pooling_has_bins_1_2_3_6_after_the_layer4_map() -> None:
    """With identity branch convs, each branch's corner pixels are the corner cell means of its bin grid."""
    model = _tiny().eval()
    psp = model.psp
    c = 128
    with torch.no_grad():
        for branch in psp.convs:
            conv, bn = branch[0], branch[1]
            conv.weight.zero_()
            conv.weight[:, : c // 4, 0, 0] = torch.eye(c // 4)
            bn.running_mean.zero_()
            bn.running_var.fill_(1 - bn.eps)
            bn.weight.fill_(1)
            bn.bias.zero_()
        x = torch.rand(1, c, 12, 12) + torch.arange(144.0).view(1, 1, 12, 12)  # positive: ReLU keeps it
        feature = psp(x)
    assert feature.shape == (1, 2 * c, 12, 12)
    assert torch.equal(feature[:, :c], x)
    for b, bins in enumerate((1, 2, 3, 6)):
        branch = feature[:, c + b * c // 4 : c + (b + 1) * c // 4]
        cell = 12 // bins
        for y, x0 in ((0, 0), (-1, -1), (0, -1)):
            rows = slice(0, cell) if y == 0 else slice(12 - cell, 12)
            cols = slice(0, cell) if x0 == 0 else slice(12 - cell, 12)
            expected = x[:, : c // 4, rows, cols].mean(dim=(-2, -1))
            assert torch.allclose(branch[:, :, y, x0], expected, atol=1e-4), (bins, y, x0)


def test_aux_head_runs_in_forward_train_only() -> None:
    model = _tiny().eval()
    calls = []
    model.aux_head.register_forward_hook(lambda *_: calls.append(1))
    frames = _frames(48, 64)
    with torch.no_grad():
        logits = model(frames)
        assert calls == []
        outputs = model.forward_train(frames)
        assert calls == [1]
        layer3 = model.backbone(frames[:, 0])[0]
        aux = F.interpolate(model.aux_head(layer3), size=(48, 64), mode="bilinear", align_corners=True)
    assert set(outputs) == {"out", "aux"} and model.aux_weights == {"aux": 0.4}
    assert torch.equal(outputs["out"], logits) and logits.shape == (2, 3, 48, 64)
    assert torch.allclose(outputs["aux"], aux, atol=1e-6)
    plain = _tiny(aux_head=False)
    assert plain.aux_weights == {} and set(plain.eval().forward_train(frames)) == {"out"}


def test_group_shares_are_what_tdnet_sub_networks_compute_and_sum_to_the_head_conv() -> None:
    model = _tiny(groups=2).double().eval()
    layer4 = torch.randn(2, 128, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        feature = model.psp(layer4)
        conv = model.head[0]
        total = torch.zeros_like(conv(feature))
        for g in range(2):
            index = group_indices(128, 2, g)
            sub = PyramidPoolingGroup(128, 2, g).double().eval()
            sub.load_state_dict(model.psp.state_dict())
            assert torch.equal(feature[:, index], sub(layer4))  # the TDNet sub-network's group
            total += F.conv2d(feature[:, index], conv.weight[:, index], padding=1)
        assert torch.allclose(total, conv(feature), atol=1e-10)
    assert sorted(torch.cat([group_indices(128, 4, g) for g in range(4)]).tolist()) == list(range(256))


@pytest.mark.parametrize(("groups", "scale"), [(2, 1.0), (4, 4.0)])
def test_group_logits_follow_the_official_teacher_exactly(groups: int, scale: float) -> None:
    """With the predictor's ReLU inactive the head after the 3×3 conv is affine, ``L(z) = A z + d``:
    ``out = L(Σ g_i)`` and ``group_i = L(s·g_i)``, so ``Σ_i group_i = s·(out − d) + N·d`` exactly
    (s = 1 for ``pspnet_2p``, 4 for ``pspnet_4p``)."""
    model = _tiny(groups=groups).double().eval()
    assert model.group_scale == scale
    bn = model.head[1]
    with torch.no_grad():
        bn.bias.fill_(1000.0)  # every pre-activation positive: ReLU is the identity
        frames = _frames(40, 56).double()
        outputs = model.forward_train(frames)
        d = model.head[1:](torch.zeros(1, 32, 1, 1, dtype=torch.float64))  # L(0)
    assert set(outputs) == {"out", "aux", *(f"group{g}" for g in range(groups))}
    total = sum(outputs[f"group{g}"] for g in range(groups))
    assert torch.allclose(total, scale * (outputs["out"] - d) + groups * d, atol=1e-8)
    assert (outputs["group0"] - outputs["group1"]).abs().max() > 1e-3  # the groups differ


def test_groups_add_no_parameters_so_a_plain_pspnet_is_the_teacher() -> None:
    grouped = _tiny(groups=2)
    torch.manual_seed(1)
    plain = get_model(TINY, num_classes=3).eval()
    assert plain.state_dict().keys() == grouped.state_dict().keys()
    grouped.load_state_dict(plain.state_dict(), strict=True)
    frames = _frames(32, 48)
    with torch.no_grad():
        assert torch.equal(grouped.eval().forward_train(frames)["out"], plain(frames))


def test_paired_group_is_tdnets_pairing() -> None:
    assert [paired_group(p, 2, 2) for p in range(2)] == [0, 1]  # TD2 with pspnet_2p
    assert [paired_group(p, 2, 4) for p in range(4)] == [0, 2, 1, 3]  # TD4 with pspnet_4p
    assert [paired_group(p, 2, 2) for p in range(4)] == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="3 PSP groups cannot teach a student with 2 groups"):
        paired_group(0, 2, 3)


@pytest.mark.parametrize(
    ("student", "groups", "expected"),
    [("tdnet_td2_psp18_small", 2, [0, 1]), ("tdnet_td4_psp18_small", 4, [0, 2, 1, 3])],
)
def test_distillation_resolves_teacher_group_for_the_current_sub_network(
    student: str, groups: int, expected: list[int]
) -> None:
    torch.manual_seed(0)
    frames_per_clip = len(expected)
    module = DistillationModule(
        student=student,
        num_classes=3,
        num_frames=frames_per_clip,
        teacher=TINY,
        teacher_args={"groups": groups},
        mfd_weight=0.0,
        kd_terms=[KDTerm("out", "out", 1.0), KDTerm("sub", "group", 0.5)],
    )
    clip = torch.randn(2, frames_per_clip, 3, 32, 32)
    teacher = module._teacher_outputs(clip)
    assert set(teacher) == {"out", "aux", *(f"group{g}" for g in range(groups))}
    resolved = []
    for path in range(frames_per_clip):
        module.student.forward_train(clip, path=path)
        resolved.append(module._teacher_key("group", teacher))
    assert resolved == [f"group{g}" for g in expected]


def test_sgd_steps_lower_the_loss_with_the_aux_head() -> None:
    model = _tiny(groups=2).train()
    frames = _frames(32, 48)
    target = torch.zeros(2, 32, 48, dtype=torch.long)
    target[:, :16] = 1
    target[:, :, 24:] = 2
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    losses = []
    for _ in range(10):
        outputs = model.forward_train(frames)
        loss = F.cross_entropy(outputs["out"], target) + 0.4 * F.cross_entropy(outputs["aux"], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) < 0.7 * sum(losses[:3]), losses


def test_bad_groups_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"groups=3 must be >= 1 and divide the PSP branch width 32"):
        _tiny(groups=3)
    with pytest.raises(ValueError, match=r"groups=0"):
        _tiny(groups=0)
    with pytest.raises(ValueError, match=r"image model and takes num_frames=1"):
        get_model("pspnet_r101_os8", num_classes=3, num_frames=2)
