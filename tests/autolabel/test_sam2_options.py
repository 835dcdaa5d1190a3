"""`SAM2Options`: the one object the three SAM 2 members are built from, and the settings they record.

The settings below were written by the members of flat arguments before they took `SAM2Options`
(commit 5541a47, e.g. ``SAM2Propagator("sam2.1_hiera_s", None, "cpu", image_size=128,
stuff="class", random_weights=True).settings``): label stores and loop states record them in
``run.json`` and compare them to resume, so they stay key for key and in the same order. The
checkpoint's sha256 is that of the test's file (``SHA`` below), whose bytes depend on torch's
random initialisation. SAM 2 runs with random weights (on CUDA ``autocast`` would be ``bfloat16``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from frugalseg.active.objects.engines import SAM2LoopEngine, get_loop_engine
from frugalseg.active.objects.tools.click_models import SAM2ClickOptions, SAM2Clicks, get_click_model
from frugalseg.autolabel.engines import get_propagator
from frugalseg.autolabel.sam2_loading import SAM2Options, load_sam2
from frugalseg.autolabel.sam2_propagate import SAM2PropagationOptions, SAM2Propagator
from frugalseg.errors import ConfigError
from frugalseg.options import flatten

RANDOM = {"random_weights": True, "device": "cpu"}


def _engine(config: str, checkpoint: str | None, sha: str | None, size: int, stuff: str) -> dict[str, Any]:
    return {"config": config, "checkpoint": checkpoint, "checkpoint_sha256": sha, "image_size": size,
            "stuff": stuff, "autocast": None}  # fmt: skip


def _clicks(config: str, checkpoint: str | None, sha: str | None, size: int, start: str) -> dict[str, Any]:
    return {"config": config, "checkpoint": checkpoint, "checkpoint_sha256": sha, "image_size": size,
            "start": start}  # fmt: skip


DEFAULT_ENGINE = _engine("sam2.1_hiera_t", None, None, 1024, "components")
DEFAULT_CLICKS = _clicks("sam2.1_hiera_t", None, None, 1024, "mask")


def _same(settings: dict[str, Any], recorded: dict[str, Any], sha: str | None = None) -> None:
    """``settings`` equal ``recorded`` key for key and in order (``SHA``: the checkpoint's sha256)."""
    expected = {k: sha if v == "SHA" else v for k, v in recorded.items()}
    assert json.dumps(settings) == json.dumps(expected)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sam2.1_hiera_t checkpoint of random weights, in the official layout."""
    torch.manual_seed(0)
    model = load_sam2(SAM2Options(image_size=64, **RANDOM), "video", needed_by="the test")
    path = tmp_path_factory.mktemp("sam2") / "tiny_random.pt"
    torch.save({"model": {k: v.half() for k, v in model.predictor.state_dict().items()}}, path)
    return path


def test_the_default_settings_are_those_the_members_of_flat_arguments_recorded() -> None:
    options = SAM2Options(**RANDOM)
    _same(SAM2Propagator(options).settings, DEFAULT_ENGINE)
    _same(get_loop_engine("sam2", **RANDOM).settings, DEFAULT_ENGINE)
    _same(SAM2Clicks(options).settings, DEFAULT_CLICKS)
    _same(get_click_model("sam2", **RANDOM).settings, DEFAULT_CLICKS)


def test_other_settings_are_those_the_members_of_flat_arguments_recorded() -> None:
    options = SAM2Options(config="sam2.1_hiera_s", image_size=128, **RANDOM)
    engine = SAM2Propagator(options, stuff="class", offload_state_to_cpu=True, merge_chunk=4)
    _same(engine.settings, _engine("sam2.1_hiera_s", None, None, 128, "class"))
    assert (engine.offload_state_to_cpu, engine.merge_chunk) == (True, 4)
    loop = get_loop_engine("sam2", config="sam2.1_hiera_s", image_size=128, **RANDOM)
    _same(loop.settings, _engine("sam2.1_hiera_s", None, None, 128, "components"))
    clicks = get_click_model("sam2", config="sam2.1_hiera_s", image_size=128, start="fit", **RANDOM)
    _same(clicks.settings, _clicks("sam2.1_hiera_s", None, None, 128, "fit"))


def test_a_checkpoints_settings_are_those_the_members_of_flat_arguments_recorded(checkpoint: Path) -> None:
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    options = SAM2Options(checkpoint=str(checkpoint), image_size=64, device="cpu")
    recorded = _engine("sam2.1_hiera_t", "tiny_random.pt", "SHA", 64, "components")
    _same(SAM2Propagator(options).settings, recorded, sha)
    anchor = get_propagator("sam2", **flatten(options), stuff="class")
    _same(anchor.settings, {**recorded, "stuff": "class"}, sha)
    flat = {"checkpoint": str(checkpoint), "image_size": 64, "device": "cpu"}
    _same(get_loop_engine("sam2", **flat).settings, recorded, sha)
    clicks = get_click_model("sam2", **flat, start="fit")
    _same(clicks.settings, _clicks("sam2.1_hiera_t", "tiny_random.pt", "SHA", 64, "fit"), sha)


def test_the_registries_build_the_members_from_one_options_object() -> None:
    """The click model's options are SAM 2's and ``start``, the propagation engine's SAM 2's, ``stuff`` and
    ``offload_state_to_cpu``; the loop engine's SAM 2's alone."""
    given = SAM2ClickOptions(config="sam2.1_hiera_s", image_size=128, start="fit", **RANDOM)
    assert given.sam2_options() == SAM2Options(config="sam2.1_hiera_s", image_size=128, **RANDOM)
    clicks = SAM2Clicks.from_options(given)
    assert clicks.start == "fit" and clicks.model.config == "sam2.1_hiera_s"
    engine = SAM2Propagator.from_options(SAM2PropagationOptions(image_size=64, stuff="class", **RANDOM))
    assert engine.options == SAM2Options(image_size=64, **RANDOM) and engine.stuff == "class"
    loop = SAM2LoopEngine.from_options(SAM2Options(image_size=64, **RANDOM))
    assert loop.tracker.options == SAM2Options(image_size=64, **RANDOM)


@pytest.mark.parametrize(
    ("build", "member"),
    [(SAM2Propagator, "engine"), (SAM2LoopEngine, "engine"), (SAM2Clicks, "click model")],
)
def test_every_member_checks_its_options_in_the_same_place(build: Any, member: str) -> None:
    needs = rf"sam2_checkpoint: the sam2 {member} needs a SAM 2 checkpoint file \(--sam2-checkpoint FILE\)"
    with pytest.raises(ConfigError, match=needs):
        build()
    with pytest.raises(ConfigError, match="sam2_config: unknown SAM 2 config 'sam2_hiera_t'"):
        build(SAM2Options(config="sam2_hiera_t", **RANDOM))
    with pytest.raises(ConfigError, match="sam2_image_size: must be a positive multiple of 64, got 100"):
        build(SAM2Options(image_size=100, **RANDOM))


@pytest.mark.parametrize("command", ["boxes", "refine-coarse"])
def test_the_image_commands_check_the_input_size_before_reading_a_model(
    command: str, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--sam2-image-size 100`` had gone on to SAM 2's own error (a tensor of 25 against 24), exit 1."""
    from frugalseg.cli import main

    root = shared_data / "cityscapes_tiny"
    args = ["label", command, "--format", "cityscapes", "--root", str(root), "--out", str(tmp_path / "s")]
    missing = str(tmp_path / "never_read.pt")
    assert main([*args, "--sam2-checkpoint", missing, "--sam2-image-size", "100"]) == 2
    assert "sam2_image_size: must be a positive multiple of 64, got 100" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
