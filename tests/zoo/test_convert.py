"""Converters (``zoo/_convert.py``): a checkpoint in an official key layout converts strictly, problems
are named; HRNet-Seg's layout is the example, the other official layouts convert through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from frugalseg.cli import main
from frugalseg.errors import WeightsError
from frugalseg.zoo import (
    CONVERTERS,
    ConversionError,
    convert_checkpoint,
    convert_state_dict,
    get_model,
    read_official_checkpoint,
)
from frugalseg.zoo.hrnet import official_key

from .official_layouts import (
    W18_SMALL,
    official_hrnet_checkpoint,
    official_stm_state_dict,
    official_tdnet_shapes,
    official_tmanet_shapes,
    random_state,
)


def _hrnet_small(**changes) -> dict[str, torch.Tensor]:
    state = official_hrnet_checkpoint(W18_SMALL, num_classes=7)
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


def test_failed_conversion_exits_2_with_the_report(tmp_path, capsys):
    state = _hrnet_small()
    del state["model.conv1.weight"]
    source = tmp_path / "broken.pth"
    torch.save({"state_dict": state}, source)
    assert main(["zoo", "convert", "--from", "hrnet", str(source), "--out", str(tmp_path / "zoo")]) == 2
    assert "backbone.conv1.weight" in capsys.readouterr().err


def test_width_and_classes_are_read_from_the_checkpoint(tmp_path):
    source = tmp_path / "small.pth"
    torch.save({"state_dict": _hrnet_small()}, source)
    card, report = convert_checkpoint("hrnet", source, tmp_path / "zoo")
    assert card["architecture"] == "hrnetv2_w18_small" and card["num_classes"] == 7
    assert card["name"] == "hrnetv2-w18-small-official"
    assert card["source"]["official"] == "hrnet" and card["source"]["dropped"] == ["loss.criterion.weight"]
    assert card["source"]["license"] == "MIT"  # the official release's, from the model's config
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


def test_every_converter_is_declared_beside_its_architectures_official_key():
    """One converter per official source, registered by the module that holds its ``official_key``."""
    assert sorted(CONVERTERS) == ["hrnet", "stm", "tdnet", "tmanet"]
    for source, converter in CONVERTERS.items():
        module = f"frugalseg.zoo.{source}"
        assert converter.official_key.__module__ == converter.infer.__module__ == module, source
        assert converter.official_key.__name__ == "official_key" and callable(converter.infer), source


@pytest.mark.slow
@pytest.mark.parametrize("source", ["tmanet", "tdnet", "stm"])
def test_the_other_official_layouts_convert_through_the_cli(tmp_path, capsys, source):
    """The official layouts the architectures' own tests load (``official_layouts``), saved in their
    release wrappers, convert via `frugalseg zoo convert` and load back by path."""
    if source == "tmanet":
        content = {"meta": {"epoch": 80}, "state_dict": random_state(official_tmanet_shapes(19, memory=2))}
        expected = ("tmanet_r50", 3, 0)
    elif source == "tdnet":
        content = {"epoch": 9, "model_state": random_state(official_tdnet_shapes(4, False, 19, aux=True))}
        expected = ("tdnet_td4_psp18", 4, 8)  # the four ImageNet classifiers pretrained{i}.fc are dropped
    else:
        content = official_stm_state_dict()
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


def test_the_load_hint_works_from_the_folder_it_was_printed_in(tmp_path, monkeypatch, capsys):
    """By path while ``--out`` is not searched for names; by name once $FRUGALSEG_CHECKPOINTS names it."""
    torch.save({"state_dict": _hrnet_small()}, tmp_path / "small.pth")
    monkeypatch.chdir(tmp_path)
    command = ["zoo", "convert", "--from", "hrnet", "small.pth", "--out", "conv", "--name", "conv-hr"]
    assert main(command) == 0
    (weights,) = Path("conv").glob("conv-hr-*.safetensors")
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"load it with get_model('hrnetv2_w18_small', weights='{weights}'), "
        "or by its name 'conv-hr' with FRUGALSEG_CHECKPOINTS=conv set"
    )
    assert get_model("hrnetv2_w18_small", weights=str(weights)).num_classes == 7
    monkeypatch.setenv("FRUGALSEG_CHECKPOINTS", "conv")
    assert main(command) == 0
    hint = "load it with get_model('hrnetv2_w18_small', weights='conv-hr')"
    assert capsys.readouterr().out.splitlines()[-1] == hint
    assert get_model("hrnetv2_w18_small", weights="conv-hr").num_classes == 7


def test_a_fit_checkpoint_or_another_architecture_is_one_line(tmp_path, capsys):
    """Both had printed 45 lines of key lists: a `frugalseg fit` checkpoint given to `--from stm`, and an
    official STM file converted onto ``--arch tmanet_r18``."""
    fit = tmp_path / "last.ckpt"
    model = get_model("hrnetv2_w18_small", num_classes=7)
    torch.save({"state_dict": {f"student.{k}": v for k, v in model.state_dict().items()}}, fit)
    out = ["--out", str(tmp_path / "zoo")]
    assert main(["zoo", "convert", "--from", "stm", str(fit), *out]) == 2
    assert capsys.readouterr().err == (
        f"error: {fit}: a frugalseg fit checkpoint (its tensors under 'student.'), not an official stm one: "
        "publish it with `frugalseg zoo publish`\n"
    )
    vos = tmp_path / "vos.ckpt"  # `zoo publish` refuses it, and had sent it back here
    torch.save({"state_dict": torch.load(fit)["state_dict"], "hyper_parameters": {"student": "stm_r50"}}, vos)
    assert main(["zoo", "convert", "--from", "stm", str(vos), *out]) == 2
    assert capsys.readouterr().err.endswith(
        "one of `vos fit`: use the .ckpt as it is (get_model(weights=…), --stm-weights)\n"
    )
    stm = tmp_path / "STM_weights.pth"
    torch.save(official_stm_state_dict(), stm)
    assert main(["zoo", "convert", "--from", "stm", str(stm), "--arch", "tmanet_r18", *out]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {stm}: an official stm checkpoint holds stm_r50, not tmanet_r18: "), line
    assert not (tmp_path / "zoo").exists()


def test_an_official_hrnet_file_onto_a_video_architecture_or_onto_a_file_is_one_line_naming_it(
    tmp_path, capsys
):
    """``--arch tmanet_r18`` had said "TMANet needs num_frames ≥ 2 … (on the command line: --data.num_frames
    3)", an option `zoo convert` lacks; ``--out`` an existing file only "File exists"."""
    official = tmp_path / "hrnet_official.pth"
    torch.save(official_hrnet_checkpoint(W18_SMALL, num_classes=7), official)
    out = ["--out", str(tmp_path / "zoo")]
    assert main(["zoo", "convert", "--from", "hrnet", str(official), "--arch", "tmanet_r18", *out]) == 2
    assert capsys.readouterr().err == (
        f"error: {official}: an official hrnet checkpoint holds hrnetv2_w18_small, not tmanet_r18: give "
        "--arch hrnetv2_w18_small (or none)\n"
    )
    assert main(["zoo", "convert", "--from", "hrnet", str(official), "--arch", "tdnet_r18", *out]) == 2
    assert capsys.readouterr().err.startswith("error: --arch: unknown model 'tdnet_r18'; available models: ")
    assert main(["zoo", "convert", "--from", "hrnet", str(official), "--out", str(official)]) == 2
    assert capsys.readouterr().err == f"error: --out: {official} is a file, not a folder\n"
    assert not (tmp_path / "zoo").exists()
