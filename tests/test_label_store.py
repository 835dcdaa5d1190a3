"""LabelStore: atomic PNG + manifest writes, resuming a killed run, run.json checks, attaching labels."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.autolabel import LabelStore, LabelStoreError, propagate_split
from frugalseg.datamodules.clips import Clip, LabelKind, LabelRef
from frugalseg.datamodules.io import read_label

SETTINGS = {"preset": "medium"}


def make_clip(root: Path, city: str, seq: int, num_frames: int = 5, anchor: int = 2, size=(8, 12)) -> Clip:
    """A Cityscapes-named clip of flat grey frames with a fine label (value ``seq``) at offset 0."""
    folder = root / "leftImg8bit_sequence" / "train" / city
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for index in range(num_frames):
        path = folder / f"{city}_{seq:06d}_{index:06d}_leftImg8bit.png"
        cv2.imwrite(str(path), np.full((*size, 3), 10 * index, np.uint8))
        frames.append(path)
    fine = root / "gtFine" / "train" / city / f"{city}_{seq:06d}_{anchor:06d}_gtFine_labelTrainIds.png"
    fine.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(fine), np.full(size, seq, np.uint8))
    clip = Clip(f"{city}_{seq:06d}", "train", frames, anchor)
    clip.add_label(0, LabelRef(fine, LabelKind.FINE))
    return clip


class FakeFormat:
    """The part of a data set format that `propagate_split` uses."""

    num_classes = 19

    def __init__(self, clips: list[Clip]) -> None:
        self._clips = clips
        self.root = Path("fake")

    def clips(self, split: str) -> list[Clip]:
        return [clip for clip in self._clips if clip.split == split]


class StubEngine:
    """Labels target index ``i`` with ``anchor label + i``; raises on call number ``fail_on`` (1-based)."""

    name = "stub"
    settings = SETTINGS

    def __init__(self, fail_on: int | None = None) -> None:
        self.calls = 0
        self.fail_on = fail_on

    def propagate(self, frames, anchor_index, anchor_label, targets):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("killed")
        return {t: (anchor_label + t).astype(np.uint8) for t in targets}


def write(store: LabelStore, clip: Clip, offset: int, value: int = 3) -> Path:
    return store.write(
        clip,
        offset,
        "pseudo",
        np.full((8, 12), value, np.uint8),
        engine="stub",
        settings=SETTINGS,
        source_offset=0,
        seconds=0.5,
    )


def test_write_names_file_after_frame_and_records_it(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "data", "aachen", 1)
    store = LabelStore(tmp_path / "store")
    label = np.arange(96, dtype=np.uint8).reshape(8, 12)
    path = store.write(
        clip, 1, LabelKind.PSEUDO, label, engine="stub", settings=SETTINGS, source_offset=0, seconds=1.25
    )
    assert path == tmp_path / "store" / "train" / "aachen" / "aachen_000001_000003_pseudo_labelTrainIds.png"
    assert np.array_equal(read_label(path), label)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left behind
    (record,) = [json.loads(line) for line in store.manifest_path.read_text().splitlines()]
    assert record["clip_id"] == "aachen_000001" and record["split"] == "train" and record["offset"] == 1
    assert (
        record["kind"] == "pseudo"
        and record["path"] == "train/aachen/aachen_000001_000003_pseudo_labelTrainIds.png"
    )
    assert record["engine"] == "stub" and record["settings"] == SETTINGS
    assert record["source_offset"] == 0 and record["seconds"] == 1.25 and record["time"]
    assert store.has("aachen_000001", 1, "pseudo") and not store.has("aachen_000001", -1, "pseudo")
    assert LabelStore(store.root).records() == [record]


def test_write_refuses_rewrite_and_bad_arrays(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "data", "aachen", 1)
    store = LabelStore(tmp_path / "store")
    write(store, clip, 1)
    with pytest.raises(LabelStoreError, match="already recorded"):
        write(store, clip, 1)
    with pytest.raises(LabelStoreError, match="uint8"):
        store.write(
            clip,
            2,
            "pseudo",
            np.zeros((8, 12), np.int64),
            engine="stub",
            settings=SETTINGS,
            source_offset=0,
            seconds=0.0,
        )
    assert len(store.records()) == 1


def test_killed_run_resumes_without_touching_finished_labels(tmp_path: Path) -> None:
    clips = [make_clip(tmp_path / "data", "aachen", seq) for seq in range(4)]
    fmt = FakeFormat(clips)
    store_root = tmp_path / "store"
    offsets = [-2, -1, 1, 2]
    with pytest.raises(RuntimeError, match="killed"):
        propagate_split(fmt, "train", LabelStore(store_root), offsets, StubEngine(fail_on=3), progress=False)
    first = LabelStore(store_root).records()
    assert len(first) == 2 * len(offsets)  # two clips done before the third call died
    before = {
        r["path"]: ((store_root / r["path"]).stat().st_mtime_ns, (store_root / r["path"]).read_bytes())
        for r in first
    }

    engine = StubEngine()
    summary = propagate_split(fmt, "train", LabelStore(store_root), offsets, engine, progress=False)
    assert (summary.clips, summary.written, summary.skipped) == (4, 8, 8)
    assert engine.calls == 2  # only the two unfinished clips were propagated
    for path, (mtime, data) in before.items():
        assert (store_root / path).stat().st_mtime_ns == mtime and (store_root / path).read_bytes() == data
    lines = store_root.joinpath("manifest.jsonl").read_text().splitlines()
    keys = [(r["clip_id"], r["offset"]) for r in map(json.loads, lines)]
    assert len(keys) == len(set(keys)) == 16
    # the stub's label for target index i (anchor at index 2 of the window) is anchor value + i
    store = LabelStore(store_root)
    assert all(
        read_label(store_root / r["path"])[0, 0] == int(r["clip_id"][-1]) + r["offset"] + 2
        for r in store.records()
    )
    assert propagate_split(fmt, "train", store, offsets, StubEngine(), progress=False).written == 0


def test_truncated_last_manifest_line_is_ignored_and_redone(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "data", "aachen", 1)
    store = LabelStore(tmp_path / "store")
    for offset in (-1, 1, 2):
        write(store, clip, offset)
    manifest = store.manifest_path
    manifest.write_bytes(manifest.read_bytes()[:-25])  # killed in the middle of the last record

    resumed = LabelStore(store.root)
    assert [r["offset"] for r in resumed.records()] == [-1, 1]
    assert not resumed.has(clip.clip_id, 2, "pseudo")
    write(resumed, clip, 2)
    lines = manifest.read_text().splitlines()
    assert [json.loads(line)["offset"] for line in lines] == [-1, 1, 2]


def test_whole_last_record_without_newline_is_kept(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "data", "aachen", 1)
    store = LabelStore(tmp_path / "store")
    write(store, clip, 1)
    store.manifest_path.write_bytes(store.manifest_path.read_bytes().rstrip(b"\n"))
    resumed = LabelStore(store.root)
    write(resumed, clip, 2)
    assert [r["offset"] for r in LabelStore(store.root).records()] == [1, 2]


def test_corrupt_middle_line_names_manifest(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "data", "aachen", 1)
    store = LabelStore(tmp_path / "store")
    write(store, clip, 1)
    store.manifest_path.write_text("{broken\n" + store.manifest_path.read_text())
    with pytest.raises(LabelStoreError, match=r"manifest\.jsonl: line 1"):
        LabelStore(store.root).records()


def test_run_json_mismatch_names_file_and_keys(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "store")
    config = {"engine": "flow", "settings": {"preset": "medium", "fb_alpha": 0.01}, "split": "train"}
    store.open_run(config)
    assert json.loads(store.run_path.read_text()) == config
    LabelStore(store.root).open_run(dict(config))  # same config: accepted
    with pytest.raises(LabelStoreError, match=r"run\.json.*settings") as err:
        LabelStore(store.root).open_run({**config, "settings": {"preset": "fast", "fb_alpha": 0.01}})
    assert "engine" not in str(err.value).split("(")[1]
    with pytest.raises(LabelStoreError, match="engine"):
        LabelStore(store.root).open_run({**config, "engine": "sam2"})


def test_attach_adds_label_refs_once(tmp_path: Path) -> None:
    clips = [make_clip(tmp_path / "data", "aachen", seq) for seq in range(2)]
    store = LabelStore(tmp_path / "store")
    paths = [write(store, clips[0], -1), write(store, clips[0], 1), write(store, clips[1], 2)]
    assert store.attach(clips) == 3
    assert clips[0].label(-1, LabelKind.PSEUDO) == LabelRef(paths[0], LabelKind.PSEUDO)
    assert clips[0].label(1, LabelKind.PSEUDO) == LabelRef(paths[1], LabelKind.PSEUDO)
    assert clips[1].label(2, LabelKind.PSEUDO) == LabelRef(paths[2], LabelKind.PSEUDO)
    assert clips[1].label(-1, LabelKind.PSEUDO) is None
    assert clips[0].label(0, LabelKind.FINE) is not None
    assert store.attach(clips) == 0
