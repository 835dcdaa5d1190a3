"""Labelling through Lightning's Trainer.predict (propagation and the anchor-frame commands): the
same labels as one process, each written once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import label_propagate_command
from PIL import Image

from frugalseg.autolabel import FlowPropagator, LabelStore, propagate_split
from frugalseg.autolabel.anchor_frames import label_anchor_frames
from frugalseg.autolabel.clicks import click_split
from frugalseg.autolabel.lightning_runner import propagate_with_trainer
from frugalseg.autolabel.refine import REFINE_CLASSES, PointRefiner, class_ids, refine_split
from frugalseg.autolabel.runs import TrainerOptions, anchored_clips, run_config
from frugalseg.cli import main
from frugalseg.data.formats import CityscapesFormat, get_format

from .sam_stand_ins import oracle_for

OFFSETS = [-2, -1, 1, 2]
EIGHT = class_ids(REFINE_CLASSES, CityscapesFormat.classes.names)


def store_pngs(root: Path, pattern: str = "*.png") -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob(pattern))}


def manifest_keys(root: Path) -> list[tuple]:
    records = [
        json.loads(line) for line in (root / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    return [(r["split"], r["clip_id"], r["offset"], r["kind"]) for r in records]


@pytest.fixture(scope="module")
def reference_store(tiny_streets: Path, tmp_path_factory) -> Path:
    """The labels one process writes with `propagate_split`."""
    root = tmp_path_factory.mktemp("reference") / "store"
    fmt = get_format("synthetic", tiny_streets)
    propagate_split(fmt, "train", LabelStore(root), OFFSETS, FlowPropagator(), progress=False)
    return root


def test_trainer_run_writes_the_labels_of_a_single_process_run(
    tiny_streets: Path, reference_store: Path, tmp_path: Path
) -> None:
    fmt = get_format("synthetic", tiny_streets)
    store = LabelStore(tmp_path / "store")
    summary = propagate_with_trainer(
        fmt, "train", store, OFFSETS, FlowPropagator(), accelerator="cpu", devices=1, progress=False
    )
    assert (summary.clips, summary.written, summary.skipped, summary.rank) == (4, 16, 0, 0)
    assert store_pngs(tmp_path / "store") == store_pngs(reference_store)
    again = propagate_with_trainer(
        fmt, "train", LabelStore(tmp_path / "store"), OFFSETS, FlowPropagator(), accelerator="cpu", devices=1
    )
    assert (again.written, again.skipped) == (0, 16)


@pytest.mark.slow
def test_two_ddp_processes_share_the_clips_and_write_each_label_once(
    tiny_streets: Path, reference_store: Path, tmp_path: Path
) -> None:
    """`label propagate --devices 2` on the CPU: each label once in the manifest, PNGs as one process."""
    out = tmp_path / "store"
    offsets = ",".join(map(str, OFFSETS))
    devices = ("--devices", "2", "--accelerator", "cpu")
    command = label_propagate_command(tiny_streets, out, "--offsets", offsets, *devices)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # one summary, from rank 0, counting the labels of both processes
    summaries = [line for line in done.stdout.splitlines() if line.startswith("label propagate:")]
    assert len(summaries) == 1, done.stdout
    assert summaries[0].startswith("label propagate: 4 clips, 16 labels written, 0 skipped")
    keys = manifest_keys(out)
    assert len(keys) == len(set(keys)) == 16
    assert store_pngs(out) == store_pngs(reference_store)


class DeviceRecorder:
    """Stands in for the network of a SAM predictor: records where the runner moves it."""

    def __init__(self) -> None:
        self.devices: list[torch.device] = []

    def to(self, device: torch.device) -> DeviceRecorder:
        self.devices.append(device)
        return self


def test_trainer_run_of_the_anchor_frames_writes_the_labels_of_refine_split(
    tiny_streets: Path, tmp_path: Path
) -> None:
    """refine_split through one CPU trainer process: the same PNGs as without, the predictor moved."""
    fmt = get_format("synthetic", tiny_streets)
    refine_split(
        fmt,
        "train",
        LabelStore(tmp_path / "one"),
        PointRefiner(oracle_for(fmt, "train"), EIGHT),
        progress=False,
    )
    sam = oracle_for(fmt, "train")
    sam.model = DeviceRecorder()
    options = TrainerOptions(accelerator="cpu", devices=1)
    store = LabelStore(tmp_path / "trainer")
    summary = refine_split(fmt, "train", store, PointRefiner(sam, EIGHT), progress=False, trainer=options)
    assert (summary.clips, summary.written, summary.skipped, summary.rank) == (4, 4, 0, 0)
    assert sam.images == 4 and sam.model.devices == [torch.device("cpu")]
    assert store_pngs(tmp_path / "trainer") == store_pngs(tmp_path / "one")
    assert len(store_pngs(tmp_path / "one")) == 4
    again = refine_split(
        fmt, "train", LabelStore(store.root), PointRefiner(sam, EIGHT), progress=False, trainer=options
    )
    assert (again.written, again.skipped) == (0, 4) and sam.images == 4


def test_label_clicks_through_a_trainer_writes_the_labels_of_click_split(
    tiny_streets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`label clicks --devices 1 --accelerator cpu` runs through the Lightning runner (the one the
    DDP propagation test above shares between two processes): PNGs and click JSON as `click_split`."""
    reference = tmp_path / "reference"
    click_split(get_format("synthetic", tiny_streets), "train", LabelStore(reference), progress=False)
    out = tmp_path / "store"
    command = ["label", "clicks", "--format", "synthetic", "--root", str(tiny_streets), "--out", str(out)]
    assert main([*command, "--no-progress", "--devices", "1", "--accelerator", "cpu"]) == 0
    summaries = [line for line in capsys.readouterr().out.splitlines() if line.startswith("label clicks:")]
    assert len(summaries) == 1 and summaries[0].startswith(
        "label clicks: 4 images, 4 labels written, 0 skipped"
    )
    keys = manifest_keys(out)
    assert len(keys) == len(set(keys)) == 4
    assert store_pngs(out) == store_pngs(reference) and len(store_pngs(reference)) == 4
    assert store_pngs(out, "*_clicks.json") == store_pngs(reference, "*_clicks.json")
    assert len(store_pngs(reference, "*_clicks.json")) == 4


def test_a_trainer_run_counts_only_the_labels_it_wrote(tiny_streets: Path, tmp_path: Path) -> None:
    """A label another run sharing the store records while this one makes it is not this run's: the
    count is the processes' own, reduced, not the store's labels read back afterwards."""
    fmt = get_format("synthetic", tiny_streets)
    other = LabelStore(tmp_path / "store")
    config = {"engine": "plain", "settings": {}}

    def make_label(clip) -> np.ndarray:
        label = np.zeros(Image.open(clip.frames[0]).size[::-1], np.uint8)
        if clip.clip_id == first.clip_id:  # another run gets there first
            with other.run(run_config(fmt, "train", **config)):
                other.write(clip, 0, "clicks", label, engine="plain", settings={}, source_offset=0, seconds=0)
        return label

    first = anchored_clips(fmt, "train", "fine")[0]
    summary = label_anchor_frames(
        fmt,
        "train",
        LabelStore(tmp_path / "store"),
        source="fine",
        kind="clicks",
        **config,
        make_label=make_label,
        progress=False,
        trainer=TrainerOptions(accelerator="cpu", devices=1),
    )
    assert (summary.clips, summary.written, summary.skipped) == (4, 3, 0)
    assert len(manifest_keys(tmp_path / "store")) == 4


@pytest.mark.slow
def test_two_processes_asked_for_one_clip_left_run_one(
    tiny_streets: Path, reference_store: Path, tmp_path: Path
) -> None:
    """`label propagate --devices 2` when the store lacks one clip only (the rest of a killed run):
    one process labels it, instead of the second process failing in Lightning's sampler."""
    out = tmp_path / "store"
    shutil.copytree(reference_store, out)
    records = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    last_clip = json.loads(records[-1])["clip_id"]
    kept = [line for line in records if json.loads(line)["clip_id"] != last_clip]
    (out / "manifest.jsonl").write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    offsets = ",".join(map(str, OFFSETS))
    devices = ("--devices", "2", "--accelerator", "cpu")
    command = label_propagate_command(tiny_streets, out, "--offsets", offsets, *devices)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "label propagate: 4 clips, 4 labels written, 12 skipped" in done.stdout
    assert store_pngs(out) == store_pngs(reference_store)


def test_the_labelling_run_leaves_its_process_group(tmp_path: Path) -> None:
    """Lightning leaves the group initialised; gloo's threads left to the interpreter's exit had aborted a
    `label propagate --devices 2` process once (SIGABRT) after its labels were written."""
    import torch.distributed as dist

    from frugalseg.autolabel.lightning_runner import label_with_trainer

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    labelled: list[int] = []
    options = TrainerOptions(accelerator="cpu", devices=1, strategy="ddp")
    try:
        run = label_with_trainer([3, 4], lambda i: labelled.append(i) or 1, options=options, progress=False)
        assert (run.rank, run.written, labelled) == (0, 2, [3, 4])
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():  # never left to the worker's later tests
            dist.destroy_process_group()
