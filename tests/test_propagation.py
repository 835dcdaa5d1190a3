"""FlowPropagator on clips with known motion, propagate_split on synthetic streets, and the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.autolabel import FlowPropagator, LabelStore, commands, propagate_split
from frugalseg.datamodules.clips import IGNORE_INDEX, LabelKind
from frugalseg.datamodules.formats import generate_synthetic_streets, get_format
from frugalseg.datamodules.io import DataError, read_label

ANCHOR = 3
OFFSETS = (-3, -2, -1, 1, 2, 3)


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth random grey texture (RGB) that DIS can match."""
    noise = np.random.default_rng(seed).uniform(0, 255, (height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    grey = ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def moving_square(motion=(3, 2), size=(96, 128), side=32):
    """7 frames: a textured square (class 1) moving by ``motion`` px/frame over a static background (0)."""
    height, width = size
    background, square = texture(height, width, 0), texture(side, side, 1)
    frames, labels = [], []
    for index in range(2 * ANCHOR + 1):
        x, y = 40 + motion[0] * (index - ANCHOR), 30 + motion[1] * (index - ANCHOR)
        frame, label = background.copy(), np.zeros(size, np.uint8)
        frame[y : y + side, x : x + side] = square
        label[y : y + side, x : x + side] = 1
        frames.append(frame)
        labels.append(label)
    return frames, labels


def test_moving_square_labels_follow_the_motion() -> None:
    """Exact agreement with the moved label on non-ignored pixels ≥ 0.99, coverage ≥ 0.9 at ±1…±3."""
    frames, labels = moving_square()
    out = FlowPropagator(occlusion="ignore").propagate(
        frames, ANCHOR, labels[ANCHOR], [ANCHOR + o for o in OFFSETS]
    )
    assert sorted(out) == [ANCHOR + o for o in OFFSETS]
    for offset in OFFSETS:
        index = ANCHOR + offset
        predicted, truth = out[index], labels[index]
        assert predicted.dtype == np.uint8 and predicted.shape == truth.shape
        valid = predicted != IGNORE_INDEX
        agreement = (predicted[valid] == truth[valid]).mean()
        print(f"square {offset:+d}: agreement {agreement:.4f} coverage {valid.mean():.3f}")
        assert agreement >= 0.99 and valid.mean() >= 0.9
        # the square itself is carried: most of its pixels keep class 1
        assert (predicted[truth == 1] == 1).mean() >= 0.8


def test_disoccluded_pixels_are_ignored() -> None:
    """Background revealed at a frame (covered by the square nearer the anchor) is mostly 255.

    DIS fills the revealed strip by smoothness; measured: 75–96 % of it ignored, 3–14 % wrongly
    given the square's class, the rest the right class by a chance background match.
    """
    frames, labels = moving_square()
    out = FlowPropagator(occlusion="ignore").propagate(
        frames, ANCHOR, labels[ANCHOR], [ANCHOR + o for o in OFFSETS]
    )
    results = []
    for offset in OFFSETS:
        step = 1 if offset > 0 else -1
        index = ANCHOR + offset
        disoccluded = (labels[index - step] == 1) & (labels[index] == 0)
        ignored = (out[index][disoccluded] == IGNORE_INDEX).mean()
        wrong = (out[index][disoccluded] == 1).mean()
        print(
            f"square {offset:+d}: {disoccluded.sum()} disoccluded pixels, "
            f"{ignored:.3f} ignored, {wrong:.3f} class 1"
        )
        results.append((ignored, wrong))
    assert min(ignored for ignored, _ in results) >= 0.7
    assert max(wrong for _, wrong in results) <= 0.15


def test_pixels_from_outside_the_frame_are_ignored() -> None:
    """Camera pan by 2 px/frame: at offset k the 2k columns that entered the view are all 255."""
    world = texture(80, 160, 2)
    world_label = (np.arange(160)[None, :] // 20 % 3 * np.ones((80, 1))).astype(np.uint8)
    frames = [world[:, 20 + 2 * t : 120 + 2 * t] for t in range(-ANCHOR, ANCHOR + 1)]
    truth = [world_label[:, 20 + 2 * t : 120 + 2 * t] for t in range(-ANCHOR, ANCHOR + 1)]
    out = FlowPropagator(occlusion="ignore").propagate(
        frames, ANCHOR, truth[ANCHOR], [ANCHOR + o for o in OFFSETS]
    )
    for offset in OFFSETS:
        predicted = out[ANCHOR + offset]
        entered = predicted[:, -2 * offset :] if offset > 0 else predicted[:, : 2 * -offset]
        assert (entered == IGNORE_INDEX).all(), (
            f"offset {offset:+d}: pixels from outside the frame kept a label"
        )
        valid = predicted != IGNORE_INDEX
        assert (predicted[valid] == truth[ANCHOR + offset][valid]).mean() >= 0.99


def test_flow_computed_once_per_pair_and_only_up_to_farthest_target() -> None:
    frames, labels = moving_square()
    propagator = FlowPropagator(occlusion="ignore")
    calls: list[tuple[int, int]] = []
    ids = {id(frame): index for index, frame in enumerate(frames)}
    flow = propagator.flow
    propagator.flow = lambda a, b: calls.append((ids[id(a)], ids[id(b)])) or flow(a, b)
    propagator.propagate(frames, ANCHOR, labels[ANCHOR], [ANCHOR + 2, ANCHOR - 1])
    assert sorted(calls) == sorted([(4, 3), (3, 4), (5, 4), (4, 5), (2, 3), (3, 2)])


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_streets(
        tmp_path_factory.mktemp("synthetic"), clips_per_split={"train": 2}, seed=0
    )


def test_synthetic_streets_agree_with_sequence_ground_truth(synthetic_root: Path, tmp_path: Path) -> None:
    """Pseudo labels at ±1/±5/±10 written by `propagate_split` agree with the per-frame ground truth."""
    fmt = get_format("synthetic", synthetic_root)
    store = LabelStore(tmp_path / "store")
    offsets = [-10, -5, -1, 1, 5, 10]
    summary = propagate_split(
        fmt, "train", store, offsets, FlowPropagator(occlusion="ignore"), progress=False
    )
    assert (summary.clips, summary.written, summary.skipped) == (2, 12, 0)
    clips = fmt.clips("train")
    assert store.attach(clips) == 12
    bounds = {1: (0.995, 0.95), 5: (0.99, 0.9), 10: (0.99, 0.85)}  # (agreement, coverage) lower bounds
    for offset in offsets:
        agree = labelled = total = 0
        for clip in clips:
            truth = read_label(fmt.sequence_ground_truth(clip)[offset])
            predicted = read_label(clip.label(offset, LabelKind.PSEUDO).path)
            valid = (predicted != IGNORE_INDEX) & (truth != IGNORE_INDEX)
            agree += int((predicted[valid] == truth[valid]).sum())
            labelled += int(valid.sum())
            total += int((truth != IGNORE_INDEX).sum())
        print(f"synthetic {offset:+d}: agreement {agree / labelled:.4f} coverage {labelled / total:.3f}")
        min_agreement, min_coverage = bounds[abs(offset)]
        assert agree / labelled >= min_agreement and labelled / total >= min_coverage


def test_offset_outside_clip_names_clip_and_writes_nothing(synthetic_root: Path, tmp_path: Path) -> None:
    fmt = get_format("synthetic", synthetic_root)
    first = fmt.clips("train")[0]
    with pytest.raises(DataError, match=rf"clip {first.clip_id}.*offset \+11"):
        propagate_split(
            fmt, "train", LabelStore(tmp_path / "store"), [1, 11], FlowPropagator(), progress=False
        )
    assert not (tmp_path / "store").exists()


def test_clip_with_too_few_frames_is_refused(synthetic_root: Path, tmp_path: Path) -> None:
    fmt = get_format("synthetic", synthetic_root)
    clips = fmt.clips("train")
    del clips[1].frames[-3:]  # the second clip lost its last frames: +8 is beyond it

    class Cut:
        num_classes = fmt.num_classes

        def clips(self, split: str):
            return clips

    with pytest.raises(DataError, match=rf"clip {clips[1].clip_id}.*offset \+8.*27 frames"):
        propagate_split(
            Cut(), "train", LabelStore(tmp_path / "store"), [-2, 8], FlowPropagator(), progress=False
        )
    assert not (tmp_path / "store").exists()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="frugalseg")
    commands.register(top.add_subparsers(dest="group", required=True))
    return top


def test_cli_propagates_and_resumes(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = [
        "label",
        "propagate",
        "--format",
        "synthetic",
        "--root",
        str(synthetic_root),
        "--split",
        "train",
        "--out",
        str(tmp_path / "store"),
        "--k",
        "1",
        "--preset",
        "fast",
        "--no-progress",
    ]
    args = parser().parse_args(argv)
    assert args.func(args) == 0
    assert "2 clips, 4 labels written, 0 skipped" in capsys.readouterr().out
    args = parser().parse_args(argv)
    assert args.func(args) == 0
    assert "0 labels written, 4 skipped" in capsys.readouterr().out
    args = parser().parse_args(argv[:-3] + ["--preset", "medium", "--no-progress"])
    assert args.func(args) == 1
    assert "run.json" in capsys.readouterr().err


def test_cli_sam2_without_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = parser().parse_args(
        [
            "label",
            "propagate",
            "--format",
            "synthetic",
            "--root",
            str(tmp_path),
            "--out",
            str(tmp_path / "store"),
            "--offsets",
            "-10,10",
            "--engine",
            "sam2",
        ]
    )
    assert args.offsets == [-10, 10]
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "--sam2-checkpoint" in err
    assert not (tmp_path / "store").exists()


def test_k_defaults_to_ten_each_way_and_excludes_offsets(tmp_path: Path, capsys) -> None:
    base = ["label", "propagate", "--format", "synthetic", "--root", str(tmp_path), "--out", str(tmp_path)]
    args = parser().parse_args(base)
    assert (args.offsets, args.k) == (None, None)
    offsets = commands.propagation_offsets(args)
    assert offsets == [-1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6, -7, 7, -8, 8, -9, 9, -10, 10]
    assert commands.propagation_offsets(parser().parse_args([*base, "--k", "2"])) == [-1, 1, -2, 2]
    assert commands.propagation_offsets(parser().parse_args([*base, "--offsets", "-10,10"])) == [-10, 10]
    for both in (["--k", "10", "--offsets", "-1,1"], ["--offsets", "-1,1", "--k", "3"]):
        with pytest.raises(SystemExit):
            parser().parse_args([*base, *both])
        assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["label", "propagate", "--help"])
    assert "default without --offsets: 10" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("engine", ["flow", "sam2"])
def test_a_split_without_fine_labels_is_an_error_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture, engine: str
) -> None:
    """A labelless split (one image in leftImg8bit/test): library and CLI refuse it, SAM 2 is never loaded."""
    root, out = tmp_path / "data", tmp_path / "store"
    folder = root / "leftImg8bit" / "test" / "city"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "city_000000_000019_leftImg8bit.png"), np.zeros((8, 16, 3), np.uint8))
    problem = f"{root}: split 'test' has 1 clip(s), none with a fine label on its anchor frame"
    problem += "; nothing to label"
    with pytest.raises(DataError) as caught:
        propagate_split(get_format("cityscapes", root), "test", LabelStore(out), [1], FlowPropagator())
    assert str(caught.value) == problem and caught.value.path == root and not out.exists()
    argv = ["label", "propagate", "--format", "cityscapes", "--root", str(root), "--split", "test"]
    argv += ["--out", str(out), "--engine", engine, "--no-progress"]
    # a checkpoint that does not exist: loading SAM 2 would fail with another message
    args = parser().parse_args([*argv, "--sam2-checkpoint", str(tmp_path / "missing.pt")])
    assert args.func(args) == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: {problem}\n" and captured.out == ""
    assert not out.exists()
