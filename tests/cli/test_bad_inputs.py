"""Bad input, as a careless or hostile user gives it, through the real command line.

Each case is an input, the command, the exit code (2: bad input, 1: a check that found problems),
a phrase the one-line message must hold, and the paths that must not exist afterwards (nothing
half-written). No case may end in a traceback.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightning  # noqa: F401  (imported before any case captures stderr: its log handler keeps the stream)
import numpy as np
import pytest
import torch
from data.fake_davis import palette_png
from data.fake_video import SIZE, claim_avi_frames, cut_video, numbered_frame, write_video

from frugalseg.cli import main
from frugalseg.data.io import write_png_atomic

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
TYPO = "model:\n  studnet: tmanet_r18\n"  # a config file's misspelt model.student
NO_LOGGER = ("--trainer.logger", "false")


@dataclass
class Case:
    """One bad input: ``argv(tmp, data)`` gives the command; the rest is what must come of it."""

    name: str
    argv: Callable[[Path, dict], list[str]]
    code: int
    phrase: str
    absent: Callable[[Path], list[Path]] = field(default=lambda tmp: [tmp / "out"])


def _propagate(root: str, *options: str) -> list[str]:
    return ["label", "propagate", "--format", "synthetic", "--root", root, "--no-progress", *options]


def _fit(tmp: Path, *options: str) -> list[str]:
    runs = str(tmp / "runs")
    return [
        "fit", "--config", str(CONFIG), "--trainer.default_root_dir", runs,
        "--trainer.logger.init_args.save_dir", runs, "--data.loader.num_workers", "0", *options,
    ]  # fmt: skip


def _video(
    tmp: Path, *, suffix: str = ".mp4", masks: tuple[int, ...] = (0,), claims: int = 0, cut: bool = False
) -> str:
    """A generated 10-frame video ``tmp/video/clip{suffix}`` with object masks of frames ``masks`` in
    ``Annotations/clip/``; ``claims`` rewrites an AVI's header frame count, ``cut`` truncates it."""
    folder = tmp / "video"
    frames = [numbered_frame(i) for i in range(10)]
    avi = suffix == ".avi"  # MPEG-4 part 2 without B-frames, as AVI holds it
    video = write_video(
        folder / f"clip{suffix}", frames, codec="mpeg4" if avi else "libx264", bframes=0 if avi else 3
    )
    if claims:
        claim_avi_frames(video, claims)
    if cut:
        video = cut_video(video, folder / "cut.mp4")
        (folder / "clip.mp4").unlink()
        video = video.rename(folder / "clip.mp4")
    for index in masks:
        palette_png(folder / "Annotations" / "clip" / f"{index:05d}.png", np.ones(SIZE, np.uint8))
    return str(video)


def _propagate_video(tmp: Path, video: str) -> list[str]:
    return [
        "label", "propagate", "--format", "video", "--root", video, "--split", "all", "--offsets", "1",
        "--out", str(tmp / "out"), "--no-progress",
    ]  # fmt: skip


def _evil_checkpoint(tmp: Path) -> Path:
    """A checkpoint whose unpickling would create the file ``pwned`` (it must never appear)."""

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp / "pwned"), "w"))

    path = tmp / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Payload()}, path)
    return path


def _serve(folder: Path) -> str:
    """Serve ``folder`` on the loopback in a thread; returns the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def _store(tmp: Path, data: dict, *, run: object = None, manifest: str | None = None) -> str:
    """A copy of the prepared flow store with its ``run.json`` or manifest replaced."""
    store = tmp / "store"
    shutil.copytree(data["store"], store)
    if run is not None:
        (store / "run.json").write_text(run if isinstance(run, str) else json.dumps(run), encoding="utf-8")
    if manifest is not None:
        (store / "manifest.jsonl").write_text(manifest, encoding="utf-8")
    return str(store)


def _copy(tmp: Path, data: dict, change: Callable[[Path], None]) -> str:
    root = tmp / "data"
    shutil.copytree(data["streets"], root)
    change(root)
    return str(root)


def _camvid_folders(tmp: Path) -> str:
    """A folder laid out as CamVid's (``train/`` beside ``trainannot/``), without a still."""
    for name in ("train", "trainannot"):
        (tmp / "camvid" / name).mkdir(parents=True)
    return str(tmp / "camvid")


def _anchor_label(root: Path) -> Path:
    return next((root / "gtFine" / "train").rglob("*_gtFine_labelTrainIds.png"))


def _first_frame(root: Path, number: str = "000020") -> Path:
    return next((root / "leftImg8bit_sequence" / "train").rglob(f"*_{number}_leftImg8bit.png"))


def _index(tmp: Path, entry: dict) -> str:
    folder = tmp / "zoo"
    folder.mkdir()
    (folder / "index.json").write_text(json.dumps({"format": 1, "models": {"x": entry}}), encoding="utf-8")
    return str(folder)


def _published(tmp: Path, data: dict, sha: object) -> str:
    """A copy of the shipped checkpoints folder whose card and index record ``sha``."""
    folder = tmp / "zoo"
    shutil.copytree(data["shipped"], folder)
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    entry = index["models"]["streets-hrnetv2-w18s"]
    entry["sha256"] = sha
    (folder / "index.json").write_text(json.dumps(index), encoding="utf-8")
    card = json.loads((folder / entry["card"]).read_text(encoding="utf-8"))
    card["sha256"] = sha
    (folder / entry["card"]).write_text(json.dumps(card), encoding="utf-8")
    return str(folder)


CASES = [  # fmt: skip
    # ---- label propagate: the data set
    Case(
        "missing data set root",
        lambda t, d: [
            "label",
            "propagate",
            "--format",
            "cityscapes",
            "--root",
            str(t / "nowhere"),
            "--out",
            str(t / "out"),
        ],
        2,
        "data set folder does not exist",
    ),
    Case(
        "a split that does not exist",
        lambda t, d: _propagate(str(d["streets"]), "--split", "tset", "--out", str(t / "out")),
        2,
        "split 'tset' does not exist; splits found: train, val",
    ),
    Case(
        "a layout of another format",
        lambda t, d: [
            "label",
            "propagate",
            "--format",
            "davis",
            "--root",
            str(d["streets"]),
            "--out",
            str(t / "out"),
        ],
        2,
        "JPEGImages: folder does not exist",
    ),
    Case(  # the reader had said "split 'train' does not exist; splits found: none"
        "a folder of another format without its splits",
        lambda t, d: [
            "label",
            "propagate",
            "--format",
            "cityscapes",
            "--root",
            _camvid_folders(t),
            "--out",
            str(t / "out"),
        ],
        2,
        "no cityscapes data set here (no split found): the folder holds train/, trainannot/; "
        "formats: synthetic, cityscapes, idd, camvid, mose, davis, veis, video; it looks like camvid "
        "(--format camvid)",
    ),
    Case(
        "an offset no clip has",
        lambda t, d: _propagate(str(d["streets"]), "--offsets=-50", "--out", str(t / "out")),
        2,
        "no clip of split 'train' has a frame at offset -50",
    ),
    Case(
        "offset 0",
        lambda t, d: _propagate(str(d["streets"]), "--offsets", "0", "--out", str(t / "out")),
        2,
        "non-zero",
    ),
    Case(
        "offsets that are not numbers",
        lambda t, d: _propagate(str(d["streets"]), "--offsets", "a,b", "--out", str(t / "out")),
        2,
        "comma-separated integers",
    ),
    Case(
        "offsets with an empty item (it had been dropped silently)",
        lambda t, d: _propagate(str(d["streets"]), "--offsets", "1,,5", "--out", str(t / "out")),
        2,
        "offsets must be comma-separated integers, got '1,,5'",
    ),
    Case(
        "RAFT flow without its weights",
        lambda t, d: _propagate(str(d["streets"]), "--flow", "raft", "--out", str(t / "out")),
        2,
        "--raft-weights FILE",
    ),
    Case(
        "RAFT weights that do not exist",
        lambda t, d: _propagate(
            str(d["streets"]), "--flow", "raft", "--raft-weights", str(t / "raft.pth"), "--out", str(t / "o")
        ),
        2,
        "raft.pth: RAFT weights file does not exist",
        absent=lambda t: [t / "o"],
    ),
    Case(
        "a flow engine that does not exist",
        lambda t, d: _propagate(str(d["streets"]), "--flow", "pwc", "--out", str(t / "out")),
        2,
        "invalid choice: 'pwc'",
    ),
    Case(
        "--k 0",
        lambda t, d: _propagate(str(d["streets"]), "--k", "0", "--out", str(t / "out")),
        2,
        "must be at least 1",
    ),
    Case(
        "an anchor label of the wrong size",
        lambda t, d: _propagate(
            _copy(t, d, lambda r: write_png_atomic(_anchor_label(r), np.zeros((10, 10), np.uint8))),
            "--offsets=1",
            "--out",
            str(t / "out"),
        ),
        2,
        "_gtFine_labelTrainIds.png: label size 10×10 differs from its frames' 128×64 (",
    ),
    Case(
        "an anchor label with values past the classes",
        lambda t, d: _propagate(
            _copy(t, d, lambda r: write_png_atomic(_anchor_label(r), np.full((64, 128), 40, np.uint8))),
            "--offsets=1",
            "--out",
            str(t / "out"),
        ),
        2,
        "label values [40] outside 0..18 and 255",
    ),
    Case(
        "a corrupt anchor label",
        lambda t, d: _propagate(
            _copy(t, d, lambda r: _anchor_label(r).write_bytes(b"not a png")),
            "--offsets=1",
            "--out",
            str(t / "out"),
        ),
        2,
        "cannot decode image",
    ),
    Case(
        "a truncated frame",
        lambda t, d: _propagate(
            _copy(t, d, lambda r: _first_frame(r).write_bytes(_first_frame(r).read_bytes()[:300])),
            "--offsets=1",
            "--out",
            str(t / "out"),
        ),
        2,
        "_000020_leftImg8bit.png",
    ),
    Case(
        "a frame of another size",
        lambda t, d: _propagate(
            _copy(t, d, lambda r: write_png_atomic(_first_frame(r), np.zeros((32, 64, 3), np.uint8))),
            "--offsets=1",
            "--out",
            str(t / "out"),
        ),
        2,
        "frame size 64×32 differs from the anchor label's 128×64",
    ),
    Case(
        "sam2 without a checkpoint",
        lambda t, d: _propagate(str(d["streets"]), "--engine", "sam2", "--out", str(t / "out")),
        2,
        "sam2_checkpoint: the sam2 engine needs a SAM 2 checkpoint file (--sam2-checkpoint FILE)",
    ),
    Case(
        "a sam2 checkpoint that does not exist",
        lambda t, d: _propagate(
            str(d["streets"]),
            "--engine",
            "sam2",
            "--sam2-checkpoint",
            str(t / "absent.pt"),
            "--sam2-device",
            "cpu",
            "--out",
            str(t / "out"),
        ),
        2,
        "absent.pt: SAM 2 checkpoint file does not exist",
    ),
    Case(
        "a sam2 checkpoint that is not one",
        lambda t, d: _propagate(
            str(d["streets"]),
            "--engine",
            "sam2",
            "--sam2-checkpoint",
            str(_evil_checkpoint(t)),
            "--sam2-device",
            "cpu",
            "--out",
            str(t / "out"),
        ),
        2,
        "evil.ckpt",
        lambda t: [t / "out", t / "pwned"],
    ),
    Case(
        "--out is a file",
        lambda t, d: _propagate(str(d["streets"]), "--offsets=1", "--out", str(_file(t / "out_file"))),
        2,
        "out_file",
        lambda t: [],
    ),
    # ---- label propagate: the store
    Case(
        "a store made with other settings",
        lambda t, d: _propagate(str(d["streets"]), "--offsets=1", "--preset", "fast", "--out", _store(t, d)),
        2,
        "this store was written by a run with a different config",
        lambda t: [],
    ),
    Case(
        "a store whose run.json is not JSON",
        lambda t, d: _propagate(str(d["streets"]), "--offsets=1", "--out", _store(t, d, run="{not json")),
        2,
        "run.json: not valid JSON",
        lambda t: [],
    ),
    Case(
        "a manifest path outside the store",
        lambda t, d: _propagate(
            str(d["streets"]),
            "--offsets=1",
            "--out",
            _store(
                t,
                d,
                manifest=json.dumps(
                    {"split": "train", "clip_id": "x", "offset": 1, "kind": "pseudo", "path": "../x.png"}
                )
                + "\n",
            ),
        ),
        2,
        "label path '../x.png' is not a path inside",
        lambda t: [],
    ),
    Case(
        "a manifest line that is not JSON",
        lambda t, d: _propagate(
            str(d["streets"]), "--offsets=1", "--out", _store(t, d, manifest="{bad\n{}\n")
        ),
        2,
        "manifest.jsonl: line 1 is not valid JSON",
        lambda t: [],
    ),
    # ---- other label commands
    Case(
        "clicks with a negative radius",
        lambda t, d: [
            "label",
            "clicks",
            "--format",
            "synthetic",
            "--root",
            str(d["streets"]),
            "--radius=-1",
            "--out",
            str(t / "out"),
        ],
        2,
        "--radius: must be at least 0",
    ),
    Case(
        "refine-coarse of an unknown class",
        lambda t, d: [
            "label",
            "refine-coarse",
            "--format",
            "synthetic",
            "--root",
            str(d["streets"]),
            "--classes",
            "car,lamp post",
            "--sam2-checkpoint",
            str(t / "s.pt"),
            "--out",
            str(t / "out"),
        ],
        2,
        "--classes: unknown class name(s) 'lamp post'; valid names: road, sidewalk",
    ),
    Case(
        "boxes without a sam2 checkpoint",
        lambda t, d: [
            "label",
            "boxes",
            "--format",
            "synthetic",
            "--root",
            str(d["streets"]),
            "--out",
            str(t / "o"),
        ],
        2,
        "--sam2-checkpoint: label boxes needs a SAM 2 checkpoint (a file or an id",
    ),
    Case(
        "refine-coarse with a sam2 checkpoint that does not exist",
        lambda t, d: [
            "label",
            "refine-coarse",
            "--format",
            "synthetic",
            "--root",
            str(d["streets"]),
            "--sam2-checkpoint",
            str(t / "absent.pt"),
            "--out",
            str(t / "out"),
        ],
        2,
        "absent.pt: SAM 2 checkpoint file does not exist",
    ),
    Case(
        "report of a folder that is no store",
        lambda t, d: ["label", "report", str(_folder(t / "empty")), "--no-progress"],
        2,
        "is not a label store",
        lambda t: [t / "empty" / "report"],
    ),
    Case(
        "report of a store whose run.json is not UTF-8",
        lambda t, d: ["label", "report", str(_file(t / "s" / "run.json", b"\xff").parent), "--no-progress"],
        2,
        "run.json: not valid JSON ('utf-8' codec can't decode byte 0xff",
        lambda t: [t / "s" / "report"],
    ),
    Case(
        "report with --out on a file",
        lambda t, d: [
            "label",
            "report",
            str(d["store"]),
            "--out",
            str(_file(t / "report.txt")),
            "--no-progress",
        ],
        2,
        "report.txt is a file: name a folder for report.json and quality.png",  # was [Errno 17] after scoring
        lambda t: [],
    ),
    Case(
        "report with --out in the data set",
        lambda t, d: [
            "label",
            "report",
            str(d["store"]),
            "--out",
            str(d["streets"] / "rep"),
            "--no-progress",
        ],
        2,
        "rep is inside the data set folder",
        lambda t: [],
    ),
    Case(
        "report with a bad cost",
        lambda t, d: ["label", "report", str(d["store"]), "--cost", "mask=3", "--no-progress"],
        2,
        "--cost: unknown annotation cost mask; known: fine_frame_minutes",
        lambda t: [],
    ),
    Case(
        "report of a store naming synthetic data in another folder",
        lambda t, d: [
            "label",
            "report",
            _store(t, d, run={"format": "synthetic", "root": str(_folder(t / "victim")), "split": "train"}),
            "--out",
            str(t / "out"),
            "--no-progress",
        ],
        2,
        "synthetic.json: does not exist",
        lambda t: [t / "out", *[p for p in [t / "victim" / "leftImg8bit_sequence"]]],
    ),
    Case(
        "report of a store whose data set is gone",
        lambda t, d: [
            "label",
            "report",
            _store(t, d, run={"format": "cityscapes", "root": str(t / "gone"), "split": "train"}),
            "--out",
            str(t / "out"),
            "--no-progress",
        ],
        2,
        "data set folder named by",
    ),
    # ---- label import / export: annotation tools' files
    Case(
        "malformed CVAT XML",
        lambda t, d: _tool_import(t, "cvat-video", "a.xml", "<annotations><track id='0'"),
        2,
        "a.xml: not valid XML",
    ),
    Case(
        "malformed COCO JSON",
        lambda t, d: _tool_import(t, "coco", "a.json", '{"images": [}'),
        2,
        "a.json: not valid JSON",
    ),
    Case(
        "a CVAT box leaving the frame",
        lambda t, d: _tool_import(t, "cvat-video", "a.xml", _cvat(_BOX.format(frame=2, x0=60, x1=70.5))),
        2,
        "a.xml: track 3 (frame 2): point (70.5, 9) lies outside the 64×48 frame",
    ),
    Case(
        "a COCO RLE of another size than its image",
        lambda t, d: _tool_import(t, "coco", "a.json", _coco({"size": [10, 10], "counts": [0, 100]})),
        2,
        "annotation 12 (image 1): mask of 10×10 does not fit the 64×48 frame",
    ),
    Case(  # the RLE is the frame's size: the image's declared width is what is wrong, not the RLE
        "a COCO image whose declared size is not its frame's, with an RLE of the frame's size",
        lambda t, d: _tool_import(
            t, "coco", "a.json", _coco({"size": [48, 64], "counts": [0, 48 * 64]}, width=32)
        ),
        2,
        "a.json: image 1 (squares-a/00000.jpg): the file says 32×48, the frame ",
    ),
    Case(
        "a COCO RLE whose size is no size",
        lambda t, d: _tool_import(t, "coco", "a.json", _coco({"size": [48], "counts": [0, 48]})),
        2,
        "annotation 12 (image 1): RLE size [48] is not [height, width]",
    ),
    Case(
        "a CVAT mask whose runs do not fill its box",
        lambda t, d: _tool_import(
            t,
            "cvat-video",
            "a.xml",
            _cvat('<mask frame="1" outside="0" rle="1, 2" left="0" top="0" width="3" height="2"/>'),
        ),  # fmt: skip
        2,
        "track 3 (frame 1): mask rle: its runs add up to 3 pixels, its box has 3×2",
    ),
    Case(
        "a --background that names no class (on an object data set any shape's label is an object's)",
        lambda t, d: _tool_import(
            t, "cvat-video", "a.xml", _cvat(_BOX.format(frame=0, x0=1, x1=5), "truck"), "--background", "sky"
        ),
        2,
        "--background: label 'sky' maps to no class; the classes are background, object",
    ),
    Case(
        "a --map to a class the data set lacks",
        lambda t, d: _tool_import(t, "coco", "a.json", _coco([[1, 1, 5, 1, 1, 5]]), "--map", "object=car"),
        2,
        "--map: 'object' maps to 'car', not a class: background, object",
    ),
    Case(
        "a CVAT frame past the clip's end",
        lambda t, d: _tool_import(
            t, "cvat-video", "a.xml", _cvat(_BOX.format(frame=12, x0=1, x1=5), size=20)
        ),
        2,
        "a.xml: frame 12 (track 3): past the end of clip squares-a (frames 0…9)",
    ),
    Case(
        "a COCO image that is no frame of the data set",
        lambda t, d: _tool_import(t, "coco", "a.json", _coco([[1, 1, 5, 1, 1, 5]], "squares-c/00000.jpg")),
        2,
        "image 1 (squares-c/00000.jpg): 'squares-c/00000.jpg' is no frame; its file name matches",
    ),
    Case(
        "export of a folder that is no label store",
        lambda t, d: [
            "label",
            "export",
            "--store",
            str(_folder(t / "empty")),
            "--tool",
            "coco",
            "--out",
            str(t / "out"),
        ],  # fmt: skip
        2,
        "is not a label store",
    ),
    Case(
        "export to CVAT for video of a store with several clips",
        lambda t, d: [
            "label",
            "export",
            "--store",
            str(d["store"]),
            "--tool",
            "cvat-video",
            "--out",
            str(t / "out"),
            "--frames-out",
            str(t / "frames"),
        ],
        2,
        "--clip: a cvat-video file holds one video; the store has clips",
        lambda t: [t / "out", t / "frames"],  # no frame file was written before the refusal
    ),
    # ---- data check
    Case(
        "check of a folder that does not exist",
        lambda t, d: ["data", "check", str(t / "nowhere"), "--no-progress"],
        1,
        "data set folder does not exist",
        lambda t: [],
    ),
    Case(
        "check of a folder of no known layout",
        lambda t, d: ["data", "check", str(_folder(t / "empty")), "--no-progress"],
        1,
        "no known data set layout found; formats tried",
        lambda t: [],
    ),
    # ---- zoo
    Case(
        "verify of a name nobody published",
        lambda t, d: ["zoo", "verify", "no-such-model"],
        1,
        "not a published name",
        lambda t: [],
    ),
    Case(
        "a card and index with an empty sha256",
        lambda t, d: ["zoo", "verify", "streets-hrnetv2-w18s", "--dir", _published(t, d, "")],
        1,
        "records sha256 '', which is not 64 lower-case hex",
        lambda t: [],
    ),
    Case(
        "a card and index with a short sha256",
        lambda t, d: ["zoo", "verify", "streets-hrnetv2-w18s", "--dir", _published(t, d, "2ad92500")],
        1,
        "records sha256 '2ad92500', which is not 64",
        lambda t: [],
    ),
    Case(
        "a sha256 that is not a string",
        lambda t, d: ["zoo", "verify", "streets-hrnetv2-w18s", "--dir", _published(t, d, 12)],
        1,
        "records sha256 12",
        lambda t: [],
    ),
    Case(
        "an index entry outside its folder",
        lambda t, d: [
            "zoo",
            "verify",
            "x",
            "--dir",
            _index(t, {"file": "../x.safetensors", "card": "x.json", "sha256": "0" * 64}),
        ],
        1,
        "names '../x.safetensors', which is not a file name inside",
        lambda t: [],
    ),
    Case(
        "an index that is not JSON",
        lambda t, d: ["zoo", "list", "--dir", str(_file(t / "zoo" / "index.json", "{no").parent)],
        2,
        "index.json: not valid JSON",
        lambda t: [],
    ),
    Case(
        "convert of a pickle with code in it",
        lambda t, d: ["zoo", "convert", "--from", "hrnet", str(_evil_checkpoint(t)), "--out", str(t / "out")],
        2,
        "frugalseg never unpickles",
        lambda t: [t / "out", t / "pwned"],
    ),
    Case(
        "publish into an --out that is a file (it had said only 'File exists')",
        lambda t, d: [
            "zoo",
            "publish",
            str(_file(t / "x.ckpt", "hello")),
            "--name",
            "x",
            "--out",
            str(_file(t / "out")),
        ],
        2,
        "error: --out: ",
        lambda t: [],
    ),
    Case(
        "convert of a folder (it had said 'weights file does not exist')",
        lambda t, d: ["zoo", "convert", "--from", "stm", str(t), "--out", str(t / "out")],
        2,
        ": a folder, not a weights file",
        lambda t: [t / "out"],
    ),
    Case(
        "publish of a file that is no checkpoint",
        lambda t, d: [
            "zoo",
            "publish",
            str(_file(t / "x.ckpt", "hello")),
            "--name",
            "x",
            "--out",
            str(t / "out"),
        ],
        2,
        "x.ckpt",
        lambda t: [t / "out"],
    ),
    # ---- fit / validate / predict
    Case(
        "fit on a data set root that does not exist",
        lambda t, d: _fit(t, "--data.root", str(t / "none"), "--trainer.fast_dev_run", "true"),
        2,
        "error: data.root: ",
        lambda t: [],
    ),
    Case(
        "fit with an unknown recipe",
        lambda t, d: _fit(t, "--data.recipe.name", "B4"),
        2,
        "error: data.recipe.name: unknown recipe 'B4'",
        lambda t: [],
    ),
    Case(
        "fit with an unknown loss",
        lambda t, d: _fit(t, "--model.losses", "{fine: ce, pseudo: phuber}"),
        2,
        "error: model.losses: unknown loss 'phuber'",
        lambda t: [],
    ),
    Case(
        "fit with a tau the robust loss cannot take",
        lambda t, d: _fit(
            t, "--model.losses", "{fine: ce, pseudo: phuber_ce}", "--model.loss_args", "{pseudo: {tau: 0.5}}"
        ),
        2,
        "error: model.loss_args: partially Huberised CE needs tau > 1",
        lambda t: [],
    ),
    Case(
        "fit with an unknown format",
        lambda t, d: _fit(t, "--data.root", str(d["streets"]), "--data.format", "kitti"),
        2,
        "data.format: unknown format 'kitti'",
        lambda t: [],
    ),
    Case(
        "fit with an unknown student",
        lambda t, d: _fit(t, "--model.student", "resnet9000"),
        2,
        "unknown model 'resnet9000'",
        lambda t: [],
    ),
    Case(
        "fit with pseudo labels from a folder that is no store",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--data.labels.pseudo",
            str(_folder(t / "empty")),
            "--data.augment.crop_size",
            "[64,128]",
            "--trainer.max_steps",
            "1",
        ),
        2,
        "is not a label store",
        lambda t: [t / "runs"],
    ),
    Case(  # Lightning's ValueError had been a 30-line traceback from configure_optimizers
        "fit validating every 5000 batches",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--data.augment.crop_size",
            "[32,64]",
            "--trainer.val_check_interval",
            "5000",
        ),
        2,
        "error: --trainer.val_check_interval: 5000 training batches between validations, but an epoch has 3: "
        "give at most 3, or --trainer.check_val_every_n_epoch null to count batches across epochs",
        lambda t: [t / "runs"],
    ),
    Case(
        "fit with a crop that cannot fit in memory",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--data.recipe.name",
            "N1",
            "--data.augment.crop_size",
            "[16384,16384]",
            "--data.loader.load_scale",
            "256",
            "--trainer.fast_dev_run",
            "true",
        ),
        2,
        "data.augment.crop_size: a training batch of 4 × 3 frames of 16384×16384 needs at least",
        lambda t: [],
    ),
    Case(
        "fit with synthetic.json that is not JSON",
        lambda t, d: _fit(
            t,
            "--data.root",
            _copy(t, d, lambda r: (r / "synthetic.json").write_text("{oops", encoding="utf-8")),
            "--trainer.fast_dev_run",
            "true",
        ),
        2,
        "synthetic.json: not valid JSON",
        lambda t: [],
    ),
    Case(
        "fit resuming from a pickle with code in it",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--ckpt_path",
            str(_evil_checkpoint(t)),
            "--trainer.fast_dev_run",
            "true",
        ),
        2,
        "frugalseg never unpickles",
        lambda t: [t / "pwned"],
    ),
    Case(
        "fit resuming from a loopback URL serving a pickle",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--ckpt_path",
            f"{_serve(_evil_checkpoint(t).parent)}/evil.ckpt",
            "--trainer.fast_dev_run",
            "true",
        ),
        2,
        "frugalseg never unpickles",
        lambda t: [t / "pwned"],
    ),
    Case(
        "fit with --weights_only false",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--ckpt_path",
            str(_evil_checkpoint(t)),
            "--weights_only",
            "false",
        ),
        2,
        "--weights_only: frugalseg reads checkpoints with weights_only=True only",
        lambda t: [t / "pwned"],
    ),
    Case(
        "fit resuming 'last' with no checkpoint",
        lambda t, d: _fit(
            t, "--data.root", str(d["streets"]), "--ckpt_path", "last", "--trainer.fast_dev_run", "true"
        ),
        2,
        "'last' asked to resume, but no last.ckpt was found (looked in",
        lambda t: [],
    ),
    Case(
        "validate of the 'last' checkpoint without a logger, which keeps the run's version folders",
        lambda t, d: [
            "validate",
            *_fit(t, "--data.root", str(d["streets"]), "--ckpt_path", "last", *NO_LOGGER)[1:],
        ],
        2,
        "'last' asked for, but no last.ckpt was found (looked in",
        lambda t: [],
    ),
    Case(
        "validate of the 'best' checkpoint with no run",
        lambda t, d: ["validate", *_fit(t, "--data.root", str(d["streets"]), "--ckpt_path", "best")[1:]],
        2,
        "'best' asked for (the run's last.ckpt files name it), but no last.ckpt was found (looked in",
        lambda t: [],
    ),
    Case(
        "test of a split the data set lacks",
        lambda t, d: ["test", *_fit(t, "--data.root", str(d["streets"]), "--data.splits.test", "tset")[1:]],
        2,
        "error: data.splits.test: no split 'tset' in ",
        lambda t: [],
    ),
    Case(
        "fit resuming from a file that does not exist",
        lambda t, d: _fit(t, "--data.root", str(d["streets"]), "--ckpt_path", str(t / "gone.ckpt")),
        2,
        "gone.ckpt: checkpoint file does not exist",
        lambda t: [],
    ),
    Case(
        "fit resuming from a folder",
        lambda t, d: _fit(t, "--data.root", str(d["streets"]), "--ckpt_path", str(_folder(t / "runs"))),
        2,
        "runs is a folder: give a checkpoint file in it, or 'last'",
        lambda t: [],
    ),
    Case(
        "predict on a file that is no image or video",
        lambda t, d: [
            "predict",
            "--config",
            str(CONFIG),
            "--data.root",
            str(d["streets"]),
            "--data.predict.frames",
            str(_file(t / "notes.txt", "a list of frames")),
            "--trainer.default_root_dir",
            str(t / "runs"),
        ],
        2,
        "notes.txt: not an image, a video or a folder of frames to predict (a file of .png, .jpg",
        lambda t: [],
    ),
    Case(
        "predict from a folder that does not exist",
        lambda t, d: [
            "predict",
            "--config",
            str(CONFIG),
            "--data.root",
            str(d["streets"]),
            "--data.predict.frames",
            str(t / "nothing"),
            "--trainer.default_root_dir",
            str(t / "runs"),
        ],
        2,
        "folder of frames to predict does not exist",
        lambda t: [],
    ),
    Case(
        "label propagate on a truncated video",
        lambda t, d: _propagate_video(t, _video(t, cut=True)),
        2,
        "clip.mp4: the file ends early or is damaged (truncated): frame ",
    ),
    Case(
        "label propagate on a file that is not a video",
        lambda t, d: _propagate_video(t, str(_file(t / "video" / "clip.mp4", "not a video at all"))),
        2,
        "clip.mp4: cannot open video (corrupt, truncated or not a video",
    ),
    Case(
        "label propagate with a mask past the video's end",
        lambda t, d: _propagate_video(t, _video(t, masks=(0, 12))),
        2,
        "00012.png: mask of frame 12, past the end of clip.mp4: the video has 10 frames (0…9, counted by "
        "demuxing)",
    ),
    Case(
        "label propagate on a video whose header claims more frames than it holds",
        lambda t, d: _propagate_video(t, _video(t, suffix=".avi", masks=(0, 15), claims=20)),
        2,
        "00015.png: mask of frame 15, past the end of clip.avi: the video has 10 frames (0…9, counted by "
        "demuxing; its header claims 20)",
    ),
    Case(
        "predict a truncated video",
        lambda t, d: [
            "predict",
            "--config",
            str(CONFIG),
            "--data.root",
            str(d["streets"]),
            "--data.predict.frames",
            _video(t, cut=True),
            "--trainer.default_root_dir",
            str(t / "runs"),
        ],  # fmt: skip
        2,
        "clip.mp4: the file ends early or is damaged (truncated): frame ",
        lambda t: [t / "runs"],
    ),
    Case(
        "vos fit on a folder that does not exist",
        lambda t, d: [
            "vos",
            "fit",
            "--data.root",
            str(t / "nowhere"),
            "--trainer.fast_dev_run",
            "true",
            "--trainer.default_root_dir",
            str(t / "runs"),
        ],
        2,
        "error: data.root: ",
        lambda t: [],
    ),
    Case(
        "validate of an STM checkpoint with a semantic command",
        lambda t, d: ["validate", *_fit(t, "--ckpt_path", str(_checkpoint_of(t, "stm_r18")))[1:]],
        2,
        "last.ckpt holds a vos student (stm_r18), and this command runs semantic ones: use it with "
        "`frugalseg vos validate`",
        lambda t: [t / "runs"],
    ),
    Case(
        "fit with a teacher whose weights file is missing",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--model.class_path",
            "frugalseg.lightning_modules.DistillationModule",
            "--model.init_args.mfd_weight",
            "0",
            "--data.augment.crop_size",
            "[32,64]",
            "--model.init_args.teacher",
            "deeplabv3plus_mbv2",
            "--model.init_args.teacher_weights",
            str(t / "runs/weclick_teacher/checkpoints/last.ckpt"),
        ),
        2,
        "error: model.teacher_weights: ",
        lambda t: [t / "runs"],
    ),
    Case(
        "fit with the STM config, which `vos fit` runs",
        lambda t, d: [
            "fit",
            "--config",
            str(CONFIG.parent / "stm_davis.yaml"),
            "--trainer.fast_dev_run",
            "true",
        ],
        2,
        "stm_davis.yaml trains a vos student (stm_r18), and this command runs semantic ones: run it with "
        "`frugalseg vos fit --config ",
        lambda t: [],
    ),
    Case(
        "fit with the semantic annotation loop's config",
        lambda t, d: ["fit", "--config", str(CONFIG.parent / "annotate" / "hvsa_paper.yaml")],
        2,
        "hvsa_paper.yaml is a config of the semantic annotation loop: run it with `frugalseg annotate "
        "semantic --config ",
        lambda t: [],
    ),
    Case(
        "predict with an STM checkpoint, which needs an object's mask",
        lambda t, d: ["predict", *_fit(t, "--ckpt_path", str(_checkpoint_of(t, "stm_r18")))[1:]],
        2,
        "last.ckpt holds a vos student (stm_r18), which segments a video from an object's mask on one of its "
        "frames, and `predict` takes frames alone: give that mask to `frugalseg annotate add --state DIR "
        "--format FORMAT --root ROOT --video VIDEO --frame N --mask FILE --engine stm --stm-model stm_r18 "
        "--stm-weights ",
        lambda t: [t / "runs"],
    ),
    Case(
        "predict with the STM config (it had named `vos predict`, which does not exist)",
        lambda t, d: ["predict", "--config", str(CONFIG.parent / "stm_davis.yaml")],
        2,
        "stm_davis.yaml trains a vos student (stm_r18), which segments a video from an object's mask on one "
        "of its frames, and `predict` takes frames alone: give that mask to `frugalseg annotate add --state "
        "DIR --format FORMAT --root ROOT --video VIDEO --frame N --mask FILE --engine stm --stm-model "
        "stm_r18 --stm-weights CKPT`, then `annotate export`",
        lambda t: [],
    ),
    Case(
        "vos validate of a semantic checkpoint",
        lambda t, d: [
            "vos",
            "validate",
            "--data.root",
            str(t),
            "--ckpt_path",
            str(_checkpoint_of(t, "tmanet_r18")),
        ],
        2,
        "last.ckpt holds a semantic student (tmanet_r18), and this command runs vos ones: use it with "
        "`frugalseg validate`",
        lambda t: [],
    ),
    Case(
        "fit with a config file that misspells a model argument",
        lambda t, d: _fit(t, "--data.root", str(d["streets"]), "--config", str(_file(t / "m.yaml", TYPO))),
        2,
        "error: model.studnet: VideoSegmentationModule takes no argument 'studnet' (in ",
        lambda t: [t / "runs"],
    ),
    Case(
        "fit with a config file that misspells a nested model argument (its 'did you mean' had not come)",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--config",
            str(_file(t / "m2.yaml", "model:\n  losess:\n    fine: ce\n")),
        ),
        2,
        "takes no argument 'losess' (in ",
        lambda t: [t / "runs"],
    ),
    *(
        Case(
            f"fit with {option} {value} ({before} had come)",
            lambda t, d, option=option, value=value: _fit(t, "--data.root", str(d["streets"]), option, value),
            2,
            said,
            lambda t: [t / "runs"],
        )
        for option, value, before, said in [
            (
                "--model.student_args",
                "{weights:x}",
                "a 17-line union dump",
                "error: model.student_args: VideoSegmentationModule takes dict or None there, got "
                "'{weights:x}'; a YAML mapping needs a space after each colon, as in '{weights: ID}'\n",
            ),
            (
                "--model.losses",
                "{fine:xx}",
                "'takes  there', its types lost at the first ] of dict[str, str | dict[str, float]]",
                "error: model.losses: VideoSegmentationModule takes dict or None there, got "
                "'{fine:xx}'; a YAML mapping needs a space after each colon, as in '{weights: ID}'\n",
            ),
            (
                "--model.lr",
                "abc",
                "a union dump",
                "error: model.lr: Not of type FinitePositiveFloat: could not convert string to float: "
                "'abc'\n",
            ),
            (
                "--data.num_frames",
                "1",
                "a 60-line traceback, exit 1,",
                "error: data.num_frames: TMANet needs num_frames ≥ 2 (memory frames + the current frame), "
                "got 1: give --data.num_frames 3, say, on the command line\n",
            ),
        ]
    ),  # fmt: skip
    Case(
        "vos fit with a config file that misspells a model argument",
        lambda t, d: ["vos", "fit", "--config", str(_file(t / "m.yaml", TYPO)), "--print_config"],
        2,
        "error: Group 'model' does not accept option 'studnet' (in ",
        lambda t: [],
    ),
]


def _tool_import(tmp: Path, tool: str, name: str, text: str, *options: str) -> list[str]:
    """``label import`` of the tool file ``name`` holding ``text`` into ``tmp/out``, on a tiny DAVIS set."""
    from data.fake_davis import write_moving_squares

    davis = write_moving_squares(tmp / "davis")
    export = _file(tmp / name, text)
    return ["label", "import", str(export), "--tool", tool, "--format", "davis", "--root", str(davis),
            "--out", str(tmp / "out"), *options]  # fmt: skip


_CVAT = (
    "<annotations><version>1.1</version><meta><task><name>squares-a</name><size>{size}</size>"
    "<start_frame>0</start_frame><stop_frame>{stop}</stop_frame><labels><label><name>object</name></label>"
    "</labels><original_size><width>64</width><height>48</height></original_size></task></meta>"
    '<track id="3" label="{label}">{shape}</track></annotations>'
)


def _cvat(shape: str, label: str = "object", size: int = 10) -> str:
    return _CVAT.format(shape=shape, label=label, size=size, stop=size - 1)


def _coco(segmentation: object, name: str = "squares-a/00000.jpg", width: int = 64) -> str:
    image = {"id": 1, "file_name": name, "width": width, "height": 48}
    annotation = {"id": 12, "image_id": 1, "category_id": 1, "segmentation": segmentation}
    return json.dumps(
        {"images": [image], "annotations": [annotation], "categories": [{"id": 1, "name": "object"}]}
    )


_BOX = '<box frame="{frame}" outside="0" keyframe="1" xtl="{x0}" ytl="4" xbr="{x1}" ybr="9"/>'


def _checkpoint_of(tmp: Path, student: str) -> Path:
    """A checkpoint whose hyper-parameters name ``student``; it is refused before its tensors are read."""
    path = tmp / "last.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"student": student}}, path)
    return path


def _file(path: Path, text: str | bytes = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def data(tiny_streets: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from frugalseg.zoo import packaged_checkpoints

    store = tmp_path_factory.mktemp("store") / "flow"
    assert main(_propagate(str(tiny_streets), "--offsets=1", "--out", str(store))) == 0
    return {"streets": tiny_streets, "store": store, "shipped": packaged_checkpoints()}


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name.replace(" ", "-"))
def test_bad_input_gets_one_clear_line_and_writes_nothing(case: Case, data, tmp_path, capsys):
    check_case(case, data, tmp_path, capsys)


def check_case(case: Case, data, tmp_path, capsys) -> None:
    """Run ``case``'s command line: no traceback, its exit code, its phrase, and none of its paths written."""
    argv = case.argv(tmp_path, data)
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse and jsonargparse end bad command lines this way
        code = exit.code
    out, err = capsys.readouterr()
    message = out + err
    assert "Traceback" not in message, message[-3000:]
    assert code == case.code, f"exit code {code}, expected {case.code}:\n{message[-2000:]}"
    assert case.phrase in message, message[-2000:]
    for path in case.absent(tmp_path):
        assert not path.exists(), f"{path} was written"


@pytest.mark.slow
def test_a_checkpoint_file_that_does_not_exist_is_the_one_line_printed(data, tmp_path):
    """Lightning's "Seed set to 0" and its devices' lines had come before the error."""
    gone = tmp_path / "gone.ckpt"
    argv = _fit(tmp_path, "--data.root", str(data["streets"]), "--ckpt_path", str(gone))
    run = subprocess.run(
        [sys.executable, "-m", "frugalseg", *argv], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 2
    assert (run.stdout + run.stderr).splitlines() == [
        f"error: --ckpt_path: {gone}: checkpoint file does not exist"
    ]


@pytest.mark.skipif(
    torch.cuda.is_available() or torch.backends.mps.is_available(),
    reason="a machine with a GPU runs the GPU trainer",
)
def test_a_gpu_trainer_on_a_machine_without_one_is_one_line(data, tmp_path, capsys):
    """Lightning's MisconfigurationException was a 40-line traceback, and came after the model was built (a
    teacher's weights looked up on the Hub for 23 s): refused before it, so a weights file missing too is not
    reached."""
    case = Case(
        "fit on a GPU on a machine without one",
        lambda t, d: _fit(
            t,
            "--data.root",
            str(d["streets"]),
            "--trainer.accelerator",
            "gpu",
            "--model.init_weights",
            str(t / "none.ckpt"),
        ),
        2,
        "--trainer: accelerator 'gpu', but this machine has no CUDA GPU torch can use: give "
        "--trainer.accelerator cpu (or auto)",
        lambda t: [t / "runs"],
    )
    check_case(case, data, tmp_path, capsys)


@pytest.mark.parametrize(
    ("option", "said"),
    [("losess.fine", "takes no argument 'losess' (did you mean model.losses.fine?)"),
     ("studnet", "takes no argument 'studnet' (did you mean model.student?)")],
)  # fmt: skip
def test_a_misspelt_model_argument_gets_its_nearest_even_when_nested(option, said):
    """``model.losess.fine`` had been matched whole against the arguments, so nothing came near it."""
    from frugalseg.cli.parser_errors import _unaccepted_init_arg

    module = "frugalseg.lightning_modules.segmentation.VideoSegmentationModule"
    assert (
        _unaccepted_init_arg("model", module, option, []) == f"model.{option}: VideoSegmentationModule {said}"
    )


def test_boxes_on_a_data_set_without_instance_classes_is_refused_before_sam_2(shared_data, tmp_path, capsys):
    """CamVid's classes hold no instance class: every label had been written all ignore, with exit 0."""
    (tmp_path / "s.pt").write_bytes(b"not read")
    case = Case(
        "boxes on camvid",
        lambda t, d: [
            "label",
            "boxes",
            "--format",
            "camvid",
            "--root",
            str(shared_data / "camvid_dev"),
            "--sam2-checkpoint",
            str(t / "s.pt"),
            "--out",
            str(t / "o"),
        ],  # fmt: skip
        2,
        "--format: camvid has no instance classes (objects a box holds, as Cityscapes' cars and people): "
        "nothing to box",
        lambda t: [t / "o"],
    )
    check_case(case, {}, tmp_path, capsys)
