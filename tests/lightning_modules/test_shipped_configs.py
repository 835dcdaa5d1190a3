"""Every YAML under configs/ is run the way its header says, shrunk to the tiny generated data sets.

Each config's header shows the command that runs it (``frugalseg fit --config configs/demo.yaml``,
``frugalseg vos fit --config …``, or ``--config configs/demo.yaml --config configs/<overlay>.yaml``
for an overlay). The test reads that command, so a new config is tested the day it is added and a
header whose command is wrong fails. Paper-sized students give way to small ones of the same
family, weights files of other runs are dropped, and the data are the tiny generated trees. An
encoder named the ecosystem's way (smp's ``encoder_weights: imagenet``) is read, offline, from a
Hugging Face cache that holds random weights under smp's own repository and revision.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from data.fake_davis import write_moving_squares as make_davis
from safetensors.torch import save as safetensors_bytes

from frugalseg.cli.lightning import run_lightning_cli, run_vos_cli

REPO = Path(__file__).resolve().parents[2]
#: The `frugalseg [vos] fit` configs: every YAML under configs/ but the `annotate` loop's option files
#: (tests/active/test_cli_annotate_semantic.py reads those).
CONFIGS = sorted(p for p in (REPO / "configs").rglob("*.yaml") if p.parent.name != "annotate")
#: ``frugalseg [vos] fit --config A [--config B …]`` in a config's header.
COMMAND = re.compile(r"frugalseg (vos )?fit((?: --config [\w./-]+)+)")
#: Paper-sized students and teachers → a small member of the same family, for a CPU run.
SMALL_MODELS = {
    "deeplabv3plus_r101": "deeplabv3plus_r18",
    "hrnetv2_w48": "hrnetv2_w18_small",
    "hrnetv2_w18": "hrnetv2_w18_small",
    "pspnet_r101_os8": "pspnet_r18_os8_small",
    "pspnet_r50_os8": "pspnet_r18_os8_small",
    "tdnet_td2_psp50": "tdnet_td2_psp18_small",
    "tdnet_td4_psp18": "tdnet_td4_psp18_small",
    "tmanet_r50": "tmanet_r18",
    "stm_r50": "stm_r18",
}

#: The smp encoder of each student a shrunk config trains.
SMP_ENCODERS = {"deeplabv3plus_r18": "resnet18", "deeplabv3plus_mbv2": "mobilenet_v2"}


def _name(config: Path) -> str:
    return config.relative_to(REPO / "configs").as_posix()


def header_command(config: Path) -> tuple[bool, list[Path]]:
    """(whether it is a ``vos`` command, the config files in order) of the command in the header."""
    header = "\n".join(
        line for line in config.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    )
    for match in COMMAND.finditer(" ".join(header.replace("#", " ").split())):
        files = [REPO / word for word in match.group(2).split()[1::2]]
        if config in [file.resolve() for file in files] or config in files:
            return bool(match.group(1)), files
    raise AssertionError(
        f"{_name(config)}: the header shows no `frugalseg [vos] fit --config …` that runs it"
    )


def _merged(files: list[Path]) -> dict[str, Any]:
    """The configs read in order, later files overriding earlier ones key by key."""

    def merge(base: dict, extra: dict) -> dict:
        out = dict(base)
        for key, value in extra.items():
            both = isinstance(value, dict) and isinstance(out.get(key), dict)
            out[key] = merge(out[key], value) if both else value
        return out

    merged: dict[str, Any] = {}
    for file in files:
        merged = merge(merged, yaml.safe_load(file.read_text(encoding="utf-8")) or {})
    return merged


def _model_overrides(model: dict[str, Any]) -> list[str]:
    """Small models for paper-sized ones, and no weights files of other runs."""
    prefix = "--model.init_args." if "init_args" in model else "--model."
    args = model.get("init_args", model)
    overrides = []
    for key in ("student", "teacher"):
        if args.get(key) in SMALL_MODELS:
            overrides += [prefix + key, SMALL_MODELS[args[key]]]
    student_args = args.get("student_args") or {}
    if args.get("student") in SMALL_MODELS and "backbone_weights" in student_args:
        # a small member's narrow backbone takes no ImageNet weights: random ones, as its try-out
        kept = {k: v for k, v in student_args.items() if k != "backbone_weights"}
        overrides += [prefix + "student_args", json.dumps(kept)]
    for key, value in args.items():
        if key.endswith("weights") and value is not None:
            overrides += [prefix + key, "null"]
    return overrides


def cache_encoder_weights(hub_cache: Any, files: list[Path]) -> str | None:
    """Random weights in the Hub cache for the smp tag (``imagenet``) the shrunk student's encoder names.

    They go under smp's own repository and pinned revision, as the Hub holds them; returns that
    repository (None when the config names no tag).
    """
    import segmentation_models_pytorch as smp

    model = _merged(files).get("model", {})
    args = model.get("init_args", model)
    tag = (args.get("student_args") or {}).get("encoder_weights")
    if tag is None:
        return None
    encoder = SMP_ENCODERS[SMALL_MODELS.get(args["student"], args["student"])]
    settings = smp.encoders.encoders[encoder]["pretrained_settings"][tag]
    torch.manual_seed(0)
    state = smp.encoders.get_encoder(encoder).state_dict()
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    files_ = {"model.safetensors": safetensors_bytes(half), "config.json": b"{}"}
    hub_cache.add(settings["repo_id"], files_, revision=settings["revision"], commit=settings["revision"])
    return settings["repo_id"]


def shrunk_command(config: Path, out: Path, streets: Path, davis: Path) -> tuple[bool, list[str]]:
    """The header's command on the tiny data, CPU, every file under ``out``."""
    vos, files = header_command(config)
    merged = _merged(files)
    args = [word for file in files for word in ("--config", str(file))]
    args += _model_overrides(merged.get("model", {}))
    args += [
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "1",
        "--trainer.enable_progress_bar",
        "false",
    ]
    args += ["--trainer.default_root_dir", str(out), "--checkpoint.dirpath", str(out / "checkpoints")]
    if "logger" in merged.get("trainer", {}):
        args += ["--trainer.logger.init_args.save_dir", str(out)]
    if vos:
        data = {"num_workers": 0, "load_scale": 1.0, "root": davis, "crop_size": "[32,32]"}
        data |= {"train_split": "train", "val_split": "val"}
    else:
        data = {"loader.num_workers": 0, "loader.load_scale": 1.0, "root": streets}
        data |= {"augment.crop_size": "[64,128]", "loader.batch_size": 2}
    for key, value in data.items():
        args += [f"--data.{key}", str(value)]
    return vos, args


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> Path:
    return make_davis(tmp_path_factory.mktemp("configs") / "davis")


def test_configs_are_found():
    names = [_name(config) for config in CONFIGS]
    assert (
        "demo.yaml" in names and "stm_davis.yaml" in names and "published/streets_hrnetv2_w18s.yaml" in names
    )


def test_configs_are_ascii_for_a_locale_that_is_not_utf_8():
    """jsonargparse reads ``--config`` files in the locale's encoding: a shipped config reads under any."""
    for config in sorted((REPO / "configs").rglob("*.yaml")):
        text = config.read_bytes().decode("utf-8")
        odd = sorted({char for char in text if not char.isascii()})
        assert not odd, f"{_name(config)} has characters beyond ASCII: {''.join(odd)}"


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=_name)
def test_config_trains_one_step_on_tiny_data(config, tiny_streets, davis, tmp_path, monkeypatch, hub_cache):
    """The header's command parses and trains one step; the shared callbacks come from the command
    line, not from the config."""
    assert "callbacks" not in yaml.safe_load(config.read_text(encoding="utf-8")).get("trainer", {}), (
        "the CLI adds them"
    )
    monkeypatch.chdir(tmp_path)  # relative paths of a config (runs/…) land here
    vos, args = shrunk_command(config, tmp_path / "run", tiny_streets, davis)
    cache_encoder_weights(hub_cache, header_command(config)[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_vos_cli if vos else run_lightning_cli
        cli = run(["fit", *args, "--trainer.fast_dev_run", "true"])
    assert cli.config.fit.checkpoint.save_last is True
    metrics = cli.trainer.callback_metrics
    monitor = cli.config.fit.checkpoint.monitor  # a fast_dev_run has no checkpoint callback
    for name in ("train/loss", monitor):
        assert name in metrics, f"{_name(config)}: {name} missing from {sorted(metrics)}"
        assert math.isfinite(float(metrics[name])), name
