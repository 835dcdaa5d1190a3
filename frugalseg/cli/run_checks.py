"""Checks of a Lightning command line before it runs, each refusal in one line naming its option.

`refuse_other_task_config` reads the ``--config`` files before parsing; `check_parsed` the parsed config:
``--weights_only false``, a GPU trainer without a GPU, local weights files that do not exist, and a
``--ckpt_path`` file (read with ``weights_only=True``): of the other task's student, of another student than
the one asked for, no Lightning checkpoint, or one whose model options replace the config's (warned of).
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from frugalseg.cli.command_line import config_paths, config_text, option_values
from frugalseg.cli.options import gpu_missing
from frugalseg.errors import ConfigError, WeightsError
from frugalseg.options import plain_values

#: The keys of a Lightning checkpoint (`check_lightning_checkpoint`).
_CHECKPOINT_KEYS = ("pytorch-lightning_version", "state_dict")


def model_options(config: Any) -> Any:
    """The model's options of a parsed config (its ``init_args`` where it names a class), or None."""
    model = config.get("model")
    return getattr(model, "init_args", model)


def _stored_options(checkpoint: Any) -> dict[str, Any]:
    """The model's options a checkpoint holds (its ``hyper_parameters``; none in another file)."""
    return (checkpoint.get("hyper_parameters") or {}) if isinstance(checkpoint, dict) else {}


def check_parsed(
    config: Any, subcommand: str, task: str, task_class: Callable[..., Any], words: Sequence[str] = ()
) -> None:
    """Check the parsed ``config`` of ``subcommand`` before LightningCLI reads its ``--ckpt_path``.

    LightningCLI reads the checkpoint's hyper-parameters right after parsing, and would end in a traceback.

    Args:
        config: the subcommand's parsed config.
        subcommand: ``fit``, ``validate``, …
        task: the zoo task of the students the command line trains (``semantic``, ``vos``).
        task_class: the LightningModule class the config trains.
        words: the command line (its ``--config`` files, its options).
    """
    from frugalseg.zoo import torch_load

    refuse_unpickling(config)
    _refuse_missing_gpu(config)
    _refuse_data_options_of_the_model(config, task_class)
    path = config.get("ckpt_path")  # a missing file is said before the seed's and devices' lines
    if path and not Path(path).exists() and _names_a_local_file(str(path)):
        raise ConfigError("--ckpt_path", f"{path}: checkpoint file does not exist")
    resumed = path and (Path(path).is_file() or path in ("last", "best"))  # checked again once found
    if subcommand == "fit" and not resumed:  # a resume takes the checkpoint's options
        _refuse_missing_weights(config)
    if path and Path(path).is_file():
        checkpoint = torch_load(path)  # refuses, in frugalseg's words, a file that would need unpickling
        _refuse_other_task(path, checkpoint, subcommand, task)
        _refuse_other_module(config, path, checkpoint)
        _refuse_other_student(config, path, checkpoint, task_class, words)
        check_lightning_checkpoint(path, checkpoint)
        if subcommand == "fit":
            _note_replaced_options(config, path, checkpoint)


#: The ``--ckpt_path`` values that name no file (Lightning's; ``hpc`` and ``registry`` are refused).
CHECKPOINT_WORDS = ("last", "best", "hpc", "registry")
#: The URL schemes of a ``--ckpt_path`` to download.
CHECKPOINT_URL_SCHEMES = ("http", "https", "file")


def _names_a_local_file(path: str) -> bool:
    """Whether a ``--ckpt_path`` value names a local file: not ``last``, ``best``, … nor a URL."""
    return path not in CHECKPOINT_WORDS and urllib.parse.urlparse(path).scheme not in CHECKPOINT_URL_SCHEMES


def refuse_other_task_config(words: Sequence[str], task: str, subcommand: str | None) -> None:
    """Refuse a ``--config`` file whose ``model.student`` is of the other task (``stm_davis`` to `fit`).

    Its data options, the other datamodule's, had been refused as moved ones, or as unknown. So is a
    config of ``annotate semantic`` (``hvsa_paper``): jsonargparse named its first key as unknown.
    """
    for path in config_paths(words):
        if Path(path).is_file() and _is_annotate_semantic_config(path):
            raise ConfigError(
                "--config",
                f"{path} is a config of the semantic annotation loop: run it with "
                f"`frugalseg annotate semantic --config {path}`",
            )
    for path, student in _config_students(words):
        other = _other_task(student, task)
        if other is not None:
            theirs, command = other
            if theirs == "vos" and subcommand == "predict":
                raise ConfigError("--config", _vos_predict_refusal(f"{path} trains", student, "CKPT"))
            raise ConfigError(
                "--config",
                f"{path} trains a {theirs} student ({student}), and this command runs {task} ones: "
                f"run it with `{command} {subcommand or 'fit'} --config {path}`",
            )


def _is_annotate_semantic_config(path: str) -> bool:
    """Whether the YAML file at ``path`` holds options of ``annotate semantic`` and no Lightning section."""
    loaded = yaml.safe_load(config_text("--config", path))
    return (
        isinstance(loaded, dict)
        and "granularities" in loaded
        and not {"model", "trainer", "data"} & set(loaded)
    )


def _config_students(words: Sequence[str]) -> list[tuple[str, Any]]:
    """Each ``--config`` file of ``words`` that names ``model.student``, and the student it names."""
    named = []
    for path in config_paths(words):
        if not Path(path).is_file():
            continue
        model = (yaml.safe_load(config_text("--config", path)) or {}).get("model")
        model = model.get("init_args", model) if isinstance(model, dict) else {}
        if isinstance(model, dict) and "student" in model:
            named.append((path, model["student"]))
    return named


def _other_task(student: Any, task: str) -> tuple[str, str] | None:
    """The task and command of a registered ``student`` of another task than ``task``, or None."""
    from frugalseg.zoo import list_models, model_config

    if not isinstance(student, str) or student not in list_models():
        return None
    theirs = model_config(student).task
    return None if theirs == task else (theirs, "frugalseg vos" if theirs == "vos" else "frugalseg")


def _refuse_other_task(path: str, checkpoint: Any, subcommand: str, task: str) -> None:
    """Refuse a checkpoint of the other task's student (STM's for `fit`, a semantic one for `vos`).

    LightningCLI parses its hyper-parameters as this task's model options and ended in its
    ``does not accept option 'model.dict_kwargs…'`` and ``Parsing of ckpt_path hyperparameters failed``.
    """
    stored = _stored_options(checkpoint)
    student = stored.get("student")
    other = _other_task(student, task)
    if other is None:
        return
    theirs, command = other
    if theirs == "vos" and subcommand == "predict":
        raise ConfigError("--ckpt_path", _vos_predict_refusal(f"{path} holds", student, path))
    raise ConfigError(
        "--ckpt_path",
        f"{path} holds a {theirs} student ({student}), and this command runs {task} ones: "
        f"use it with `{command} {subcommand}`",
    )


def _vos_predict_refusal(what: str, student: Any, weights: str) -> str:
    """Why `predict` runs no vos student (STM needs an object's mask on a frame), and what does."""
    return (
        f"{what} a vos student ({student}), which segments a video from an object's mask on one of its "
        "frames, and `predict` takes frames alone: give that mask to `frugalseg annotate add --state DIR "
        "--format FORMAT --root ROOT --video VIDEO --frame N --mask FILE --engine stm --stm-model "
        f"{student} --stm-weights {weights}`, then `annotate export`"
    )


def _refuse_other_module(config: Any, path: str, checkpoint: Any) -> None:
    """Refuse a checkpoint of another LightningModule than the config's (a distillation run's, to ``fit``).

    LightningCLI builds the checkpoint's class from its ``_class_path``: the config's demo TMANet run had
    become TDNet's distillation with a warning of some options alone, then stopped at a data option.
    """
    stored = _stored_options(checkpoint).get("_class_path")
    model = config.get("model")
    chosen = getattr(model, "class_path", None)
    if not isinstance(stored, str) or not isinstance(chosen, str) or stored == chosen:
        return
    student = _stored_options(checkpoint).get("student")
    holds = f"{stored.rsplit('.', 1)[-1]} run" + (f" ({student})" if student else "")
    raise ConfigError(
        "--ckpt_path",
        f"{path} holds a {holds}, and the config trains a {chosen.rsplit('.', 1)[-1]}: resume it with the "
        "config it was made with, or start this run from its weights with --model.init_weights",
    )


def _refuse_other_student(
    config: Any, path: str, checkpoint: Any, task_class: Callable[..., Any], words: Sequence[str]
) -> None:
    """Refuse a checkpoint of another student than the one the command line (``words``) chose.

    LightningCLI builds the model from the checkpoint's hyper-parameters, so without this
    ``--model.student pspnet_r18 --ckpt_path tmanet.ckpt`` would train TMANet and say nothing.
    A student left at the task's default, named by no ``--config`` file nor option, is not a choice: the
    checkpoint's is used, and a warning says so.
    """
    stored, options = _stored_options(checkpoint), model_options(config)
    chosen = getattr(options, "student", None) if options is not None else None
    if "student" not in stored or chosen is None or chosen == stored["student"]:
        return
    default = inspect.signature(task_class).parameters.get("student")
    options = ("--model.student", "--model.init_args.student")
    named = _config_students(words) or any(option_values(words, option) for option in options)
    if default is not None and chosen == default.default and not named:
        logging.getLogger("frugalseg").warning(
            f"the checkpoint {path} holds a {stored['student']!r} student, which is used: no --config or "
            f"option names a student, and {chosen!r} is the default (--model.student {stored['student']} "
            "says so)"
        )
        _take_stored_frames(config, stored, words)
        return
    raise ConfigError(
        "--model.student",
        f"{chosen!r} was asked for, but the checkpoint {path} holds a {stored['student']!r} student: "
        f"give --model.student {stored['student']} to use it, or another checkpoint",
    )


def _take_stored_frames(config: Any, stored: dict[str, Any], words: Sequence[str]) -> None:
    """Give the data the clip length of the checkpoint whose student is used, where nothing names one.

    The student came from the checkpoint and the clip length from the default (TMANet's 3): an image
    student's checkpoint was refused for ``num_frames=3`` until ``--data.num_frames 1`` was added.
    """
    data, frames = config.get("data"), stored.get("num_frames")
    if not isinstance(frames, int) or data is None or "num_frames" not in data:
        return
    if option_values(words, "--data.num_frames") or config_paths(words):
        return
    data["num_frames"] = frames


#: Model options the data set gives the model when it is built, over the checkpoint's (its class count is
#: checked against the checkpoint's apart: `TaskCLI._refuse_other_shape`).
DATA_LINKED_OPTIONS = ("num_classes", "ignore_index", "class_names", "num_frames", "max_objects")


def _note_replaced_options(config: Any, path: str, checkpoint: Any) -> None:
    """Warn of the model options a resumed checkpoint's own replace (LightningCLI's ``_parse_ckpt_path``).

    TDNet's stage 2 given stage 1's checkpoint as ``--ckpt_path`` trained on at stage 1's lr (0.01, not
    the config's 1e-4), and nothing said so.
    """
    stored, options = _stored_options(checkpoint), model_options(config)
    given = options.as_dict() if hasattr(options, "as_dict") else {}
    changed = [
        f"{key} {given[key]!r} → {stored[key]!r}"
        for key in sorted(set(given) & set(stored) - {"student", "init_weights"} - set(DATA_LINKED_OPTIONS))
        if given[key] is not None  # not chosen: the default
        and _comparable(key, given[key]) != _comparable(key, stored[key])
    ]
    if changed:
        logging.getLogger("frugalseg").warning(
            f"--ckpt_path {path} resumes its run, whose model options replace the config's: "
            f"{', '.join(changed)}; to start a new run from its weights instead, give it as "
            "--model.init_weights"
        )


def note_other_data(config: Any, path: str, checkpoint: Any) -> None:
    """Warn of the data options in which a resume differs from its checkpoint's run.

    LightningCLI restores a checkpoint's model options, not its data's: ``fit --ckpt_path last.ckpt``
    without the run's ``--config`` trained on the defaults' data (another recipe budget, batch size and
    data set), and nothing said so. The run's ``config.yaml``, where it lies beside its checkpoints, is named.
    """
    stored = checkpoint.get("datamodule_hyper_parameters") if isinstance(checkpoint, dict) else None
    data = config.get("data")
    given = data.as_dict() if hasattr(data, "as_dict") else None
    if not isinstance(stored, dict) or not isinstance(given, dict):
        return
    from frugalseg.autolabel.store import differences

    changed = [
        f"{key} {before!r} → {now!r}"
        for key, before, now in differences(_data_values(stored), _data_values(_described_labels(given)))
        if not key.startswith(("_", *HOW_DATA_IS_READ))
        and now is not None  # not chosen: found from the data (its format), or the default
    ]
    if not changed:
        return
    run_config = Path(path).parent.parent / "config.yaml"
    source = f"give its --config {run_config}" if run_config.is_file() else "give its config"
    logging.getLogger("frugalseg").warning(
        f"--ckpt_path {path} resumes a run whose data options differ from this command's: "
        f"{', '.join(changed)}; this run trains on the command's ({source} to train on as it did)"
    )


#: Data options that change how the data is read or predicted, not what a run trains on.
HOW_DATA_IS_READ = (
    "loader.num_workers", "loader.check_memory", "loader.cache_", "loader.val_batch_size", "predict.",
)  # fmt: skip


def _described_labels(given: dict[str, Any]) -> dict[str, Any]:
    """``given`` data options with each label store folder as a checkpoint describes its source.

    A run keeps ``data.labels.pseudo DIR`` as the source it made of it (`LabelSource.describe`), which
    the same folder given again must equal.
    """
    from frugalseg.autolabel.sources import StoredLabels
    from frugalseg.data.sources import SOURCE_OPTIONS

    labels = given.get("labels")
    if not isinstance(labels, dict):
        return given
    described = {
        option: StoredLabels(labels[option], kind).describe()
        if isinstance(labels.get(option), str)
        else labels.get(option)
        for kind, option in SOURCE_OPTIONS.items()
        if option in labels
    }
    return {**given, "labels": {**labels, **described}}


def _data_values(options: dict[str, Any]) -> Any:
    """Data options as JSON gives them back (tuples as lists), data set folders absolute (as relative)."""
    values = json.loads(json.dumps(plain_values(options), default=str))
    for key in ("root", "masks"):
        if isinstance(values.get(key), str):
            values[key] = str(Path(values[key]).absolute())
    return values


def _comparable(key: str, value: Any) -> str:
    """An option's value as JSON, ``student_args`` without the starting weights a checkpoint drops."""
    from frugalseg.lightning_modules.segmentation import INIT_ONLY_STUDENT_ARGS

    if key == "student_args" and isinstance(value, dict):
        value = {name: item for name, item in value.items() if name not in INIT_ONLY_STUDENT_ARGS}
    return json.dumps(plain_values(value), sort_keys=True, default=str)


#: The model's options the data set gives it (`frugalseg.cli.lightning.FrugalsegCLI` links them).
DATA_GIVES_THE_MODEL = ("num_classes", "ignore_index", "class_names")


def _refuse_data_options_of_the_model(config: Any, task_class: Callable[..., Any]) -> None:
    """Refuse a model option the data set gives the model, set to other than its default.

    The link from the data replaces it when the model is built, so ``--model.num_classes 5`` trained
    on the data set's 19 classes and said nothing. A subclass that passes them on (``**kwargs``, as
    `DistillationModule`) has its base class's defaults.
    """
    options = model_options(config)
    for name in DATA_GIVES_THE_MODEL:
        default = _default(task_class, name)
        value = getattr(options, name, default) if options is not None else default
        if value is not inspect.Parameter.empty and value != default:
            raise ConfigError(
                f"model.{name}",
                f"{value!r} would not be used: the model takes its {name} from the data set's classes; "
                "leave it out",
            )


def _default(task_class: Callable[..., Any], name: str) -> Any:
    """The default of argument ``name`` of ``task_class`` or of the first base class that takes it."""
    for cls in getattr(task_class, "__mro__", (task_class,)):
        parameter = inspect.signature(cls).parameters.get(name) if callable(cls) else None
        if parameter is not None:
            return parameter.default
    return inspect.Parameter.empty


def _refuse_missing_weights(config: Any) -> None:
    """Refuse a local ``init_weights`` or ``teacher_weights`` file that does not exist, naming its option.

    The teacher's had been read after the run made its click labels (18 s on CamVid), and the error
    named the file alone.
    """
    from frugalseg.zoo import missing_weights_file

    options = model_options(config)
    for name in ("init_weights", "teacher_weights"):
        value = getattr(options, name, None) if options is not None else None
        if isinstance(value, str) and missing_weights_file(value):
            raise ConfigError(
                f"model.{name}",
                f"{value}: weights file does not exist (train that run first, or give its path)",
            )


def refuse_unpickling(config: Any) -> None:
    """Refuse ``--weights_only false``: frugalseg never unpickles a checkpoint."""
    if config.get("weights_only") is False:
        raise ConfigError(
            "--weights_only",
            "frugalseg reads checkpoints with weights_only=True only: unpickling a file can run code "
            "from it. To use a checkpoint you trust that holds other objects, load it yourself with "
            "torch.load(path, weights_only=False) and save its 'state_dict' alone",
        )


def _refuse_missing_gpu(config: Any) -> None:
    """Refuse ``--trainer.accelerator gpu`` on a machine without a CUDA GPU before the model is built.

    Lightning refuses it when the trainer is made, after the model: TDNet's teacher had first looked up
    its ResNet-50 weights on the Hub for 23 s.
    """
    trainer = config.get("trainer")
    accelerator = str(getattr(trainer, "accelerator", "auto") or "auto")
    if gpu_missing(accelerator):
        raise ConfigError(
            "--trainer",
            f"accelerator {accelerator!r}, but this machine has no CUDA GPU torch can use: give "
            "--trainer.accelerator cpu (or auto)",
        )


def check_lightning_checkpoint(path: str | Path, checkpoint: Any) -> None:
    """Raise `WeightsError` when the torch file ``path`` holding ``checkpoint`` is no Lightning checkpoint.

    Lightning would end in ``KeyError: 'pytorch-lightning_version'`` on a bare state dict or a tensor.
    """
    lacks = [key for key in _CHECKPOINT_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if lacks and Path(path).suffix == ".safetensors":
        raise WeightsError(
            path,
            "published weights, not a Lightning checkpoint: --ckpt_path takes a checkpoint that "
            "`frugalseg fit` or `frugalseg vos fit` wrote; weights go to the student (README: 'Pretrained "
            "students')",
        )
    if lacks:
        raise WeightsError(
            path,
            f"a torch file, but not a Lightning checkpoint (it lacks {', '.join(map(repr, lacks))}): "
            "give a checkpoint that `frugalseg fit` wrote",
        )


def note_unsaved_runs(chosen: Path, current: str | None) -> None:
    """Warn when run folders newer than ``chosen``'s hold no ``last.ckpt``: ``--ckpt_path last`` skips them.

    A run stopped before its first checkpoint leaves its version folder without one, and ``last`` then
    resumes an earlier run, which nothing said. ``current``: this run's own folder (the logger's).
    """
    run = chosen.parent.parent
    number = _version_number(run)
    if number is None:
        return
    here = Path(current).resolve() if current is not None else None
    unsaved = sorted(
        (folder for folder in run.parent.glob("version_*") if (_version_number(folder) or -1) > number),
        key=lambda folder: _version_number(folder) or 0,
    )
    unsaved = [
        folder
        for folder in unsaved
        if folder.resolve() != here
        and not any((folder / "checkpoints").glob("last*.ckpt"))
        and not _evaluation_run(folder)
    ]
    if unsaved:
        logging.getLogger("frugalseg").warning(
            f"--ckpt_path last resumes {chosen}, of {run.name}: the newer "
            f"{', '.join(folder.name for folder in unsaved)} hold no last.ckpt (stopped before their first "
            "checkpoint); give the checkpoint's path to resume another, or leave --ckpt_path out to start "
            "afresh"
        )


def _evaluation_run(folder: Path) -> bool:
    """Whether a version folder is a ``validate``, ``test`` or ``predict`` run's (no checkpoint by design).

    Its ``config.yaml`` (LightningCLI's) holds the subcommand's own arguments: ``verbose`` (validate,
    test) or ``return_predictions`` (predict), which ``fit`` has not; without one, a ``metrics.csv`` of
    ``val/`` and ``test/`` columns alone tells.
    """
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        config = None
    if isinstance(config, dict):
        return "verbose" in config or "return_predictions" in config
    try:
        with (folder / "metrics.csv").open(encoding="utf-8") as metrics:
            header = metrics.readline().strip().split(",")
    except (OSError, UnicodeDecodeError):
        return False
    logged = [column for column in header if column not in ("epoch", "step", "")]
    return bool(logged) and all(column.startswith(("val/", "test/")) for column in logged)


def _version_number(folder: Path) -> int | None:
    """N of a logger's ``version_N`` folder, else None."""
    name = folder.name
    return (
        int(name[len("version_") :])
        if name.startswith("version_") and name[len("version_") :].isdigit()
        else None
    )


def best_named(lasts: Sequence[Path]) -> Path:
    """The best checkpoint the ``last.ckpt`` files ``lasts`` name, by their callbacks' own monitor and mode.

    Each ``last.ckpt`` keeps its checkpoint callback's best path and score; a resume starts a new
    ``version_N`` whose callback forgets the earlier bests, so the best of them all wins among the files
    that still exist.
    Scores count under the newest ``last.ckpt``'s monitor alone, each by the mode its callback recorded: a
    ``validate`` monitoring ``val/mIoU`` had ranked a fit's lowest ``train/loss`` by ``max``.

    Raises:
        ConfigError: no ``last.ckpt`` names a best checkpoint that exists.
    """
    from frugalseg.zoo import torch_load

    found: list[tuple[int, Any, str, float, Path]] = []  # (last.ckpt's time, monitor, mode, score, best)
    for last in lasts:
        made = last.stat().st_mtime_ns
        for key, state in (torch_load(last).get("callbacks") or {}).items():
            path, score = state.get("best_model_path"), state.get("best_model_score")
            if key.startswith("ModelCheckpoint") and path and score is not None and Path(path).is_file():
                options = _callback_options(key)
                found.append(
                    (made, options.get("monitor"), options.get("mode", "max"), float(score), Path(path))
                )
    if not found:
        raise ConfigError(
            "--ckpt_path",
            f"'best' asked for, but no last.ckpt names a best checkpoint that exists "
            f"({', '.join(map(str, lasts))}): validation never ran, or its checkpoints were removed",
        )
    monitor = max(found, key=lambda entry: entry[0])[1]
    ranked = [
        (score if mode == "max" else -score, path) for _, on, mode, score, path in found if on == monitor
    ]
    return max(ranked, key=lambda scored: scored[0])[1]


def _callback_options(key: str) -> dict[str, Any]:
    """The options a checkpoint callback's state key records: ``ModelCheckpoint{'monitor': …, 'mode': …}``."""
    try:
        options = ast.literal_eval(key[key.index("{") :])
    except (ValueError, SyntaxError):
        return {}
    return options if isinstance(options, dict) else {}
