"""Converters: an HRNet-Seg checkpoint in the official key layout converts strictly, problems are named."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from frugalseg.cli import main
from frugalseg.zoo import get_model
from frugalseg.zoo.convert import (
    CONVERTERS,
    ConversionError,
    convert_checkpoint,
    convert_state_dict,
    read_official_checkpoint,
)
from frugalseg.zoo.hrnet import official_key
from frugalseg.zoo.weights import WeightsError

# Stage plans of the official experiment configs (``experiments/cityscapes/seg_hrnet_*.yaml``):
# (layer1 bottleneck blocks, layer1 planes, [(modules, blocks per branch, channels per branch) per stage]).
W18_SMALL = (1, 32, [(1, 2, (16, 32)), (1, 2, (16, 32, 64)), (1, 2, (16, 32, 64, 128))])
W18 = (4, 64, [(1, 4, (18, 36)), (4, 4, (18, 36, 72)), (3, 4, (18, 36, 72, 144))])
W48 = (4, 64, [(1, 4, (48, 96)), (4, 4, (48, 96, 192)), (3, 4, (48, 96, 192, 384))])


def official_hrnet_shapes(config, num_classes: int) -> dict[str, tuple[int, ...]]:
    """Key → shape of ``seg_hrnet.py``'s HighResolutionNet, following its module tree.

    Written from the reference's structure (``_make_layer``, ``_make_transition_layer``,
    ``HighResolutionModule._make_branches/_make_fuse_layers``, ``last_layer``), independently of timm.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, out: int, inp: int, k: int, bias: bool = False) -> None:
        shapes[f"{name}.weight"] = (out, inp, k, k)
        if bias:
            shapes[f"{name}.bias"] = (out,)

    def bn(name: str, c: int) -> None:
        for part in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{part}"] = (c,)
        shapes[f"{name}.num_batches_tracked"] = ()

    conv("conv1", 64, 3, 3)
    bn("bn1", 64)
    conv("conv2", 64, 64, 3)
    bn("bn2", 64)
    blocks, planes, stages = config
    inplanes = 64
    for b in range(blocks):  # Bottleneck, expansion 4
        prefix = f"layer1.{b}"
        conv(f"{prefix}.conv1", planes, inplanes, 1)
        bn(f"{prefix}.bn1", planes)
        conv(f"{prefix}.conv2", planes, planes, 3)
        bn(f"{prefix}.bn2", planes)
        conv(f"{prefix}.conv3", planes * 4, planes, 1)
        bn(f"{prefix}.bn3", planes * 4)
        if b == 0:
            conv(f"{prefix}.downsample.0", planes * 4, inplanes, 1)
            bn(f"{prefix}.downsample.1", planes * 4)
        inplanes = planes * 4
    previous = [inplanes]
    for s, (modules, nblocks, channels) in enumerate(stages, start=2):
        t = f"transition{s - 1}"
        for i, c in enumerate(channels):
            if i < len(previous):
                if c != previous[i]:
                    conv(f"{t}.{i}.0", c, previous[i], 3)
                    bn(f"{t}.{i}.1", c)
            else:
                for j in range(i + 1 - len(previous)):
                    inp = previous[-1]
                    out = c if j == i - len(previous) else inp
                    conv(f"{t}.{i}.{j}.0", out, inp, 3)
                    bn(f"{t}.{i}.{j}.1", out)
        for m in range(modules):
            prefix = f"stage{s}.{m}"
            for i, c in enumerate(channels):
                for b in range(nblocks):  # BasicBlock
                    conv(f"{prefix}.branches.{i}.{b}.conv1", c, c, 3)
                    bn(f"{prefix}.branches.{i}.{b}.bn1", c)
                    conv(f"{prefix}.branches.{i}.{b}.conv2", c, c, 3)
                    bn(f"{prefix}.branches.{i}.{b}.bn2", c)
            for i in range(len(channels)):
                for j in range(len(channels)):
                    fuse = f"{prefix}.fuse_layers.{i}.{j}"
                    if j > i:
                        conv(f"{fuse}.0", channels[i], channels[j], 1)
                        bn(f"{fuse}.1", channels[i])
                    elif j < i:
                        for k in range(i - j):
                            out = channels[i] if k == i - j - 1 else channels[j]
                            conv(f"{fuse}.{k}.0", out, channels[j], 3)
                            bn(f"{fuse}.{k}.1", out)
        previous = list(channels)
    width = sum(previous)
    conv("last_layer.0", width, width, 1, bias=True)
    bn("last_layer.1", width)
    conv("last_layer.3", num_classes, width, 1, bias=True)
    return shapes


def official_checkpoint(config, num_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors in the layout official training saves: ``FullModel`` keys ``model.*`` and ``loss.*``."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_hrnet_shapes(config, num_classes).items():
        if key.endswith("num_batches_tracked"):
            state[f"model.{key}"] = torch.tensor(1000)
        else:
            state[f"model.{key}"] = torch.randn(shape, generator=generator)
    state["loss.criterion.weight"] = torch.rand(num_classes, generator=generator)  # class weights
    return state


@pytest.mark.parametrize(
    ("config", "architecture"),
    [
        (W18_SMALL, "hrnetv2_w18_small"),
        (W18, "hrnetv2_w18"),
        pytest.param(W48, "hrnetv2_w48", marks=pytest.mark.slow),
    ],
)
def test_official_hrnet_layout_converts_and_loads_strictly(tmp_path, capsys, config, architecture):
    official = official_checkpoint(config, num_classes=19)
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


def _hrnet_small(**changes) -> dict[str, torch.Tensor]:
    state = official_checkpoint(W18_SMALL, num_classes=7)
    state.update(changes)
    return state


def _convert(state: dict[str, torch.Tensor]):
    model = get_model("hrnetv2_w18_small", num_classes=7)
    return convert_state_dict(state, model, official_key)[1]


def test_a_missing_key_is_reported_by_name():
    state = _hrnet_small()
    del state["model.stage3.0.fuse_layers.2.0.1.0.weight"]
    report = _convert(state)
    assert not report.ok
    assert report.missing == ["backbone.stage3.0.fuse_layers.2.0.1.0.weight"]
    assert "missing: model tensors no official key fills (1):" in report.problems()
    assert "backbone.stage3.0.fuse_layers.2.0.1.0.weight" in report.problems()


def test_an_extra_or_foreign_key_is_reported_by_name():
    state = _hrnet_small(
        **{
            "model.stage2.0.branches.0.0.conv3.weight": torch.zeros(1),
            "model.ocr_head.weight": torch.zeros(1),
        }
    )
    report = _convert(state)
    assert report.extra == [
        ("model.stage2.0.branches.0.0.conv3.weight", "backbone.stage2.0.branches.0.0.conv3.weight")
    ]
    assert [key for key, _ in report.unknown] == ["model.ocr_head.weight"]
    assert "model.ocr_head.weight" in report.problems() and "conv3.weight" in report.problems()


def test_a_wrong_shape_is_reported_with_both_shapes(tmp_path):
    state = _hrnet_small(**{"model.last_layer.3.bias": torch.zeros(8)})
    source = tmp_path / "bad.pth"
    torch.save(state, source)
    with pytest.raises(ConversionError) as err:
        convert_checkpoint("hrnet", source, tmp_path / "zoo", architecture="hrnetv2_w18_small", num_classes=7)
    assert "model.last_layer.3.bias → last_layer.3.bias: [8] in the checkpoint, [7] in the model" in str(
        err.value
    )
    assert str(source) in str(err.value)
    assert not (tmp_path / "zoo").exists()  # nothing half-written


def test_failed_conversion_exits_1_with_the_report(tmp_path, capsys):
    state = _hrnet_small()
    del state["model.conv1.weight"]
    source = tmp_path / "broken.pth"
    torch.save({"state_dict": state}, source)
    assert main(["zoo", "convert", "--from", "hrnet", str(source), "--out", str(tmp_path / "zoo")]) == 1
    assert "backbone.conv1.weight" in capsys.readouterr().err


def test_width_and_classes_are_read_from_the_checkpoint(tmp_path):
    source = tmp_path / "small.pth"
    torch.save({"state_dict": _hrnet_small()}, source)
    card, report = convert_checkpoint("hrnet", source, tmp_path / "zoo")
    assert card["architecture"] == "hrnetv2_w18_small" and card["num_classes"] == 7
    assert card["name"] == "hrnetv2-w18-small-official"
    assert card["source"]["official"] == "hrnet" and card["source"]["dropped"] == ["loss.criterion.weight"]
    assert report.ok and len(report.mapped) == len(_hrnet_small()) - 1


def test_wrappers_and_module_prefixes_are_unwrapped(tmp_path):
    tensors = {"module.a.weight": torch.ones(2), "module.b.bias": torch.zeros(1)}
    for name, content in {
        "plain": tensors,
        "mmcv": {"meta": {"epoch": 3}, "state_dict": tensors, "optimizer": {"state": {}}},
        "tdnet": {"epoch": 1, "model_state": tensors, "best_iou": 0.5},
    }.items():
        path = tmp_path / f"{name}.pth"
        torch.save(content, path)
        assert list(read_official_checkpoint(path)) == ["a.weight", "b.bias"], name


def test_a_checkpoint_needing_unpickling_is_refused(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "config": Path("x")}, path)
    with pytest.raises(
        WeightsError, match=r"pickled.pth: cannot be read with torch.load\(weights_only=True\)"
    ):
        read_official_checkpoint(path)


def test_every_converter_names_an_official_key_function():
    for source, converter in CONVERTERS.items():
        assert callable(converter.official_key()), source


def _random(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        key: torch.tensor(7)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator)
        for key, shape in shapes.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("source", ["tmanet", "tdnet", "stm"])
def test_the_other_official_layouts_convert_through_the_cli(tmp_path, capsys, source):
    """The official layouts the architectures' own tests build (test_zoo_students, test_stm), saved
    in their release wrappers, convert via `frugalseg zoo convert` and load back by path."""
    if source == "tmanet":
        from test_zoo_students import _official_tmanet_shapes

        content = {"meta": {"epoch": 80}, "state_dict": _random(_official_tmanet_shapes(19, memory=2))}
        expected = ("tmanet_r50", 3, 0)
    elif source == "tdnet":
        from test_zoo_students import _official_tdnet_shapes

        content = {"epoch": 9, "model_state": _random(_official_tdnet_shapes(4, False, 19, aux=True))}
        expected = ("tdnet_td4_psp18", 4, 8)  # the four ImageNet classifiers pretrained{i}.fc are dropped
    else:
        from test_stm import _official_state_dict

        content = _official_state_dict()
        expected = ("stm_r50", 3, 4)  # the encoders' mean/std buffers are dropped
    path = tmp_path / f"{source}.pth"
    torch.save(content, path)
    assert (
        main(["zoo", "convert", "--from", source, str(path), "--out", str(tmp_path), "--name", source]) == 0
    )
    assert f"{expected[2]} dropped by design" in capsys.readouterr().out
    (weights,) = tmp_path.glob(f"{source}-*.safetensors")
    model = get_model(expected[0], weights=str(weights))
    assert model.num_frames == expected[1]
