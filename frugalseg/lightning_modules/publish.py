"""Publishing a training run's student from a Lightning checkpoint.

Its weights, card (recipe, label sources and their hours, metrics with the command that measured
them) and index entry.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
import yaml  # type: ignore[import-untyped]
from torch import Tensor

from frugalseg.datamodules.options import MOVED_OPTIONS
from frugalseg.errors import ConfigError, DataError, WeightsError
from frugalseg.zoo import (
    LoadedWeights,
    check_name,
    imagenet_normalization,
    palette_for,
    publish_target,
    read_torch_weights,
    resolve,
    sha256_file,
    torch_load,
    write_hub_folder,
    write_weights,
)

log = logging.getLogger(__name__)


def read_metrics(path: str | Path) -> dict[str, float]:
    """Metrics from a CSVLogger ``metrics.csv`` (last ``val/``/``test/`` value of each column) or JSON."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(path, "metrics file does not exist")
    if path.suffix == ".json":
        try:
            values = json.loads(path.read_bytes().decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise WeightsError(path, f"not valid JSON ({err})") from err
        if not isinstance(values, dict) or not all(_is_number(v) for v in values.values()):
            raise WeightsError(path, "expected a JSON object of metric name → number")
        return {str(k): float(v) for k, v in values.items()}
    metrics: dict[str, float] = {}
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise WeightsError(path, f"not a UTF-8 CSV file ({err.reason} at byte {err.start})") from err
    for line, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
        for key, value in row.items():
            if key and key.startswith(("val/", "test/")) and value not in ("", None):
                try:
                    metrics[key] = float(value)
                except (TypeError, ValueError) as err:
                    raise WeightsError(path, f"line {line}: {key} is {value!r}, not a number") from err
    if not metrics:
        raise WeightsError(path, "no val/ or test/ metric found")
    return dict(sorted(metrics.items()))


def _is_number(value: object) -> bool:
    """A finite JSON number (not a boolean, not text)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _checkpoint_metrics(checkpoint: dict[str, Any]) -> dict[str, float]:
    """The monitored validation score saved by ModelCheckpoint with this very checkpoint."""
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if (
            key.startswith("ModelCheckpoint")
            and state.get("current_score") is not None
            and state.get("monitor")
        ):
            return {state["monitor"]: round(float(state["current_score"]), 6)}
    return {}


def _check_metrics_source(metrics_file: Path, ckpt: Path, run_dir: Path, weights: LoadedWeights) -> None:
    """Refuse metrics that the logger folder holding them says were measured on other weights.

    A CSVLogger writes ``hparams.yaml`` (the student, its init weights) beside ``metrics.csv``, and
    LightningCLI ``config.yaml`` (``ckpt_path``). The training run's own metrics (in ``run_dir``) are
    taken as they are; another run's must have loaded weights equal to ``ckpt``'s student. A source
    that cannot be read any more (moved, offline) is a warning; no ``hparams.yaml``: nothing to check.
    """
    folder = metrics_file.resolve().parent
    hparams_file = folder / "hparams.yaml"
    if folder == run_dir.resolve() or not hparams_file.is_file():
        return
    hparams = _read_yaml(hparams_file)
    config_file = folder / "config.yaml"
    config = _read_yaml(config_file) if config_file.is_file() else {}
    advice = (
        f"give the metrics of `frugalseg validate --ckpt_path {ckpt}`, or --run-dir for its training run's"
    )
    if hparams.get("student") != weights.card["architecture"]:
        raise WeightsError(
            metrics_file,
            f"measured on a {hparams.get('student')} student ({hparams_file.name} beside it), but {ckpt} "
            f"holds a {weights.card['architecture']}; {advice}",
        )
    loaded = _loaded_weights(hparams, config)
    if loaded is None:
        raise WeightsError(
            metrics_file,
            "measured on a student with no trained weights loaded (no ckpt_path, init_weights or "
            f"student_args.weights beside it), not on {ckpt}; {advice}",
        )
    source, option = loaded
    try:
        measured = resolve(source)
    except WeightsError as err:
        log.warning("%s: cannot check that it was measured on %s (%s): %s", metrics_file, ckpt, option, err)
        return
    if not _same_tensors(measured.state_dict, weights.state_dict):
        raise WeightsError(
            metrics_file, f"measured on {source} ({option}), other weights than {ckpt}'s student; {advice}"
        )


def _loaded_weights(hparams: dict[str, Any], config: dict[str, Any]) -> tuple[str, str] | None:
    """The weights a run measured, with the option that names them; None when it loaded none.

    ``ckpt_path`` (LightningCLI's ``config.yaml``) replaces ``init_weights``, which replaces
    ``student_args.weights`` (``hparams.yaml``).
    """
    student_args = hparams.get("student_args") or {}
    options = (
        (config.get("ckpt_path"), "ckpt_path in config.yaml"),
        (hparams.get("init_weights"), "init_weights in hparams.yaml"),
        (student_args.get("weights"), "student_args.weights in hparams.yaml"),
    )
    return next(((str(source), option) for source, option in options if source is not None), None)


def _read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping (a logger's ``hparams.yaml``, LightningCLI's ``config.yaml``), or `WeightsError`."""
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise WeightsError(path, f"not valid YAML ({err})") from err
    if not isinstance(content, dict):
        raise WeightsError(path, "not a YAML mapping of options")
    return content


def _same_tensors(measured: dict[str, Tensor], published: dict[str, Tensor]) -> bool:
    """Equal keys and values, ``published`` cast to the dtypes of ``measured`` (published with --half)."""
    return measured.keys() == published.keys() and all(
        torch.equal(published[key].to(value.dtype), value) for key, value in measured.items()
    )


def _limited_validation(config: str | None) -> str:
    """``; on part of …`` when the run's config limited its validation (``trainer.limit_val_batches``)."""
    try:
        trainer = (yaml.safe_load(config) or {}).get("trainer") if config else None
    except yaml.YAMLError:
        return ""
    limit = trainer.get("limit_val_batches") if isinstance(trainer, dict) else None
    if limit is None or (isinstance(limit, float) and limit == 1.0):
        return ""
    return f"; on part of the validation split only (trainer.limit_val_batches {limit})"


def _run_folder(ckpt: Path, run_dir: Path | None) -> Path:
    """The run's log folder: ``run_dir``, else the checkpoint's ``../..`` (``version_0/checkpoints/``)."""
    return run_dir or ckpt.resolve().parent.parent


def _training_record(ckpt: Path, checkpoint: dict[str, Any], run_dir: Path | None) -> dict[str, Any]:
    """Recipe, label sources and annotation hours from the run's ``samples.json``, and the fit command."""
    data = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    run_dir = _run_folder(ckpt, run_dir)
    record: dict[str, Any] = {
        "data": data.get("root") or "synthetic streets (generated)",
        "format": data.get("format") or ("synthetic" if not data.get("root") else None),
        "recipe": _data_option(data, "recipe.name"),
        "budget": _data_option(data, "recipe.budget"),
        "seed": _data_option(data, "recipe.seed"),
        "crop_size": _data_option(data, "augment.crop_size"),
        "load_scale": _data_option(data, "loader.load_scale"),
        "epochs": int(checkpoint.get("epoch", -1)) + 1,
        "steps": int(checkpoint.get("global_step", 0)),
    }
    samples_path = run_dir / "samples.json"
    if samples_path.is_file():
        samples = _read_samples(samples_path)
        sources: dict[str, int] = {}
        for sample in samples["samples"]:
            sources[sample["kind"]] = sources.get(sample["kind"], 0) + 1
        record["recipe"] = samples["recipe"]
        record["label_sources"] = dict(sorted(sources.items()))
        record["annotation_cost"] = samples["cost"]
    else:
        record["note"] = f"{samples_path} was not found: the label sources and their cost are unknown"
        # a config that fixes checkpoint.dirpath keeps the logger's version folders elsewhere
        found = sorted(str(path.parent) for path in run_dir.glob("*/version_*/samples.json"))
        log.warning(
            "%s; give the run's log folder (the version_N of samples.json and config.yaml) as --run-dir%s",
            record["note"], f" (found under it: {', '.join(found[-3:])})" if found else "",
        )  # fmt: skip
    config = run_dir / "config.yaml"
    if config.is_file():
        record["config"] = config.read_text(encoding="utf-8")
        record["command"] = f"frugalseg fit --config {_display_path(config)}"
    return record


def _data_option(data: dict[str, Any], key: str) -> Any:
    """A checkpoint's datamodule option ``key`` (``recipe.budget``); earlier releases held it flat."""
    group, _, name = key.partition(".")
    if isinstance(data.get(group), dict):
        return data[group].get(name)
    flat = {new: old for old, new in MOVED_OPTIONS.items()}
    return data.get(flat[key])


def _read_samples(path: Path) -> dict[str, Any]:
    """A run's ``samples.json`` (recipe, cost, and samples each with a kind), or `DataError` naming it."""
    try:
        samples = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, f"not valid JSON ({err})") from err
    if not isinstance(samples, dict) or not {"recipe", "cost", "samples"} <= samples.keys():
        raise DataError(path, "not a run's samples.json (an object with recipe, cost and samples)")
    if not isinstance(samples["samples"], list) or not all(
        isinstance(sample, dict) and isinstance(sample.get("kind"), str) for sample in samples["samples"]
    ):
        raise DataError(path, "'samples' must be a list of objects each with a 'kind'")
    return samples


def _display_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies inside it (cards should not hold home folders)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def publish_checkpoint(
    ckpt: str | Path,
    name: str,
    out: str | Path | None = None,
    metrics_file: str | Path | None = None,
    metrics_command: str | None = None,
    run_dir: str | Path | None = None,
    dtype: torch.dtype | None = None,
    train_command: str | None = None,
    hub_folder: str | Path | None = None,
    repo_id: str | None = None,
) -> dict[str, Any]:
    """Publish the student of a Lightning checkpoint: safetensors + card + index entry.

    Metrics come from ``metrics_file`` (a CSVLogger ``metrics.csv`` or JSON, measured by
    ``metrics_command``; refused when the logger's files beside it name other weights,
    `_check_metrics_source`), else from the score ModelCheckpoint saved with the checkpoint.
    ``train_command`` is the command that trained it (default: ``fit`` on the run's saved config,
    whose text the card keeps). With ``hub_folder``, the files of a Hub model repository are written
    there instead (`write_hub_folder`; ``repo_id`` is the ``ORG/NAME`` its README loads it by). Without
    ``out``, into `~frugalseg.zoo.publish_target`'s folder (never the package's own unless named).
    """
    check_name(name)
    if hub_folder is None:
        publish_target(out)  # refused before the checkpoint is read
    if run_dir is not None and not Path(run_dir).is_dir():
        raise ConfigError("--run-dir", f"{run_dir}: run folder does not exist")
    ckpt = Path(ckpt)
    loaded = read_torch_weights(ckpt)
    if not loaded.card:
        raise WeightsError(ckpt, "not a checkpoint of `frugalseg fit` (no student hyper-parameters)")
    if "num_classes" not in loaded.card:
        raise WeightsError(
            ckpt,
            f"a checkpoint of `frugalseg vos fit` ({loaded.card['architecture']}, object masks): "
            "`zoo publish` publishes semantic students; use the .ckpt as it is (get_model(weights=…), "
            "--stm-weights)",
        )
    checkpoint = torch_load(ckpt)
    run = Path(run_dir) if run_dir else None
    training = _training_record(ckpt, checkpoint, run)
    if train_command:
        training["command"] = train_command
    if metrics_file is not None:
        if not metrics_command:
            raise ConfigError(
                "--metrics-command", "--metrics needs --metrics-command: the command that measured them"
            )
        metrics = {"values": read_metrics(metrics_file), "command": metrics_command}
        _check_metrics_source(Path(metrics_file), ckpt, _run_folder(ckpt, run), loaded)
    elif scores := _checkpoint_metrics(checkpoint):
        metrics = {
            "values": scores,
            "command": training.get("command", "frugalseg fit"),
            "note": f"validation during training, after epoch {training['epochs']}"
            + _limited_validation(training.get("config")),
        }
    else:
        metrics = {"values": {}, "note": "not measured: the checkpoint holds no validation score"}
    class_names = loaded.card["class_names"] or [f"class_{i}" for i in range(loaded.card["num_classes"])]
    card = {
        **loaded.card,
        "name": check_name(name),
        "class_names": class_names,
        "palette": palette_for(class_names),
        "ignore_index": int(checkpoint["hyper_parameters"].get("ignore_index", 255)),
        "normalization": imagenet_normalization(),
        "training": training,
        "metrics": metrics,
        "source": {"checkpoint": ckpt.name, "sha256": sha256_file(ckpt)},
    }
    if hub_folder is not None:
        return write_hub_folder(loaded.state_dict, card, hub_folder, dtype=dtype, repo_id=repo_id)
    return write_weights(loaded.state_dict, card, publish_target(out), dtype=dtype)
