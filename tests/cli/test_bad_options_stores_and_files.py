"""Bad options, stores and data files: options out of range, labels aimed into the data set, damaged
stores and data files, YAML and URLs, zoo entries, clicks files — through the real command line.

Each case is run as `tests/cli/test_bad_inputs.py` runs its own: one clear line, the exit code,
and nothing half-written left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from data.fake_davis import write_davis
from data.test_check import bomb_png
from zoo.test_weights import _fake_run, _student

from cli.test_bad_inputs import CONFIG, Case, _copy, _fit, _folder, _propagate, _serve, check_case, data  # noqa: F401  (data: the fixture)
from cli.test_dispatch import ASCII_LOCALE
from frugalseg.data.formats import generate_synthetic_streets


def _checkpoint_of(tmp: Path, student: str) -> str:
    """A checkpoint whose hyper-parameters name ``student`` (LightningCLI builds its model from them)."""
    path = tmp / f"{student}.ckpt"
    torch.save({"hyper_parameters": {"student": student, "num_classes": 19}, "state_dict": {}}, path)
    return str(path)


def _lightning_checkpoint_of(tmp: Path, **hyper_parameters: object) -> str:
    """A Lightning checkpoint of a ``tmanet_r18`` student with these hyper-parameters (no weights)."""
    path = tmp / "other.ckpt"
    stored = {"student": "tmanet_r18", **hyper_parameters}
    torch.save({"pytorch-lightning_version": "2.6.6", "hyper_parameters": stored, "state_dict": {}}, path)
    return str(path)


def _clicks(root: Path | str, out: Path, *options: str) -> list[str]:
    return ["label", "clicks", "--format", "synthetic", "--root", str(root), "--out", str(out), *options]


OPTION_CASES = [
    Case(  # the format reader had said "split 'train' does not exist; splits found: none"
        "fit with the data set's layout forced to another",
        lambda t, d: _fit(t, "--data.root", str(d["streets"]), "--data.format", "camvid"),
        2,
        "splits found: none in the camvid layout; it looks like: synthetic, cityscapes (data.format)",
        lambda t: [t / "runs"],
    ),
    *(
        Case(  # the data's link replaced it: 19 classes trained, nothing said
            f"fit with {option} {value} {' '.join(model)}",
            lambda t, d, option=option, value=value, model=model: _fit(
                t, "--data.root", str(d["streets"]), *model, f"{option}={value}"
            ),
            2,
            f"{option[2:]}: {shown} would not be used: the model takes its {option[8:]} from the data set's "
            "classes; leave it out",
            lambda t: [t / "runs"],
        )
        for option, value, shown, model in [
            ("--model.num_classes", "5", "5", ()),
            ("--model.num_classes", "5", "5", ("--model", "frugalseg.lightning_modules.DistillationModule")),
            ("--model.ignore_index", "0", "0", ()),
            ("--model.class_names", "[a,b]", "['a', 'b']", ()),
        ]
    ),
    *(
        Case(
            f"fit with {option} {value}",
            lambda t, d, option=option, value=value: _fit(
                t, "--data.root", str(d["streets"]), f"{option}={value}"
            ),
            2,
            f"error: {key}: " if key.startswith("model.") else f'Parser key "{key}"',  # a class's: one line
            lambda t: [t / "runs"],
        )
        for option, value, key in [
            ("--data.loader.batch_size", "0", "data.loader.batch_size"),
            ("--data.loader.batch_size", "-2", "data.loader.batch_size"),
            ("--data.augment.crop_size", "[0,0]", "data.augment.crop_size"),
            ("--data.augment.crop_size", "[64,-8]", "data.augment.crop_size"),
            ("--model.lr", "-0.01", "model.lr"),
            ("--model.lr", "nan", "model.lr"),
            ("--model.lr", "inf", "model.lr"),
            ("--model.weight_decay", "-1e-4", "model.weight_decay"),
            ("--data.num_frames", "0", "data.num_frames"),
            ("--data.recipe.budget", "0", "data.recipe.budget"),
            ("--data.loader.num_workers", "-1", "data.loader.num_workers"),
            ("--data.loader.load_scale", "0", "data.loader.load_scale"),
            ("--data.augment.flip_prob", "1.5", "data.augment.flip_prob"),
            ("--data.augment.scale_range", "[0.5,nan]", "data.augment.scale_range"),
        ]
    ),
    Case(
        "fit with a crop larger than the frames",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--data.augment.crop_size",
            "[96,128]",
            "--data.augment.scale_range",
            "[0.5,1.0]",
            "--trainer.max_steps",
            "1",
        ),
        2,
        "data.augment.crop_size: a crop of 96×128 (height×width) is larger than the training frames, "
        "64×128 at their largest (frames 64×128",
        lambda t: [t / "runs"],
    ),
    *(
        Case(
            f"label clicks with {option} {value}",
            lambda t, d, option=option, value=value: _clicks(d["streets"], t / "out", f"{option}={value}"),
            2,
            f"argument {option}: {phrase}",
        )
        for option, value, phrase in [
            ("--radius", "nan", "must be a finite number, got 'nan'"),
            ("--radius", "inf", "must be a finite number, got 'inf'"),
            ("--radius", "-0.5", "must be at least 0, got -0.5"),
            ("--seed", "-1", "must be at least 0, got -1"),
            ("--seed", "1.5", "expected a whole number, got '1.5'"),
            ("--min-stuff-area", "0", "must be at least 1, got 0"),
            ("--devices", "abc", "expected a device count"),
            ("--devices", "0", "expected a device count"),
            ("--accelerator", "bogus", "invalid choice: 'bogus'"),
        ]
    ),
    *(
        Case(
            f"vos fit with {option}={value}",
            lambda t, d, option=option, value=value: [
                "vos",
                "fit",
                "--data.root",
                str(t / "davis"),
                f"{option}={value}",
                "--trainer.default_root_dir",
                str(t / "runs"),
            ],
            2,
            f'Parser key "{key}"',
            lambda t: [t / "runs"],
        )
        for option, value, key in [
            ("--data.clip_length", "0", "data.clip_length"),
            ("--data.batch_size", "-1", "data.batch_size"),
            ("--model.lr", "nan", "model.lr"),
        ]
    ),
    Case(
        "label propagate with --devices abc",
        lambda t, d: _propagate(str(d["streets"]), "--devices", "abc", "--out", str(t / "out")),
        2,
        "argument --devices: expected a device count (e.g. 4), -1 (all), auto, or comma-separated",
    ),
    Case(
        "label propagate with --accelerator bogus",
        lambda t, d: _propagate(
            str(d["streets"]), "--devices", "1", "--accelerator", "bogus", "--out", str(t / "o")
        ),
        2,
        "argument --accelerator: invalid choice: 'bogus'",
        lambda t: [t / "o"],
    ),
    Case(
        "annotate simulate with a budget of nan hours",
        lambda t, d: [
            "annotate",
            "simulate",
            "--root",
            str(t / "davis"),
            "--budget-hours",
            "nan",
            "--out",
            str(t / "out"),
        ],
        2,
        "--budget-hours: the budget must be a number of hours > 0, got nan",
    ),
]

MODEL_CASES = [
    Case(
        "fit with the video object segmentation model STM",
        lambda t, d: _fit(t, "--data.root", str(d["streets"]), "--model.student", "stm_r18"),
        2,
        "error: model.student: 'stm_r18' is a video object segmentation model (object masks, not classes): "
        "train it with `frugalseg vos fit --config stm_davis`; it segments a video from an object's mask on "
        "one frame with `frugalseg annotate add … --engine stm` (`predict` takes frames alone)",
        lambda t: [t / "runs"],
    ),
    Case(
        "fit with another student than the checkpoint's",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--model.student",
            "pspnet_r18",
            "--ckpt_path",
            _checkpoint_of(t, "tmanet_r18"),
        ),
        2,
        "--model.student: 'pspnet_r18' was asked for, but the checkpoint",
        lambda t: [t / "runs"],
    ),
    Case(  # it had become TDNet's distillation with a warning of some options, then stopped at a data option
        "fit with a checkpoint of another LightningModule than the config's",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--ckpt_path",
            _lightning_checkpoint_of(
                t,
                _class_path="frugalseg.lightning_modules.DistillationModule",
                student="tdnet_td2_psp18_small",
            ),
        ),
        2,
        "other.ckpt holds a DistillationModule run (tdnet_td2_psp18_small), and the config trains a "
        "VideoSegmentationModule: resume it with the config it was made with, or start this run from its "
        "weights with --model.init_weights",
        lambda t: [t / "runs"],
    ),
    Case(
        "validate with another student than the checkpoint's",
        lambda t, d: [
            "validate",
            "--config",
            str(CONFIG),
            "--data.root",
            str(d["streets"]),
            "--trainer.default_root_dir",
            str(t / "runs"),
            "--model.student",
            "hrnetv2_w18_small",
            "--ckpt_path",
            _checkpoint_of(t, "tmanet_r50"),
        ],
        2,
        "holds a 'tmanet_r50' student: give --model.student tmanet_r50 to use it",
        lambda t: [t / "runs"],
    ),
    *(
        Case(
            f"validate with a checkpoint of an image student where {where}",
            lambda t, d, named=named: [
                "validate",
                *named,
                "--data.root",
                str(d["streets"]),
                "--trainer.default_root_dir",
                str(t / "runs"),
                "--ckpt_path",
                _checkpoint_of(t, "hrnetv2_w18_small"),
            ],
            2,
            said,
            lambda t: [t / "runs"],
        )
        for where, named, said in [
            # the config names it: a choice, refused as any other (it had been taken as no choice)
            (
                "the config names the default video one",
                ["--config", str(CONFIG)],
                "--model.student: 'tmanet_r18' was asked for, but the checkpoint",
            ),
            # the default's clips of 3 frames then refuse the image student, which the warning explains
            (
                "nothing names a student",
                [],
                "holds a 'hrnetv2_w18_small' student, which is used: no --config or option names a student, "
                "and 'tmanet_r18' is the default",
            ),
        ]
    ),  # fmt: skip
    *(
        Case(
            f"validate with a checkpoint of {what}",
            lambda t, d, stored=stored: [
                "validate",
                "--config",
                str(CONFIG),
                "--data.root",
                str(d["streets"]),
                "--trainer.default_root_dir",
                str(t / "runs"),
                "--ckpt_path",
                _lightning_checkpoint_of(t, **stored),
            ],  # fmt: skip
            2,
            message,
            lambda t: [t / "runs"],
        )
        for what, stored, message in [
            (
                "11 classes on a set of 19",
                {"num_classes": 11},
                "other.ckpt was trained with 11 classes, but this run gives the model 19 (the data set's "
                "classes): give the data it was trained on, or another checkpoint",
            ),
            (
                "clips of 2 frames where the config asks 3",
                {"num_frames": 2},
                "other.ckpt was trained with 2 frames a clip, but this run gives the model 3 "
                "(--data.num_frames)",
            ),
        ]
    ),
]

OUT_CASES = [
    Case(
        "label propagate into the data set root",
        lambda t, d: _propagate(_copy(t, d, lambda r: None), "--offsets=1", "--out", str(t / "data")),
        2,
        "data is the data set folder",
        lambda t: [t / "data" / "manifest.jsonl", t / "data" / "run.json"],
    ),
    Case(
        "label propagate into a folder inside the data set",
        lambda t, d: _propagate(
            _copy(t, d, lambda r: None), "--offsets=1", "--out", str(t / "data" / "gtFine" / "labels")
        ),
        2,
        "labels is inside the data set folder",
        lambda t: [t / "data" / "gtFine" / "labels"],
    ),
    Case(
        "label propagate into a folder that holds the data set",
        lambda t, d: _propagate(_copy(t, d, lambda r: None), "--offsets=1", "--out", str(t)),
        2,
        "holds the data set folder",
        lambda t: [t / "manifest.jsonl", t / "run.json"],
    ),
    Case(
        "label propagate with an empty --out",
        lambda t, d: _propagate(str(d["streets"]), "--offsets=1", "--out", ""),
        2,
        "--out: is empty: name a label store folder",
        lambda t: [],
    ),
    Case(
        "label clicks into the data set through a relative path",
        lambda t, d: _clicks(_copy(t, d, lambda r: None), t / "data" / ".." / "data" / "clicks"),
        2,
        "is inside the data set folder",
        lambda t: [t / "data" / "clicks"],
    ),
]


def _manifest(tmp: Path, prepared: dict, *lines: bytes) -> str:
    """A copy of the prepared flow store whose manifest is its first good record, then ``lines``."""
    store = tmp / "store"
    shutil.copytree(prepared["store"], store)
    first = (store / "manifest.jsonl").read_bytes().split(b"\n")[0]
    (store / "manifest.jsonl").write_bytes(b"".join(line + b"\n" for line in (first, *lines)))
    return str(store)


def _record(**changes: object) -> bytes:
    record = {"split": "train", "clip_id": "x", "offset": 1, "kind": "pseudo", "path": "train/x/a.png"}
    return json.dumps({**record, **changes}).encode()


MANIFEST_CASES = [
    Case(
        f"a manifest record {what}",
        lambda t, d, line=line: _propagate(str(d["streets"]), "--offsets=1", "--out", _manifest(t, d, line)),
        2,
        f"store/manifest.jsonl: line 2{phrase}",
        lambda t: [],
    )
    for what, line, phrase in [
        ("whose offset is a list", _record(offset=[1]), ": field 'offset' must be an integer, got [1]"),
        ("whose offset is true", _record(offset=True), ": field 'offset' must be an integer, got true"),
        ("whose clip id is a number", _record(clip_id=7), ": field 'clip_id' must be a string, got 7"),
        (
            "of an unknown kind",
            _record(kind="magic"),
            ": field 'kind' is 'magic', not a label kind (fine, pseudo",
        ),
        ("with a NUL in its path", _record(path="train/x/a\x00.png"), ": field 'path' holds a NUL character"),
        ("without a path", _record(path=None), ": field 'path' must be a string, got null"),
        ("that is a list", b"[1, 2]", ": a record must be a JSON object, got list"),
        (
            "that is not UTF-8",
            _record(clip_id="caf\u00e9").replace(b"\\u00e9", b"\xe9"),
            " is not valid UTF-8",
        ),
    ]
]


def _other_seed(tmp: Path) -> str:
    """The tiny streets layout (same clip and frame names) drawn with another seed."""
    return str(generate_synthetic_streets(tmp / "other", {"train": 4, "val": 3}, size=(64, 128), seed=1))


STORE_CASES = [
    Case(
        "fit on another seed's data with a store whose clip names match",
        lambda t, d: _fit(
            t,
            "--data.root",
            _other_seed(t),
            "--data.labels.pseudo",
            str(d["store"]),
            "--data.augment.crop_size",
            "[64,128]",
            "--trainer.max_steps",
            "1",
        ),
        2,
        "flow: made from other frames than the data set",
        lambda t: [t / "runs"],
    ),
]


def _davis_with_a_bomb(tmp: Path, which: str) -> str:
    """A small DAVIS set whose second frame (``JPEGImages``) or mask (``Annotations``) is a bomb PNG."""
    root = write_davis(tmp / "davis", {"seq": [np.zeros((48, 64), np.uint8)] * 4})
    target = root / which / "480p" / "seq" / ("00001.jpg" if which == "JPEGImages" else "00001.png")
    target.write_bytes(bomb_png(tmp / "bomb.png").read_bytes())
    return str(root)


DATA_CASES = [
    Case(
        f"annotate simulate on a data set whose {which} holds a decompression bomb",
        lambda t, d, which=which: [
            "annotate",
            "simulate",
            "--root",
            _davis_with_a_bomb(t, which),
            "--budget-hours",
            "0.01",
            "--seeds",
            "1",
            "--out",
            str(t / "out"),
            "--no-progress",
        ],
        2,
        "00001.{}: image of 14000×14000 (196 Mpx) is larger than frugalseg decodes".format(
            "jpg" if which == "JPEGImages" else "png"
        ),
    )
    for which in ("JPEGImages", "Annotations")
] + [
    Case(
        "data check of a data set holding a decompression bomb",
        lambda t, d: ["data", "check", _davis_with_a_bomb(t, "Annotations"), "--no-progress"],
        1,
        "00001.png: image of 14000×14000 (196 Mpx) is larger than frugalseg decodes (67 Mpx, 8192×8192)",
        lambda t: [],
    ),
]


def _text(path: Path, text: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


CONFIG_AND_URL_CASES = [
    *(
        Case(
            f"fit with a --config that {what}",
            lambda t, d, text=text: [
                "fit",
                "--config",
                _text(t / "c.yaml", text),
                "--trainer.default_root_dir",
                str(t / "runs"),
            ],
            2,
            phrase,
            lambda t: [t / "runs"],
        )
        for what, text, phrase in [
            (
                "has a YAML syntax error",
                "model:\n  lr: [1, 2\n",
                "c.yaml: not valid YAML at line 3, column 1: expected ',' or ']'",
            ),
            ("is a YAML list", "- trainer\n- model\n", "c.yaml: holds a YAML list, not a mapping of options"),
            ("is a YAML string", "just words\n", "c.yaml: holds a YAML str, not a mapping of options"),
            ("is not text", b"\x89PNG\r\n\x1a\n\xff\xfe", "c.yaml: not a text file (invalid start byte)"),
            (
                "is empty",
                "# nothing yet\n",
                "c.yaml: holds no options (trainer:, model:, data: …): it is empty",
            ),
            (
                "mixes tabs into its indentation",
                "model:\n\tlr: 1\n",
                "c.yaml: not valid YAML at line 2, column 1",
            ),
        ]
    ),
    *(
        Case(
            f"fit with a {option} file that is not text",
            lambda t, d, option=option: [
                "fit",
                "--config",
                str(CONFIG),
                option,
                _text(t / "g.yaml", b"\x89PNG\r\n\x1a\n\xff\xfe"),
                "--trainer.default_root_dir",
                str(t / "runs"),
            ],
            2,
            "g.yaml: not a text file (invalid start byte)",
            lambda t: [t / "runs"],
        )
        for option in ("--data", "--trainer")
    ),
    *(
        Case(
            f"fit with a {option} file that {what}",
            lambda t, d, option=option, text=text: [
                "fit",
                "--config",
                str(CONFIG),
                option,
                _text(t / "g.yaml", text),
                "--trainer.default_root_dir",
                str(t / "runs"),
            ],
            2,
            f"g.yaml: {phrase}",
            lambda t: [t / "runs"],
        )
        for option in ("--data", "--model")
        for what, text, phrase in [
            ("has a YAML syntax error", "loader:\n  batch_size: [1\n", "not valid YAML at line 3, column 1"),
            ("is empty", "", f"holds no options of {option[2:]}: it is empty, or comments alone"),
        ]
    ),
    Case(
        "fit with a --config that does not exist",
        lambda t, d: ["fit", f"--config={t / 'none.yaml'}"],
        2,
        "none.yaml: config file does not exist",
        lambda t: [],
    ),
    Case(
        "fit resuming from a URL that answers 404",
        lambda t, d: _fit(
            t, "--data.root", str(d["streets"]), "--ckpt_path", f"{_serve(_folder(t / 'www'))}/gone.ckpt"
        ),
        2,
        "/gone.ckpt: cannot download the checkpoint: the server answered HTTP 404 (File not found)",
        lambda t: [t / "runs"],
    ),
    Case(
        "fit resuming from a URL whose port refuses connections",
        lambda t, d: _fit(
            t, "--data.root", str(d["streets"]), "--ckpt_path", f"http://127.0.0.1:{_closed_port()}/a.ckpt"
        ),
        2,
        "/a.ckpt: cannot download the checkpoint: connection refused",
        lambda t: [t / "runs"],
    ),
    Case(
        "fit from weights at a URL that answers 404",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--model.init_weights",
            f"{_serve(_folder(t / 'www'))}/w.safetensors",
        ),
        2,
        "/w.safetensors (HTTP Error 404: File not found); the card is read beside the weights",
        lambda t: [t / "runs"],
    ),
]

GOOD_ENTRY = {
    "file": "x.safetensors", "card": "x.json", "sha256": "0" * 64, "architecture": "hrnetv2_w18_small",
    "num_classes": 4, "num_frames": 1, "size_bytes": 1000, "metrics": {"val/mIoU": 0.5},
}  # fmt: skip


def _zoo_list(tmp: Path, entry: object) -> list[str]:
    folder = tmp / "zoo"
    folder.mkdir()
    (folder / "index.json").write_text(
        json.dumps({"format": 1, "models": {"good": GOOD_ENTRY, "x": entry}}), encoding="utf-8"
    )
    return ["zoo", "list", "--dir", str(folder)]


def _publish(tmp: Path, *options: str, change: Callable[[Path], object] | None = None) -> list[str]:
    """``zoo publish`` of a run folder as `frugalseg fit` leaves it (tests/zoo's), changed by ``change``."""
    ckpt = _fake_run(tmp, _student())
    if change is not None:
        change(ckpt.parent.parent)
    return ["zoo", "publish", str(ckpt), "--out", str(tmp / "out"), *options]


def _without(field: str) -> dict:
    return {key: value for key, value in GOOD_ENTRY.items() if key != field}


ZOO_CASES = [
    *(
        Case(
            f"zoo list of an index entry {what}",
            lambda t, d, entry=entry: _zoo_list(t, entry),
            2,
            f"index.json: entry 'x': {phrase}",
            lambda t: [],
        )
        for what, entry, phrase in [
            ("without its architecture", _without("architecture"), "lacks field 'architecture'"),
            ("without its size", _without("size_bytes"), "lacks field 'size_bytes'"),
            (
                "with text metrics",
                {**GOOD_ENTRY, "metrics": {"val/mIoU": "high"}},
                "metric 'val/mIoU' is \"high\", not a number",
            ),
            (
                "with metrics in a list",
                {**GOOD_ENTRY, "metrics": [0.5]},
                "field 'metrics' must map metric names",
            ),
            (
                "whose classes are text",
                {**GOOD_ENTRY, "num_classes": "4"},
                "field 'num_classes' has the wrong type: \"4\"",
            ),
            ("that is a string", "x.safetensors", "must be a JSON object, got str"),
        ]
    ),
    *(
        Case(
            f"zoo publish with --name {name!r}",
            lambda t, d, name=name: _publish(t, f"--name={name}"),
            2,
            f"--name: invalid published name {name!r}",
            lambda t: [t / "out", t / "evil.safetensors", t / "evil.json"],
        )
        for name in ["../evil", "", "Evil", "a/b", ".hidden"]
    ),
    Case(
        "zoo publish with a run folder that does not exist",
        lambda t, d: _publish(t, "--name", "x", "--run-dir", str(t / "gone")),
        2,
        "gone: run folder does not exist",
        lambda t: [t / "out"],
    ),
    Case(
        "zoo publish of a run whose samples.json is not JSON",
        lambda t, d: _publish(
            t, "--name", "x", change=lambda run: (run / "samples.json").write_text("{oops", encoding="utf-8")
        ),
        2,
        "samples.json: not valid JSON",
        lambda t: [t / "out"],
    ),
    Case(
        "zoo publish of a run whose samples.json is a list",
        lambda t, d: _publish(
            t, "--name", "x", change=lambda run: (run / "samples.json").write_text("[]", encoding="utf-8")
        ),
        2,
        "samples.json: not a run's samples.json (an object with recipe, cost and samples)",
        lambda t: [t / "out"],
    ),
    Case(
        "zoo publish with text metrics",
        lambda t, d: _publish(
            t,
            "--name",
            "x",
            "--metrics",
            _text(t / "m.json", '{"val/mIoU": "good"}'),
            "--metrics-command",
            "c",
        ),
        2,
        "m.json: expected a JSON object of metric name → number",
        lambda t: [t / "out"],
    ),
    *(
        Case(
            f"zoo publish with a metrics CSV {what}",
            lambda t, d, text=text: _publish(
                t, "--name", "x", "--metrics", _text(t / "m.csv", text), "--metrics-command", "c"
            ),
            2,
            phrase,
            lambda t: [t / "out"],
        )
        for what, text, phrase in [
            (
                "holding text for a metric",
                "epoch,val/mIoU\n1,high\n",
                "m.csv: line 2: val/mIoU is 'high', not a number",
            ),
            (
                "that is not UTF-8",
                b"epoch,val/mIoU\n1,\xff\n",
                "m.csv: not a UTF-8 CSV file (invalid start byte at byte 17)",
            ),
        ]
    ),
]


def _train_qnet(tmp: Path, run_json: str) -> list[str]:
    run = tmp / "run"
    _text(run / "run.json", run_json)
    return [
        "annotate",
        "train-qnet",
        "--runs",
        str(run),
        "--samples",
        str(tmp / "s.npz"),
        "--out",
        str(tmp / "q"),
    ]


ANNOTATE_CASES = [
    Case(
        "train-qnet on a run whose run.json is not JSON",
        lambda t, d: _train_qnet(t, "{oops"),
        2,
        "run/run.json: not valid JSON (Expecting property name",
        lambda t: [t / "s.npz", t / "q"],
    ),
    Case(
        "train-qnet on a run whose run.json is a list",
        lambda t, d: _train_qnet(t, "[1]"),
        2,
        "run/run.json: holds a JSON list; expected the settings of an `annotate simulate` run",
        lambda t: [t / "s.npz", t / "q"],
    ),
    *(
        Case(  # had been Python's OverflowError traceback from bind()
            f"annotate {command} on port {port}",
            lambda t, d, command=command, port=port: [
                "annotate",
                command,
                "--state",
                str(t / "s"),
                "--port",
                port,
            ],
            2,
            f"argument --port: must be a port in 0…65535, got {port}",
            lambda t: [t / "s"],
        )
        for command in ("serve", "ml-backend")
        for port in ("70000", "-1")
    ),
]


CASES = (
    OPTION_CASES
    + MODEL_CASES
    + OUT_CASES
    + MANIFEST_CASES
    + STORE_CASES
    + DATA_CASES
    + CONFIG_AND_URL_CASES
    + ZOO_CASES
    + ANNOTATE_CASES
)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name.replace(" ", "-"))
def test_bad_input_gets_one_clear_line_and_writes_nothing(case: Case, data, tmp_path, capsys):  # noqa: F811
    check_case(case, data, tmp_path, capsys)


@pytest.mark.parametrize(
    ("x", "y", "pixel"),
    [
        (10, 4, (10, 4)),
        (10.0, 4.0, (10, 4)),
        (10.7, 4.2, (10, 4)),
        (0.0, 0.99, (0, 0)),
        (11.999, 5.5, (11, 5)),
    ],
)
def test_clicks_with_float_coordinates_are_read_as_the_pixel_they_lie_in(tmp_path, x, y, pixel):
    """Annotation tools write ``"x": 10.0`` (or sub-pixel 10.7): the click is on the pixel it lies in."""
    from frugalseg.active.objects.session.given import read_clicks

    path = Path(
        _text(tmp_path / "c.json", json.dumps({"clicks": [{"object": 1, "x": x, "y": y, "positive": True}]}))
    )
    (click,) = read_clicks(path, (6, 12))
    assert (click.x, click.y, click.object, click.positive) == (*pixel, 1, True)


@pytest.mark.parametrize(
    ("x", "phrase"),
    [(12.0, "click 0 at x 12, y 1 is off the 12×6 frame"), (-0.5, "at x -1, y 1 is off"),
     ("10", "x and y must be pixel coordinates (numbers), got '10', 1"),
     (True, "x and y must be pixel coordinates (numbers), got True"), (float("nan"), "got nan")],
)  # fmt: skip
def test_clicks_off_the_frame_or_not_numbers_are_refused(tmp_path, x, phrase):
    from frugalseg.active.objects.session.given import read_clicks
    from frugalseg.errors import DataError

    path = Path(
        _text(tmp_path / "c.json", json.dumps({"clicks": [{"object": 1, "x": x, "y": 1, "positive": True}]}))
    )
    with pytest.raises(DataError, match=re.escape(phrase)):
        read_clicks(path, (6, 12))


@pytest.mark.slow
def test_a_config_the_locale_cannot_read_is_refused_with_its_line(tmp_path):
    """Under an ASCII locale jsonargparse failed with a bare UnicodeDecodeError on a comment's 'λ'."""
    config = tmp_path / "c.yaml"
    config.write_text("trainer:\n  # lambda (λ) = 1\n  max_epochs: 1\n", encoding="utf-8")
    command = [sys.executable, "-m", "frugalseg", "fit", "--config", str(config)]
    env = {**os.environ, **ASCII_LOCALE}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: --config: {config}: line 2 holds a character this locale's encoding (ascii) cannot read, "
        "and jsonargparse reads config files in it: run with PYTHONUTF8=1 or a UTF-8 locale (LANG=C.UTF-8)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]  # nothing written
