"""The registry: names from the entrypoints, configs beside them, ``list_models`` with known answers,
the configs against the reference facts, published weights against the shipped index, and a model
registered by a fixture showing up everywhere the registry is read."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import frugalseg.zoo
from frugalseg.cli import main
from frugalseg.errors import ConfigError
from frugalseg.zoo import (
    ImageStudent,
    ModelConfig,
    get_model,
    list_models,
    model_config,
    model_entrypoint,
    packaged_checkpoints,
    read_index,
    register_model,
    sha256_file,
    unregister_model,
)

pytest_plugins = ["pytester"]

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
TEST_MODELS = Path(__file__).with_name("test_models.py")


def _architecture_modules() -> list:
    """The zoo's architecture modules: every public module of the package but the loop's two networks."""
    networks = {"quality_net", "type_gain"}
    names = [
        m.name
        for m in pkgutil.iter_modules(frugalseg.zoo.__path__)
        if not m.name.startswith("_") and m.name not in networks
    ]
    return [importlib.import_module(f"frugalseg.zoo.{name}") for name in names]


def test_the_zoo_folder_reads_as_its_architectures() -> None:
    assert [m.__name__.rsplit(".", 1)[1] for m in _architecture_modules()] == [
        "deeplabv3plus",
        "hrnet",
        "pspnet",
        "stm",
        "tdnet",
        "tmanet",
    ]


def test_registry_lists_every_model() -> None:
    assert list_models() == ALL_MODELS


def test_every_model_is_a_named_entrypoint_with_its_config_beside_it() -> None:
    """Each name is a ``def <name>(`` in its architecture module (so grep finds a name used in a
    config), registered with that module's ``default_cfgs[name]``; no config is left unregistered."""
    registered = set()
    for module in _architecture_modules():
        source = inspect.getsource(module)
        for name, config in module.default_cfgs.items():
            entrypoint = model_entrypoint(name)
            assert entrypoint.__module__ == module.__name__ and entrypoint.__qualname__ == name
            assert f"\ndef {name}(" in source
            assert model_config(name) is config
            registered.add(name)
    assert registered == set(ALL_MODELS)


def test_list_models_filter_task_and_pretrained_known_answers() -> None:
    assert list_models("tdnet_*") == [
        "tdnet_td2_psp18_small",
        "tdnet_td2_psp50",
        "tdnet_td4_psp18",
        "tdnet_td4_psp18_small",
    ]
    assert list_models(["deeplabv3plus_*", "*_os8*"]) == [
        "deeplabv3plus_mbv2",
        "deeplabv3plus_r101",
        "deeplabv3plus_r18",
        "pspnet_r101_os8",
        "pspnet_r18_os8_small",
        "pspnet_r50_os8",
    ]
    assert list_models(task="vos") == ["stm_r18", "stm_r50"]
    assert list_models("stm_*", task="semantic") == []
    assert list_models(task="semantic") == [n for n in ALL_MODELS if not n.startswith("stm")]
    assert list_models(pretrained=True) == ["hrnetv2_w18_small"]
    assert list_models("tmanet*", pretrained=True) == []
    assert list_models("TMANET*") == []  # names are lower case; the match is case-sensitive
    with pytest.raises(ValueError, match=r"task must be one of \('semantic', 'vos'\) or None, got 'video'"):
        list_models(task="video")


@pytest.mark.parametrize(
    ("name", "frames", "video", "task", "aux"),
    [
        # models.md §1: TMANet on Cityscapes, 2 memory frames (sequence_num=2) + the current frame;
        # auxiliary FCNHead loss weight 0.4.
        ("tmanet_r50", 3, True, "semantic", {"aux": 0.4}),
        # §2: TD2 / TD4, one frame per sub-network; L = CE(out) + 0.5·CE(sub) + 0.1·CE(aux) + KD.
        ("tdnet_td2_psp50", 2, True, "semantic", {"sub": 0.5, "aux": 0.1}),
        ("tdnet_td4_psp18", 4, True, "semantic", {"sub": 0.5, "aux": 0.1}),
        # §3: STM segments objects from first-frame masks; 3-frame training clips (reproduction).
        ("stm_r50", 3, True, "vos", {}),
        # §4: HRNetV2-W48, a single-image network without auxiliary head.
        ("hrnetv2_w48", 1, False, "semantic", {}),
    ],
)
def test_configs_hold_the_reference_facts(name: str, frames: int, video: bool, task: str, aux: dict) -> None:
    config = model_config(name)
    assert (config.num_frames, config.video, config.task) == (frames, video, task)
    assert dict(config.aux_weights) == aux
    assert config.mean == (0.485, 0.456, 0.406) and config.std == (0.229, 0.224, 0.225)


def test_stm_config_has_the_official_object_count() -> None:
    """models.md §3: the official evaluation uses K = 11 channels (background + 10 objects)."""
    assert model_config("stm_r50").num_classes == 11
    with torch.device("meta"):
        assert get_model("stm_r18").num_classes == 11  # the config's default, no num_classes needed
    assert model_config("tdnet_td2_psp50").unused_parameters  # §2: one sub-network's head per step
    assert not model_config("tmanet_r50").unused_parameters


def test_published_weights_in_configs_are_the_shipped_files() -> None:
    """Every published weights entry of a config is in the packaged ``index.json`` with the same
    file and sha256, the file has that sha256, and its card names the model and its normalisation."""
    folder = packaged_checkpoints()
    index = read_index(folder)["models"]
    published = {name: model_config(name).weights for name in list_models(pretrained=True)}
    assert published == {"hrnetv2_w18_small": model_config("hrnetv2_w18_small").weights}
    assert list(published["hrnetv2_w18_small"]) == ["streets-hrnetv2-w18s"]
    for name, weights in published.items():
        config = model_config(name)
        for weights_name, entry in weights.items():
            assert (index[weights_name]["file"], index[weights_name]["sha256"]) == (entry.file, entry.sha256)
            assert sha256_file(folder / entry.file) == entry.sha256
            card = json.loads((folder / index[weights_name]["card"]).read_text(encoding="utf-8"))
            assert card["architecture"] == name
            assert tuple(card["normalization"]["mean"]) == config.mean
            assert tuple(card["normalization"]["std"]) == config.std


def test_get_model_errors() -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'.*tmanet_r18") as info:
        get_model("nope", num_classes=2)
    assert all(name in str(info.value) for name in ALL_MODELS)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        model_config("nope")
    with pytest.raises(ValueError) as published:  # a weights name, as `zoo list` shows it, given as a model
        get_model("streets-hrnetv2-w18s")
    assert str(published.value).endswith(
        "unknown model 'streets-hrnetv2-w18s'; 'streets-hrnetv2-w18s' is published weights: "
        "get_model('hrnetv2_w18_small', weights='streets-hrnetv2-w18s')"
    )
    with pytest.raises(ValueError, match=r"is a file or folder: give it as weights= of its architecture$"):
        get_model(__file__)  # a `zoo publish --hub-folder` folder or a weights file, given as a model
    with pytest.raises(ValueError, match="image model.*num_frames=3"):
        get_model("deeplabv3plus_r18", num_classes=2, num_frames=3)
    with pytest.raises(ValueError, match=r"get_model\('tmanet_r18'\) needs num_classes"):
        get_model("tmanet_r18")


def test_register_model_refuses_a_taken_name_and_a_missing_config() -> None:
    with pytest.raises(ValueError, match="a model named 'tmanet_r18' is already registered"):
        register_model(model_entrypoint("tmanet_r18"))

    def no_config_probe(num_classes: int, num_frames: int = 1) -> nn.Module:
        raise AssertionError("never built")

    with pytest.raises(ValueError, match=r"'no_config_probe' has no config: declare default_cfgs"):
        register_model(no_config_probe)
    assert "no_config_probe" not in list_models()
    with pytest.raises(ValueError, match="an image model has num_frames=1, got num_frames=2"):
        ModelConfig(num_frames=2)
    with pytest.raises(ValueError, match="task must be one of"):
        ModelConfig(task="panoptic")


# --- a model registered by a fixture ---------------------------------------------------------------


class _Probe(ImageStudent):
    """A 3×3 conv: the smallest image student."""

    def __init__(self, num_classes: int, num_frames: int = 1):
        super().__init__(num_classes, num_frames)
        self.conv = nn.Conv2d(3, num_classes, 3, padding=1)

    def segment(self, image: Tensor) -> Tensor:
        return self.conv(image)


def zoo_probe(num_classes: int, num_frames: int = 1) -> _Probe:
    """A registered-for-the-test image student."""
    return _Probe(num_classes, num_frames)


@pytest.fixture
def probe_registered():
    register_model(zoo_probe, config=ModelConfig(param_count=0.0, paper="frugalseg tests"))
    yield "zoo_probe"
    unregister_model("zoo_probe")


def test_a_model_registered_in_a_fixture_is_listed_tested_and_shown(probe_registered, pytester, capsys):
    """No test names it, yet it is in ``list_models()``, the registry-parametrised tests collect and
    pass it (a pytest run of ``test_models.py`` inside this one), and ``frugalseg zoo list`` shows it."""
    name = probe_registered
    assert name in list_models() and list_models("zoo_*") == [name]
    assert model_config(name).paper == "frugalseg tests"

    run = pytester.inline_run(str(TEST_MODELS), "-k", name, "-m", "not slow", "-p", "no:cacheprovider")
    passed, skipped, failed = run.listoutcomes()
    assert not failed and not skipped
    ids = sorted(report.nodeid.split("::")[-1] for report in passed)
    assert ids == sorted(
        [
            f"test_config_matches_the_built_model[{name}]",
            f"test_forward_backward_reaches_every_parameter[{name}]",
            f"test_forward_is_per_sample_at_the_input_size[{name}-32x64]",
            f"test_forward_is_per_sample_at_the_input_size[{name}-38x46]",
            f"test_a_wrong_clip_length_is_a_clear_error[{name}]",
        ]
    )

    assert main(["zoo", "list"]) == 0
    shown = capsys.readouterr().out
    assert name in shown and "frugalseg tests" in shown


def test_unregister_model_removes_it() -> None:
    register_model(zoo_probe, config=ModelConfig())
    unregister_model("zoo_probe")
    assert "zoo_probe" not in list_models()
    with pytest.raises(ValueError, match="unknown model 'zoo_probe'"):
        unregister_model("zoo_probe")


def test_zoo_list_shows_the_architectures(capsys) -> None:
    assert main(["zoo", "list", "--task", "vos"]) == 0
    out = capsys.readouterr().out
    assert "stm_r18" in out and "stm_r50" in out and "Oh et al., ICCV 2019" in out and "tmanet" not in out
    assert main(["zoo", "list", "--pretrained"]) == 0
    models_table = capsys.readouterr().out.split("published weights")[0]
    assert "hrnetv2_w18_small" in models_table and "streets-hrnetv2-w18s" in models_table
    assert "hrnetv2_w48" not in models_table


def test_an_argument_the_model_does_not_take_is_named_and_timm_s_pretrained_explained() -> None:
    with pytest.raises(ConfigError) as error:
        get_model("tmanet_r18", num_classes=3, pretrained=True)
    assert error.value.option == "pretrained"
    assert error.value.problem.startswith("is no argument of 'tmanet_r18' (timm's pretrained=True): ")
    assert "weights=NAME" in error.value.problem and "backbone_weights" in error.value.problem
    with pytest.raises(ConfigError, match=r"^backbone_weight: is no argument of 'tmanet_r18'$"):
        get_model("tmanet_r18", num_classes=3, backbone_weight="x")
    # smp's classes drop a name they do not take (but for timm's `tu-` encoders): refused here
    with pytest.raises(ConfigError, match=r"^encoder_weigths: is no argument of 'deeplabv3plus_r18'$"):
        get_model("deeplabv3plus_r18", num_classes=3, encoder_weigths="imagenet")
    assert get_model("pspnet_r18", num_classes=3, psp_dropout=0.1) is not None  # smp's own argument


@pytest.mark.parametrize(("option", "value"), [("num_classes", 0), ("num_frames", 0), ("num_classes", 2.5)])
def test_a_class_or_frame_count_below_one_is_refused_by_name(option, value) -> None:
    """``num_classes=0`` had been taken for 'not given' ('needs num_classes (or weights …)')."""
    with pytest.raises(ConfigError, match=rf"^{option}: must be a whole number ≥ 1, got {value}$"):
        get_model("hrnetv2_w18_small", **{option: value})


def test_zoo_list_of_a_folder_that_does_not_exist_says_so(tmp_path, capsys) -> None:
    """It had printed "no published weights in nodir/index.json" and exit 0, as for an empty folder."""
    assert main(["zoo", "list", "--dir", str(tmp_path / "nodir")]) == 2
    assert capsys.readouterr().err == f"error: --dir: {tmp_path / 'nodir'}: folder does not exist\n"
    assert main(["zoo", "list", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.endswith(f"no published weights in {tmp_path / 'index.json'}\n")
