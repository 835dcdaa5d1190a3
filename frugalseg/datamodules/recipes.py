"""Training-set recipes: which (clip, offset, label kind) make the training set under a sample budget.

Two families, both from the SAM 2 label-efficiency study (paper 001):

* frame mixes (Table 1), e.g. ``B3`` = offsets −10, 0, +10 around the manually annotated frame,
  the anchor with its fine label and the other offsets with propagated (pseudo) labels. To keep the
  total near the budget, ``ceil(budget / len(offsets))`` clips are drawn and every offset of the
  recipe is used in each;
* coarse-ratio mixes (Table 3), ``C{X}`` / ``RC{X}``: X % of the budget are coarse (or
  SAM-refined coarse) labels of the anchor frame, the rest fine labels.

and one from WeClick (paper 004): ``clicks``, the anchor frame of each clip with simulated click
labels (one click per object, every other pixel ignored) instead of its fine label.

Draws are seeded and the chosen list is written next to a run's logs with :func:`write_samples`,
together with its annotation cost (:func:`annotation_cost`).
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugalseg.data.clips import Clip, LabelKind
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.data.io import write_json_atomic
from frugalseg.errors import ConfigError

#: Table 1 of paper 001: offsets from the annotated frame (frame 20 of 10…30 is offset 0).
FRAME_MIXES: dict[str, tuple[int, ...]] = {
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
    "B11": tuple(range(-10, 11, 2)),
    "P11": tuple(range(-10, 1)),
    "F11": tuple(range(0, 11)),
}

#: Coarse percentages listed by :func:`list_recipes` (Table 3); any integer 0–100 is accepted by name.
TABLE3_PERCENTS: tuple[int, ...] = tuple(range(0, 101, 10))

logger = logging.getLogger(__name__)

_COARSE_NAME = re.compile(r"(RC|C)(0|[1-9][0-9]?|100)")
_COARSE_KINDS = (LabelKind.COARSE, LabelKind.REFINED_COARSE)
_ANCHOR_KINDS = (LabelKind.FINE, LabelKind.CLICKS)

#: Recipes whose anchor frame carries another label than the manual fine one (paper 004).
ANCHOR_MIXES: dict[str, tuple[tuple[int, ...], LabelKind]] = {"clicks": ((0,), LabelKind.CLICKS)}


@dataclass(frozen=True)
class Recipe:
    """A named choice of frame offsets and label kinds.

    ``coarse_percent`` > 0 makes it a coarse-ratio mix: that share of the budget uses
    ``coarse_kind`` labels at offset 0 and the rest fine labels. ``anchor_kind`` is the label of
    the anchor frame in a frame mix: ``fine`` (manual) or ``clicks`` (simulated clicks).
    """

    name: str
    offsets: tuple[int, ...]
    coarse_percent: int = 0
    coarse_kind: LabelKind = LabelKind.COARSE
    anchor_kind: LabelKind = LabelKind.FINE

    def __post_init__(self) -> None:
        if not self.offsets or len(set(self.offsets)) != len(self.offsets):
            raise ValueError(
                f"recipe {self.name}: offsets must be non-empty and distinct, got {self.offsets}"
            )
        if not 0 <= self.coarse_percent <= 100:
            raise ValueError(
                f"recipe {self.name}: coarse_percent must lie in 0…100, got {self.coarse_percent}"
            )
        if self.coarse_kind not in _COARSE_KINDS:
            raise ValueError(
                f"recipe {self.name}: coarse_kind must be coarse or refined_coarse, got {self.coarse_kind}"
            )
        if self.coarse_percent and self.offsets != (0,):
            raise ValueError(f"recipe {self.name}: a coarse mix uses offset 0 only, got {self.offsets}")
        if self.anchor_kind not in _ANCHOR_KINDS:
            raise ValueError(
                f"recipe {self.name}: anchor_kind must be fine or clicks, got {self.anchor_kind}"
            )
        if self.anchor_kind is not LabelKind.FINE and self.coarse_percent:
            raise ValueError(f"recipe {self.name}: a coarse mix keeps fine labels at the anchor")

    def kind_at(self, offset: int) -> LabelKind:
        """Label kind used at ``offset``: ``anchor_kind`` at the anchor, pseudo elsewhere."""
        return self.anchor_kind if offset == 0 else LabelKind.PSEUDO

    @property
    def pseudo_offsets(self) -> tuple[int, ...]:
        """The offsets that use propagated labels (all but the anchor)."""
        return tuple(o for o in self.offsets if o != 0)


def list_recipes() -> list[str]:
    """Names of every recipe.

    The Table 1 frame mixes, the Table 3 coarse mixes (``C0``…``C100``, ``RC0``…``RC100``) and the
    click recipe.
    """
    coarse = [f"{prefix}{x}" for prefix in ("C", "RC") for x in TABLE3_PERCENTS]
    return [*FRAME_MIXES, *coarse, *ANCHOR_MIXES]


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``: a Table 1 id, ``C{X}`` / ``RC{X}`` (X an integer 0–100) or ``clicks``."""
    if name in FRAME_MIXES:
        return Recipe(name, FRAME_MIXES[name])
    if name in ANCHOR_MIXES:
        offsets, kind = ANCHOR_MIXES[name]
        return Recipe(name, offsets, anchor_kind=kind)
    match = _COARSE_NAME.fullmatch(name)
    if match is None:
        raise ConfigError(
            "recipe",
            f"unknown recipe {name!r}; known: {', '.join(FRAME_MIXES)}, {', '.join(ANCHOR_MIXES)}, "
            "and C{X} / RC{X} (X % coarse / refined coarse labels, X an integer 0–100)",
        )
    kind = LabelKind.REFINED_COARSE if match.group(1) == "RC" else LabelKind.COARSE
    return Recipe(name, (0,), coarse_percent=int(match.group(2)), coarse_kind=kind)


@dataclass(frozen=True)
class Sample:
    """One training sample: the label of ``kind`` for the frame at ``offset`` of a clip."""

    clip_id: str
    offset: int
    kind: LabelKind


def _has_label(clip: Clip, kind: LabelKind) -> bool:
    return clip.label(0, kind) is not None


def check_served(recipe: Recipe, pool: Sequence[Clip], split: str | None = None) -> None:
    """Raise naming a recipe offset that no clip of ``pool`` (the training ``split``) has a frame for.

    An empty ``pool`` is an error of its own: the split has no clips.
    """
    if not pool:
        named = f"split {split!r}" if split is not None else "the training split"
        raise ConfigError(
            "data.splits.train",
            f"{named} has no clips, so recipe {recipe.name} has nothing to draw from; "
            "`frugalseg data check DATA_ROOT` lists what is wrong with the data set",
        )
    for offset in recipe.offsets:
        if not any(clip.has_frame(offset) for clip in pool):
            spans = sorted({(clip.offsets[0], clip.offsets[-1]) for clip in pool})
            shown = ", ".join(f"{lo:+d}…{hi:+d}" for lo, hi in spans[:3])
            raise ConfigError(
                "recipe",
                f"recipe {recipe.name}: no clip has a frame at offset {offset:+d} (clips span offsets {shown}"
                f"{', …' if len(spans) > 3 else ''}); choose a recipe whose offsets the data have",
            )


def _limit(count: int, available: int, what: str) -> int:
    """``count`` capped at ``available``; a warning when too few are (none when none is)."""
    if count > available > 0:
        logger.warning("asked for %d clips %s, only %d exist; using all of them", count, what, available)
    return min(count, available)


def draw_samples(
    recipe: Recipe | str, clips: Sequence[Clip], budget: int | None = None, seed: int = 0
) -> list[Sample]:
    """Draw the training samples of ``recipe`` from ``clips`` under a total ``budget``.

    ``budget`` None means the number of clips with a fine label at offset 0; a frame mix draws
    among the clips whose anchor has the recipe's ``anchor_kind`` label. The draw depends only
    on the recipe, the budget, the seed and the set of clip ids (not their order). Returns samples
    sorted by (clip_id, offset, kind).
    """
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    repeated = sorted(i for i, n in Counter(clip.clip_id for clip in clips).items() if n > 1)
    if repeated:
        raise ValueError(f"clip ids must be unique; repeated: {', '.join(repeated[:5])}")
    ordered = sorted(clips, key=lambda clip: clip.clip_id)
    fine_pool = [clip for clip in ordered if _has_label(clip, LabelKind.FINE)]
    if budget is None:
        budget = len(fine_pool)
    if budget < 0:
        raise ConfigError("budget", f"must be >= 0, got {budget}")
    rng = random.Random(seed)
    if recipe.coarse_percent == 0:
        samples = _draw_frame_mix(recipe, ordered, budget, rng)
    else:
        samples = _draw_coarse_mix(recipe, ordered, fine_pool, budget, rng)
    return sorted(samples, key=_sort_key)


def _draw_frame_mix(recipe: Recipe, ordered: Sequence[Clip], budget: int, rng: random.Random) -> list[Sample]:
    """The samples of a frame mix: every offset of the recipe in ``ceil(budget / offsets)`` drawn clips.

    Clips are drawn among those whose anchor has the recipe's ``anchor_kind`` label; an offset a
    clip has no frame for is left out with a warning.

    Args:
        recipe: a frame mix (``coarse_percent`` 0).
        ordered: the clips, sorted by id.
        budget: the total number of samples aimed at.
        rng: the draw's generator.
    """
    kind = recipe.anchor_kind
    pool = [clip for clip in ordered if _has_label(clip, kind)]
    if pool:
        check_served(recipe, pool)
    count = _limit(math.ceil(budget / len(recipe.offsets)), len(pool), f"with a {kind.value} label")
    samples: list[Sample] = []
    left_out: list[str] = []
    for clip in rng.sample(pool, count):
        for offset in recipe.offsets:
            if clip.has_frame(offset):
                samples.append(Sample(clip.clip_id, offset, recipe.kind_at(offset)))
            else:
                left_out.append(f"{clip.clip_id}{offset:+d}")
    if left_out:
        shown = ", ".join(left_out[:5]) + (f" and {len(left_out) - 5} more" if len(left_out) > 5 else "")
        logger.warning(
            "recipe %s: %d sample(s) left out, their frames lie past their clips' ends or are missing (%s)",
            recipe.name,
            len(left_out),
            shown,
        )
    return samples


def _draw_coarse_mix(
    recipe: Recipe, ordered: Sequence[Clip], fine_pool: Sequence[Clip], budget: int, rng: random.Random
) -> list[Sample]:
    """The samples of a coarse-ratio mix: ``coarse_percent`` % of ``budget`` coarse labels, the rest fine.

    Coarse clips are drawn among those with a plain coarse label for both C{X} and RC{X}, so that
    the refined mix uses exactly the same samples as the non-refined one (paper 001, 5.2.1). Fine
    clips are drawn first among the clips not drawn for a coarse label.

    Args:
        recipe: a coarse mix (``coarse_percent`` > 0).
        ordered: the clips, sorted by id.
        fine_pool: those of them with a fine label at offset 0.
        budget: the total number of samples.
        rng: the draw's generator.

    Raises:
        ConfigError: a clip with a coarse label lacks the recipe's ``coarse_kind`` label (checked on them
            all, before the draw: which clips are drawn depends on the seed).
    """
    n_coarse = round(budget * recipe.coarse_percent / 100)
    if n_coarse == 0:  # it would train on fine labels alone, as another recipe
        least = next(b for b in range(1, 10_001) if round(b * recipe.coarse_percent / 100))
        raise ConfigError(
            "recipe",
            f"recipe {recipe.name} draws {recipe.coarse_percent} % of its {budget} samples as coarse labels, "
            f"which rounds to none: give data.recipe.budget {least} or more (the split's clips, when none)",
        )
    coarse_pool = [clip for clip in ordered if _has_label(clip, LabelKind.COARSE)]
    if n_coarse and not coarse_pool:  # it would train on fine labels alone, as another recipe
        raise ConfigError(
            "recipe",
            f"recipe {recipe.name} trains on {recipe.coarse_percent} % coarse labels at the anchor frame "
            "(Cityscapes' gtCoarse), and no clip of the split has one: choose a frame mix (N1, B3, …) or "
            "a data set with coarse labels",
        )
    lacking = [clip.clip_id for clip in coarse_pool if not _has_label(clip, recipe.coarse_kind)]
    if lacking:
        shown = ", ".join(lacking[:3]) + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
        raise ConfigError(
            "data.labels.refined",
            f"recipe {recipe.name} draws among the {len(coarse_pool)} clips with a coarse label, and "
            f"{len(lacking)} of them have no {recipe.coarse_kind.value} label ({shown}): refine them all "
            "with `frugalseg label refine-coarse --out STORE` (it resumes a store)",
        )
    coarse_clips = rng.sample(coarse_pool, _limit(n_coarse, len(coarse_pool), "with a coarse label"))
    samples = [Sample(clip.clip_id, 0, recipe.coarse_kind) for clip in coarse_clips]

    used = {clip.clip_id for clip in coarse_clips}
    fresh = [clip for clip in fine_pool if clip.clip_id not in used]
    reused = [clip for clip in fine_pool if clip.clip_id in used]
    n_fine = _limit(budget - n_coarse, len(fine_pool), "with a fine label")
    fine_clips = rng.sample(fresh, min(n_fine, len(fresh)))
    fine_clips += rng.sample(reused, n_fine - len(fine_clips))
    for clip in fine_clips:
        samples.append(Sample(clip.clip_id, 0, LabelKind.FINE))
    return samples


def _sort_key(sample: Sample) -> tuple[str, int, str]:
    return sample.clip_id, sample.offset, sample.kind.value


@dataclass(frozen=True)
class AnnotationCost:
    """Human annotation time behind a set of samples (each distinct label counted once)."""

    minutes: dict[LabelKind, float]
    total_hours: float
    manual_frames: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with the kinds spelled as their values."""
        return {
            "minutes": {kind.value: value for kind, value in self.minutes.items()},
            "total_hours": self.total_hours,
            "manual_frames": self.manual_frames,
        }


def implied_anchors(samples: Iterable[Sample], anchor_kind: LabelKind) -> list[Sample]:
    """The ``anchor_kind`` anchor of each clip whose pseudo-labels are drawn without it (recipe B2n).

    A person drew it to propagate them, so the recipe's cost holds it (`annotation_cost` of both).
    """
    drawn = set(samples)
    anchored = {s.clip_id for s in drawn if s.offset == 0}
    pseudo = sorted({s.clip_id for s in drawn if s.kind is LabelKind.PSEUDO} - anchored)
    return [Sample(clip_id, 0, anchor_kind) for clip_id in pseudo]


def annotation_cost(
    samples: Iterable[Sample],
    costs: AnnotationCosts = DEFAULT_COSTS,
    clicks: Mapping[Sample, int] | None = None,
    objects: Mapping[Sample, int] | None = None,
    booked: Mapping[LabelKind, float] | None = None,
) -> AnnotationCost:
    """Minutes per label kind, total hours and number of manual labels, from ``costs`` (`costs.py`).

    ``clicks`` gives the number of clicks of each ``clicks`` sample (its cost depends on it), ``objects``
    the objects of each ``fine`` sample that is an object mask (a video object set's: `masks_seconds` each,
    not a street frame's dense label); ``booked``
    the seconds a person booked on a kind's labels (`LabelSource.booked_seconds`), which price that kind
    in place of ``costs``.
    """
    minutes: dict[LabelKind, float] = {}
    manual = 0
    for sample in set(samples):
        if booked is not None and sample.kind in booked:
            minutes[sample.kind] = booked[sample.kind] / 60.0  # the kind's total, whichever samples drawn
            manual += sample.kind is not LabelKind.PSEUDO  # a person drew it (a pseudo label they propagated)
            continue
        if sample.kind is LabelKind.CLICKS and clicks is not None and sample in clicks:
            cost = costs.clicks_seconds(clicks[sample]) / 60.0
        elif objects is not None and sample in objects:
            cost = costs.masks_seconds(objects[sample]) / 60.0
        else:
            cost = costs.frame_minutes(sample.kind)
        minutes[sample.kind] = minutes.get(sample.kind, 0.0) + cost
        manual += cost > 0
    ordered = {kind: minutes[kind] for kind in LabelKind if kind in minutes}
    return AnnotationCost(ordered, sum(ordered.values()) / 60.0, manual)


def write_samples(
    samples: Sequence[Sample],
    path: str | Path,
    recipe: Recipe,
    cost: AnnotationCost,
    seed: int | None = None,
    budget: int | None = None,
) -> Path:
    """Write the chosen samples and their cost as JSON, atomically; returns the path written."""
    path = Path(path)
    record: dict[str, Any] = {
        "recipe": recipe.name,
        "offsets": list(recipe.offsets),
        "coarse_percent": recipe.coarse_percent,
        "coarse_kind": recipe.coarse_kind.value,
        "anchor_kind": recipe.anchor_kind.value,
    }
    if seed is not None:
        record["seed"] = seed
    if budget is not None:
        record["budget"] = budget
    record["cost"] = cost.to_dict()
    record["samples"] = [{"clip_id": s.clip_id, "offset": s.offset, "kind": s.kind.value} for s in samples]
    write_json_atomic(path, record, sort_keys=False)
    return path


def read_samples(path: str | Path) -> list[Sample]:
    """Samples from a file written by :func:`write_samples`."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["samples"]
        return [Sample(str(e["clip_id"]), int(e["offset"]), LabelKind(e["kind"])) for e in entries]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a samples file written by write_samples ({err})") from err
