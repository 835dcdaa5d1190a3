"""Label sources for training (`frugalseg.data.sources.LabelSource`).

A label store of any engine, flow propagation made on demand, and simulated clicks made on demand.

A datamodule names them in its config, e.g. ``data.labels.pseudo: /path/to/store`` (any store that
``frugalseg label propagate`` wrote, with the flow or SAM 2 engine and any settings), or::

    labels:
      pseudo:
        class_path: frugalseg.autolabel.sources.FlowLabels
        init_args: {preset: fast}

Made-on-demand labels go to a store in the cache whose folder name holds the settings, so a change
of settings makes a new store instead of clashing with the old one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from frugalseg.autolabel.clicks import click_split, clicks_json_path, read_clicks_json
from frugalseg.autolabel.engines import get_propagator
from frugalseg.autolabel.flow_options import FlowEstimator, FlowOcclusion
from frugalseg.autolabel.propagate import propagate_split
from frugalseg.autolabel.runs import LabellingSummary
from frugalseg.autolabel.store import LEDGER_ENGINES, LabelStore, check_recorded_label, check_store_frames
from frugalseg.data.clips import Clip, LabelKind, LabelRef
from frugalseg.data.formats import Format
from frugalseg.data.formats.base import with_clips
from frugalseg.data.io import cache_dir, sha256_file
from frugalseg.data.sources import SOURCE_OPTIONS, LabelSource
from frugalseg.errors import LabelStoreError

logger = logging.getLogger(__name__)

#: Format names older stores recorded (the reader's class name).
_LEGACY_FORMATS = {"CityscapesFormat": "cityscapes", "DavisFormat": "davis"}


#: The attribute of a data set view (`with_manual_labels`) that names the manual labels it shows.
_MANUAL = "manual_labels"


def default_store(root: Path, name: str, settings: dict[str, Any]) -> Path:
    """A cache folder for labels made from the data set at ``root`` with ``settings`` (never inside it)."""
    key = hashlib.sha256(str(Path(root).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return cache_dir() / "labels" / f"{Path(root).name}-{key}" / f"{name}-{digest}"


def _made_store(fmt: Format, name: str, settings: dict[str, Any]) -> Path:
    """`default_store` of labels made from the manual labels ``fmt`` shows: its own, or a view's."""
    manual = getattr(fmt, _MANUAL, None)
    return default_store(fmt.root, name, settings if manual is None else {**settings, "manual": manual})


def with_manual_labels(fmt: Format, manual: LabelSource, split: str) -> Format:
    """A view of ``fmt`` whose ``split`` clips carry ``manual``'s labels in place of the data set's own.

    What ``data.labels.manual`` gives a run: the labels made on demand from the manual ones (flow
    pseudo-labels, simulated clicks) are made from these, not from the data set's ground truth, and are
    kept in cache stores of their own, named after the manual labels' content.

    Args:
        fmt: the data set's reader.
        manual: the source of the manual labels (a label store, `StoredLabels`).
        split: the training split, whose clips carry them.
    """

    def clips(wanted: str, *, labelled: bool = True) -> list[Clip]:
        found = fmt.clips(wanted, labelled=labelled)
        if wanted == split:
            for clip in found:
                clip.drop_labels(LabelKind.FINE)
            manual.attach(fmt, split, found)
        return found

    described = manual.describe()
    manifest = LabelStore(manual.store).manifest_path if isinstance(manual, StoredLabels) else None
    if manifest is not None and manifest.is_file():
        described["manifest"] = sha256_file(manifest)
    shown = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
    return with_clips(fmt, clips, **{_MANUAL: shown})


def _summary_line(what: str, store: Path, summary: LabellingSummary) -> str:
    return f"{what} in {store}: {summary.written} written, {summary.skipped} already there"


def _what_trains_on(kinds: Sequence[str]) -> str:
    """Which ``data.labels`` option takes a store of ``kinds`` labels, said after them (or that none does)."""
    trained_by = {kind.value: option for kind, option in SOURCE_OPTIONS.items()}
    options = [f"data.labels.{trained_by[kind]}" for kind in kinds if kind in trained_by]
    return f": give it as {' or '.join(options)}" if options else ", which no data.labels option trains on"


class StoredLabels(LabelSource):
    """The labels of one kind in a label store written by any ``frugalseg label`` command.

    Only what matters is checked: the store was made from the same data set format and holds labels
    of the split, and every label is named after a frame of its clip. The engine and its settings do
    not matter (flow with any preset, SAM 2, refinement, clicks).

    Args:
        store: the label store folder (holding ``run.json`` and ``manifest.jsonl``).
        kind: the kind of label taken from it: ``pseudo``, ``clicks``, ``refined_coarse`` or ``boxes``.
    """

    def __init__(self, store: str | Path, kind: str | LabelKind = LabelKind.PSEUDO) -> None:
        self.store = Path(store)
        self._kind = LabelKind(kind)

    @property
    def kind(self) -> LabelKind:
        """The kind of label taken from the store."""
        return self._kind

    def attach(self, fmt: Format, split: str, clips: Sequence[Clip]) -> int:
        """Attach the store's ``kind`` labels of ``split`` to ``clips`` (`LabelSource.attach`)."""
        store = LabelStore(self.store)
        run = store.read_run()
        made_from = _LEGACY_FORMATS.get(str(run.get("format")), run.get("format"))
        if made_from not in (fmt.name, None) and not {made_from, fmt.name} <= {"cityscapes", "synthetic"}:
            raise LabelStoreError(
                store.run_path, f"labels of a {made_from} data set, but the data are read as {fmt.name}"
            )
        if run.get("root") and Path(run["root"]).resolve() != fmt.root.resolve():
            logger.info(
                "%s was made from %s; attaching it to %s by frame names", store.root, run["root"], fmt.root
            )
        every = store.records()
        records = [r for r in every if r["kind"] == self.kind.value]
        if not records:
            held = sorted({str(r["kind"]) for r in every})
            shown = f" (it holds {', '.join(held)} labels{_what_trains_on(held)})" if held else ""
            raise LabelStoreError(store.manifest_path, f"holds no {self.kind.value} labels{shown}")
        in_split = [r for r in records if r["split"] == split]
        if not in_split:
            found = ", ".join(sorted({r["split"] for r in records}))
            raise LabelStoreError(
                store.manifest_path, f"holds {self.kind.value} labels of split(s) {found}, none of {split!r}"
            )
        by_id = {clip.clip_id: clip for clip in clips}
        check_store_frames(
            store, run, fmt, [(r, by_id[r["clip_id"]]) for r in in_split if r["clip_id"] in by_id]
        )
        attached = unknown = 0
        for record in in_split:
            clip = by_id.get(record["clip_id"])
            if clip is None or not clip.has_frame(record["offset"]):
                unknown += 1
                continue
            expected = store.label_path(clip, record["offset"], self.kind)
            if store.root / record["path"] != expected:
                raise LabelStoreError(
                    store.manifest_path,
                    f"label {record['path']!r} of clip {clip.clip_id} at offset {record['offset']:+d} is not "
                    f"named after its frame {clip.frame_path(record['offset']).name}: not made from this "
                    "data set",
                )
            check_recorded_label(expected, store.root)  # found before training, not at its batch
            ref = LabelRef(expected, self.kind)
            if ref not in clip.labels.get(record["offset"], []):
                clip.add_label(record["offset"], ref)
                attached += 1
        if unknown:
            logger.warning(
                "%s: %d %s label(s) of clips or frames not in %s left out",
                store.root,
                unknown,
                self.kind.value,
                fmt.root,
            )
        return attached

    def clicks(self, ref: LabelRef) -> int | None:
        """The clicks listed beside a stored ``clicks`` label."""
        if self.kind is not LabelKind.CLICKS:
            return None
        return len(read_clicks_json(clicks_json_path(ref.path)))

    def booked_seconds(self, split: str, clip_ids: Collection[str]) -> float | None:
        """The seconds the records of ``clip_ids`` book, where a person's session or loop wrote the store.

        Each record books the time spent on its own frame (`LEDGER_ENGINES`), so a clip's labels cost the
        sum over all of its records, the propagated ones (0 s) and the clicked ones alike.
        """
        store = LabelStore(self.store)
        if store.read_run().get("engine") not in LEDGER_ENGINES:
            return None
        wanted = set(clip_ids)
        return sum(
            float(record.get("seconds") or 0.0)
            for record in store.records()
            if record["kind"] == self.kind.value and record["split"] == split and record["clip_id"] in wanted
        )


class FlowLabels(LabelSource):
    """Pseudo-labels propagated from each clip's manual label by the flow engine, made when missing.

    The registry's ``flow`` engine (`frugalseg.autolabel.engines`) with the two options below and
    `FlowOptions`'s defaults for the others.

    Args:
        preset: DIS preset of the flow engine (``ultrafast``, ``fast``, ``medium``).
        occlusion: what the engine does with pixels that fail its checks (``label`` or ``ignore``).
        store: the label store to fill; default a cache folder named after the data set and settings.
        progress: show a progress bar while propagating.
    """

    makes_labels = True

    def __init__(
        self,
        preset: str = FlowEstimator.preset,
        occlusion: str = FlowOcclusion.mode,
        store: str | None = None,
        progress: bool = True,
    ) -> None:
        self.preset = preset
        self.engine = get_propagator("flow", preset=preset, occlusion=occlusion)
        self.store = Path(store) if store is not None else None
        self.progress = progress

    @property
    def kind(self) -> LabelKind:
        """Pseudo-labels."""
        return LabelKind.PSEUDO

    def store_for(self, fmt: Format) -> Path:
        """The store this source fills for the data set ``fmt``."""
        return self.store or _made_store(fmt, f"flow-{self.preset}", self.engine.settings)

    def describe(self) -> dict[str, Any]:
        """`LabelSource.describe` with the engine's settings."""
        return {**super().describe(), "engine": self.engine.name, "settings": self.engine.settings}

    def prepare(self, fmt: Format, split: str, offsets: Sequence[int]) -> str | None:
        """Propagate the labels of ``split`` at ``offsets`` that the store lacks."""
        if not offsets:
            return None
        store = self.store_for(fmt)
        summary = propagate_split(fmt, split, LabelStore(store), offsets, self.engine, progress=self.progress)
        return _summary_line("pseudo-labels", store, summary)

    def attach(self, fmt: Format, split: str, clips: Sequence[Clip]) -> int:
        """Attach the propagated labels (`StoredLabels.attach` of the store)."""
        return StoredLabels(self.store_for(fmt), self.kind).attach(fmt, split, clips)


class SimulatedClicks(LabelSource):
    """Click labels simulated from each clip's manual label (paper 004), made when missing.

    Args:
        radius: each click labels the pixels of its class within this radius (0: the pixel only).
        min_stuff_area: the smallest connected region of a non-instance class that gets a click.
        seed: seed of clicks placed off an object's centroid.
        store: the label store to fill; default a cache folder named after the data set and settings.
        progress: show a progress bar while clicking.
    """

    makes_labels = True

    def __init__(
        self,
        radius: float = 0,
        min_stuff_area: int = 512,
        seed: int = 0,
        store: str | None = None,
        progress: bool = True,
    ) -> None:
        self.radius = radius
        self.min_stuff_area = min_stuff_area
        self.seed = seed
        self.store = Path(store) if store is not None else None
        self.progress = progress

    @property
    def kind(self) -> LabelKind:
        """Click labels."""
        return LabelKind.CLICKS

    def store_for(self, fmt: Format) -> Path:
        """The store this source fills for the data set ``fmt``."""
        settings = {"radius": self.radius, "min_stuff_area": self.min_stuff_area, "seed": self.seed}
        return self.store or _made_store(fmt, "clicks", settings)

    def prepare(self, fmt: Format, split: str, offsets: Sequence[int]) -> str | None:
        """Simulate the clicks of the anchor frames of ``split`` that the store lacks."""
        store = self.store_for(fmt)
        summary = click_split(
            fmt,
            split,
            LabelStore(store),
            radius=self.radius,
            min_stuff_area=self.min_stuff_area,
            seed=self.seed,
            progress=self.progress,
        )
        return _summary_line("clicks", store, summary)

    def attach(self, fmt: Format, split: str, clips: Sequence[Clip]) -> int:
        """Attach the simulated clicks (`StoredLabels.attach` of the store)."""
        return StoredLabels(self.store_for(fmt), self.kind).attach(fmt, split, clips)

    def clicks(self, ref: LabelRef) -> int | None:
        """The clicks listed beside the label."""
        return len(read_clicks_json(clicks_json_path(ref.path)))


def as_source(value: LabelSource | str | Path, kind: LabelKind, option: str) -> LabelSource:
    """A datamodule option's source: a `LabelSource` of ``kind``, or a store folder read as ``kind``."""
    from frugalseg.errors import ConfigError

    source = value if isinstance(value, LabelSource) else StoredLabels(value, kind)
    if source.kind is not kind:
        raise ConfigError(
            option, f"expects {kind.value} labels, but {type(source).__name__} gives {source.kind.value}"
        )
    return source
