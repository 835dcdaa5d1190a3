"""LabelStore: atomic PNG + manifest writes, resuming a killed run, run.json checks, attaching labels."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import label_propagate_command
from data.fake_cityscapes import fine_path, frame_path, write_snippets

from frugalseg.autolabel import LabelStore, LabelStoreError, propagate_split
from frugalseg.autolabel.propagate import PropagationEngine
from frugalseg.autolabel.store import confidence_path, side_json_path
from frugalseg.data.classes import CITYSCAPES
from frugalseg.data.clips import Clip, LabelKind, LabelRef
from frugalseg.data.formats import Format
from frugalseg.data.io import read_label, whole_image

SETTINGS = {"preset": "medium"}


def make_clip(root: Path, city: str, seq: int, num_frames: int = 5, anchor: int = 2, size=(8, 12)) -> Clip:
    """A Cityscapes-named clip of flat grey frames (10 × frame number) with a fine label (value ``seq``)
    on frame ``anchor``, offset 0."""
    write_snippets(
        root,
        (anchor,),
        numbers=range(num_frames),
        city=city,
        seq=seq,
        size=size,
        frame=lambda number: np.full((*size, 3), 10 * number, np.uint8),
        label=np.full(size, seq, np.uint8),
    )
    frames = [frame_path(root, number, city=city, seq=seq) for number in range(num_frames)]
    clip = Clip(f"{city}_{seq:06d}", "train", frames, anchor)
    clip.add_label(0, LabelRef(fine_path(root, anchor, city=city, seq=seq), LabelKind.FINE))
    return clip


class FakeFormat(Format):
    """A data set format that serves the given clips (Cityscapes classes, no folder)."""

    name = "cityscapes"
    classes = CITYSCAPES

    def __init__(self, clips: list[Clip]) -> None:
        self._clips = clips
        self.root = Path("fake")

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        return False

    def splits(self) -> list[str]:
        return sorted({clip.split for clip in self._clips})

    def scan(self, split: str) -> tuple[list[Clip], list]:
        return [clip for clip in self._clips if clip.split == split], []


class StubEngine(PropagationEngine):
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
    (record,) = [json.loads(line) for line in store.manifest_path.read_text(encoding="utf-8").splitlines()]
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
    lines = store_root.joinpath("manifest.jsonl").read_text(encoding="utf-8").splitlines()
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
    lines = manifest.read_text(encoding="utf-8").splitlines()
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
    store.manifest_path.write_text(
        "{broken\n" + store.manifest_path.read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(LabelStoreError, match=r"manifest\.jsonl: line 1"):
        LabelStore(store.root).records()


def test_run_json_mismatch_names_file_and_keys(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "store")
    config = {"engine": "flow", "settings": {"preset": "medium", "fb_alpha": 0.01}, "split": "train"}
    store.open_run(config)
    assert json.loads(store.run_path.read_text(encoding="utf-8")) == config
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


def test_a_manifest_path_outside_the_store_is_refused(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "data", "aachen", 1)
    store = LabelStore(tmp_path / "store")
    write(store, clip, 1)
    record = json.loads(store.manifest_path.read_text(encoding="utf-8"))
    for outside in ("../x.png", "/etc/passwd", "train/../../x.png"):
        store.manifest_path.write_text(json.dumps({**record, "path": outside}) + "\n", encoding="utf-8")
        with pytest.raises(
            LabelStoreError, match=rf"manifest.jsonl: line 1: label path '{outside}' is not a path"
        ):
            LabelStore(store.root).records()


def test_a_deleted_or_emptied_recorded_label_is_made_again_on_resume(tmp_path: Path) -> None:
    clips = [make_clip(tmp_path / "data", "aachen", seq) for seq in range(2)]
    fmt = FakeFormat(clips)
    store = LabelStore(tmp_path / "store")
    propagate_split(fmt, "train", store, [-1, 1], StubEngine(), progress=False)
    records = {(r["clip_id"], r["offset"]): store.root / r["path"] for r in store.records()}
    records["aachen_000000", -1].unlink()
    records["aachen_000001", 1].write_bytes(b"")
    untouched = records["aachen_000000", 1].stat().st_mtime_ns
    summary = propagate_split(fmt, "train", LabelStore(store.root), [-1, 1], StubEngine(), progress=False)
    assert (summary.written, summary.skipped) == (2, 2)
    # the stub labels window index i with anchor value + i; the redone labels' windows are one side only
    assert read_label(records["aachen_000000", -1])[0, 0] == 0 + 0
    assert read_label(records["aachen_000001", 1])[0, 0] == 1 + 1
    assert records["aachen_000000", 1].stat().st_mtime_ns == untouched
    assert len(LabelStore(store.root).records()) == 4


def test_temporary_files_of_a_killed_run_are_removed_when_no_run_uses_the_store(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "data", "aachen", 1)
    store = LabelStore(tmp_path / "store")
    store.open_run({"engine": "stub"})
    write(store, clip, 1)
    stale = store.root / "train" / "aachen" / ".aachen_000001_000004_pseudo_labelTrainIds.png.abc.tmp"
    stale.write_bytes(b"half a png")
    busy = LabelStore(store.root)
    busy.open_run({"engine": "stub"})  # the first store still holds the run lock: the file may be live
    assert stale.exists()
    del store, busy
    LabelStore(tmp_path / "store").open_run({"engine": "stub"})
    assert not stale.exists()


def _propagate_process(root: Path, out: Path, preset: str) -> subprocess.Popen:
    command = label_propagate_command(root, out, "--offsets=-3,-2,-1,1,2,3", "--preset", preset)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_runs_into_one_store_end_with_one_consistent_store(tiny_streets: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    runs = [_propagate_process(tiny_streets, out, "fast") for _ in range(2)]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-500:] for _, err in results]
    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    keys = [(r["clip_id"], r["offset"]) for r in map(json.loads, lines)]
    assert len(keys) == len(set(keys)) == 4 * 6  # every label recorded once
    said = [re.search(r"(\d+) labels written", out) for out, _ in results]
    assert sum(int(match.group(1)) for match in said if match) == 4 * 6  # each counted by its writer alone
    assert all(whole_image(out / json.loads(line)["path"]) for line in lines)

    other = tmp_path / "conflict"
    runs = [_propagate_process(tiny_streets, other, preset) for preset in ("fast", "medium")]
    codes = [run.wait(timeout=300) for run in runs]
    assert sorted(codes) == [0, 2]  # one run wins the store, the other is refused with a clear error
    loser = runs[codes.index(2)]
    assert "this store was written by a run with a different config" in loser.stderr.read()
    preset = json.loads((other / "run.json").read_text(encoding="utf-8"))["settings"]["preset"]
    settings = {
        json.loads(line)["settings"]["preset"]
        for line in (other / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    }
    assert settings == {preset}


def test_labels_of_one_frame_from_two_anchors_of_shared_frame_clips_are_kept_apart(tmp_path: Path) -> None:
    frames = [tmp_path / f"seq_{n:06d}.png" for n in range(3)]
    first = Clip("seq_000000", "train", frames, 0, shared_frames=True)
    second = Clip("seq_000002", "train", frames, 2, shared_frames=True)
    store = LabelStore(tmp_path / "store")
    from_first, from_second = store.label_path(first, 1, "pseudo"), store.label_path(second, -1, "pseudo")
    assert from_first.name == "seq_000001_from_seq_000000_pseudo_labelTrainIds.png"
    assert from_second.name == "seq_000001_from_seq_000002_pseudo_labelTrainIds.png"
    assert store.label_path(first, 0, "clicks").name == "seq_000000_clicks_labelTrainIds.png"
    alone = Clip("seq_000000", "train", frames, 0)  # clips of their own frames keep the frame's name
    assert store.label_path(alone, 1, "pseudo").name == "seq_000001_pseudo_labelTrainIds.png"


def test_a_label_another_run_recorded_first_is_not_counted_as_written(tmp_path: Path) -> None:
    """Two runs into one store each printed every label as written by it."""
    frames = [tmp_path / f"seq_{n:06d}.png" for n in range(2)]
    for frame in frames:
        cv2.imwrite(str(frame), np.zeros((4, 4, 3), np.uint8))
    clip = Clip("seq", "train", frames, 0)
    config = {"engine": "flow", "settings": {}}
    first, second = LabelStore(tmp_path / "store"), LabelStore(tmp_path / "store")
    first.open_run(config)
    second.open_run(config)
    label = np.zeros((4, 4), np.uint8)
    for store in (first, second):
        store.write(clip, 1, "pseudo", label, engine="flow", settings={}, source_offset=0, seconds=0)
    assert (first.written, second.written) == (1, 0)


def test_side_files_are_named_after_their_label(tmp_path: Path) -> None:
    assert side_json_path(tmp_path / "x_clicks_labelTrainIds.png", "clicks") == tmp_path / "x_clicks.json"


class ConfidentStub(StubEngine):
    """`StubEngine` that also makes a confidence map per label: ``0.2 × (target index + 1)`` everywhere."""

    makes_confidence = True

    def propagate_with_confidence(self, frames, anchor_index, anchor_label, targets):
        labels = self.propagate(frames, anchor_index, anchor_label, targets)
        return {t: (label, np.full(label.shape, 0.2 * (t + 1), np.float32)) for t, label in labels.items()}


def test_confidence_maps_are_written_beside_labels_and_missing_ones_are_redone(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "data", "aachen", 1)
    fmt, store = FakeFormat([clip]), LabelStore(tmp_path / "store")
    summary = propagate_split(fmt, "train", store, [-1, 2], ConfidentStub(), progress=False)
    assert summary.written == 2
    maps = {}
    for record in store.records():
        path = confidence_path(store.root / record["path"])
        assert (
            path.name.endswith("_pseudo_confidence.png")
            and path.parent == (store.root / record["path"]).parent
        )
        maps[record["offset"]] = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert store.has_confidence(clip.clip_id, record["offset"], LabelKind.PSEUDO, "train")
    # target indices: offset -1 is index 0, offset +2 index 3 (frames from offset -1)
    assert maps[-1].dtype == np.uint8 and (maps[-1] == 51).all() and (maps[2] == 204).all()
    missing = confidence_path(store.root / store.records()[0]["path"])
    label_bytes = (store.root / store.records()[0]["path"]).read_bytes()
    missing.unlink()
    # an engine without confidence maps does not redo the label
    assert (
        propagate_split(fmt, "train", LabelStore(store.root), [-1, 2], StubEngine(), progress=False).skipped
        == 2
    )
    assert not missing.exists()
    # one that makes them redoes it: the map is added, the label is kept as it was
    engine = ConfidentStub()
    summary = propagate_split(fmt, "train", LabelStore(store.root), [-1, 2], engine, progress=False)
    assert (summary.written, summary.skipped, engine.calls) == (1, 1, 1)
    assert missing.exists() and (store.root / store.records()[0]["path"]).read_bytes() == label_bytes
    assert len(store.records()) == 2 == len(LabelStore(store.root).records())


def test_confidence_map_must_fit_its_label(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "data", "aachen", 1)
    store = LabelStore(tmp_path / "store")
    label = np.zeros((8, 12), np.uint8)
    with pytest.raises(LabelStoreError, match="does not fit"):
        store.write(
            clip,
            1,
            LabelKind.PSEUDO,
            label,
            engine="x",
            settings={},
            source_offset=0,
            seconds=0,
            confidence=np.zeros((8, 11), np.float32),
        )
    path = store.write(
        clip,
        1,
        LabelKind.PSEUDO,
        label,
        engine="x",
        settings={},
        source_offset=0,
        seconds=0,
        confidence=np.array([[np.nan, 1.5, -1, 0.5] * 3] * 8, np.float32),
    )
    assert cv2.imread(str(confidence_path(path)), cv2.IMREAD_UNCHANGED)[0, :4].tolist() == [0, 255, 0, 128]


def test_a_store_records_its_data_set_s_absolute_root_and_resumes_from_a_relative_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store made with ``--root ../data`` was read only from the folder it was made in (`label report`
    elsewhere: "data set folder … does not exist"), and an older store's relative root is the same root."""
    from frugalseg.data.formats import get_format

    (tmp_path / "data").mkdir()
    write_snippets(tmp_path / "data")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    described = get_format("cityscapes", "../data").describe()
    assert described["root"] == str(tmp_path / "data")
    older = LabelStore(tmp_path / "store")  # as a store recorded it before: the root as typed
    older.open_run({"engine": "flow", "settings": {"snap": True}, **described, "root": "../data"})
    LabelStore(tmp_path / "store").open_run({"engine": "flow", "settings": {"snap": True}, **described})
    with pytest.raises(LabelStoreError) as error:
        LabelStore(tmp_path / "store").open_run({"engine": "flow", "settings": {"snap": False}, **described})
    assert "different config (settings.snap: stored True, asked False); use another" in str(error.value)
    other = {"engine": "simulated_clicks", "settings": {"radius": 1}, **described}
    with pytest.raises(LabelStoreError) as error:  # it had listed every setting of both engines
        LabelStore(tmp_path / "store").open_run(other)
    assert "config (engine: stored 'flow', asked 'simulated_clicks'); use another" in str(error.value)


def test_a_video_store_records_its_masks_folder_absolute_and_resumes_from_a_relative_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--masks`` typed relative was stored as typed: `label report` from another folder said "masks folder
    does not exist", and the same folder given absolute was "a different config"."""
    from frugalseg.data.formats import get_format

    (tmp_path / "data" / "frames").mkdir(parents=True)
    (tmp_path / "data" / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "data" / "frames" / "00000.png"), np.zeros((4, 4, 3), np.uint8))
    monkeypatch.chdir(tmp_path / "data")
    described = get_format("video", "frames", masks="masks").describe()
    assert described["masks"] == str(tmp_path / "data" / "masks")
    LabelStore(tmp_path / "store").open_run({"engine": "flow", **described})
    older = LabelStore(tmp_path / "older")  # as a store recorded it before: the masks folder as typed
    older.open_run({"engine": "flow", **described, "masks": "masks"})
    LabelStore(tmp_path / "older").open_run({"engine": "flow", **described})
    monkeypatch.chdir(tmp_path)
    LabelStore(tmp_path / "store").open_run(
        {"engine": "flow", **get_format("video", "data/frames", masks="data/masks").describe()}
    )
    with pytest.raises(LabelStoreError, match=r"different config \(masks: stored "):
        LabelStore(tmp_path / "store").open_run({"engine": "flow", **described, "masks": str(tmp_path)})


def _failing_run(store: LabelStore) -> None:
    with pytest.raises(KeyboardInterrupt), store.run({"engine": "stub"}):
        raise KeyboardInterrupt  # Ctrl-C before a label was recorded


def test_a_run_stopped_before_its_first_label_removes_the_store_it_made(tmp_path: Path) -> None:
    _failing_run(LabelStore(tmp_path / "made"))
    assert not (tmp_path / "made").exists()
    (tmp_path / "given").mkdir()  # the person's own empty folder stays, empty
    _failing_run(LabelStore(tmp_path / "given"))
    assert (tmp_path / "given").is_dir() and not any((tmp_path / "given").iterdir())


def test_a_run_stopped_before_its_first_label_keeps_a_store_another_run_joined(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "data", "aachen", 1)
    first, joined = LabelStore(tmp_path / "store"), LabelStore(tmp_path / "store")
    with pytest.raises(KeyboardInterrupt), first.run({"engine": "stub"}):
        joined.open_run({"engine": "stub"})  # a second run joins the new store, then the first is stopped
        raise KeyboardInterrupt
    label = write(joined, clip, 1)  # the second run goes on writing into a whole store
    assert label.is_file() and (tmp_path / "store" / "run.json").is_file()
    assert len(LabelStore(tmp_path / "store").records()) == 1


def test_a_run_whose_store_was_removed_while_it_waited_joins_the_store_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped before its first label removes its store, lock file too: a run that had opened that
    lock file and waited on it went on holding a lock on a file no longer there, so a third run would think
    itself alone (and remove the second's live temporary files)."""
    import fcntl
    import os
    import shutil

    first = LabelStore(tmp_path / "store")
    first.open_run({"engine": "stub"})  # holds the lock: the second waits on it
    waited, removed = fcntl.flock, []

    def removed_while_waiting(fd: int, operation: int) -> None:
        waited(fd, operation)
        if operation == fcntl.LOCK_SH and not removed:
            shutil.rmtree(tmp_path / "store")  # the first run's clean-up, while the second waited
            removed.append(True)

    monkeypatch.setattr(fcntl, "flock", removed_while_waiting)
    second = LabelStore(tmp_path / "store")
    second.open_run({"engine": "stub"})
    monkeypatch.setattr(fcntl, "flock", waited)
    lock = tmp_path / "store" / ".lock"
    assert os.fstat(second._lock_fd).st_ino == os.stat(lock).st_ino
    assert json.loads((tmp_path / "store" / "run.json").read_text())["engine"] == "stub"
    third = LabelStore(tmp_path / "store")
    assert not third._join()  # the second holds the lock of the store as it is now


def test_a_store_another_run_is_making_is_no_folder_of_other_files(tmp_path: Path) -> None:
    """The check had read the lock and manifest, then listed the folder: a run that made its manifest in
    between got its store refused as "holds files but no label store" (the two-runs test, once in CI)."""
    from frugalseg.autolabel.store import check_store_folder
    from frugalseg.errors import ConfigError

    making = tmp_path / "making"
    making.mkdir()
    (making / ".lock").touch()  # the first file a run makes; its manifest and folders follow
    (making / "manifest.jsonl").touch()
    check_store_folder(making)
    (making / "manifest.jsonl").unlink()
    (making / "train").mkdir()
    check_store_folder(making)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").touch()
    (mine / ".hidden").touch()
    with pytest.raises(ConfigError, match="holds files but no label store"):
        check_store_folder(mine)


def test_a_run_of_the_data_set_through_a_link_is_the_same_run(tmp_path: Path) -> None:
    """``../shared/data/x`` where ``shared`` links to ``/work/shared``: fit's cached store had been refused
    ("root: stored …, asked …"), and fit has no --out to choose another."""
    data = tmp_path / "real" / "camvid"
    data.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    config = {"engine": "clicks", "root": str(data), "split": "train"}
    LabelStore(tmp_path / "store").open_run(config)
    LabelStore(tmp_path / "store").open_run({**config, "root": str(tmp_path / "link" / "camvid")})
    with pytest.raises(LabelStoreError, match="root: stored"):
        LabelStore(tmp_path / "store").open_run({**config, "root": str(tmp_path / "other")})
