"""The label store: one folder per labelling run, PNG label maps plus a manifest, resumable.

Layout of a store::

    run.json                  the run's config (engine, its settings, dataset format/root, split)
    manifest.jsonl            one JSON record per written label, appended after its PNG is complete
    {split}/{folder}/{stem}_{kind}_labelTrainIds.png

``folder`` and ``stem`` mirror the frame's own file (its parent folder name and its file stem
without a ``_leftImg8bit`` suffix), so labels keep the dataset's naming. A run killed at any point
leaves only complete PNGs and complete manifest lines behind (at most a truncated last line, which
is ignored); rerunning with the same config skips every recorded label.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from frugalseg.datamodules.clips import Clip, LabelKind, LabelRef
from frugalseg.datamodules.io import DataError, write_json_atomic, write_png_atomic

RUN_FILE = "run.json"
MANIFEST_FILE = "manifest.jsonl"
_FRAME_SUFFIX = "_leftImg8bit"
_TAIL_BYTES = 1 << 16  # longer than any manifest record

_Key = tuple[str, str, int, str]
T = TypeVar("T")


def side_json_path(label_path: str | Path, kind: str) -> Path:
    """The JSON side file of a stored ``kind`` label: ``{stem}_{kind}.json`` beside its
    ``{stem}_{kind}_labelTrainIds.png`` (what was clicked, boxed, … to make it)."""
    label_path = Path(label_path)
    stem = label_path.name.removesuffix(".png").removesuffix("_labelTrainIds").removesuffix(f"_{kind}")
    return label_path.with_name(f"{stem}_{kind}.json")


def read_json_list(path: str | Path, key: str, parse: Callable[[Any], T], form: str) -> list[T]:
    """The entries listed under ``key`` in the JSON file ``path`` (a side file of a label), each parsed.

    Raises:
        DataError: the file is missing, not valid JSON, or not of the ``form`` described (``parse``
            raising `KeyError`, `TypeError` or `ValueError` on an entry).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file does not exist")
    try:
        return [parse(item) for item in json.loads(path.read_text())[key]]
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err})") from err
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(path, f"expected {form} ({err!r})") from err


class LabelStoreError(ValueError):
    """A label store that cannot be used as asked; the message names the file and the problem."""


def _normalised(config: dict[str, Any]) -> dict[str, Any]:
    """The config as JSON would give it back (tuples become lists), so that comparisons are fair."""
    return json.loads(json.dumps(config, sort_keys=True))


class LabelStore:
    """PNG label maps (uint8 train ids, 255 ignore) with ``manifest.jsonl`` and ``run.json``.

    Args:
        root: the store's folder; created on the first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._index: dict[_Key, dict[str, Any]] | None = None

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    @property
    def run_path(self) -> Path:
        return self.root / RUN_FILE

    def open_run(self, config: dict[str, Any]) -> None:
        """Write ``run.json`` for a new store, or check that an existing one holds the same config.

        Raises:
            LabelStoreError: the store was made by a run with a different config (names the keys).
        """
        wanted = _normalised(config)
        if self.run_path.exists():
            try:
                found = json.loads(self.run_path.read_text())
            except json.JSONDecodeError as err:
                raise LabelStoreError(f"{self.run_path}: not valid JSON ({err})") from err
            differing = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            if differing:
                details = "; ".join(
                    f"{k}: stored {found.get(k)!r}, asked {wanted.get(k)!r}" for k in differing
                )
                raise LabelStoreError(
                    f"{self.run_path}: this store was written by a run with a different config ({details}); "
                    "use another --out folder or the same settings"
                )
            return
        write_json_atomic(self.run_path, wanted, indent=2)

    def label_path(self, clip: Clip, offset: int, kind: LabelKind | str) -> Path:
        """Where the ``kind`` label of the frame at ``offset`` of ``clip`` lives in this store."""
        frame = clip.frame_path(offset)
        stem = frame.stem.removesuffix(_FRAME_SUFFIX)
        return (
            self.root / clip.split / frame.parent.name / f"{stem}_{LabelKind(kind).value}_labelTrainIds.png"
        )

    def has(self, clip_id: str, offset: int, kind: LabelKind | str, split: str | None = None) -> bool:
        """Whether a ``kind`` label of ``clip_id`` at ``offset`` is recorded (in ``split``, if given)."""
        kind = LabelKind(kind).value
        index = self._records_index()
        if split is not None:
            return (split, clip_id, offset, kind) in index
        return any(key[1:] == (clip_id, offset, kind) for key in index)

    def records(self) -> list[dict[str, Any]]:
        """All complete manifest records in writing order (a truncated last line is ignored)."""
        return list(self._records_index().values())

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
    ) -> Path:
        """Write the label PNG atomically, then append its manifest record (flushed and fsynced).

        Raises:
            LabelStoreError: the label is already recorded (labels are never rewritten) or the
                array is not an H×W uint8 map.
        """
        kind = LabelKind(kind)
        path = self.label_path(clip, offset, kind)
        key = (clip.split, clip.clip_id, offset, kind.value)
        if key in self._records_index():
            raise LabelStoreError(
                f"{self.manifest_path}: {kind.value} label of clip {clip.clip_id} "
                f"at offset {offset:+d} is already recorded ({path})"
            )
        if label.ndim != 2 or label.dtype != np.uint8:
            raise LabelStoreError(
                f"{path}: label must be an H×W uint8 array, got shape {label.shape} and dtype {label.dtype}"
            )
        write_png_atomic(path, label)
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
        self._append(json.dumps(record, sort_keys=True))
        self._records_index()[key] = record
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

    def _records_index(self) -> dict[_Key, dict[str, Any]]:
        """Records keyed by (split, clip_id, offset, kind), read from the manifest once."""
        if self._index is None:
            self._index = {}
            if self.manifest_path.exists():
                lines = self.manifest_path.read_bytes().split(b"\n")
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        key = (record["split"], record["clip_id"], record["offset"], record["kind"])
                    except json.JSONDecodeError as err:
                        if number == len(lines):
                            continue  # truncated last line of a killed run: its label is redone
                        raise LabelStoreError(
                            f"{self.manifest_path}: line {number} is not valid JSON ({err})"
                        ) from err
                    except (KeyError, TypeError) as err:
                        raise LabelStoreError(
                            f"{self.manifest_path}: line {number} lacks field {err}"
                        ) from err
                    self._index[key] = record
        return self._index

    def _append(self, line: str) -> None:
        """Append one manifest line durably, first repairing the last line left by a killed run.

        A last line without its newline is cut off when it is truncated JSON (its label is redone)
        and completed when it is a whole record. The manifest is locked while it is checked and
        appended to, so that several labelling processes can share one store.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.manifest_path, "ab+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
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
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
