"""Recipes of paper 001 (Table 1 frame mixes, Table 3 coarse mixes), their draws and costs."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from frugalseg.data.clips import Clip, LabelKind, LabelRef
from frugalseg.datamodules.recipes import (
    AnnotationCost,
    Recipe,
    Sample,
    annotation_cost,
    draw_samples,
    get_recipe,
    implied_anchors,
    list_recipes,
    read_samples,
    write_samples,
)
from frugalseg.errors import ConfigError

TABLE1_OFFSETS = {
    "N1": (0,),
    "P2": (-10, 0),
    "P2s": (-1, 0),
    "F2": (0, 10),
    "F2s": (0, 1),
    "B2n": (-10, 10),
    "B3": (-10, 0, 10),
    "B3s": (-1, 0, 1),
    "B5": (-10, -5, 0, 5, 10),
    "B5s": (-2, -1, 0, 1, 2),
    "B7": (-10, -7, -3, 0, 3, 7, 10),
    "B9": (-10, -7, -5, -3, 0, 3, 5, 7, 10),
    "B11": (-10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10),
    "P11": (-10, -9, -8, -7, -6, -5, -4, -3, -2, -1, 0),
    "F11": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
}
TABLE1_TOTALS = {
    "N1": 2975, "P2": 2976, "P2s": 2976, "F2": 2976, "F2s": 2976, "B2n": 2976, "B3": 2976, "B3s": 2976,
    "B5": 2975, "B5s": 2975, "B7": 2975, "B9": 2979, "B11": 2981, "P11": 2981, "F11": 2981,
}  # fmt: skip


def make_clips(
    count: int, prefix: str = "clip", kinds: tuple[LabelKind, ...] = (LabelKind.FINE,), frames: int = 30
) -> list[Clip]:
    """Cityscapes-like clips (30 frames, anchor 19) with a label of each of ``kinds`` at offset 0."""
    clips = []
    for i in range(count):
        clip_id = f"{prefix}{i:05d}"
        paths = [Path(f"{clip_id}_{j:06d}.png") for j in range(frames)]
        labels = {0: [LabelRef(Path(f"{clip_id}_{kind.value}.png"), kind) for kind in kinds]}
        clips.append(Clip(clip_id, "train", paths, anchor_index=19, labels=labels))
    return clips


@pytest.fixture(scope="module")
def cityscapes_train() -> list[Clip]:
    return make_clips(2975)


@pytest.mark.parametrize("name", TABLE1_OFFSETS)
def test_table1_offsets(name: str) -> None:
    recipe = get_recipe(name)
    assert recipe.offsets == TABLE1_OFFSETS[name]
    assert recipe.pseudo_offsets == tuple(o for o in TABLE1_OFFSETS[name] if o != 0)
    assert recipe.coarse_percent == 0


@pytest.mark.parametrize("name", TABLE1_OFFSETS)
def test_table1_totals_and_manual_share(name: str, cityscapes_train: list[Clip]) -> None:
    samples = draw_samples(name, cityscapes_train, budget=2975)
    assert len(samples) == TABLE1_TOTALS[name]
    assert len(set(samples)) == len(samples)
    per_clip = Counter(s.clip_id for s in samples)
    assert set(per_clip.values()) == {len(TABLE1_OFFSETS[name])}
    kinds = Counter(s.kind for s in samples)
    assert kinds[LabelKind.FINE] == (len(per_clip) if 0 in TABLE1_OFFSETS[name] else 0)
    assert kinds[LabelKind.PSEUDO] == len(samples) - kinds[LabelKind.FINE]


def test_default_budget_is_number_of_fine_clips(cityscapes_train: list[Clip]) -> None:
    samples = draw_samples("N1", cityscapes_train + make_clips(5, "coarse_only", (LabelKind.COARSE,)))
    assert {s.clip_id for s in samples} == {c.clip_id for c in cityscapes_train}
    assert len(draw_samples("B3", cityscapes_train)) == 2976


def test_draw_is_seeded_and_independent_of_clip_order() -> None:
    clips = make_clips(60)
    first = draw_samples("B3", clips, budget=30, seed=3)
    shuffled = clips[:]
    random.Random(0).shuffle(shuffled)
    assert draw_samples("B3", shuffled, budget=30, seed=3) == first
    assert draw_samples("B3", clips, budget=30, seed=4) != first
    assert first == sorted(first, key=lambda s: (s.clip_id, s.offset))


def test_kinds_per_offset() -> None:
    clips = make_clips(9)
    assert {(s.offset, s.kind) for s in draw_samples("B3", clips)} == {
        (-10, LabelKind.PSEUDO), (0, LabelKind.FINE), (10, LabelKind.PSEUDO)
    }  # fmt: skip
    assert {s.kind for s in draw_samples("B2n", clips)} == {LabelKind.PSEUDO}
    recipe = get_recipe("B5")
    assert [recipe.kind_at(o) for o in recipe.offsets] == [LabelKind.PSEUDO] * 2 + [LabelKind.FINE] + [
        LabelKind.PSEUDO
    ] * 2


def test_too_few_clips_warns_and_uses_all(caplog: pytest.LogCaptureFixture) -> None:
    samples = draw_samples("N1", make_clips(4), budget=10)
    assert len(samples) == 4
    assert "asked for 10 clips with a fine label, only 4 exist; using all of them" in caplog.text
    caplog.clear()
    assert draw_samples("N1", make_clips(0), budget=10) == []  # the data module says why: no "using all"
    assert caplog.text == ""


def test_offsets_a_partial_snippet_lacks_are_left_out_and_an_unservable_offset_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    short = make_clips(1, "short", frames=25)  # offsets −19…+5: no +10
    gap = make_clips(1, "gap")
    gap[0].missing = frozenset({-10})
    samples = draw_samples("B3", make_clips(2) + short + gap, budget=12)
    assert "recipe B3: 2 sample(s) left out" in caplog.text and "(short00000+10, gap00000-10)" in caplog.text
    assert len(samples) == 4 * 3 - 2
    assert Sample("short00000", 10, LabelKind.PSEUDO) not in samples
    assert Sample("gap00000", 10, LabelKind.PSEUDO) in samples
    with pytest.raises(ValueError, match=r"recipe B3: no clip has a frame at offset \+10 .*-19…\+5"):
        draw_samples("B3", short)
    assert len(draw_samples("B3s", short)) == 3


def test_coarse_mix_counts_and_prefers_unused_clips() -> None:
    both = (LabelKind.FINE, LabelKind.COARSE, LabelKind.REFINED_COARSE)
    clips = make_clips(100, kinds=both)
    samples = draw_samples("C30", clips, budget=100, seed=1)
    coarse = {s.clip_id for s in samples if s.kind == LabelKind.COARSE}
    fine = {s.clip_id for s in samples if s.kind == LabelKind.FINE}
    assert (len(coarse), len(fine), len(samples)) == (30, 70, 100)
    assert not coarse & fine
    assert {s.offset for s in samples} == {0}
    assert draw_samples("C0", clips, budget=100, seed=1) == draw_samples("N1", clips, budget=100, seed=1)


def test_refined_mix_uses_the_same_clips_as_coarse_mix() -> None:
    # Refined-only clips must never be drawn: both mixes draw among clips with a plain coarse label.
    clips = (
        make_clips(80, "fine", (LabelKind.FINE,))
        + make_clips(80, "extra", (LabelKind.COARSE, LabelKind.REFINED_COARSE))
        + make_clips(40, "refonly", (LabelKind.REFINED_COARSE,))
    )
    plain = draw_samples("C30", clips, budget=50, seed=7)
    refined = draw_samples("RC30", clips, budget=50, seed=7)
    assert [(s.clip_id, s.offset) for s in refined] == [(s.clip_id, s.offset) for s in plain]
    assert Counter(s.kind for s in refined) == {LabelKind.REFINED_COARSE: 15, LabelKind.FINE: 35}
    assert Counter(s.kind for s in plain) == {LabelKind.COARSE: 15, LabelKind.FINE: 35}


@pytest.mark.parametrize("seed", range(4))
def test_a_refined_mix_refuses_a_coarse_clip_without_refined_label_whichever_the_seed_draws(
    seed: int,
) -> None:
    """A bare ValueError (a traceback) had come only when the seed drew the unrefined clip."""
    clips = (
        make_clips(10, kinds=(LabelKind.FINE,))
        + make_clips(1, "unrefined", (LabelKind.COARSE,))
        + make_clips(9, "refined", (LabelKind.COARSE, LabelKind.REFINED_COARSE))
    )
    with pytest.raises(
        ConfigError,
        match=r"among the 10 clips with a coarse label, and 1 of them have no "
        r"refined_coarse label \(unrefined00000\): refine them all",
    ):
        draw_samples("RC10", clips, budget=10, seed=seed)


@pytest.mark.parametrize("name", ["C50", "C100", "RC50"])
def test_a_coarse_mix_on_clips_without_coarse_labels_is_refused(name: str) -> None:
    """C50 had trained on fine labels alone with a warning (another recipe under its name), and C100 said
    the clips had no fine label."""
    clips = make_clips(10, kinds=(LabelKind.FINE,))
    with pytest.raises(
        ConfigError, match=rf"recipe {name} trains on \d+ % coarse labels .* no clip of the split"
    ):
        draw_samples(name, clips, budget=10)


def test_a_coarse_share_that_rounds_to_no_sample_is_refused() -> None:
    """C50 of one clip drew round(0.5) = 0 coarse labels and trained on the fine one alone, saying nothing."""
    clips = make_clips(1, kinds=(LabelKind.FINE, LabelKind.COARSE))
    with pytest.raises(ConfigError) as error:
        draw_samples("C50", clips, budget=1)
    assert str(error.value) == (
        "recipe: recipe C50 draws 50 % of its 1 samples as coarse labels, which rounds to none: give "
        "data.recipe.budget 2 or more (the split's clips, when none)"
    )
    two = draw_samples("C50", make_clips(2, kinds=(LabelKind.FINE, LabelKind.COARSE)), budget=2)
    assert sorted(s.kind.value for s in two) == ["coarse", "fine"]


def test_recipe_names() -> None:
    with pytest.raises(ValueError, match="offset 0 only"):
        Recipe("mixed", (-10, 0), coarse_percent=20)
    assert get_recipe("C7").coarse_percent == 7
    assert get_recipe("RC100").coarse_kind == LabelKind.REFINED_COARSE
    names = list_recipes()
    assert names[:15] == list(TABLE1_OFFSETS) and "C50" in names and "RC0" in names
    for bad in ("B4", "C101", "C05", "rc10"):
        with pytest.raises(ValueError, match=r"unknown recipe .*N1.*C\{X\}"):
            get_recipe(bad)


def test_annotation_cost() -> None:
    n1 = annotation_cost(draw_samples("N1", make_clips(10)))
    assert n1 == AnnotationCost({LabelKind.FINE: 900.0}, 15.0, 10)
    clips = make_clips(30)
    b3 = annotation_cost(draw_samples("B3", clips, budget=30))
    assert b3.total_hours * 3 == annotation_cost(draw_samples("N1", clips, budget=30)).total_hours == 45.0
    assert b3.minutes == {LabelKind.FINE: 900.0, LabelKind.PSEUDO: 0.0}
    c50 = annotation_cost(
        draw_samples("C50", make_clips(100, kinds=(LabelKind.FINE, LabelKind.COARSE)), budget=100)
    )
    assert c50 == AnnotationCost({LabelKind.FINE: 4500.0, LabelKind.COARSE: 350.0}, 4850 / 60, 100)
    twice = [Sample("a", 0, LabelKind.FINE)] * 2
    assert annotation_cost(twice).total_hours == 1.5
    # a video object set's manual label is its objects' masks, 80 s each (not a street frame's 90 min)
    masks = [Sample("a", 0, LabelKind.FINE), Sample("b", 0, LabelKind.FINE)]
    priced = annotation_cost(masks, objects={masks[0]: 1, masks[1]: 3})
    assert priced.minutes == {LabelKind.FINE: 320 / 60} and priced.manual_frames == 2
    assert priced.total_hours == pytest.approx(320 / 3600)


def test_pseudo_labels_drawn_without_their_anchor_still_cost_the_anchor() -> None:
    """B2n trains on ±10 alone: each clip's anchor label was drawn to propagate them (it had cost 0 h)."""
    samples = draw_samples("B2n", make_clips(4))
    clips = sorted({s.clip_id for s in samples})
    assert len(clips) > 1 and {s.offset for s in samples} == {-10, 10}
    anchors = implied_anchors(samples, LabelKind.FINE)
    assert anchors == [Sample(clip, 0, LabelKind.FINE) for clip in clips]
    b2n = annotation_cost([*samples, *anchors])
    assert b2n == AnnotationCost(
        {LabelKind.FINE: 90.0 * len(clips), LabelKind.PSEUDO: 0.0}, 1.5 * len(clips), len(clips)
    )
    assert implied_anchors(draw_samples("B3", make_clips(4)), LabelKind.FINE) == []  # their anchors are drawn
    (clicked,) = implied_anchors([Sample("a", 10, LabelKind.PSEUDO)], LabelKind.CLICKS)
    assert clicked == Sample("a", 0, LabelKind.CLICKS)


def test_write_samples_round_trip(tmp_path: Path) -> None:
    recipe = get_recipe("B3")
    samples = draw_samples(recipe, make_clips(6), budget=6, seed=2)
    cost = annotation_cost(samples)
    path = write_samples(samples, tmp_path / "run" / "logs" / "samples.json", recipe, cost, seed=2, budget=6)
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["recipe"] == "B3" and record["offsets"] == [-10, 0, 10]
    assert (record["seed"], record["budget"]) == (2, 6)
    assert record["cost"] == {
        "minutes": {"fine": 180.0, "pseudo": 0.0},
        "total_hours": 3.0,
        "manual_frames": 2,
    }
    assert record["samples"][0] == {"clip_id": samples[0].clip_id, "offset": -10, "kind": "pseudo"}
    assert read_samples(path) == samples
    assert [p.name for p in path.parent.iterdir()] == ["samples.json"]
