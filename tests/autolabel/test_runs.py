"""What every labelling run shares: a split with nothing to label is refused, naming the data set, the
split and the label kind, before a store is written or SAM 2 loaded; once per code path and per command."""

from __future__ import annotations

from pathlib import Path

import pytest
from data.fake_cityscapes import write_still

from frugalseg.autolabel import FlowPropagator, LabelStore, propagate_split, sam2_loading
from frugalseg.autolabel.clicks import click_split
from frugalseg.autolabel.lightning_runner import propagate_with_trainer
from frugalseg.autolabel.runs import TrainerOptions
from frugalseg.cli import main
from frugalseg.data.formats import get_format
from frugalseg.errors import DataError

NOTHING_TO_LABEL = (
    "split 'test' has 1 clip(s), none with a {kind} label on its anchor frame (offset 0: a video's first "
    "frame, DAVIS's first, Cityscapes' gtFine frame); nothing to label"
)

LIBRARY = {  # the three ways a run starts: clicks stands for every anchor-frame command (boxes, refine)
    "propagate_split": lambda fmt, store: propagate_split(fmt, "test", store, [1], FlowPropagator()),
    "propagate_with_trainer": lambda fmt, store: propagate_with_trainer(
        fmt, "test", store, [1], FlowPropagator(), devices=1
    ),
    "label_anchor_frames": lambda fmt, store: click_split(fmt, "test", store, progress=False),
}


@pytest.mark.parametrize("run", LIBRARY.values(), ids=LIBRARY.keys())
def test_a_split_without_fine_labels_is_an_error_before_anything_is_written(run, tmp_path: Path) -> None:
    """A labelless split (one image in leftImg8bit/test, like the real Cityscapes test split)."""
    root, out = write_still(tmp_path / "data"), tmp_path / "store"
    with pytest.raises(DataError) as caught:
        run(get_format("cityscapes", root), LabelStore(out))
    assert str(caught.value) == f"{root}: {NOTHING_TO_LABEL.format(kind='fine')}"
    assert caught.value.path == root and not out.exists()


COMMANDS = {  # command line, label kind it starts from
    "propagate-flow": (["propagate", "--engine", "flow"], "fine"),
    "propagate-sam2": (["propagate", "--engine", "sam2", "--sam2-checkpoint", "{missing}"], "fine"),
    "clicks": (["clicks"], "fine"),
    "boxes": (["boxes", "--sam2-checkpoint", "{missing}"], "fine"),
    "refine-coarse": (["refine-coarse", "--sam2-checkpoint", "{missing}"], "coarse"),
}


@pytest.mark.parametrize(("command", "kind"), COMMANDS.values(), ids=COMMANDS.keys())
def test_each_command_refuses_a_split_with_nothing_to_label_before_loading_sam2(
    command: list[str], kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """One line on stderr, exit code 2, no store, SAM 2 never built; refine-coarse gets a split whose
    still has a fine label (as cityscapes_tiny) but no coarse one."""
    built = []
    record = lambda *args, **kwargs: built.append(args)
    monkeypatch.setattr(sam2_loading, "build_sam2_image_predictor", record)
    monkeypatch.setattr(sam2_loading, "build_sam2_video_predictor", record)
    root, out = write_still(tmp_path / "data", fine=kind == "coarse"), tmp_path / "store"
    # a checkpoint that does not exist: loading SAM 2 would fail with another message
    options = [option.format(missing=tmp_path / "missing.pt") for option in command[1:]]
    argv = ["label", command[0], "--format", "cityscapes", "--root", str(root), "--split", "test"]
    assert main([*argv, *options, "--out", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {root}: {NOTHING_TO_LABEL.format(kind=kind)}\n" and captured.out == ""
    assert built == [] and not out.exists()


def test_no_more_processes_than_work_items() -> None:
    """Lightning's distributed sampler refuses a process without an item: a count of devices is cut
    to what the work keeps busy (per node); ``auto`` is left alone."""
    options = TrainerOptions(accelerator="cpu", devices=2)
    assert options.for_work(1) == TrainerOptions(accelerator="cpu", devices=1)
    assert options.for_work(2) is options and options.for_work(5) is options
    assert TrainerOptions(devices=4, num_nodes=2).for_work(6).devices == 3
    assert TrainerOptions(devices="2").for_work(1).devices == 1  # as the command line gives it
    assert TrainerOptions(devices="auto").for_work(1).devices == "auto"
    assert TrainerOptions(devices="0,1").for_work(1).devices == "0,1"


def test_held_ctrl_cs_are_raised_once_when_the_block_ends() -> None:
    import os
    import signal

    from frugalseg.autolabel.runs import interrupts_held

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest-xdist's workers ignore it
    reached = []
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_held("stopping") as noted:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # a second press: the work under way still ends whole
            reached.append(len(noted))
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert reached == [2]


def test_a_second_ctrl_c_stops_at_once_where_the_work_runs_on_this_thread() -> None:
    import os
    import signal

    from frugalseg.autolabel.runs import interrupts_held

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest-xdist's workers ignore it
    reached = []
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_held("stopping", second_stops=True) as noted:
            os.kill(os.getpid(), signal.SIGINT)
            reached.append(len(noted))  # the first is noted, the block goes on
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("after the second")  # never: the second stops at once
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert reached == [1]


def test_a_video_whose_masks_miss_its_first_frame_names_the_frames_they_are_of(tmp_path: Path) -> None:
    """A masks folder with frame 3's mask alone had been told "none with a fine label on its anchor frame"."""
    import cv2
    import numpy as np

    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for t in range(5):
        cv2.imwrite(str(frames / f"{t:05d}.png"), np.full((8, 8, 3), t, np.uint8))
    cv2.imwrite(str(masks / "00003.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(
        DataError, match=r"nothing to label; its fine labels are at other frames \(frames \+3\)$"
    ):
        propagate_split(
            get_format("video", frames, masks=masks), "all", LabelStore(tmp_path / "s"), [1], FlowPropagator()
        )
