"""Bad videos, tool files and resumed runs: video files and annotation tools' files given hostile
input, and what killed runs leave behind — through the real command line.

Each case is run as `tests/cli/test_bad_inputs.py` runs its own: one clear line, the exit code,
and nothing half-written left behind.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from data.fake_davis import palette_png, write_davis
from data.fake_video import write_video

from cli.test_bad_inputs import (  # noqa: F401  (data: the fixture)
    _BOX,
    Case,
    _cvat,
    _file,
    _fit,
    _propagate,
    _propagate_video,
    _tool_import,
    _video,
    check_case,
    data,
)
from frugalseg.cli import main
from frugalseg.interop.rle import ls_encode


def _tiny_video(tmp: Path) -> str:
    """A 10-frame 2×2 video with the object mask of its first frame: smaller than DIS can follow."""
    video = write_video(tmp / "video" / "clip.mp4", [np.full((2, 2, 3), 10 * i, np.uint8) for i in range(10)])
    palette_png(tmp / "video" / "Annotations" / "clip" / "00000.png", np.ones((2, 2), np.uint8))
    return str(video)


def _torch_file(tmp: Path, content: object) -> str:
    path = tmp / "weights.pt"
    torch.save(content, path)
    return str(path)


def _safetensors_file(tmp: Path) -> str:
    from safetensors.torch import save_file

    path = tmp / "weights.safetensors"
    save_file({"weight": torch.zeros(2)}, path)
    return str(path)


def _annotate_semantic(tmp: Path, prepared: dict, weights: str) -> list[str]:
    """``annotate semantic`` on one 2-frame clip of the tiny streets set, starting from ``weights``."""
    return [
        "annotate", "semantic", "--root", str(prepared["streets"]), "--split", "val", "--max-clips", "1",
        "--max-frames", "2", "--iterations", "2", "--student", "pspnet_r18_os8_small", "--accelerator", "cpu",
        "--init-weights", weights, "--out", str(tmp / "out"),
    ]  # fmt: skip


LEFT_CASES = [
    *(
        Case(
            f"fit --ckpt_path given {what}",
            lambda t, d, content=content: _fit(
                t, "--data.root", str(d["streets"]), "--ckpt_path", _torch_file(t, content)
            ),
            2,
            "weights.pt: a torch file, but not a Lightning checkpoint (it lacks "
            f"{lacks}): give a checkpoint that `frugalseg fit` wrote",
            lambda t: [t / "runs"],
        )
        for what, content, lacks in [
            ("a state dict", {"weight": torch.zeros(2)}, "'pytorch-lightning_version', 'state_dict'"),
            ("a dict with a state dict", {"state_dict": {}}, "'pytorch-lightning_version'"),
            ("a tensor", torch.zeros(2), "'pytorch-lightning_version', 'state_dict'"),
        ]
    ),
    Case(
        "fit --ckpt_path given published safetensors weights (it had said 'a torch file')",
        lambda t, d: _fit(t, "--data.root", str(d["streets"]), "--ckpt_path", _safetensors_file(t)),
        2,
        "weights.safetensors: published weights, not a Lightning checkpoint: --ckpt_path takes a checkpoint",
        lambda t: [t / "runs"],
    ),
    *(
        Case(
            f"annotate semantic --init-weights given {what}",
            lambda t, d, name=name, content=content: _annotate_semantic(t, d, str(_file(t / name, content))),
            2,
            f"{name}: cannot be read with torch.load(weights_only=True)",
        )
        for what, name, content in [
            ("a pickle", "w.pkl", pickle.dumps({"a": 1})),
            ("a text file", "w.txt", "hi"),
        ]
    ),
    Case(
        "zoo list --dir given a regular file",
        lambda t, d: ["zoo", "list", "--dir", str(_file(t / "index.txt", "{}"))],
        2,
        "index.txt: not a folder: a checkpoints folder holds index.json and weights",
    ),
]


_DEEP = "[" * 10**6 + "]" * 10**6


def _brush(rle: list[int]) -> str:
    """A Label Studio export with one brush result of ``rle`` on a 64×48 frame of squares-a."""
    result = {"id": "r1", "type": "brushlabels", "original_width": 64, "original_height": 48,
              "value": {"format": "rle", "rle": rle, "brushlabels": ["object"]}}  # fmt: skip
    task = {
        "id": 7,
        "data": {"image": "/data/local-files/?d=squares-a/00000.jpg"},
        "annotations": [{"result": [result]}],
    }
    return json.dumps([task])


_SQUARE = np.zeros((48, 64), bool)
_SQUARE[4:9, 1:5] = True
_IMAGE = (
    '<image id="{id}" name="x"><box label="object" xtl="1" ytl="4" xbr="5" ybr="9" occluded="0"/></image>'
)


TOOL_FILE_CASES = [
    *(
        Case(
            f"label import of a {tool} file nested a million levels deep",
            lambda t, d, tool=tool: _tool_import(t, tool, "deep.json", _DEEP),
            2,
            "deep.json: JSON nested more than 1000 levels deep",
        )
        for tool in ("coco", "label-studio", "labelme")
    ),
    Case(
        "label import with a --mapping file that is not UTF-8 text",
        lambda t, d: _tool_import(
            t,
            "label-studio",
            "ls.json",
            _brush(ls_encode(_SQUARE)),
            "--mapping",
            str(_file(t / "map.txt", b"a = \xff")),
        ),
        2,
        "map.txt: not a UTF-8 text file (invalid start byte at byte 4)",
    ),
    Case(
        "label import of a Label Studio brush RLE whose runs end early",
        lambda t, d: _tool_import(t, "label-studio", "ls.json", _brush(ls_encode(_SQUARE)[:12])),
        2,
        "ls.json: task 7 result r1: brush rle does not fit the 64×48 image (the RLE ends early)",
    ),
    Case(
        "label import of a Label Studio brush on a frame larger than any image",
        lambda t, d: _tool_import(
            t,
            "label-studio",
            "ls.json",
            _brush([0]).replace('"original_width": 64', '"original_width": 10000000'),
        ),
        2,
        "ls.json: task 7 result r1: original size 10000000×48 is no image frugalseg reads",
    ),
    Case(
        "label import of a CVAT image with a negative id",
        lambda t, d: _tool_import(
            t,
            "cvat-video",
            "a.xml",
            _cvat(_BOX.format(frame=0, x0=1, x1=5)).replace(
                "</annotations>", _IMAGE.format(id=-1) + "</annotations>"
            ),
        ),
        2,
        "a.xml: frame -1 (image -1 box 1): a negative frame number in clip squares-a (frames 0…9)",
    ),
]


_LOOP = "a symbolic link that loops (to itself or to a folder holding it): it is not read"


def _looped(tmp: Path, name: str, target: str) -> str:
    """The generated video folder with a symbolic link ``name`` → ``target`` beside the video."""
    video = Path(_video(tmp))
    (video.parent / name).symlink_to(target)
    return str(video.parent)


VIDEO_CASES = [
    Case(
        "data check of a single good video file",
        lambda t, d: ["data", "check", "--format", "video", _video(t), "--no-progress"],
        0,
        "no problems found in",
    ),
    *(
        case
        for name, target in [("loop.mp4", "loop.mp4"), ("sub", ".")]
        for case in [
            Case(
                f"data check of a video folder with a symlink loop {name}",
                lambda t, d, name=name, target=target: [
                    "data",
                    "check",
                    "--format",
                    "video",
                    _looped(t, name, target),
                    "--no-progress",
                ],  # fmt: skip
                1,
                f"video/{name}: {_LOOP}",
            ),
            Case(
                f"label propagate over a video folder with a symlink loop {name}",
                lambda t, d, name=name, target=target: _propagate_video(t, _looped(t, name, target)),
                2,
                f"video/{name}: {_LOOP}",
            ),
        ]
    ),
    Case(
        "label propagate over a 2×2 video",
        lambda t, d: _propagate_video(t, _tiny_video(t)),
        2,
        "Annotations/clip/00000.png: frames of 2×2 are too small for DIS optical flow: it needs 16 px a side",
    ),
]


CASES = LEFT_CASES + TOOL_FILE_CASES + VIDEO_CASES


# The pickle case hands torch.load(weights_only=True) a pickle on purpose: torch warns of its protocol,
# then refuses it.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4 in the checkpoint:UserWarning")
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name.replace(" ", "-"))
def test_bad_input_gets_one_clear_line_and_writes_nothing(case: Case, data, tmp_path, capsys):  # noqa: F811
    check_case(case, data, tmp_path, capsys)


@pytest.mark.parametrize(
    ("limit", "phrase"),
    [
        ("0.0001", "big.json: 0.000192 MB is over the 0.0001 MB limit on tool files (read whole, their "
         "objects take several times that in memory); raise it with FRUGALSEG_MAX_TOOL_FILE_MB=1 or split "
         "the file"),
        ("lots", "FRUGALSEG_MAX_TOOL_FILE_MB: expected a positive number of MB, got 'lots'"),
        ("-1", "FRUGALSEG_MAX_TOOL_FILE_MB: expected a positive number of MB, got '-1'"),
    ],
)  # fmt: skip
def test_a_tool_file_over_the_size_limit_is_refused(limit, phrase, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FRUGALSEG_MAX_TOOL_FILE_MB", limit)
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "object" * 20}]}
    case = Case("big", lambda t, d: _tool_import(t, "coco", "big.json", json.dumps(coco)), 2, phrase)
    check_case(case, {}, tmp_path, capsys)


def test_a_resumed_propagation_replaces_the_record_of_a_truncated_label(data, tmp_path):  # noqa: F811
    """A label cut short on disk is made again, and its new record replaces the old: one per key."""
    store = tmp_path / "store"
    shutil.copytree(data["store"], store)
    before = (store / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    label = store / json.loads(before[0])["path"]
    whole = label.read_bytes()
    label.write_bytes(whole[: len(whole) // 2])
    assert main(_propagate(str(data["streets"]), "--offsets=1", "--out", str(store))) == 0
    after = [json.loads(line) for line in (store / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    keys = [(r["split"], r["clip_id"], r["offset"], r["kind"]) for r in after]
    assert len(after) == len(before) == len(set(keys))
    assert label.read_bytes() == whole


def test_a_resumed_simulation_removes_what_a_killed_write_left(tmp_path, capsys):
    """Temporary files named as the atomic writer names them, left in ``masks/`` and ``annotated/`` by a
    kill, are gone after the resume."""
    root = write_davis(tmp_path / "davis", {"seq": [np.zeros((48, 64), np.uint8)] * 4})
    out = tmp_path / "out"
    argv = ["annotate", "simulate", "--root", str(root), "--budget-hours", "0.01", "--seeds", "1",
            "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    pngs = out.rglob("*.png")
    folders = sorted({path.parent for path in pngs if path.parent.name in ("masks", "annotated")})
    assert [folder.name for folder in folders][:1] == ["annotated"] and folders[-1].name == "masks"
    left = [folder / ".00000.png.k1ll3d.tmp" for folder in folders]
    for path in left:
        path.write_bytes(b"\x89PNG half")
    assert main(argv) == 0
    assert [path for path in left if path.exists()] == []
    assert list(out.rglob("*.tmp")) == []
