"""The label store: one folder per labelling run, PNG label maps plus a manifest, resumable.

Layout of a store::

    run.json                  the run's config (engine, its settings, dataset format/root, split)
    manifest.jsonl            one JSON record per written label, appended after its PNG is complete
    {split}/{folder}/{stem}_{kind}_labelTrainIds.png

``folder`` and ``stem`` mirror the frame's own file (its parent folder name and its file stem
without a ``_leftImg8bit`` suffix), so labels keep the dataset's naming. A run killed at any point
leaves only complete PNGs and complete manifest lines behind (at most a truncated last line, which
is ignored); rerunning with the same config skips every recorded label whose file is still whole
and makes again those that were deleted or damaged since.

Several runs may share a store: the processes of one job on several devices, or two commands
started on the same folder. ``run.json`` is written or compared under a lock, so a run with other
settings is refused and never half-recorded; each label is recorded once, whichever run finishes it
first (a run re-reads the manifest before it writes and skips what another run has recorded).
Temporary files a killed run left behind are removed when a run opens a store no other run is using.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, TypeVar

import numpy as np

from frugalseg.data.clips import Clip, LabelKind, LabelRef
from frugalseg.data.files import nearest_existing
from frugalseg.data.io import (
    encode_png,
    frame_fingerprint,
    read_json,
    remove_temporaries,
    whole_image,
    write_bytes_atomic,
    write_json_atomic,
)
from frugalseg.errors import ConfigError, DataError, LabelStoreError

if TYPE_CHECKING:
    from frugalseg.data.formats import Format

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
MANIFEST_FILE = "manifest.jsonl"
LOCK_FILE = ".lock"
#: The engines of stores whose records' ``seconds`` are the human seconds booked on each label (a
#: person's ``annotate export``, ``annotate simulate``: `frugalseg.active.objects.labels.video_labels`;
#: ``annotate semantic``: `frugalseg.active.semantic.simulate.ENGINE`).
LEDGER_ENGINES = ("annotation-session", "annotation-loop", "hvsa")

_FRAME_SUFFIX = "_leftImg8bit"
_TAIL_BYTES = 1 << 16
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # longer than any manifest record

_Key = tuple[str, str, int, str]
T = TypeVar("T")


def side_json_path(label_path: str | Path, kind: str) -> Path:
    """The JSON side file of a stored ``kind`` label (what was clicked, boxed, … to make it).

    It is ``{stem}_{kind}.json`` beside its ``{stem}_{kind}_labelTrainIds.png``.
    """
    label_path = Path(label_path)
    stem = label_path.name.removesuffix(".png").removesuffix("_labelTrainIds").removesuffix(f"_{kind}")
    return label_path.with_name(f"{stem}_{kind}.json")


def instances_path(label_path: str | Path) -> Path:
    """The instance-id map of a stored label, where its maker kept one (imports of annotation tools' files).

    It is ``{stem}_{kind}_instanceIds.png`` beside its ``{stem}_{kind}_labelTrainIds.png``, a PNG whose
    non-zero values are object or instance ids (0: none): 8-bit when every id is below 255, as DAVIS
    object masks are (so ``annotate add --mask`` takes it), else 16-bit.
    """
    label_path = Path(label_path)
    return label_path.with_name(label_path.name.removesuffix("_labelTrainIds.png") + "_instanceIds.png")


def confidence_path(label_path: str | Path) -> Path:
    """The confidence map of a stored label.

    It is ``{stem}_confidence.png`` beside its ``{stem}_labelTrainIds.png``, an 8-bit PNG where 255
    is full confidence (value / 255). A label without one (SAM 2 stores, older stores) is trusted
    everywhere.
    """
    label_path = Path(label_path)
    return label_path.with_name(label_path.name.removesuffix("_labelTrainIds.png") + "_confidence.png")


def read_json_list(path: str | Path, key: str, parse: Callable[[Any], T], form: str) -> list[T]:
    """The entries listed under ``key`` in the JSON file ``path`` (a side file of a label), each parsed.

    Raises:
        DataError: the file is missing, not valid JSON, or not of the ``form`` described (``parse``
            raising `KeyError`, `TypeError` or `ValueError` on an entry).
    """
    data = read_json(path)
    try:
        return [parse(item) for item in data[key]]
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(path, f"expected {form} ({err!r})") from err


def check_store_apart(out: str, root: str, option: str = "--out", what: str = "a label store folder") -> None:
    """Refuse a label store (``--out``), or another ``what`` ``option`` names, in the data set or holding it.

    Labels never go into a data set: a store, a tool's file or copied frames inside it would be read as
    part of the data by the next scan (a sequence, a split), and the data set's own files could be
    overwritten.

    Args:
        out: the folder or file given.
        root: the data set's folder.
        option: the option that gave ``out``, as the error names it.
        what: what ``out`` should be, as the error asks for it.
    """
    if not out.strip():
        raise ConfigError(option, f"is empty: name {what} (outside the data set)")
    store, data = Path(out).resolve(), Path(root).resolve()
    if store == data or data in store.parents or store in data.parents:
        where = "is" if store == data else "is inside" if data in store.parents else "holds"
        raise ConfigError(
            option,
            f"{out} {where} the data set folder {root}: labels never go into a data set; "
            f"give {what} outside it",
        )


def check_store_folder(out: str | Path, *, store: bool = True) -> None:
    """Refuse ``--out`` that is a file or lies under one; with ``store``, a folder of files but no store.

    A store written into a folder of other files would leave its labels among them; an existing store
    (its ``run.json``) is resumed, and so is one another run is creating (its lock, made before its
    manifest, under whose lock that run writes ``run.json``); other hidden files do not count.
    """
    folder = Path(out)
    there = nearest_existing(folder)
    if not there.is_dir():
        where = f"{there} is a file" if there == folder else f"{folder}: {there} is a file, not a folder"
        raise ConfigError("--out", f"{where}: name a new folder for the label store")
    if not store or not folder.is_dir():
        return
    # one listing, as another run may be making the store meanwhile: its lock comes before any other file
    names = {path.name for path in folder.iterdir()}
    if RUN_FILE not in names and LOCK_FILE not in names and any(not name.startswith(".") for name in names):
        raise ConfigError("--out", f"{out} holds files but no label store: name a new folder for the store")


def frame_stem(frame: Path) -> str:
    """What a store's files of ``frame`` are named after: its stem, without Cityscapes' ``_leftImg8bit``."""
    return frame.stem.removesuffix(_FRAME_SUFFIX)


def _normalised(config: dict[str, Any]) -> dict[str, Any]:
    """The config as JSON would give it back (tuples become lists), so that comparisons are fair."""
    result: dict[str, Any] = json.loads(json.dumps(config, sort_keys=True))
    return result


#: The keys of ``run.json`` that name folders (`Format.describe`), compared as real paths: a store made
#: with ``--root ../data`` is the same store when resumed with that folder's absolute path, or through a link.
FOLDER_KEYS = ("root", "temporal_root", "masks")


def _absolute_roots(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with its `FOLDER_KEYS` as real paths (older stores' relative ones; links resolved)."""
    return {
        k: os.path.realpath(v) if k in FOLDER_KEYS and isinstance(v, str) else v for k, v in config.items()
    }


def differences(stored: Any, asked: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Each (dotted key, stored value, asked value) where two configs differ, down through nested dicts."""
    if not (isinstance(stored, dict) and isinstance(asked, dict)):
        return [] if stored == asked else [(prefix, stored, asked)]
    return [
        difference
        for key in sorted(set(stored) | set(asked))
        for difference in differences(stored.get(key), asked.get(key), f"{prefix}.{key}" if prefix else key)
    ]


class LabelStore:
    """PNG label maps (uint8 train ids, 255 ignore) with ``manifest.jsonl`` and ``run.json``.

    Args:
        root: the store's folder; created when a run opens it.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._index: dict[_Key, dict[str, Any]] | None = None
        self._read_bytes = 0  # how much of the manifest the index holds (whole lines only)
        self._lines = 0
        self._written: set[_Key] = set()  # labels this object wrote

    @property
    def manifest_path(self) -> Path:
        """The store's ``manifest.jsonl``."""
        return self.root / MANIFEST_FILE

    @property
    def run_path(self) -> Path:
        """The store's ``run.json``."""
        return self.root / RUN_FILE

    def read_run(self) -> dict[str, Any]:
        """The store's ``run.json``; `LabelStoreError` when the folder is no label store."""
        if not self.root.exists():
            raise LabelStoreError(self.root, "label store folder does not exist")
        if not self.run_path.is_file():
            raise LabelStoreError(self.run_path, f"not found: {self.root} is not a label store")
        try:
            run = json.loads(self.run_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise LabelStoreError(self.run_path, f"not valid JSON ({err})") from err
        if not isinstance(run, dict):
            raise LabelStoreError(self.run_path, "not a label store's run record (not a JSON object)")
        return run

    def open_run(self, config: dict[str, Any]) -> None:
        """Join the store as a labelling run with ``config``.

        Writes ``run.json`` for a new store, or checks that an existing one holds the same config;
        drops from the index the recorded labels whose file is missing or damaged, so that they are
        made again.

        Raises:
            LabelStoreError: the store was made by a run with a different config (names the keys), or
                ``run.json`` is not JSON.
        """
        wanted = _normalised(config)
        self.root.mkdir(parents=True, exist_ok=True)
        alone = self._join()
        try:
            with self._locked_manifest():
                if self.run_path.exists():
                    self._compare_run(wanted)
                else:
                    write_json_atomic(self.run_path, wanted, indent=2)
            self._forget_damaged(rewrite=alone)
        finally:
            if alone:
                fcntl.flock(self._lock_fd, fcntl.LOCK_SH)

    @contextlib.contextmanager
    def run(self, config: dict[str, Any], *, all_or_nothing: bool = False) -> Iterator[LabelStore]:
        """`open_run` for the duration of a labelling run.

        A store this run created is removed again when the run fails before it records a single
        label (with ``all_or_nothing``, as an import is: whatever it recorded) and no other run has
        joined it, so bad input leaves nothing behind: the folder where this run made it, its contents
        where it was an empty folder already.
        """
        made = not self.root.exists()
        created = made or not any(self.root.iterdir())
        self.open_run(config)
        try:
            yield self
        except BaseException:
            if created and (all_or_nothing or not self.records()) and self._alone():
                for path in [self.root] if made else list(self.root.iterdir()):
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
            raise

    def _alone(self) -> bool:
        """Whether no other run holds the store's run lock (this run's is then exclusive)."""
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _compare_run(self, wanted: dict[str, Any]) -> None:
        found = self.read_run()
        differing = differences(_absolute_roots(found), _absolute_roots(wanted))
        engines = [difference for difference in differing if difference[0] == "engine"]
        differing = engines or differing  # another engine's settings all differ: the engine says why
        if differing:
            details = "; ".join(
                f"{key}: stored {stored!r}, asked {asked!r}" for key, stored, asked in differing
            )
            raise LabelStoreError(
                self.run_path,
                f"this store was written by a run with a different config ({details}); "
                "use another --out folder or the same settings",
            )

    def _join(self) -> bool:
        """Hold the store's run lock for as long as this object lives; whether this run is alone.

        When no other run holds it, first remove the temporary files a killed run left behind, and
        keep the lock exclusive (the caller makes it shared once it has tidied the manifest).
        """
        if getattr(self, "_lock_fd", None) is not None:
            return False
        while True:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                fcntl.flock(fd, fcntl.LOCK_SH)  # another run is labelling: its temporary files are live
                alone = False
            if _still_there(fd, self.root / LOCK_FILE):
                break
            os.close(fd)  # a run that failed before its first label removed the store while this one waited
        weakref.finalize(self, os.close, fd)
        self._lock_fd = fd
        if not alone:
            return False
        stale = remove_temporaries(self.root)
        if stale:
            logger.info("%s: removed %d temporary file(s) left by a killed run", self.root, stale)
        return True

    def _forget_damaged(self, rewrite: bool) -> None:
        """Drop the records whose label file is missing or not a whole PNG (they will be redone).

        With ``rewrite`` (no other run shares the store) their lines leave the manifest too, so the
        label made again is its key's only record.
        """
        index = self._records_index()
        damaged = [key for key, record in index.items() if not whole_png(self.root / record["path"])]
        for key in damaged:
            del index[key]
        if damaged and rewrite:
            lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in index.values())
            with self._locked_manifest():
                write_bytes_atomic(self.manifest_path, lines.encode("utf-8"))
            self._read_bytes, self._lines = len(lines.encode("utf-8")), len(index)
        if damaged:
            logger.warning(
                "%s: %d recorded label(s) are missing or damaged and will be made again",
                self.root,
                len(damaged),
            )

    def label_path(self, clip: Clip, offset: int, kind: LabelKind | str) -> Path:
        """Where the ``kind`` label of the frame at ``offset`` of ``clip`` lives in this store.

        The file is named after the frame; for clips that share frames (`Clip.shared_frames`) a label
        away from the anchor also names the anchor it came from (``…_from_{anchor}``).
        """
        frame = clip.frame_path(offset)
        stem = frame_stem(frame)
        if clip.shared_frames and offset != 0:
            stem = f"{stem}_from_{frame_stem(clip.frame_path(0))}"
        return (
            self.root / clip.split / frame.parent.name / f"{stem}_{LabelKind(kind).value}_labelTrainIds.png"
        )

    @property
    def written(self) -> int:
        """How many labels this object wrote or made whole (a missing confidence map), not another run's."""
        return len(self._written)

    def has(self, clip_id: str, offset: int, kind: LabelKind | str, split: str | None = None) -> bool:
        """Whether a ``kind`` label of ``clip_id`` at ``offset`` is recorded (in ``split``, if given).

        Labels recorded by another run sharing the store count too.
        """
        kind = LabelKind(kind).value
        index = self._refresh()
        if split is not None:
            return (split, clip_id, offset, kind) in index
        return any(key[1:] == (clip_id, offset, kind) for key in index)

    def has_confidence(self, clip_id: str, offset: int, kind: LabelKind | str, split: str) -> bool:
        """Whether the recorded ``kind`` label of ``clip_id`` at ``offset`` in ``split`` has a confidence map.

        Only a whole map counts; False when the label itself is not recorded.
        """
        record = self._refresh().get((split, clip_id, offset, LabelKind(kind).value))
        return record is not None and whole_png(confidence_path(self.root / record["path"]))

    def records(self) -> list[dict[str, Any]]:
        """All complete manifest records in writing order (a truncated last line is ignored)."""
        return list(self._refresh().values())

    def write(
        self,
        clip: Clip,
        offset: int,
        kind: LabelKind | str,
        label: np.ndarray,
        *,
        engine: str,
        settings: dict[str, Any],
        source_offset: int,
        seconds: float,
        confidence: np.ndarray | None = None,
    ) -> Path:
        """Write the label PNG atomically, then append its manifest record (flushed and fsynced).

        With ``confidence`` (H×W, float in 0…1 or uint8 in 0…255) its map is written first, also
        atomically, at `confidence_path` of the label, so a recorded label always has the map its
        run made. Labels are never rewritten: when the store holds the label already (another run
        sharing the store recorded it meanwhile, or a run before this one that wrote no confidence),
        only a missing confidence map is added, and the recorded label's path is returned.

        Raises:
            LabelStoreError: this object wrote the label before (a caller's mistake), or the array is
                not an H×W uint8 map.
        """
        kind = LabelKind(kind)
        path = self.label_path(clip, offset, kind)
        key = (clip.split, clip.clip_id, offset, kind.value)
        if key in self._written:
            raise LabelStoreError(
                self.manifest_path,
                f"{kind.value} label of clip {clip.clip_id} at offset {offset:+d} is already recorded "
                f"({path})",
            )
        if label.ndim != 2 or label.dtype != np.uint8:
            raise LabelStoreError(
                path, f"label must be an H×W uint8 array, got shape {label.shape} and dtype {label.dtype}"
            )
        data = encode_png(label, path)
        confidence_png = (
            None if confidence is None else encode_png(_confidence_bytes(confidence, label, path), path)
        )
        record = {
            "clip_id": clip.clip_id,
            "split": clip.split,
            "offset": offset,
            "kind": kind.value,
            "path": path.relative_to(self.root).as_posix(),
            "engine": engine,
            "settings": _normalised(settings),
            "source_offset": source_offset,
            "seconds": round(float(seconds), 4),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if clip.has_frame(offset):  # what the label was made for: `StoredLabels` checks it is the same frame
            record["frame"] = frame_fingerprint(clip.frame_path(offset))
        with self._locked_manifest() as handle:
            recorded = self._refresh().get(key)
            if recorded is not None:
                recorded_path = self.root / recorded["path"]
                if confidence_png is not None and not whole_png(confidence_path(recorded_path)):
                    write_bytes_atomic(confidence_path(recorded_path), confidence_png)
                    self._written.add(key)  # the label made whole again by this object
                result: Path = recorded_path
                return result
            if confidence_png is not None:
                write_bytes_atomic(confidence_path(path), confidence_png)
            write_bytes_atomic(path, data)
            _append(handle, json.dumps(record, sort_keys=True))
        self._records_index()[key] = record
        self._written.add(key)
        return path

    def attach(self, clips: Iterable[Clip]) -> int:
        """Add a ``LabelRef`` to each clip for each of its records; returns how many were added.

        Labels already attached to a clip (same path and kind) are not added twice.
        """
        by_clip: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in self.records():
            by_clip.setdefault((record["split"], record["clip_id"]), []).append(record)
        attached = 0
        for clip in clips:
            for record in by_clip.get((clip.split, clip.clip_id), []):
                ref = LabelRef(self.root / record["path"], LabelKind(record["kind"]))
                if ref not in clip.labels.get(record["offset"], []):
                    clip.add_label(record["offset"], ref)
                    attached += 1
        return attached

    @contextlib.contextmanager
    def _locked_manifest(self) -> Iterator[IO[bytes]]:
        """The manifest opened for appending under an exclusive lock (created if missing)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.manifest_path, "ab+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _records_index(self) -> dict[_Key, dict[str, Any]]:
        """Records keyed by (split, clip_id, offset, kind) as this object knows them.

        The manifest is read the first time.
        """
        if self._index is None:
            self._index, self._read_bytes, self._lines = {}, 0, 0
            self._read_new()
        return self._index

    def _refresh(self) -> dict[_Key, dict[str, Any]]:
        """The index with the lines other runs appended to the manifest since it was last read."""
        index = self._records_index()
        self._read_new()
        return index

    def _read_new(self) -> None:
        """Add the manifest's whole lines past ``_read_bytes`` (and a whole last line without newline)."""
        try:
            size = self.manifest_path.stat().st_size
        except FileNotFoundError:
            return
        if size <= self._read_bytes:
            return
        with open(self.manifest_path, "rb") as handle:
            handle.seek(self._read_bytes)
            new = handle.read(size - self._read_bytes)
        complete = new[: new.rfind(b"\n") + 1]
        for line in complete.split(b"\n")[:-1]:
            self._lines += 1
            self._add(line, last=False)
        self._read_bytes += len(complete)
        tail = new[len(complete) :]
        if tail.strip():
            self._add(tail, last=True)  # a last line without newline: whole, or cut by a kill

    def _add(self, line: bytes, last: bool) -> None:
        """Add one manifest line to ``index``; a truncated last line is skipped (its label is redone)."""
        number = self._lines + int(last)
        if not line.strip():
            return
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            if last:
                return
            what = "UTF-8" if isinstance(err, UnicodeDecodeError) else "JSON"
            raise LabelStoreError(self.manifest_path, f"line {number} is not valid {what} ({err})") from err
        problem = _record_problem(record)
        if problem is not None:
            raise LabelStoreError(self.manifest_path, f"line {number}: {problem}")
        assert self._index is not None
        self._index[(record["split"], record["clip_id"], record["offset"], record["kind"])] = record


#: The fields every manifest record has, with the JSON type each must be.
_RECORD_FIELDS: dict[str, type] = {"split": str, "clip_id": str, "offset": int, "kind": str, "path": str}


def _record_problem(record: Any) -> str | None:
    """What is wrong with a manifest record (its field and value), or None when it can be used."""
    if not isinstance(record, dict):
        return f"a record must be a JSON object, got {type(record).__name__}"
    for field, kind in _RECORD_FIELDS.items():
        if field not in record:
            return f"lacks field {field!r}"
        value = record[field]
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"field {field!r} must be {_JSON_NAMES[kind]}, got {json.dumps(value)[:60]}"
        if isinstance(value, str) and "\x00" in value:
            return f"field {field!r} holds a NUL character: {value!r}"
    if record["kind"] not in {kind.value for kind in LabelKind}:
        known = ", ".join(kind.value for kind in LabelKind)
        return f"field 'kind' is {record['kind']!r}, not a label kind ({known})"
    if not _inside(record["path"]):
        return f"label path {record['path']!r} is not a path inside the store"
    return None


_JSON_NAMES = {str: "a string", int: "an integer"}


def _confidence_bytes(confidence: np.ndarray, label: np.ndarray, path: Path) -> np.ndarray:
    """A confidence map as the 8-bit image stored (255 = confidence 1.0)."""
    if confidence.shape != label.shape:
        raise LabelStoreError(
            confidence_path(path),
            f"confidence map of shape {confidence.shape} does not fit a label of {label.shape}",
        )
    if confidence.dtype == np.uint8:
        return confidence
    if not np.issubdtype(confidence.dtype, np.floating):
        raise LabelStoreError(
            confidence_path(path), f"confidence must be float 0…1 or uint8, got {confidence.dtype}"
        )
    result: np.ndarray = np.rint(np.clip(np.nan_to_num(confidence, nan=0.0), 0.0, 1.0) * 255).astype(np.uint8)
    return result


def check_recorded_label(path: Path, store: Path) -> None:
    """Refuse a label ``store`` records whose file is missing or cut short, saying how to make it again.

    Raises:
        LabelStoreError: naming the label's file.
    """
    if not whole_png(path):
        raise LabelStoreError(
            path,
            "recorded in the store but missing or cut short: run the command that made the store again with "
            f"the same --out ({store}): it makes such labels again",
        )


def whole_png(path: Path) -> bool:
    """Whether a recorded label is a PNG written to its end."""
    try:
        with open(path, "rb") as handle:
            if handle.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
                return False
    except OSError:
        return False
    return whole_image(path)


def _inside(relative: str) -> bool:
    """Whether a manifest's label path stays inside its store (relative, no ``..``)."""
    path = PurePosixPath(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts and "\\" not in relative


def _append(handle: IO[bytes], line: str) -> None:
    """Append one manifest line durably to the locked ``handle``.

    First repairs the last line left by a killed run: cut off when it is truncated JSON (its label is
    redone), completed when whole.
    """
    size = handle.seek(0, os.SEEK_END)
    tail_start = max(0, size - _TAIL_BYTES)
    handle.seek(tail_start)
    tail = handle.read()
    if tail and not tail.endswith(b"\n"):
        start = tail_start + tail.rfind(b"\n") + 1
        try:
            json.loads(tail[start - tail_start :])
            handle.write(b"\n")
        except json.JSONDecodeError:
            handle.truncate(start)
    handle.write((line + "\n").encode("utf-8"))
    handle.flush()
    os.fsync(handle.fileno())


#: At most this many of a store's labels have their frame compared with the data set's (`check_store_frames`).
FRAME_CHECKS = 16


def check_store_frames(
    store: LabelStore, run: dict[str, Any], fmt: Format, matched: list[tuple[dict[str, Any], Clip]]
) -> None:
    """Refuse a store made from other frames than the data set's, though its clip and frame names match.

    Each record written since issue 27 holds the `frame_fingerprint` of the frame it labels; up to
    `FRAME_CHECKS` records spread over the store are compared with the data set's frame of the same
    name (a data set of another recording or seed differs in every frame). Older records are not checked.
    """
    recorded = [(r, clip) for r, clip in matched if "frame" in r and clip.has_frame(r["offset"])]
    step = max(1, len(recorded) // FRAME_CHECKS)
    for record, clip in recorded[::step][:FRAME_CHECKS]:
        frame = clip.frame_path(record["offset"])
        found = frame_fingerprint(frame)
        if found != record["frame"]:
            made_from = run.get("root", "another data set")
            raise LabelStoreError(
                store.root,
                f"made from other frames than the data set {fmt.root}: its label of {frame.name} was made "
                f"for a file of size:hash {record['frame']}, and {frame} is {found} (the store was made from "
                f"{made_from}); make labels for this data set into another store",
            )


def _still_there(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path`` (not removed or replaced since)."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
