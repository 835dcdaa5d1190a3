"""Training on your own video and the labels of an annotation session: a recipe that finds no label
says where the labels are, and ``--trainer.limit_val_batches 0`` trains a video that has no masks."""

from __future__ import annotations

import json
from pathlib import Path

import lightning  # noqa: F401  (imported before capsys captures stderr: its log handler keeps the stream)
import numpy as np
from data.fake_davis import palette_png, squares, write_moving_squares

from frugalseg.autolabel.runs import run_config
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import BAD_INPUT, main
from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.datamodules import datamodule

REPO = Path(__file__).resolve().parents[2]


def _video_and_store(tmp_path: Path, fine: int, seconds: dict[int, float] | None = None) -> tuple[Path, Path]:
    """A frame folder of 10 moving-squares frames, no masks, and a store of a ``fine`` label at frame
    ``fine`` and ``pseudo`` labels at every other frame (as `annotate export` writes), each frame booking
    its ``seconds`` (0 where not given)."""
    video = write_moving_squares(tmp_path / "davis") / "JPEGImages" / "480p" / "squares-a"
    fmt = get_format("video", video)
    (clip,) = fmt.clips("all")
    store = LabelStore(tmp_path / "labels")
    with store.run(run_config(fmt, "all", "annotation-session", {})):
        for t in range(10):
            kind = LabelKind.FINE if t == fine else LabelKind.PSEUDO
            label = (squares(t, 0) > 0).astype(np.uint8)
            store.write(clip, t, kind, label, engine="annotation-session", settings={}, source_offset=fine,
                        seconds=(seconds or {}).get(t, 0))  # fmt: skip
    return video, store.root


def _fit(video: Path, labels: Path, out: Path, *options: str) -> list[str]:
    return [
        "fit", "--config", str(REPO / "configs" / "demo.yaml"), "--data.format", "video",
        "--data.root", str(video),
        "--data.splits.train", "all", "--data.splits.val", "all", "--data.recipe.name", "F2s",
        "--data.recipe.budget", "2", "--data.labels.manual", str(labels), "--data.labels.pseudo", str(labels),
        "--model.student", "deeplabv3plus_mbv2", "--model.student_args", "{decoder_channels: 16}",
        "--data.num_frames", "1", "--data.augment.crop_size", "[32,32]", "--data.loader.num_workers", "0",
        "--data.temporal.consistency", "false", "--trainer.max_steps", "1",
        "--trainer.default_root_dir", str(out),
        "--trainer.logger.init_args.save_dir", str(out), *options,
    ]  # fmt: skip


def test_a_recipe_that_finds_no_anchor_label_names_the_frames_the_labels_are_at(tmp_path, capsys) -> None:
    """The person's whole mask at frame 5, boxes and clicks at frame 0: F2s drew nothing, and the run
    went on to a validation error about the data set's masks."""
    video, labels = _video_and_store(tmp_path, fine=5)
    assert main(_fit(video, labels, tmp_path / "run", "--trainer.limit_val_batches", "0")) == BAD_INPUT
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: data.recipe: recipe F2s drew no sample from split 'all': it trains on each clip's fine "
        "label at its anchor frame (offset 0: a video's first frame, DAVIS's first, Cityscapes' gtFine "
        "frame), and no clip has one; the fine labels given are at other frames (squares-a +5): a session's "
        "frame is a fine label where its objects were drawn or uploaded whole"
    )


def test_a_pseudo_recipe_on_a_video_without_anchor_labels_says_no_clip_has_one(tmp_path, capsys) -> None:
    """Its pseudo-labels are made for the clips drawn: none was drawn, and the run had stopped at "label store
    folder does not exist", a cache folder the person never named."""
    video, _ = _video_and_store(tmp_path, fine=0)
    made = _fit(video, tmp_path / "none", tmp_path / "run", "--trainer.limit_val_batches", "0")
    command = [
        w
        for i, w in enumerate(made)
        if not {w, made[i - 1]} & {"--data.labels.manual", "--data.labels.pseudo"}
    ]
    assert main(command) == BAD_INPUT
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith(
            "error: data.recipe: recipe F2s drew no sample from split 'all': it trains on each clip's fine "
            "label at its anchor frame"
        )
    )


def test_a_video_without_masks_trains_on_its_session_labels_with_validation_off(
    tmp_path, capsys, monkeypatch
) -> None:
    """Validation reads the data set's own masks; a video has none, and ``limit_val_batches 0`` (Lightning's
    way to switch validation off) was refused for it."""
    video, labels = _video_and_store(tmp_path, fine=0, seconds={0: 45.0, 3: 12.0, 7: 3.0})
    assert main(_fit(video, labels, tmp_path / "run")) == BAD_INPUT
    none = f"error: data.splits.val: split 'all' of {video} has no manually labelled frame to evaluate on"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"{none} (scores read the data set's ground truth, not a label store)"
    )
    quick = ["--trainer.limit_val_batches", "0", "--trainer.fast_dev_run", "true"]
    assert main(_fit(video, labels, tmp_path / "run", *quick)) == BAD_INPUT  # it had blamed the store
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"{none} (scores read the data set's ground truth, not a label store); --trainer.fast_dev_run "
        "validates a batch whatever limit_val_batches says"
    )
    logged: list[str] = []
    monkeypatch.setattr(datamodule, "rank_zero_info", logged.append)
    assert main(_fit(video, labels, tmp_path / "run", "--trainer.limit_val_batches", "0")) == 0
    assert not any("pseudo-labels are made" in line for line in logged)  # a store given is read, not made
    (drawn,) = (tmp_path / "run").glob("**/samples.json")
    record = json.loads(drawn.read_text(encoding="utf-8"))
    assert [(s["clip_id"], s["offset"], s["kind"]) for s in record["samples"]] == [
        ("squares-a", 0, "fine"), ("squares-a", 1, "pseudo")
    ]  # fmt: skip
    # the session's booked seconds, not a fine frame's 90 min and 0 for labels it propagated and corrected
    cost = {"minutes": {"fine": 0.75, "pseudo": 0.25}, "total_hours": 1 / 60, "manual_frames": 1}
    assert record["cost"] == cost
    assert "recipe F2s: 2 samples, 1 manual frames, 1.0 min of annotation" in logged


def test_a_store_of_some_clips_is_drawn_from_those_alone(tmp_path, monkeypatch) -> None:
    """An annotation loop labels some videos of a data set: the recipe drew among every clip and failed at
    the first batch of one the store does not label ("has no pseudo label at offset +1")."""
    root = write_moving_squares(tmp_path / "davis")
    for folder in ("JPEGImages", "Annotations"):  # squares-b, one frame: no +1 (it had counted served)
        for path in sorted((root / folder / "480p" / "squares-b").iterdir())[1:]:
            path.unlink()
    fmt = get_format("davis", root)
    served = next(clip for clip in fmt.clips("train") if clip.clip_id == "squares-a")
    store = LabelStore(tmp_path / "labels")
    with store.run(run_config(fmt, "train", "annotation-loop", {})):
        label = (squares(1, 0) > 0).astype(np.uint8)
        store.write(
            served, 1, "pseudo", label, engine="annotation-loop", settings={}, source_offset=0, seconds=0
        )
    logged: list[str] = []
    monkeypatch.setattr(datamodule, "rank_zero_info", logged.append)
    argv = _fit(
        root, store.root, tmp_path / "run", "--data.labels.manual", "null", "--data.recipe.budget", "4"
    )
    argv[argv.index("video")] = "davis"
    argv[argv.index("--data.splits.train") + 1] = argv[argv.index("--data.splits.val") + 1] = "train"
    assert main(argv) == 0
    (drawn,) = (tmp_path / "run").glob("**/samples.json")
    samples = json.loads(drawn.read_text(encoding="utf-8"))["samples"]
    assert [(s["clip_id"], s["offset"], s["kind"]) for s in samples] == [
        ("squares-a", 0, "fine"), ("squares-a", 1, "pseudo")
    ]  # fmt: skip
    assert "recipe F2s draws among the 1 of the 2 clips of split 'train' whose pseudo-labels" in "\n".join(
        logged
    )


def test_a_store_without_the_recipe_s_offsets_names_the_command_that_makes_them(tmp_path, capsys) -> None:
    """It had said which offsets were missing and not how to make them (the clips' hint at their first batch
    names `label propagate`)."""
    video = tmp_path / "clip"
    video.mkdir()
    for t in range(6):
        palette_png(video / f"{t:05d}.png", squares(t, 0))
    fmt = get_format("video", video)
    store = LabelStore(tmp_path / "labels")
    (clip,) = fmt.clips("all")
    with store.run(run_config(fmt, "all", "annotation-session", {})):
        for t, kind in ((0, LabelKind.FINE), (3, LabelKind.PSEUDO)):
            label = (squares(t, 0) > 0).astype(np.uint8)
            store.write(
                clip, t, kind, label, engine="annotation-session", settings={}, source_offset=0, seconds=0
            )
    assert main(_fit(video, store.root, tmp_path / "run", "--trainer.limit_val_batches", "0")) == BAD_INPUT
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: data.labels.pseudo: the store holds no clip of split 'all' with pseudo-labels at every "
        "offset recipe F2s trains on: make them with `frugalseg label propagate --offsets=1 --out STORE` (it "
        "resumes a store)"
    )
