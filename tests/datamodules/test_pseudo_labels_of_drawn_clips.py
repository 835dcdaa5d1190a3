"""prepare_data makes pseudo-labels for the clips the recipe draws, not for the whole training split."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from frugalseg.autolabel.sources import FlowLabels, SimulatedClicks
from frugalseg.autolabel.store import LabelStore
from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.data.formats.base import clips_of
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.options import LabelOptions, LoaderOptions, RecipeOptions
from frugalseg.datamodules.recipes import Recipe

TRAIN_CLIPS = 4  # the tiny_streets set's training split


def _module(root: Path, store: Path, recipe: RecipeOptions, clicks: Path | None = None) -> VideoSegDataModule:
    labels = LabelOptions(
        pseudo=FlowLabels(store=str(store), progress=False),
        clicks=SimulatedClicks(store=str(clicks), progress=False) if clicks is not None else None,
    )
    loader = LoaderOptions(batch_size=2, num_workers=0)
    return VideoSegDataModule(root=str(root), recipe=recipe, loader=loader, labels=labels)


def _stored(store: Path, kind: LabelKind) -> set[tuple[str, int]]:
    """(clip id, offset) of the store's ``kind`` labels, from its manifest and from the files on disk."""
    records = {(r["clip_id"], r["offset"]) for r in LabelStore(store).records() if r["kind"] == kind.value}
    files = list(store.rglob(f"*_{kind.value}_labelTrainIds.png"))
    assert len(files) == len(records)
    return records


def _check_labels_of_samples(data: VideoSegDataModule) -> None:
    clips = data.datasets["train"].clips
    for sample in data.samples:
        assert clips[sample.clip_id].label(sample.offset, sample.kind) is not None, sample


def test_pseudo_labels_are_made_for_the_drawn_clips_only_and_reused(tiny_streets, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    store = tmp_path / "pseudo"
    data = _module(tiny_streets, store, RecipeOptions("B3", budget=6))  # 2 of the 4 clips
    data.prepare_data()
    data.setup("fit")
    drawn = {s.clip_id for s in data.samples}
    assert len(drawn) == 2
    assert _stored(store, LabelKind.PSEUDO) == {(clip, offset) for clip in drawn for offset in (-10, 10)}
    _check_labels_of_samples(data)
    assert f"recipe B3 draws 2 of the {TRAIN_CLIPS} clips of split 'train'" in caplog.text
    assert f"pseudo-labels in {store}: 4 written, 0 already there" in caplog.text

    caplog.clear()  # a larger budget draws one more clip: only its labels are made, the others reused
    more = _module(tiny_streets, store, RecipeOptions("B3", budget=9))
    more.prepare_data()
    more.setup("fit")
    more_drawn = {s.clip_id for s in more.samples}
    assert len(more_drawn) == 3 and drawn < more_drawn
    assert _stored(store, LabelKind.PSEUDO) == {(clip, offset) for clip in more_drawn for offset in (-10, 10)}
    assert f"pseudo-labels in {store}: 2 written, 4 already there" in caplog.text
    _check_labels_of_samples(more)


def test_the_click_recipe_clicks_the_whole_split_and_makes_no_pseudo_labels(tiny_streets, tmp_path):
    clicks, pseudo = tmp_path / "clicks", tmp_path / "pseudo"
    data = _module(tiny_streets, pseudo, RecipeOptions("clicks", budget=2), clicks=clicks)
    data.prepare_data()
    data.setup("fit")
    assert {s.kind for s in data.samples} == {LabelKind.CLICKS} and len(data.samples) == 2
    assert len(_stored(clicks, LabelKind.CLICKS)) == TRAIN_CLIPS  # the draw chooses among clicked clips
    assert not pseudo.exists()
    _check_labels_of_samples(data)


def test_a_clicks_anchored_mix_draws_among_clicked_clips_then_propagates_for_those(tiny_streets, tmp_path):
    clicks, pseudo = tmp_path / "clicks", tmp_path / "pseudo"
    data = _module(tiny_streets, pseudo, RecipeOptions("clicks", budget=6), clicks=clicks)
    data.recipe = Recipe("clicks-B3", (-10, 0, 10), anchor_kind=LabelKind.CLICKS)  # no such named recipe
    data.prepare_data()
    data.setup("fit")
    drawn = {s.clip_id for s in data.samples}
    assert len(drawn) == 2
    assert {(s.offset, s.kind) for s in data.samples} == {
        (-10, LabelKind.PSEUDO),
        (0, LabelKind.CLICKS),
        (10, LabelKind.PSEUDO),
    }
    assert len(_stored(clicks, LabelKind.CLICKS)) == TRAIN_CLIPS
    assert _stored(pseudo, LabelKind.PSEUDO) == {(clip, offset) for clip in drawn for offset in (-10, 10)}
    _check_labels_of_samples(data)


def test_clips_of_shows_the_named_clips_and_leaves_the_format_whole(tiny_streets):
    fmt = get_format("synthetic", tiny_streets)
    ids = sorted(clip.clip_id for clip in fmt.clips("train"))
    view = clips_of(fmt, ids[1:3])
    assert [clip.clip_id for clip in view.clips("train")] == ids[1:3]
    assert [clip.clip_id for clip in fmt.clips("train")] == ids
    assert type(view) is type(fmt) and view.root == fmt.root and view.describe() == fmt.describe()


@pytest.mark.parametrize("budget", [3, 12])
def test_prepare_and_setup_draw_the_same_clips(tiny_streets, tmp_path, budget):
    store = tmp_path / "pseudo"
    data = _module(tiny_streets, store, RecipeOptions("B3", budget=budget, seed=5))
    data.prepare_data()
    data.setup("fit")
    drawn = {s.clip_id for s in data.samples}
    assert len(drawn) == -(-budget // 3)
    assert {clip for clip, _ in _stored(store, LabelKind.PSEUDO)} == drawn


def test_a_draw_s_warning_is_given_once_though_prepare_and_setup_both_draw(tiny_streets, tmp_path, caplog):
    data = _module(tiny_streets, tmp_path / "pseudo", RecipeOptions("B3", budget=15))  # 5 clips of 4
    data.prepare_data()
    data.setup("fit")
    capped = [
        r for r in caplog.records if "asked for 5 clips with a fine label, only 4 exist" in r.getMessage()
    ]
    assert len(capped) == 1
    assert len({s.clip_id for s in data.samples}) == TRAIN_CLIPS


@pytest.mark.parametrize("recipe", ["B3", "clicks"])
def test_labels_made_on_demand_come_from_the_manual_labels_given(tiny_streets, tmp_path, recipe):
    """With ``data.labels.manual`` the default pseudo-labels and clicks are made from those labels (every
    anchor class 5 here), in stores of their own; they had been made from the data set's ground truth."""
    from frugalseg.autolabel.runs import run_config

    fmt = get_format("synthetic", tiny_streets)
    manual = LabelStore(tmp_path / "manual")
    with manual.run(run_config(fmt, "train", "session", {})):
        for clip in fmt.clips("train"):
            shape = fmt.read_label(clip.require_label(0, LabelKind.FINE)).shape
            manual.write(clip, 0, LabelKind.FINE, np.full(shape, 5, np.uint8), engine="session", settings={},
                         source_offset=0, seconds=60)  # fmt: skip
    options = RecipeOptions(recipe, budget=6 if recipe == "B3" else 2)
    loader = LoaderOptions(batch_size=2, num_workers=0, check_memory=False)
    data = VideoSegDataModule(root=str(tiny_streets), recipe=options, loader=loader,
                              labels=LabelOptions(manual=str(manual.root)))  # fmt: skip
    data.prepare_data()
    data.setup("fit")
    train = data.datasets["train"]
    kinds = {sample.kind for sample in train.samples}
    assert kinds == ({LabelKind.FINE, LabelKind.PSEUDO} if recipe == "B3" else {LabelKind.CLICKS})
    for index in range(len(train)):
        assert set(np.unique(train[index]["label"].numpy()).tolist()) <= {5, 255}, train.samples[index]
    made = data.source(LabelKind.PSEUDO if recipe == "B3" else LabelKind.CLICKS)
    assert made.store_for(data._training_format(fmt)) != made.store_for(fmt)  # apart from the truth's
